"""The lm-evaluation-harness bridge: native probe vs export -> lm-eval (hf backend) -> import give
the same distributions and the same IFT groups, on a tiny byte-level BPE Llama."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from iftscope.intervene.groups import InterveneConfig, build_groups
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.lmeval import records_from_samples, task_docs
from iftscope.probe.formats import get_format
from iftscope.stages.model import ModelSpec
from iftscope.stages.probe import CacheConfig, probe_stage
from iftscope.types import Question

pytest.importorskip("lm_eval")

WORDS = ["bridge", "palace", "emperor", "arithmetic", "river", "engine", "copper", "steam", "canal", "gear"]


def questions(n: int = 8) -> list[Question]:
    """Questions with 4 options each (one with 3, scored in a batch of its own)."""
    out = []
    for i in range(n):
        opts = tuple(WORDS[(i + k * 3) % len(WORDS)] for k in range(3 if i == 5 else 4))
        out.append(Question(f"q{i}", f"Which of the following is a {WORDS[i % 10]}?", opts, i % len(opts), domain="engineering"))
    return out


def _probe(model_dir, qs, pool, cfg, out):
    probe_stage(ModelSpec(str(model_dir)), qs, cfg, out, pool=pool, batch_size=8, cache=CacheConfig(False), progress=False)
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _groups(qs, records):
    from iftscope.types import ProbeRecord

    cfg = InterveneConfig(confidence=0.25, mixtures=(0.5,), seed=1)
    groups = build_groups(qs, [ProbeRecord.from_json(r) for r in records], cfg)
    return {g.name: [(i.question_id, i.target, i.kind) for i in g.items] for g in groups}


CASES = {
    "letter": ProbeConfig(format="mmlu", shots=2, demo_sets=2, permutations=2, known_rule="argmax"),
    "continuation": ProbeConfig(format="continuation", shots=1, demos="per-question", normalise="char", known_rule="argmax"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_native_and_lm_eval_agree(tiny_hf_model_dir, tmp_path, case):
    qs = questions()
    pool = questions(10)[::-1]
    cfg = CASES[case]
    native = _probe(tiny_hf_model_dir, qs, pool, cfg, tmp_path / "native")
    via = _probe(tiny_hf_model_dir, qs, pool, replace(cfg, backend="lm-eval"), tmp_path / "lm-eval")
    assert [r["question_id"] for r in via] == [q.id for q in qs]
    diff = max(np.abs(np.subtract(a["distribution"], b["distribution"])).max() for a, b in zip(native, via))
    print(case, "max |native - lm-eval|", diff, "groups", {k: len(v) for k, v in _groups(qs, native).items()})
    assert diff < 1e-5, diff
    for key in ("prediction", "correct", "known", "category", "views", "format"):
        assert [r[key] for r in native] == [r[key] for r in via], key
    for key in ("option_mass", "gold_abs_prob", "sampled_accuracy"):
        np.testing.assert_allclose([r[key] for r in via], [r[key] for r in native], rtol=1e-4, atol=1e-6)
    assert _groups(qs, native) == _groups(qs, via)
    summary = json.loads((tmp_path / "lm-eval" / "summary.json").read_text())
    assert summary["backend"] == "lm-eval" and summary["lm_eval"]["model"] == "hf"
