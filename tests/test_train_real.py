"""SFT on real production tokenizers and tiny random Llama/Mistral/Qwen2 models (tests/realmodels.py):
the response labelled as it is tokenised in context, bf16 that learns, a full fine-tuning that
loads back as a whole model, FSDP and DeepSpeed refused before any step."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import pytest
import torch
from safetensors import safe_open

from iftscope.intervene.render import RenderConfig, render_group
from iftscope.models.load import load_model
from iftscope.stages.model import ModelSpec
from iftscope.train.labels import IGNORE
from iftscope.train.sft import SFTConfig, tokenize, train_sft
from iftscope.types import Group, GroupItem, Question, SFTExample

QUESTIONS = [
    Question(
        f"q{i}", f"Which bridge is {i} miles long?", ("Golden Gate", "Brooklyn", "Tower", "Rialto"), i % 4
    )
    for i in range(8)
]
ONE_STEP = SFTConfig(steps=1, batch_size=4, lr=2e-5, warmup=0, lora=False, checkpoint_every=0, grad_clip=0)


def vicuna_examples(n: int = 8, show_options: bool = True) -> list[SFTExample]:
    """The paper's shape: vicuna template, options shown, responses " C. text"."""
    items = tuple(GroupItem(q.id, q.answer, "gold", q.answer, q.answer, 0.9) for q in QUESTIONS[:n])
    cfg = RenderConfig(template="vicuna", show_options=show_options)
    return render_group(Group("H", "", items), {q.id: q for q in QUESTIONS}, cfg)


def labelled_tokens(tok, prompt: str, response: str, max_length: int = 512) -> tuple[list[str], list[int]]:
    ex = SFTExample("x", "H", "q", prompt, response, response, None, "answer", "gold")
    [(ids, labels)] = tokenize([ex], tok, max_length)
    assert ids[-1] == labels[-1] == tok.eos_token_id
    return tok.convert_ids_to_tokens([x for x in labels[:-1] if x != IGNORE]), ids


@pytest.mark.parametrize("kind", ["sp-legacy", "sp-converted", "tekken"])
def test_the_response_is_labelled_as_it_is_tokenised_in_context(real_tokenizer, kind):
    """Labels = the tokens the response has inside prompt + response; the input is exactly that text
    tokenised (with the tokenizer's BOS). Tokenised apart, sp-legacy gave ['▁▁', 'C', ...]."""
    tok = real_tokenizer(kind)
    for ex in vicuna_examples(4):
        assert ex.prompt.endswith("ASSISTANT:") and ex.response.startswith(f" {ex.target_letter}. ")
        labels, ids = labelled_tokens(tok, ex.prompt, ex.response)
        whole = tok(ex.prompt + ex.response)["input_ids"]
        assert ids == [*whole, tok.eos_token_id]
        letter = {"tekken": "Ġ"}.get(kind, "▁") + ex.target_letter
        assert labels[:2] == [letter, "."], labels
        assert not {"▁", "▁▁", "Ġ"} & set(labels)
        assert tok.convert_tokens_to_string(labels).strip() == ex.response.strip()


@pytest.mark.parametrize(("kind", "expected"), [("sp-legacy", "C"), ("sp-converted", "C"), ("tekken", ":C")])
def test_a_response_glued_to_its_prompt_gets_its_in_context_token(real_tokenizer, kind, expected):
    """ "Answer:" + "C": SentencePiece has 'C' in context (apart: '▁C'); tekken merges ':C', which
    straddles the boundary and belongs to the response (apart: 'C' after a ':' it never sees)."""
    tok = real_tokenizer(kind)
    labels, ids = labelled_tokens(tok, "Question? Answer:", "C")
    assert labels == [expected]
    assert ids == [*tok("Question? Answer:C")["input_ids"], tok.eos_token_id]


def test_a_long_prompt_loses_its_left_but_keeps_bos_and_the_response(real_tokenizer):
    tok = real_tokenizer("sp-legacy")
    labels, ids = labelled_tokens(tok, "word " * 200 + "ASSISTANT:", " C. Tower", max_length=32)
    assert len(ids) == 32 and ids[0] == tok.bos_token_id  # BOS kept as the tokenizer put it
    assert labels == ["▁C", ".", "▁Tower"]
    assert tok.decode(ids[1:-1]).endswith("word ASSISTANT: C. Tower")


def test_bf16_full_fine_tuning_moves_the_weights_as_fp32_does(real_model, tmp_path):
    """One step at lr 2e-5: bf16 weights would round the update away (spacing ~1e-4 near 0.02);
    fp32 master weights under bf16 autocast move as an fp32 run does. The master weights are seen
    where the training curve sees them (the evaluate callback); the saved model is bf16."""
    folder = real_model("llama", "sp-converted")
    data = vicuna_examples(4)
    updates: dict[str, dict[str, torch.Tensor]] = {}
    for dtype in ("float32", "bfloat16"):
        model, tok = load_model(folder, dtype=dtype, device="cpu")
        before = {k: v.detach().float().clone() for k, v in model.named_parameters()}

        def seen(trained, step, dtype=dtype, before=before):
            updates[dtype] = {k: v.detach().float() - before[k] for k, v in trained.named_parameters()}
            return {}

        train_sft(model, tok, data, tmp_path / dtype, ONE_STEP, False, seen, evaluate_every=1, dtype=dtype)
    checked = 0
    for name, ref in updates["float32"].items():
        got, moved = updates["bfloat16"][name], ref != 0
        if "embed" in name or "lm_head" in name:  # the rows of tokens not in the batch stay
            continue
        checked += 1
        assert moved.float().mean() > 0.9, name
        assert (got[moved] != 0).float().mean() > 0.95, name  # nearly every weight moves
        assert (got[moved].sign() == ref[moved].sign()).float().mean() > 0.9, name  # the same way
        assert got.abs().max() < 3e-5 and ref.abs().max() < 3e-5  # AdamW's first step: ~lr each
    assert checked >= 10
    saved = tmp_path / "bfloat16" / "model"
    assert json.loads((saved / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(saved / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # half the disk


@pytest.mark.parametrize(
    ("arch", "kind"), [("llama", "sp-legacy"), ("mistral", "sp-converted"), ("qwen2", "tekken")]
)
def test_full_fine_tuning_saves_a_whole_model_that_loads_as_the_tuned_model(real_model, arch, kind, tmp_path):
    base = ModelSpec(str(real_model(arch, kind)), device="cpu")
    model, tok = base.load()
    cfg = replace(ONE_STEP, steps=3, lr=1e-3, checkpoint_every=2)
    train_sft(model, tok, vicuna_examples(8), tmp_path, cfg, progress=False)
    folder = tmp_path / "model"
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {p.name for p in folder.iterdir()}
    assert not (tmp_path / "checkpoint").exists()  # deleted once the model is saved
    tuned = base.tuned(folder)
    assert tuned.path == str(folder) and tuned.adapter is None
    loaded, loaded_tok = tuned.load()
    assert type(loaded).__name__ == type(model).__name__  # a whole model, not an adapter
    trained = dict(model.named_parameters())
    for name, p in loaded.named_parameters():
        assert torch.equal(p, trained[name].detach()), name
    text = vicuna_examples(1)[0].prompt
    assert loaded_tok(text)["input_ids"] == tok(text)["input_ids"]


def test_fsdp_and_deepspeed_are_refused_before_any_step(real_model, tmp_path, monkeypatch):
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    model, tok = load_model(real_model("llama", "sp-converted"), device="cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.FSDP))
    with pytest.raises(ValueError, match=r"FSDP is not supported.*DDP"):
        train_sft(model, tok, vicuna_examples(4), tmp_path, ONE_STEP, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not (tmp_path / "model").exists()


def test_an_accelerate_config_asking_for_sharding_is_refused(tmp_path):
    from iftscope.train.distributed import check_accelerate_config, check_distributed_type

    check_distributed_type("MULTI_GPU")
    check_distributed_type("NO")
    for text, what in [
        ("distributed_type: FSDP\nfsdp_config: {fsdp_sharding_strategy: FULL_SHARD}\n", "FSDP"),
        ("distributed_type: DEEPSPEED\ndeepspeed_config: {zero_stage: 3}\n", "DEEPSPEED"),
        ("distributed_type: MULTI_GPU\ndeepspeed_config: {zero_stage: 3}\n", "DEEPSPEED"),
    ]:
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(ValueError, match=f"{what} is not supported"):
            check_accelerate_config(tmp_path / "c.yaml")
    for fine in ("distributed_type: MULTI_GPU\nnum_processes: 2\n", "distributed_type: NO\n"):
        (tmp_path / "c.yaml").write_text(fine)  # a bare NO is YAML's false: still one process
        check_accelerate_config(tmp_path / "c.yaml")


def test_the_train_stage_trains_a_bf16_study_model_on_fp32_master_weights(real_model, tmp_path, monkeypatch):
    """`iftscope train --dtype bfloat16 --full` and a study with dtype bfloat16: the weights that train
    are read in fp32 from the file, the tuned model is saved (and read back) in bf16."""
    from iftscope.runs import atomic_write_jsonl
    from iftscope.stages import train as stage

    seen = []

    def spy(model, *args, **kwargs):
        seen.append((next(model.parameters()).dtype, kwargs["dtype"]))
        return train_sft(model, *args, **kwargs)

    monkeypatch.setattr(stage, "train_sft", spy)
    atomic_write_jsonl(tmp_path / "examples.jsonl", [asdict(e) for e in vicuna_examples(4)])
    base = ModelSpec(str(real_model("mistral", "sp-converted")), dtype="bfloat16", device="cpu")
    summary = stage.train_stage(base, tmp_path / "examples.jsonl", "answer", ONE_STEP, tmp_path / "out")
    assert seen == [(torch.float32, "bfloat16")] and summary["config"]["lora"] is False
    tuned, _ = base.tuned(tmp_path / "out" / "model").load()
    assert next(tuned.parameters()).dtype == torch.bfloat16


def test_lora_on_a_bf16_base_trains_fp32_adapters_over_the_frozen_bf16_base(real_model, tmp_path):
    model, tok = load_model(real_model("llama", "sp-converted"), dtype="bfloat16", device="cpu")
    cfg = replace(ONE_STEP, steps=2, lr=1e-2, lora=True, target_modules=("q_proj", "v_proj"))
    summary = train_sft(model, tok, vicuna_examples(4), tmp_path, cfg, progress=False)
    dtypes = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}
    assert all(math.isfinite(r["loss"]) for r in summary["log"])
    with safe_open(tmp_path / "model" / "adapter_model.safetensors", "pt") as f:
        assert any(f.get_tensor(k).abs().sum() > 0 for k in f.keys() if "lora_B" in k)


@pytest.mark.parametrize(("lora", "dtype"), [(True, "float32"), (True, "bfloat16"), (False, "bfloat16")])
def test_a_just_trained_model_evaluates_as_it_does_read_back_from_its_folder(
    real_model, tmp_path, lora, dtype
):
    """A job evaluates the model it just trained while it is still loaded (no second read of a 7B
    model): its records are exactly those of the same model read back from its folder, as a
    resumed study reads it."""
    from iftscope.probe.knowledge import ProbeConfig
    from iftscope.runs import atomic_write_jsonl
    from iftscope.stages.evaluate import evaluate_stage
    from iftscope.stages.train import train_stage

    atomic_write_jsonl(tmp_path / "examples.jsonl", [asdict(e) for e in vicuna_examples(4)])
    base = ModelSpec(str(real_model("llama", "sp-converted")), dtype=dtype, device="cpu")
    kept = []
    cfg = replace(ONE_STEP, lora=lora, lr=1e-2 if lora else 2e-5)
    train_stage(
        base,
        tmp_path / "examples.jsonl",
        "answer",
        cfg,
        tmp_path / "t",
        keep=lambda m, t: kept.append((m, t)),
    )
    assert len(kept) == 1
    sets, probe = {"HOMO": list(QUESTIONS[4:10])}, ProbeConfig(format="sft-vicuna-options", shots=0)
    tuned = base.tuned(tmp_path / "t" / "model")
    evaluate_stage(tuned, sets, probe, tmp_path / "in-memory", loaded=kept[0])
    evaluate_stage(tuned, sets, probe, tmp_path / "read-back")
    same = [(tmp_path / f / "records-HOMO.jsonl").read_text() for f in ("in-memory", "read-back")]
    assert same[0] == same[1]
    kept.clear()
    train_stage(
        base, tmp_path / "examples.jsonl", "answer", cfg, tmp_path / "t", keep=lambda m, t: kept.append(m)
    )
    assert kept == []  # a finished training is not redone: nothing in memory to hand over
