import numpy as np
import pytest
import torch

from iftscope.models.scorer import HFScorer


def manual_logprobs(model, ids):
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)


def test_letter_logprobs_match_a_plain_forward_pass(tiny_model, tokenizer):
    scorer = HFScorer(tiny_model, tokenizer, batch_size=2)
    assert scorer.add_bos  # the micro-world tokenizer adds BOS, like Llama's
    prompts = ["Where was Stalain Brimley born ? Answer:", "Question : A B C D Answer:", "Answer:"]
    ids = [scorer.single_token_id("Answer:", L) for L in "ABCD"]
    scores = scorer.letter_logprobs(prompts, ids)  # batches of 2: padding must not change anything
    for row, mass, dist, p in zip(scores.logprobs, scores.mass, scores.distribution, prompts, strict=True):
        on_letters = manual_logprobs(tiny_model, scorer.encode(p))[-1][ids].double().exp().numpy()
        np.testing.assert_allclose(row, np.log(on_letters), rtol=1e-5, atol=1e-5)
        # the mass is what the letters hold of the whole vocabulary; the distribution renormalises it
        np.testing.assert_allclose(mass, on_letters.sum(), rtol=1e-5)
        np.testing.assert_allclose(dist, on_letters / on_letters.sum(), rtol=1e-5)


def test_continuation_logprobs_sum_the_continuation_tokens(tiny_model, tokenizer):
    scorer = HFScorer(tiny_model, tokenizer)
    context, cont = "Stalain Brimley was born in the city of", " Lisbon ."
    (score,) = scorer.continuation_logprobs([(context, cont)])
    ctx_ids, whole = scorer.encode(context), scorer.encode(context + cont)
    lp = manual_logprobs(tiny_model, whole)
    expected = sum(lp[i - 1, whole[i]].item() for i in range(len(ctx_ids), len(whole)))
    assert score.tokens == 2 and score.chars == len(cont)
    assert score.logprob == pytest.approx(expected, abs=1e-5)
    # trailing whitespace of the context moves into the continuation (lm-evaluation-harness rule)
    (moved,) = scorer.continuation_logprobs([(context + " ", "Lisbon .")])
    assert moved.logprob == pytest.approx(score.logprob, abs=1e-6) and moved.chars == len(cont)


def test_single_token_id_refuses_multi_token_letters(tiny_model, tokenizer):
    scorer = HFScorer(tiny_model, tokenizer)
    with pytest.raises(ValueError, match="is not one token"):
        scorer.single_token_id("Answer:", "A B")


@pytest.mark.parametrize("which", ["word", "bpe"])
def test_shared_prefix_cache_gives_the_plain_scores(which, tiny_model, tokenizer, tiny_hf_model_dir):
    """k-shot prompts share their header and demonstrations; cloze options share their statement.
    Encoding the shared prefix once and reusing its key/value cache changes no score."""
    if which == "bpe":
        from iftscope.models.load import load_model

        model, tok = load_model(tiny_hf_model_dir)
    else:
        model, tok = tiny_model, tokenizer
    shots = "Question : Where was Stalain Brimley born ? A . Lisbon B . Oslo Answer: A\n\n" * 3
    prompts = [shots + f"Question {q} ? A B C D Answer:" for q in ("one", "two two", "three three three")]
    prompts.append("Answer:")  # shares nothing: scored in the same call
    cached = HFScorer(model, tok, batch_size=8, min_shared=4)
    plain = HFScorer(model, tok, batch_size=8, min_shared=0)
    groups = cached._groups([cached.encode(p) for p in prompts], [len(cached.encode(p)) - 1 for p in prompts])
    assert any(shared > 0 and len(members) == 3 for shared, members in groups)
    ids = [cached.single_token_id("Answer:", L) for L in "AB"]
    np.testing.assert_allclose(
        cached.letter_logprobs(prompts, ids).logprobs, plain.letter_logprobs(prompts, ids).logprobs, atol=1e-5
    )
    for row, p in zip(cached.letter_logprobs(prompts, ids).logprobs, prompts, strict=True):
        full = manual_logprobs(model, cached.encode(p))[-1]
        np.testing.assert_allclose(row, full[ids].numpy(), atol=1e-5)
    pairs = [
        (shots + "Stalain Brimley was born in the city of", f" {c} .") for c in ("Lisbon", "Oslo", "Lima")
    ]
    pairs.append(("Answer:", " Lisbon"))
    a, b = cached.continuation_logprobs(pairs), plain.continuation_logprobs(pairs)
    assert [x.logprob for x in a] == pytest.approx([x.logprob for x in b], abs=1e-5)


def test_one_token_options_share_their_context(tiny_model, tokenizer):
    """Four single-word values after one statement: one sequence scored, the same numbers."""
    scorer = HFScorer(tiny_model, tokenizer, min_shared=0)
    context = "Stalain Brimley was born in the city of"
    pairs = [(context, f" {v}") for v in ("Lisbon", "Oslo", "Lima")] + [
        (context, " Lisbon ."),
        ("Answer:", " Oslo"),
    ]
    calls = []
    original = scorer._logprob_rows
    scorer._logprob_rows = lambda seqs, starts: calls.append(len(seqs)) or original(seqs, starts)
    scores = scorer.continuation_logprobs(pairs)
    assert calls == [3]  # the shared context once, the two-token continuation, the other context
    for (ctx, cont), score in zip(pairs, scores, strict=True):
        whole, ctx_ids = scorer.encode(ctx + cont), scorer.encode(ctx)
        lp = manual_logprobs(tiny_model, whole)
        expected = sum(lp[i - 1, whole[i]].item() for i in range(len(ctx_ids), len(whole)))
        assert score.logprob == pytest.approx(expected, abs=1e-5)


def test_a_head_that_is_not_plain_falls_back_to_the_model_logits(tiny_model, tokenizer):
    """Logits scaled in the model's code (not visible in its config), or softcapped (named in the
    config): the scorer uses the model's own logits, so its scores stay those of the model."""
    plain = HFScorer(tiny_model, tokenizer)
    assert plain.head.plain
    forward = tiny_model.forward

    def scaled(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits = out.logits * 0.5
        return out

    tiny_model.forward = scaled
    scorer = HFScorer(tiny_model, tokenizer)
    ids = [scorer.single_token_id("Answer:", L) for L in "ABCD"]
    prompts = ["Where was Stalain Brimley born ? Answer:", "Answer:"]
    scores = scorer.letter_logprobs(prompts, ids)
    assert not scorer.head.plain
    for row, p in zip(scores.logprobs, prompts, strict=True):
        np.testing.assert_allclose(row, manual_logprobs(tiny_model, scorer.encode(p))[-1][ids], atol=1e-5)
    del tiny_model.forward
    tiny_model.config.final_logit_softcapping = 30.0
    assert not HFScorer(tiny_model, tokenizer).head.plain


def test_tied_rows_by_hand():
    from iftscope.models.scorer import LetterScores

    scores = LetterScores(np.log([[0.3, 0.3, 0.2, 0.2], [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.35, 0.35]]))
    assert scores.tied.tolist() == [True, False, True] and scores.tie_rate == pytest.approx(2 / 3)


def test_tie_count_reports_the_share_of_tied_letter_rows():
    from iftscope.models.scorer import LetterScores, TieCount

    class Fake:
        tokenizer = "tok"

        def letter_logprobs(self, prompts, ids):
            rows = [[-1.0, -1.0, -2.0, -3.0], [-0.5, -1.0, -2.0, -3.0]][: len(prompts)]
            return LetterScores(np.array(rows))

    counted = TieCount(Fake())
    assert counted.tie_rate is None and counted.tokenizer == "tok"  # the rest is the scorer's
    counted.letter_logprobs(["p", "q"], [1, 2, 3, 4])
    counted.letter_logprobs(["p"], [1, 2, 3, 4])
    assert (counted.rows, counted.tied) == (3, 2) and counted.tie_rate == 2 / 3
