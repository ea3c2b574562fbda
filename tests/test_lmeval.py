"""The lm-evaluation-harness bridge: native probe vs export -> lm-eval (hf backend) -> import give
the same distributions and the same IFT groups, on a tiny byte-level BPE Llama."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from iftscope.intervene.groups import InterveneConfig, build_groups
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.lmeval import records_from_samples, task_docs
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
        out.append(
            Question(
                f"q{i}",
                f"Which of the following is a {WORDS[i % 10]}?",
                opts,
                i % len(opts),
                domain="engineering",
            )
        )
    return out


def _probe(model_dir, qs, pool, cfg, out):
    probe_stage(
        ModelSpec(str(model_dir)),
        qs,
        cfg,
        out,
        pool=pool,
        batch_size=8,
        cache=CacheConfig(False),
        progress=False,
    )
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _groups(qs, records):
    from iftscope.types import ProbeRecord

    cfg = InterveneConfig(confidence=0.25, mixtures=(0.5,), seed=1)
    groups = build_groups(qs, [ProbeRecord.from_json(r) for r in records], cfg)
    return {g.name: [(i.question_id, i.target, i.kind) for i in g.items] for g in groups}


CASES = {
    "letter": ProbeConfig(format="mmlu", shots=2, demo_sets=2, permutations=2, known_rule="argmax"),
    "continuation": ProbeConfig(
        format="continuation", shots=1, demos="per-question", normalise="char", known_rule="argmax"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_native_and_lm_eval_agree(tiny_hf_model_dir, tmp_path, case):
    qs = questions()
    pool = questions(10)[::-1]
    cfg = CASES[case]
    native = _probe(tiny_hf_model_dir, qs, pool, cfg, tmp_path / "native")
    via = _probe(tiny_hf_model_dir, qs, pool, replace(cfg, backend="lm-eval"), tmp_path / "lm-eval")
    assert [r["question_id"] for r in via] == [q.id for q in qs]
    diff = max(
        np.abs(np.subtract(a["distribution"], b["distribution"])).max()
        for a, b in zip(native, via, strict=True)
    )
    print(case, "max |native - lm-eval|", diff, "groups", {k: len(v) for k, v in _groups(qs, native).items()})
    assert diff < 1e-5, diff
    for key in ("prediction", "correct", "known", "category", "views", "format"):
        assert [r[key] for r in native] == [r[key] for r in via], key
    for key in ("option_mass", "gold_abs_prob", "sampled_accuracy"):
        np.testing.assert_allclose([r[key] for r in via], [r[key] for r in native], rtol=1e-4, atol=1e-6)
    assert _groups(qs, native) == _groups(qs, via)
    summary = json.loads((tmp_path / "lm-eval" / "summary.json").read_text())
    assert summary["backend"] == "lm-eval" and summary["lm_eval"]["model"] == "hf"
    from iftscope.outputs import check

    assert check(tmp_path / "lm-eval", "summary.json").state == "intact"  # sealed, samples included


def _write_questions(path, qs):
    path.write_text("".join(json.dumps(q.to_json()) + "\n" for q in qs))
    return path


def _lm_eval_log_samples(task_dir, task, model_dir, out):
    """lm-eval on the exported folder, its samples written by lm-eval's own --log_samples writer
    (EvaluationTracker: every number a string)."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    results = simple_evaluate(
        model="hf", model_args={"pretrained": str(model_dir)}, tasks=[task], device="cpu", batch_size=8,
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False), log_samples=True,
        bootstrap_iters=0, verbosity="ERROR",
    )  # fmt: skip
    tracker = EvaluationTracker(output_path=str(out))
    tracker.date_id = getattr(tracker, "date_id", None) or "t"
    tracker.save_results_samples(task, results["samples"][task])


def test_cli_export_lm_eval_import_intervene(tiny_hf_model_dir, tmp_path):
    """`iftscope export lm-eval` FILE, lm-eval's own samples file, `iftscope import lm-eval`: the
    records of `iftscope probe`, and `iftscope intervene` reads them."""
    from iftscope.cli import main

    data = _write_questions(tmp_path / "eng.jsonl", questions())
    flags = [
        "--format",
        "mmlu",
        "--shots",
        "2",
        "--permutations",
        "2",
        "--demo-sets",
        "2",
        "--known-rule",
        "argmax",
    ]
    assert main(["export", "lm-eval", str(data), "--out", str(tmp_path / "tasks"), *flags]) == 0
    info = json.loads((tmp_path / "tasks" / "iftscope-export.json").read_text())
    assert info["tasks"] == {"eng": "iftscope_eng"} and info["documents"] == {"eng": 8 * 4}
    _lm_eval_log_samples(tmp_path / "tasks", "iftscope_eng", tiny_hf_model_dir, tmp_path / "lm-out")
    (written,) = (tmp_path / "lm-out").rglob("samples_iftscope_eng_*.jsonl")
    assert isinstance(json.loads(written.read_text().splitlines()[0])["resps"][0][0][0], str)  # its format
    assert main(["import", "lm-eval", str(tmp_path / "lm-out"), "--out", str(tmp_path / "imported")]) == 0
    native = ["probe", "--model", str(tiny_hf_model_dir), "--data", str(data), "--no-cache", "--quiet"]
    assert main([*native, *flags, "--out", str(tmp_path / "native")]) == 0
    ours = [json.loads(x) for x in (tmp_path / "native" / "records.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in (tmp_path / "imported" / "eng" / "records.jsonl").read_text().splitlines()]
    diff = max(
        np.abs(np.subtract(a["distribution"], b["distribution"])).max()
        for a, b in zip(ours, got, strict=True)
    )
    assert len(got) == len(ours) == 8 and diff < 1e-5
    assert [r["prediction"] for r in got] == [r["prediction"] for r in ours]
    assert main(["intervene", "--probe", str(tmp_path / "imported" / "eng"), "--data", str(data),
                 "--confidence", "0.25", "--out", str(tmp_path / "groups")]) == 0  # fmt: skip
    assert (tmp_path / "groups" / "summary.json").exists()


def test_import_refuses_incomplete_or_foreign_samples(tmp_path):
    qs = questions(2)
    docs = task_docs(qs, qs, get_format("mmlu"), ProbeConfig(format="mmlu", shots=1, permutations=2), "s")
    samples = [
        (f"f:{i}", {"doc": d, "resps": [[[-1.0, False]]] * len(d["choices"])}) for i, d in enumerate(docs)
    ]
    assert [len(s.records) for s in records_from_samples(samples).values()] == [2]
    with pytest.raises(ValueError, match="question q0: views \\[1\\] of 2 logged"):
        records_from_samples(samples[1:])
    with pytest.raises(ValueError, match="f:9: not a sample of a task written by iftscope"):
        records_from_samples([("f:9", {"doc": {"question": "x"}, "resps": []})])
    with pytest.raises(ValueError, match="token cannot|log no token counts"):
        task_docs(
            qs,
            qs,
            get_format("continuation"),
            ProbeConfig(format="continuation", shots=1, normalise="token"),
            "s",
        )


def test_evaluate_stage_through_lm_eval(tiny_hf_model_dir, tmp_path):
    """The base model's evaluation on several test sets (the study's evaluate-base) through lm-eval:
    one lm-eval run for every set, the same records and metrics as the native scorer's."""
    from iftscope.stages.evaluate import evaluate_stage

    qs = questions()
    sets = {"homo": qs[:5], "ood": qs[5:]}
    cfg = ProbeConfig(format="paper", shots=1, demos="first", permutations=2, known_rule="argmax")
    spec = ModelSpec(str(tiny_hf_model_dir))
    native = evaluate_stage(spec, sets, cfg, tmp_path / "native", pool=qs, batch_size=8)
    via = evaluate_stage(spec, sets, replace(cfg, backend="lm-eval"), tmp_path / "lm", pool=qs, batch_size=8)
    assert via.keys() == native.keys() == {"homo", "ood"}
    for name in sets:
        assert via[name]["accuracy"] == native[name]["accuracy"]
        a, b = (
            [json.loads(x) for x in (tmp_path / d / f"records-{name}.jsonl").read_text().splitlines()]
            for d in ("native", "lm")
        )
        assert [r["question_id"] for r in b] == [q.id for q in sets[name]]
        assert (
            max(
                np.abs(np.subtract(x["distribution"], y["distribution"])).max()
                for x, y in zip(a, b, strict=True)
            )
            < 1e-5
        )
    assert len(list((tmp_path / "lm" / "lm-eval" / "samples").glob("samples_*.jsonl"))) == 2
    from iftscope.outputs import check

    assert check(tmp_path / "lm", "metrics.json").state == "intact"


REAL = {  # (architecture, production tokenizer, format): how the letter is written and tokenised
    "llama-sp-paper": ("llama", "sp-converted", "paper"),  # bare 'A' after 'Answer:'
    "mistral-legacy-mmlu": ("mistral", "sp-legacy", "mmlu"),  # ' A', sentencepiece's own spaces
    "mistral-instruct-chat": ("mistral", "sp-instruct", "chat"),  # the model's chat template
}


@pytest.mark.slow  # three real vocabularies (32k) and three lm-eval runs: about a minute
@pytest.mark.parametrize("case", sorted(REAL))
def test_native_and_lm_eval_agree_real_tokenizers(real_model, tmp_path, case):
    arch, kind, fmt = REAL[case]
    folder = real_model(arch, kind)
    qs = questions(6)
    cfg = ProbeConfig(format=fmt, shots=1, demos="first", permutations=2, known_rule="argmax")
    native = _probe(folder, qs, qs, cfg, tmp_path / "native")
    via = _probe(folder, qs, qs, replace(cfg, backend="lm-eval"), tmp_path / "lm-eval")
    diff = max(
        np.abs(np.subtract(a["distribution"], b["distribution"])).max()
        for a, b in zip(native, via, strict=True)
    )
    print(case, "max |native - lm-eval|", diff)
    assert diff < 1e-5, diff
    assert [r["prediction"] for r in native] == [r["prediction"] for r in via]
