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
    for row, p in zip(scores.logprobs, prompts, strict=True):
        full = manual_logprobs(tiny_model, scorer.encode(p))[-1]
        np.testing.assert_allclose(row, full[ids].numpy(), rtol=1e-5, atol=1e-5)
    assert np.allclose(scores.distribution.sum(axis=1), 1.0)
    assert np.all(scores.mass < 1.0) and np.all(scores.mass > 0.0)


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
