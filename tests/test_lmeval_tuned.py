"""Tuned models through lm-evaluation-harness: a LoRA job (the base plus its adapter, `peft=`) and a
full fine-tuning (its saved model as `pretrained=`), each trained by the train stage on a tiny
byte-level BPE Llama, evaluated natively and through lm-eval's hf backend: the same option
distributions (1e-5), the same correct flags, the same metrics; and the adapter-argument registry."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from test_lmeval import questions

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.lmeval_run import ADAPTER_ARGS, adapter_args
from iftscope.stages.evaluate import evaluate_stage, read_reference
from iftscope.stages.model import ModelSpec
from iftscope.stages.train import train_stage
from iftscope.train.sft import SFTConfig
from iftscope.types import Group, GroupItem

pytest.importorskip("lm_eval")

SFT = SFTConfig(
    steps=4, batch_size=4, lr=3e-2, warmup=1, checkpoint_every=0, target_modules=("q_proj", "v_proj")
)
READINGS = {  # the study's two instruments: QA as trained (continuation), a k-shot letter probe
    "qa": ProbeConfig(format="qa", shots=0),
    "letter": ProbeConfig(format="mmlu", shots=1, demos="first", permutations=2, known_rule="argmax"),
}


def _examples(tmp_path):
    """SFT examples teaching the test questions' gold answers, as the study's intervene writes them."""
    qs = questions()
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 0.9) for q in qs)
    rows = render_group(Group("H", "test", items), {q.id: q for q in qs}, RenderConfig())
    path = tmp_path / "examples.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))
    return path, rows[0].style


@pytest.fixture(scope="module")
def tuned_models(tiny_hf_model_dir, tmp_path_factory):
    """kind -> the ModelSpec the study reads a job's saved model with (ModelSpec.tuned)."""
    tmp = tmp_path_factory.mktemp("tuned")
    examples, style = _examples(tmp)
    base = ModelSpec(str(tiny_hf_model_dir), device="cpu")
    out = {}
    for kind, lora in (("lora", True), ("full", False)):
        train_stage(base, examples, style, replace(SFT, lora=lora), tmp / kind)
        out[kind] = base.tuned(tmp / kind / "model")
    assert out["lora"].adapter and out["full"].adapter is None and out["full"].path != base.path
    return out


def _records(folder, name):
    return [json.loads(line) for line in (folder / f"records-{name}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_tuned_model_native_and_lm_eval_agree(tuned_models, tiny_hf_model_dir, tmp_path, kind):
    """Both readings of a tuned model, with a reference and extras as the study gives them: records
    and metrics agree; the extras still run (natively) beside lm-eval's scoring."""
    model, qs = tuned_models[kind], questions()
    sets = {"homo": qs[:5], "ood": qs[5:]}
    base = ModelSpec(str(tiny_hf_model_dir), device="cpu")
    seen = []

    def extras(scorer, records):  # what the study's job extras receive: a scorer and every set's records
        seen.append(type(scorer).__name__)
        return {"_extra": {"sets": sorted(records), "n": sum(len(r) for r in records.values())}}

    for reading, cfg in READINGS.items():
        ref = evaluate_stage(base, sets, cfg, tmp_path / reading / "base", pool=qs, batch_size=8)
        assert set(ref) == set(sets)
        reference = read_reference(tmp_path / reading / "base", list(sets))
        got = {}
        for backend in ("native", "lm-eval"):
            got[backend] = evaluate_stage(
                model, sets, replace(cfg, backend=backend), tmp_path / reading / backend, pool=qs,
                reference=reference, extras=extras, batch_size=8,
            )  # fmt: skip
        native, via = got["native"], got["lm-eval"]
        assert via.keys() == native.keys()
        assert via["_extra"] == native["_extra"] == {"sets": ["homo", "ood"], "n": len(qs)}
        for name in sets:
            a, b = (
                _records(tmp_path / reading / "native", name),
                _records(tmp_path / reading / "lm-eval", name),
            )
            assert [r["question_id"] for r in b] == [q.id for q in sets[name]]
            diff = max(
                np.abs(np.subtract(x["distribution"], y["distribution"])).max()
                for x, y in zip(a, b, strict=True)
            )
            print(kind, reading, name, "max |native - lm-eval|", diff)
            assert diff < 1e-5, diff
            moved = max(
                np.abs(np.subtract(x["distribution"], y["distribution"])).max()
                for x, y in zip(_records(tmp_path / reading / "base", name), b, strict=True)
            )
            assert moved > 1e-3, moved  # the tuning shows: an lm-eval run without it would not agree
            for key in ("correct", "prediction", "known"):
                assert [r[key] for r in a] == [r[key] for r in b], key
            assert via[name].keys() == native[name].keys()  # tie_rate (letter formats) included
            assert via[name]["accuracy"] == native[name]["accuracy"]
            for key, value in native[name]["consistency"].items():
                if isinstance(value, float):
                    assert via[name]["consistency"][key] == pytest.approx(value, abs=1e-5, nan_ok=True), key
        provenance = json.loads((tmp_path / reading / "lm-eval" / "lm-eval" / "provenance.json").read_text())
        args = provenance["lm_eval"]["model_args"]
        if kind == "lora":  # the base, with the job's adapter folder
            assert args["pretrained"] == str(tiny_hf_model_dir) and args["peft"] == model.adapter
        else:  # the job's own saved model
            assert args["pretrained"] == model.path and "peft" not in args
    assert seen == ["HFScorer"] * 4  # the extras got a native scorer on both paths


def test_adapter_arguments_by_model_type(tmp_path):
    """The registry gives each lm-eval model type its own adapter key; vLLM's LoRA slots fit the
    adapter's rank; a model type with no adapter support is refused, naming those that have it."""
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 48}))
    assert adapter_args("hf", tmp_path) == {"peft": str(tmp_path)}
    assert adapter_args("vllm", tmp_path) == {"lora_local_path": str(tmp_path), "max_lora_rank": 64}
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    assert adapter_args("vllm", tmp_path)["max_lora_rank"] == 16
    with pytest.raises(ValueError, match="sglang.*hf, hf-auto, huggingface, vllm"):
        adapter_args("sglang", tmp_path)
    assert {"hf", "vllm"} <= set(ADAPTER_ARGS)


def test_cli_evaluate_adapter_through_lm_eval(tuned_models, tiny_hf_model_dir, tmp_path, monkeypatch, capsys):
    """`iftscope evaluate --adapter A --backend lm-eval`: the native command's records; without
    lm-eval installed, exit 2 naming the extra before any scoring."""
    import sys

    from iftscope.cli import main

    qs = questions()
    data = tmp_path / "homo.jsonl"
    data.write_text("".join(json.dumps(q.to_json()) + "\n" for q in qs))
    cmd = ["evaluate", "--model", str(tiny_hf_model_dir), "--adapter", tuned_models["lora"].adapter,
           "--sets", f"homo={data}", "--device", "cpu", "--batch-size", "8"]  # fmt: skip
    assert main([*cmd, "--out", str(tmp_path / "native")]) == 0
    assert main([*cmd, "--backend", "lm-eval", "--out", str(tmp_path / "lm")]) == 0
    a, b = _records(tmp_path / "native", "homo"), _records(tmp_path / "lm", "homo")
    assert (
        max(
            np.abs(np.subtract(x["distribution"], y["distribution"])).max() for x, y in zip(a, b, strict=True)
        )
        < 1e-5
    )
    assert [r["correct"] for r in a] == [r["correct"] for r in b]
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now fails, as when not installed
    capsys.readouterr()
    assert main([*cmd, "--backend", "lm-eval", "--out", str(tmp_path / "missing")]) == 2
    assert "pip install 'iftscope[lm-eval]'" in capsys.readouterr().err
    assert not (tmp_path / "missing" / "metrics.json").exists()


def test_recipe_refuses_what_lm_eval_cannot_do_for_tuned_jobs():
    """Refused before any work: LoRA jobs with an lm-eval model type that takes no adapter, and
    lm_eval_args naming the model (the study names each model it scores)."""
    from iftscope.study.config import StudyConfig
    from iftscope.study.validate import problems

    lm = ProbeConfig(backend="lm-eval")
    assert problems(StudyConfig(probe=lm)) == []
    found = problems(StudyConfig(probe=replace(lm, lm_eval_model="sglang")))
    assert any("'sglang' cannot score the LoRA jobs' adapters" in p for p in found), found
    cfg = StudyConfig(probe=replace(lm, lm_eval_model="sglang"))
    assert problems(replace(cfg, train=replace(cfg.train, lora=False))) == []  # full fine-tuning: no adapter
    found = problems(StudyConfig(probe=replace(lm, lm_eval_args="pretrained=x,peft=y,dtype=bfloat16")))
    assert any("probe.lm_eval_args: peft, pretrained (the study names" in p for p in found), found
