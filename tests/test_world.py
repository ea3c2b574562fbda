import json

import pytest
import torch
from conftest import tiny_stage_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from iftscope.microworld import pretrain as pretrain_module
from iftscope.microworld import stage as stage_module
from iftscope.microworld.stage import WorldMismatchError, build_world


def test_world_end_to_end_and_reuse(tmp_path):
    out = tmp_path / "world"
    summary = build_world(out, tiny_stage_config(), progress=False)
    assert not summary["reused"]
    # the headline recall is recounted from the per-paraphrase counts in recall.jsonl
    rows = [json.loads(x) for x in (out / "recall.jsonl").read_text().splitlines()]
    for key, known in (("known", True), ("unknown", False)):
        sel = [r for r in rows if r["known_person"] == known]
        recalled = sum(r["paraphrases_recalled"] for r in sel) / sum(r["paraphrases"] for r in sel)
        assert summary["memorisation"][key] == pytest.approx(recalled)
    assert 0.0 <= summary["memorisation"]["known_train_template"] <= 1.0
    assert summary["pretrain"]["tokens_per_second"] > 0 and summary["pretrain"]["seconds"] > 0
    assert summary["chance"] == pytest.approx((4 / 30 + 1 / 50) / 5)
    assert summary["counts"]["questions_per_split"]["known_test"] == 10 * 5
    model = AutoModelForCausalLM.from_pretrained(out / summary["paths"]["model"])
    tok = AutoTokenizer.from_pretrained(out / summary["paths"]["tokenizer"])
    assert model.config.num_hidden_layers == 2 and tok.bos_token == "<s>"
    assert (out / "model" / "model.safetensors").exists() and not (out / "pretrain" / "checkpoint").exists()
    lines = (out / "questions.jsonl").read_text().splitlines()
    assert len(lines) == 30 * 5 and json.loads(lines[0])["answer"] in range(4)
    again = build_world(out, tiny_stage_config(), progress=False)
    assert again["reused"] and again["memorisation"] == summary["memorisation"]


def test_same_config_gives_byte_identical_files(tmp_path):
    build_world(tmp_path / "a", tiny_stage_config(steps=4), progress=False)
    build_world(tmp_path / "b", tiny_stage_config(steps=4), progress=False)
    for name in ("people.jsonl", "questions.jsonl", "config.json", "model/model.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_other_config_in_same_folder_is_refused(tmp_path):
    build_world(tmp_path / "w", tiny_stage_config(steps=4), progress=False)
    with pytest.raises(WorldMismatchError, match="another config"):
        build_world(tmp_path / "w", tiny_stage_config(steps=4, seed=9), progress=False)
    assert not build_world(tmp_path / "w", tiny_stage_config(steps=4, seed=9), force=True, progress=False)[
        "reused"
    ]


def test_crash_then_resume_equals_uninterrupted(tmp_path, monkeypatch):
    build_world(tmp_path / "clean", tiny_stage_config(), progress=False)
    real_batch = pretrain_module.BiographySampler.batch

    def crashing_batch(self, step, *args):
        if step == 7:
            raise KeyboardInterrupt("simulated crash")
        return real_batch(self, step, *args)

    monkeypatch.setattr(pretrain_module.BiographySampler, "batch", crashing_batch)
    with pytest.raises(KeyboardInterrupt):
        build_world(tmp_path / "crashed", tiny_stage_config(), progress=False)
    assert (tmp_path / "crashed" / "pretrain" / "checkpoint" / "trainer_state.pt").exists()
    assert not (tmp_path / "crashed" / "summary.json").exists()
    monkeypatch.setattr(pretrain_module.BiographySampler, "batch", real_batch)
    resumed = build_world(tmp_path / "crashed", tiny_stage_config(), progress=False)
    assert resumed["pretrain"]["resumed_from_step"] == 5
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "clean" / "model").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "crashed" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    clean_log = (tmp_path / "clean" / "pretrain" / "log.jsonl").read_text()
    assert (tmp_path / "crashed" / "pretrain" / "log.jsonl").read_text() == clean_log


def test_per_fact_recall_takes_the_majority_of_paraphrases():
    from iftscope.microworld.generator import FactPrompt
    from iftscope.microworld.stage import per_fact_recall

    facts = [FactPrompt("p1", "field", True, f"prompt {i}", "law") for i in range(3)]
    facts += [FactPrompt("p2", "field", False, f"prompt {i}", "law") for i in range(3)]
    rows = per_fact_recall(facts, [True, True, False, True, False, False])
    assert rows == [
        {
            "question_id": "p1-field",
            "known_person": True,
            "paraphrases": 3,
            "paraphrases_recalled": 2,
            "recalled": True,
        },
        {
            "question_id": "p2-field",
            "known_person": False,
            "paraphrases": 3,
            "paraphrases_recalled": 1,
            "recalled": False,
        },
    ]


def test_crash_after_training_does_not_train_again(tmp_path, monkeypatch):
    out = tmp_path / "w"
    first = build_world(out, tiny_stage_config(), progress=False)
    (out / "summary.json").unlink()  # as if killed between saving the model and the summary

    def no_training(*args, **kwargs):
        raise AssertionError("pretraining ran again")

    # Patched where build_world looks it up; a fresh folder shows that the patch is live, so the
    # check below cannot pass only because the patch missed.
    monkeypatch.setattr(stage_module, "pretrain", no_training)
    with pytest.raises(AssertionError, match="ran again"):
        build_world(tmp_path / "fresh", tiny_stage_config(), progress=False)
    again = build_world(out, tiny_stage_config(), progress=False)
    assert not again["reused"] and again["memorisation"] == first["memorisation"]
