"""Both optional conditions on real-data inputs, through the study's own code path: Xiezhi
questions, two tiny Llamas of different width sharing Llama-2's SentencePiece tokenizer (m =
data.model, taught only to write items: realmodels.tiny_writer; M = proxy.model, random and twice
as wide), a few training steps.

proxy: the rows exist beside M untuned and M tuned directly; the study's proxy-H scores are the
logit arithmetic's (reloaded here); alpha = 0 gives M's own scores exactly. self-instruct: m writes
its questions (k-shot from the Xiezhi pool), answers them, and the group is trained, measured and
reported as confidence only. The models know nothing: this shows that the path runs and reads
what it should, not what either method does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA, xiezhi_subset

from iftscope.runfolder import Job, RunFolder

pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")


def _recipe(tmp_path, small, large):
    tests = {role: (path, 8) for role, path in (("HOMO", "engineering/test"), ("OOD", "history/test"))}
    data = xiezhi_subset(tmp_path, {"ift": ("engineering/train", 40), **tests})
    pool = SHARED_DATA / "xiezhi" / "engineering" / "dev.jsonl"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"""
name: proxy-real
seeds: [0]
groups: [H, I, S, self-instruct]
conditions: [self-instruct, proxy]
proxy: {{model: {large}, alpha: 1.0, group: H}}
data:
  model: {small}
  ift: [{data["ift"]}]
  pool: [{pool}]
  tests: {{HOMO: {data["HOMO"]}, OOD: {data["OOD"]}}}
probe: {{format: paper, shots: 2, demos: first, known_rule: argmax}}
intervene: {{confidence: 0.0, size: 4, mixtures: [], micro_world: false, generated_demos: 1,
            generated_attempts: 10, generated_tokens: 40, generated_temperature: 0.7}}
render: {{template: vicuna, show_options: true, styles: [answer]}}
train: {{lora: true, steps: 2, batch_size: 4, lr: 1.0e-2, max_length: 1024, checkpoint_every: 0}}
eval_batch_size: 16
generation_questions: 2
curve_questions: 0
"""
    )
    return recipe


def _distributions(model, tokenizer, questions, fmt_name):
    from iftscope.models.scorer import HFScorer
    from iftscope.probe.formats import get_format
    from iftscope.probe.knowledge import ProbeConfig, probe

    fmt = get_format(fmt_name).with_tokenizer(tokenizer)
    scorer = HFScorer(model, tokenizer, batch_size=8)
    return np.array(
        [r.distribution for r in probe(scorer, questions, [], fmt, ProbeConfig(fmt_name, shots=0))]
    )


def test_proxy_and_written_self_instruct_on_real_data(tmp_path, real_writer, tmp_path_factory):
    import torch
    from realmodels import tiny_model

    from iftscope.cli import main
    from iftscope.data import load_questions
    from iftscope.models.proxy import load_proxy
    from iftscope.stages.model import ModelSpec

    small = real_writer()
    large = tiny_model("llama", "sp-converted", tmp_path_factory.mktemp("llama-large"), seed=1, hidden=128)
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy host
    try:
        assert main(["run", str(_recipe(tmp_path, small, large)), "--out", str(out), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert {"proxy-H/answer", "large-H/answer", "H/answer", "self-instruct/answer"} <= set(summary["table"])
    assert {"HOMO", "OOD"} <= set(summary["conditions"]["large_base"])  # M untuned, read as the probe reads
    assert summary["training"]["proxy-H/answer/s0"] == {"alpha": 1.0, "guide": "H/answer/s0"}
    run = RunFolder(out)
    steered = run.eval(Job(0, "proxy-H", "answer"))
    records = [json.loads(line) for line in (steered / "records-HOMO.jsonl").read_text().splitlines()]
    fmt = records[0]["format"].split("@")[0]
    assert fmt == "sft-vicuna-options"  # read as the small model was trained
    homo = load_questions(run.test_set("HOMO"))
    guide = str(run.train(Job(0, "H", "answer")) / "model")
    m, big = ModelSpec(str(small)), ModelSpec(str(large))
    proxy, tok = load_proxy(big, m, guide, 1.0)
    study = np.array([r["distribution"] for r in records])
    np.testing.assert_allclose(_distributions(proxy, tok, homo, fmt), study, atol=1e-5)  # the arithmetic
    own = _distributions(big.load()[0], tok, homo, fmt)
    assert not np.allclose(own, study, atol=1e-4)  # m's tuning moved M
    zero, _ = load_proxy(big, m, guide, 0.0)
    np.testing.assert_allclose(_distributions(zero, tok, homo, fmt), own, atol=1e-6)  # alpha 0: M itself

    # self-instruct: written by m, answered by m, trained and reported with no gold
    written = load_questions(run.groups(0) / "written.jsonl")
    assert len(written) == 4 and all(q.metadata["written"] for q in written)
    made = summary["conditions"]["self_instruct"]
    assert made["mean"]["written"] is True and 0.25 <= made["mean"]["mean_confidence"] <= 1
    writing = made["per_seed"]["0"]["writing"]
    assert writing["accepted"] == 4 and writing["attempts"] == 4 + sum(writing["rejected"].values())
    memorised = summary["memorisation"]["self-instruct/answer"]
    assert "target_accuracy" in memorised and "gold_accuracy" not in memorised  # no gold exists
    report = (out / "report" / "report.html").read_text()
    assert "questions written by the model; no gold: confidence only" in report
