"""SFT on a 2-layer model: what LoRA and full fine-tuning change, and exact resume after a crash."""

import copy
import json

import pytest
import torch

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.train.sft import SFTConfig, batch_indices, train_sft
from iftscope.types import Group, GroupItem

CFG = SFTConfig(
    steps=6, batch_size=4, lr=1e-2, warmup=2, checkpoint_every=3, target_modules=("q_proj", "v_proj")
)


def examples(tiny_world):
    _, _, questions = tiny_world
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 0.9) for q in questions[:10])
    return render_group(Group("H", "test", items), {q.id: q for q in questions}, RenderConfig())


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_batches_are_a_function_of_the_step():
    first_epoch = [i for s in range(3) for i in batch_indices(12, s, 4, seed=0)]
    assert sorted(first_epoch) == list(range(12))  # an epoch sees every example once
    assert batch_indices(12, 5, 4, 0) == batch_indices(12, 5, 4, 0) != batch_indices(12, 5, 4, 1)


def test_lora_changes_only_the_adapter(tiny_model, tokenizer, tiny_world, tmp_path):
    before = snapshot(tiny_model)
    summary = train_sft(tiny_model, tokenizer, examples(tiny_world), tmp_path, CFG, progress=False)
    peft_model = tiny_model  # peft wraps the base modules in place
    after = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in snapshot(peft_model).items()
    }
    lora = [k for k in after if "lora_" in k]
    assert lora and all(torch.equal(before[k], after[k]) for k in before)  # base weights untouched
    assert any(not torch.all(after[k] == 0) for k in lora if "lora_B" in k)  # B starts at zero
    assert (tmp_path / "model" / "adapter_model.safetensors").exists()
    assert summary["trainable_parameters"] < sum(v.numel() for v in before.values()) / 5
    assert len(summary["log"]) == 6 and summary["log"][-1]["loss"] < summary["log"][0]["loss"]


def test_the_checkpoint_is_deleted_once_the_model_is_saved(tiny_model, tokenizer, tiny_world, tmp_path):
    """A finished training keeps its model, not its last checkpoint (tens of GB for a 7B full run)."""
    saved = []

    def look(model, step):
        saved.append((tmp_path / "checkpoint" / "state.json").exists())
        return {}

    train_sft(tiny_model, tokenizer, examples(tiny_world), tmp_path, CFG, False, look, evaluate_every=4)
    assert saved == [True, True]  # written at step 3, there at steps 4 and 6
    assert (tmp_path / "model" / "adapter_model.safetensors").exists() and (tmp_path / "train.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "train.json"]


def test_full_fine_tuning_changes_every_tensor(tiny_model, tokenizer, tiny_world, tmp_path):
    from dataclasses import replace

    before = snapshot(tiny_model)
    train_sft(tiny_model, tokenizer, examples(tiny_world), tmp_path, replace(CFG, lora=False), progress=False)
    after = snapshot(tiny_model)
    assert all(not torch.equal(before[k], after[k]) for k in before if "rotary" not in k)
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_resume_after_a_crash_gives_the_uninterrupted_result(tiny_model, tokenizer, tiny_world, tmp_path):
    data = examples(tiny_world)
    ref_model = copy.deepcopy(tiny_model)
    ref = train_sft(ref_model, tokenizer, data, tmp_path / "ref", CFG, progress=False)

    def crash(model, step):
        if step == 5:
            raise KeyboardInterrupt("killed")
        return {}

    crashed_model = copy.deepcopy(tiny_model)
    with pytest.raises(KeyboardInterrupt):
        train_sft(crashed_model, tokenizer, data, tmp_path / "run", CFG, False, crash, evaluate_every=1)
    assert json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["step"] == 3
    resumed = train_sft(copy.deepcopy(tiny_model), tokenizer, data, tmp_path / "run", CFG, progress=False)
    assert resumed["resumed_from_step"] == 3
    assert [r["loss"] for r in resumed["log"]] == [r["loss"] for r in ref["log"]]
    a = (tmp_path / "ref" / "model" / "adapter_model.safetensors").read_bytes()
    assert a == (tmp_path / "run" / "model" / "adapter_model.safetensors").read_bytes()


def test_gradient_accumulation_gives_the_whole_batch_result(tokenizer, tiny_world, tmp_path):
    """Micro-batches of 1 (each padded on its own) accumulate to the loss curve of whole batches."""
    from dataclasses import replace

    from conftest import TINY_MODEL

    from iftscope.microworld.tiny import build_model

    def fresh():
        ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
        return build_model(TINY_MODEL, len(tokenizer), *ids, seed=0)

    whole = train_sft(fresh(), tokenizer, examples(tiny_world), tmp_path / "a", CFG, progress=False)
    micro = replace(CFG, micro_batch_size=1)
    parts = train_sft(fresh(), tokenizer, examples(tiny_world), tmp_path / "b", micro, progress=False)
    assert [r["loss"] for r in parts["log"]] == pytest.approx([r["loss"] for r in whole["log"]], abs=1e-5)


def test_epochs_warmup_ratio_and_cosine_resolve_to_steps():
    from iftscope.train.config import lr_factor, resolve

    cfg = resolve(SFTConfig(epochs=3, batch_size=4, warmup_ratio=0.1, schedule="cosine"), examples=10)
    assert cfg.steps == 8 and cfg.warmup == 1  # ceil(3 x 10 / 4), round(0.8)
    factor = lr_factor(cfg)
    assert factor(0) == 1.0 and factor(1) == pytest.approx(1.0) and factor(8) == pytest.approx(0.0, abs=1e-12)
    assert factor(1 + 7 // 2) < factor(2) and 0.4 < factor(1 + 3.5) < 0.6  # halfway: cos gives 0.5
    assert lr_factor(SFTConfig(steps=10, warmup=0))(5) == 0.5  # linear
    with pytest.raises(ValueError, match="linear or cosine"):
        resolve(SFTConfig(schedule="step"), 10)
