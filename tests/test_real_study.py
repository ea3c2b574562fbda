"""`iftscope run` end to end on tiny models with real production tokenizers and real questions.

The paper's shape (vicuna template, options shown, 5-shot `paper` probe, full fine-tuning in
bfloat16) on the Llama-2 / Mistral v1 SentencePiece vocabulary, both as transformers converts it and
as Llama-2 ships it; the model's own chat template on the instruct vocabulary (LoRA); and a
byte-level tekken vocabulary on Qwen2, where ':C' is one token so the `mmlu` format is used. The
models are random, so accuracies are at chance: these tests show that every stage runs and reads a
tuned model the way it was trained, not what the models know.
"""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA, xiezhi_subset

from iftscope.cli import main
from iftscope.runfolder import Job, RunFolder

pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")

CASES = {
    # name: (arch, tokenizer kind, probe format, template, lora, dtype)
    "paper-llama-sp": ("llama", "sp-converted", "paper", "vicuna", False, "bfloat16"),
    "paper-mistral-sp-legacy": ("mistral", "sp-legacy", "paper", "vicuna", False, "float32"),
    "chat-mistral-instruct": ("mistral", "sp-instruct", "chat", "chat", True, "float32"),
    "mmlu-qwen2-tekken": ("qwen2", "tekken", "mmlu", "vicuna", True, "bfloat16"),
}


def _small_data(tmp_path):
    """A few dozen Xiezhi questions per role, and the paper's demonstrations."""
    tests = {
        role: (path, 10)
        for role, path in (("HOMO", "engineering/test"), ("ID", "science/test"), ("OOD", "history/test"))
    }
    out = xiezhi_subset(tmp_path, {"ift": ("engineering/train", 40), **tests})
    return out | {"pool": SHARED_DATA / "xiezhi" / "engineering" / "dev.jsonl"}


def _recipe(tmp_path, model, fmt, template, lora, dtype):
    data = _small_data(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"""
name: real
seeds: [0]
groups: [H, I, S]
data:
  model: {model}
  ift: [{data["ift"]}]
  pool: [{data["pool"]}]
  tests: {{HOMO: {data["HOMO"]}, ID: {data["ID"]}, OOD: {data["OOD"]}}}
probe: {{format: {fmt}, shots: {0 if fmt == "chat" else 5}, demos: first, known_rule: argmax}}
intervene: {{confidence: 0.0, size: 4, mixtures: [], micro_world: false}}
render: {{template: {template}, show_options: true, styles: [answer]}}
train: {{lora: {str(lora).lower()}, steps: 2, batch_size: 4, lr: 2.0e-5, max_length: 1024,
        checkpoint_every: 1}}
dtype: {dtype}
eval_batch_size: 16
generation_questions: 2
curve_questions: 0
"""
    )
    return recipe


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_model_study_end_to_end(case, tmp_path, real_model):
    arch, kind, fmt, template, lora, dtype = CASES[case]
    recipe = _recipe(tmp_path, real_model(arch, kind), fmt, template, lora, dtype)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert {"H/answer", "I/answer", "S/answer"} <= set(summary["table"])
    run = RunFolder(out)
    for group in ("H", "I", "S"):
        job = Job(0, group, "answer")
        model = run.train(job) / "model"
        whole = (model / "config.json").exists() and not (model / "adapter_config.json").exists()
        assert whole is (not lora), model  # full fine-tuning: a whole model; LoRA: an adapter
        assert not (run.train(job) / "checkpoint").exists(), "a finished training kept its checkpoint"
        metrics = json.loads((run.eval(job) / "metrics.json").read_text())
        assert {"HOMO", "ID", "OOD"} <= set(metrics)
        assert 0 <= metrics["HOMO"]["tie_rate"] <= 1  # read by letter, as trained with options
        fmt = json.loads(run.eval_records(job, "HOMO").read_text().splitlines()[0])["format"]
        assert fmt.startswith(f"sft-{template}-options@"), fmt
    html = (out / "report" / "report.html").read_text()
    assert 'id="drilldown"' in html
