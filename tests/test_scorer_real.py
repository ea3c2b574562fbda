"""The scorer on real production tokenizers and real architectures: BOS and padding as each
tokenizer does them, float32 logits under a bf16 model (no head-made ties), device maps, and prompts
longer than the context."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from iftscope.models.load import load_model
from iftscope.models.scorer import HFScorer

CASES = [("llama", "sp-converted"), ("mistral", "sp-legacy"), ("qwen2", "tekken"), ("llama", "sp-instruct")]
PROMPTS = [
    "Question: Which river flows through Lisbon?\nA. Tagus\nB. Douro\nC. Seine\nD. Po\nAnswer:",
    "Answer:",
    "The following are multiple choice questions about geography.\n\nQuestion: Oslo?\nAnswer:",
]


def plain_logprobs(model, ids: list[int]) -> torch.Tensor:
    """The model's own float32 log-softmax of one unpadded sequence (no batching, no cache)."""
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)


@pytest.mark.parametrize(("arch", "kind"), CASES)
def test_real_tokenizer_letters_and_continuations(arch, kind, real_model):
    """BOS exactly as the tokenizer adds it, one-token letters found in context, padded batches
    (pad = EOS for SentencePiece) and a shared-prefix cache giving the unbatched numbers."""
    model, tok = load_model(real_model(arch, kind))
    scorer = HFScorer(model, tok, batch_size=2, min_shared=4)
    assert scorer.head.plain  # the float32 head path, not the model's logits
    for p in PROMPTS:
        assert scorer.encode(p) == tok(p)["input_ids"]
    assert scorer.add_bos == (kind != "tekken")  # the converted tekken adds no BOS by default
    letters = [scorer.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    assert [tok.convert_ids_to_tokens(i).lstrip("▁Ġ") for i in letters] == list("ABCD")
    if kind == "tekken":  # ":C" is one token: "C" glued to "Answer:" is not a token of its own there
        with pytest.raises(ValueError, match="is not one token"):
            scorer.single_token_id("Answer:", "C")
    else:
        assert tok.convert_ids_to_tokens(scorer.single_token_id("Answer:", "C")) == "C"
    scores = scorer.letter_logprobs(PROMPTS, letters)
    for row, p in zip(scores.logprobs, PROMPTS, strict=True):
        np.testing.assert_allclose(row, plain_logprobs(model, scorer.encode(p))[-1, letters], atol=1e-4)
    assert not scores.tied.any()
    pairs = [(PROMPTS[0], " Tagus"), (PROMPTS[0], " Douro river"), ("Answer:", " C. Seine")]
    for (ctx, cont), got in zip(pairs, scorer.continuation_logprobs(pairs), strict=True):
        whole, n_ctx = scorer.encode(ctx + cont), len(scorer.encode(ctx))
        lp = plain_logprobs(model, whole)
        expected = sum(lp[i - 1, whole[i]].item() for i in range(n_ctx, len(whole)))
        assert got.tokens == len(whole) - n_ctx and got.logprob == pytest.approx(expected, abs=1e-4)


def tie_prone_bf16(folder):
    """A bf16 model whose option logits differ by less than bf16's spacing at their size: the last
    hidden state has 4 large components h0..h3 (final norm weights 40), and the head rows of A-D
    are (1, 0, 0, 0), (1, 2^-10, 0, 0), (1, 0, 2^-10, 0), (1, 0, 0, 2^-10): logits h0, h0 + h1/1024,
    ... A bf16 head rounds them to the same value; in float32 they differ (exactly representable)."""
    model, tok = load_model(folder, dtype="bfloat16")
    scorer = HFScorer(model, tok)
    letters = [scorer.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    with torch.no_grad():
        model.model.norm.weight.zero_()
        model.model.norm.weight[:4] = 40.0
        for k, t in enumerate(letters):
            model.lm_head.weight[t] = 0.0
            model.lm_head.weight[t, 0] = 1.0
            if k:
                model.lm_head.weight[t, k] = 2.0**-10
    return model, tok, scorer, letters


def test_bf16_head_ties_are_gone(real_model):
    """Fails on the old scorer (logits from the bf16 head, cast afterwards): tied rows, argmax 'A'."""
    model, tok, scorer, letters = tie_prone_bf16(real_model("llama", "sp-converted"))
    prompts = [
        f"Question {i}: {w}? Answer:"
        for i, w in enumerate("Lisbon Oslo Lima Quito Rome Bern Kyiv Baku".split())
    ]
    scores = scorer.letter_logprobs(prompts, letters)
    old_ties = 0
    for row, p in zip(scores.logprobs, prompts, strict=True):
        ids = torch.tensor([scorer.encode(p)])
        with torch.no_grad():
            hidden = model.model(input_ids=ids).last_hidden_state[0, -1].double()  # bf16 values
            exact = hidden @ model.lm_head.weight[letters].double().T
            head = model(input_ids=ids).logits[0, -1, letters].float()  # the old way
        old_ties += bool((head == head.max()).sum() > 1)
        assert np.argmax(row) == int(exact.argmax())
    assert old_ties >= 3  # the construction does tie a bf16 head ...
    assert not scores.tied.any() and scores.tie_rate == 0.0  # ... and the float32 head does not


def test_bf16_scores_agree_with_fp32(real_model):
    """The same weights in bf16 and in fp32: the argmax agrees wherever fp32 is not near a tie, and
    the bf16 scorer ties no more rows than logits cast after a bf16 head."""
    folder = real_model("qwen2", "sp-converted")
    bf16, tok = load_model(folder, dtype="bfloat16")
    fp32 = load_model(folder, dtype="bfloat16")[0].float()  # identical weights, float32 arithmetic
    low, high = HFScorer(bf16, tok), HFScorer(fp32, tok)
    letters = [low.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    prompts = [f"Question {i}: what is {i} + {i}? Answer:" for i in range(24)]
    a, b = low.letter_logprobs(prompts, letters), high.letter_logprobs(prompts, letters)
    top2 = np.sort(b.logprobs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.02
    assert clear.sum() >= 12
    assert (a.logprobs.argmax(1) == b.logprobs.argmax(1))[clear].all()
    with torch.no_grad():
        cast = [bf16(input_ids=torch.tensor([low.encode(p)])).logits[0, -1, letters].float() for p in prompts]
    old_ties = sum(bool((c == c.max()).sum() > 1) for c in cast)
    assert a.tied.sum() <= old_ties


def test_device_map_gives_the_plain_scores(real_model, tmp_path):
    """device='map' (accelerate's big-model inference) and a model whose head is offloaded to disk
    (its weight on 'meta': the model's own logits) score as the plain model does."""
    from accelerate import dispatch_model

    folder = real_model("mistral", "sp-converted")
    plain, tok = load_model(folder, device="cpu")
    mapped, _ = load_model(folder, device="map")
    offloaded = dispatch_model(
        load_model(folder, device="cpu")[0],
        device_map={"model": "cpu", "lm_head": "disk"},
        offload_dir=str(tmp_path / "offload"),
    )
    assert offloaded.lm_head.weight.device.type == "meta"
    ref = HFScorer(plain, tok)
    letters = [ref.single_token_id("Answer:", f" {L}") for L in "ABCD"]
    expected = ref.letter_logprobs(PROMPTS, letters).logprobs
    for model in (mapped, offloaded):
        scorer = HFScorer(model, tok)
        np.testing.assert_allclose(scorer.letter_logprobs(PROMPTS, letters).logprobs, expected, atol=1e-5)
    assert not HFScorer(offloaded, tok).head.plain


def test_a_prompt_longer_than_the_context_is_a_clear_error(real_model):
    from iftscope.models.generate import generate_batched
    from iftscope.models.load import context_limit

    model, tok = load_model(real_model("llama", "sp-converted"))
    model.config.max_position_embeddings = 16
    scorer = HFScorer(model, tok)
    long = "Question: which of these rivers is the longest one in the whole of Europe? Answer:"
    n = len(scorer.encode(long))
    with pytest.raises(ValueError, match=rf"{n} tokens.*context of 16 tokens.*Question: which"):
        scorer.letter_logprobs([long], [scorer.single_token_id("Answer:", " A")])
    with pytest.raises(ValueError, match="context of 16 tokens"):
        scorer.continuation_logprobs([("Answer:", " A"), (long, " Volga")])
    short = tok("Answer:")["input_ids"]
    with pytest.raises(ValueError, match=rf"{len(short)} tokens \(\+20 to generate\).*16"):
        generate_batched(model, tok, [short], max_new_tokens=20)
    assert len(generate_batched(model, tok, [short], max_new_tokens=4)[0]) == 4
    # no position count in the config: the tokenizer's model_max_length, unless it is the placeholder
    no_positions = SimpleNamespace(config=SimpleNamespace())
    tok.model_max_length = 12
    assert context_limit(no_positions, tok) == 12
    tok.model_max_length = int(1e30)
    assert context_limit(no_positions, tok) is None


def test_token_shift_ranks_are_not_made_by_a_bf16_heads_ties(real_model):
    """The base model's rank of a tuned model's token (token shift) comes from float32 logits at
    the response positions: on the tie-prone bf16 model the old ranks (bf16 logits, strictly
    greater ones counted) put every tied letter first; the exact ranks order them."""
    from iftscope.evaluate.generation import batch_base_ranks

    model, tok, scorer, letters = tie_prone_bf16(real_model("llama", "sp-converted"))
    prompts = [scorer.encode(f"Question {i}: {w}? Answer:") for i, w in enumerate("Lisbon Oslo Lima".split())]
    pairs = [(p, [t]) for p in prompts for t in letters]
    ranks = batch_base_ranks(model, pairs, pad=tok.eos_token_id)
    with torch.no_grad():
        for (p, r), got in zip(pairs, ranks, strict=True):
            hidden = model.model(input_ids=torch.tensor([p])).last_hidden_state[0, -1].double()
            exact = hidden @ model.lm_head.weight.double().T
            assert got == [int((exact > exact[r[0]]).sum()) + 1]
    assert len({r[0] for r in ranks[:4]}) == 4  # four letters, four ranks: no head-made ties
