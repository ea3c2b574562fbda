"""Loading tuned models and generating from real architectures with real production tokenizers:
a LoRA adapter folder and a full fine-tuning's model folder read through ModelSpec.tuned in the
requested dtype, and left-padded batched generation equal to one prompt at a time."""

import numpy as np
import pytest
import torch

from iftscope.models.generate import generate_batched
from iftscope.models.load import load_model, pad_token_id
from iftscope.models.scorer import HFScorer
from iftscope.stages.model import ModelSpec

PROMPTS = ["Question: Which river flows through Lisbon?\nAnswer:", "Answer:", "The capital of Norway is"]


def letter_scores(model, tok) -> np.ndarray:
    scorer = HFScorer(model, tok)
    letters = [scorer.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    return scorer.letter_logprobs(PROMPTS, letters).logprobs


@pytest.mark.parametrize("on_head", [False, True])
def test_tuned_reads_an_adapter_folder(on_head, real_model, tmp_path):
    """A LoRA adapter (also one on the output head: the scorer then uses the model's own logits)
    is loaded on the base and scores as the in-memory adapted model does."""
    from peft import LoraConfig, get_peft_model

    base = real_model("llama", "sp-converted")
    model, tok = load_model(base, device="cpu")
    targets = ["q_proj", "v_proj"] + (["lm_head"] if on_head else [])
    torch.manual_seed(1)
    tuned = get_peft_model(model, LoraConfig(r=4, target_modules=targets, init_lora_weights=False))
    tuned.save_pretrained(tmp_path / "adapter")
    spec = ModelSpec(str(base), device="cpu").tuned(tmp_path / "adapter")
    assert spec.path == str(base) and spec.adapter == str(tmp_path / "adapter")
    loaded, loaded_tok = spec.load()
    assert HFScorer(loaded, loaded_tok).head.plain is not on_head
    expected = letter_scores(tuned.eval(), tok)
    np.testing.assert_allclose(letter_scores(loaded, loaded_tok), expected, atol=1e-5)
    assert not np.allclose(expected, letter_scores(load_model(base, device="cpu")[0], tok), atol=1e-3)


def test_tuned_reads_a_full_model_folder_in_the_requested_dtype(real_model, tmp_path):
    """A full fine-tuning writes a whole model (here saved in bf16): ModelSpec.tuned reads it as a
    model of its own, not as an adapter on the base, in the spec's dtype."""
    base = real_model("qwen2", "sp-converted")
    model, tok = load_model(base, device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "model", safe_serialization=True)
    tok.save_pretrained(tmp_path / "model")
    for dtype, torch_dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        spec = ModelSpec(str(base), dtype=dtype, device="cpu").tuned(tmp_path / "model")
        assert spec.path == str(tmp_path / "model") and spec.adapter is None and spec.dtype == dtype
        loaded, loaded_tok = spec.load()
        assert {p.dtype for p in loaded.parameters()} == {torch_dtype}
    expected = letter_scores(model.float(), tok)  # the bf16-rounded weights, in float32
    loaded32 = ModelSpec(str(base), device="cpu").tuned(tmp_path / "model").scorer(batch_size=4)
    ids = [loaded32.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    # (rotary frequencies: rounded to bf16 in `model`, recomputed in float32 when loaded)
    np.testing.assert_allclose(loaded32.letter_logprobs(PROMPTS, ids).logprobs, expected, atol=2e-4)
    with pytest.raises(FileNotFoundError, match="neither a PEFT adapter nor a model"):
        ModelSpec(str(base)).tuned(tmp_path)


@pytest.mark.parametrize(
    ("arch", "kind"), [("llama", "sp-converted"), ("mistral", "sp-legacy"), ("qwen2", "tekken")]
)
def test_left_padded_generation_equals_one_prompt_at_a_time(arch, kind, real_model):
    """Prompts of different lengths in one batch, left-padded with the tokenizer's pad (EOS for
    SentencePiece): every row generates what it generates alone; a device-mapped copy agrees."""
    folder = real_model(arch, kind)
    model, tok = load_model(folder, device="cpu")
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    assert len({len(p) for p in prompts}) == 3
    if kind != "tekken":
        assert pad_token_id(tok) == tok.eos_token_id and prompts[0][0] == tok.bos_token_id
    batched = generate_batched(model, tok, prompts, max_new_tokens=5, do_sample=False)
    alone = [generate_batched(model, tok, [p], max_new_tokens=5, do_sample=False)[0] for p in prompts]
    assert batched == alone and all(len(row) == 5 for row in batched)
    mapped, _ = load_model(folder, device="map")
    assert generate_batched(mapped, tok, prompts, max_new_tokens=5, do_sample=False) == batched
