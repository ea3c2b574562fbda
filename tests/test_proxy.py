"""Proxy-tuning: scores and greedy generation through ProxyModel equal the logit arithmetic
M + alpha * (m_tuned - m) computed directly, and alpha = 0 gives M's own scores exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iftscope.microworld.tiny import TinyModelConfig, build_model
from iftscope.models.generate import generate_batched
from iftscope.models.proxy import ProxyModel
from iftscope.models.scorer import HFScorer

SMALL = TinyModelConfig(hidden=32, layers=2, heads=2, mlp=64, max_positions=128)
LARGE = TinyModelConfig(hidden=64, layers=2, heads=4, mlp=128, max_positions=128)
TEXTS = [
    "Stalain Brimley was born in the city of",
    "Question: Where was Stalain Brimley born? Answer:",
    "the city of",
]


def _model(tokenizer, cfg, seed):
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    return build_model(cfg, len(tokenizer), *ids, seed).eval()


@pytest.fixture(scope="module")
def trio(tokenizer):
    large, small = _model(tokenizer, LARGE, 1), _model(tokenizer, SMALL, 2)
    tuned = _model(tokenizer, SMALL, 2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # "tuning": the same small model, moved
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return large, small, tuned


def _direct(trio, ids: list[int], alpha: float) -> torch.Tensor:
    """log-softmax of M + alpha * (m_tuned - m), each model run on the whole sequence alone."""
    x = torch.tensor([ids])
    with torch.no_grad():
        large, small, tuned = (m(input_ids=x).logits[0].float() for m in trio)
    return torch.log_softmax(large + alpha * (tuned - small), dim=-1)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_proxy_scores_equal_the_logit_arithmetic(trio, tokenizer, alpha):
    scorer = HFScorer(ProxyModel(*trio, alpha=alpha), tokenizer, batch_size=2, min_shared=2)
    pairs = [(t, " Lisbon") for t in TEXTS] + [(TEXTS[0], " the year")]
    got = scorer.continuation_logprobs(pairs)
    for (context, cont), score in zip(pairs, got, strict=True):
        ctx, whole = scorer.encode(context), scorer.encode(context + cont)
        rows = _direct(trio, whole, alpha)
        want = sum(rows[i - 1, whole[i]].item() for i in range(len(ctx), len(whole)))
        assert score.logprob == pytest.approx(want, abs=1e-5)
    letters = [tokenizer.convert_tokens_to_ids(w) for w in ("Lisbon", "Paris", "the")]
    scores = scorer.letter_logprobs(TEXTS, letters).logprobs
    for text, row in zip(TEXTS, scores, strict=True):
        ids = scorer.encode(text)
        np.testing.assert_allclose(row, _direct(trio, ids, alpha)[-1, letters].numpy(), atol=1e-5)


def test_alpha_zero_gives_the_large_models_own_scores(trio, tokenizer):
    large = trio[0]
    model = ProxyModel(*trio, alpha=0.0)
    x = torch.tensor([tokenizer(TEXTS[0])["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, large(input_ids=x).logits.float())
    proxy = HFScorer(model, tokenizer, batch_size=2)
    own = HFScorer(large, tokenizer, batch_size=2)
    own.head.decoder = own.head.linear = None
    own.head._checked = True  # M's own logits, as the proxy reads them
    fast = HFScorer(large, tokenizer, batch_size=2)  # its float32 head on the scored rows only
    pairs = [(t, " Lisbon") for t in TEXTS]
    got = [s.logprob for s in proxy.continuation_logprobs(pairs)]
    assert got == [s.logprob for s in own.continuation_logprobs(pairs)]
    assert got == pytest.approx([s.logprob for s in fast.continuation_logprobs(pairs)], abs=1e-5)
    ids = [tokenizer.convert_tokens_to_ids(w) for w in ("Lisbon", "Paris")]
    assert np.array_equal(
        proxy.letter_logprobs(TEXTS, ids).logprobs, own.letter_logprobs(TEXTS, ids).logprobs
    )


def test_generation_is_the_argmax_of_the_arithmetic(trio, tokenizer):
    proxy = ProxyModel(*trio, alpha=1.0)
    prompts = [tokenizer(t)["input_ids"] for t in TEXTS]  # different lengths: left padding
    got = generate_batched(proxy, tokenizer, prompts, max_new_tokens=5, batch_size=3)
    for prompt, new in zip(prompts, got, strict=True):
        ids = list(prompt)
        for _ in range(5):  # no cache, no padding: the whole sequence each step
            ids.append(int(_direct(trio, ids, 1.0)[-1].argmax()))
            if ids[-1] == tokenizer.eos_token_id:
                break
        assert new[: len(ids) - len(prompt)] == ids[len(prompt) :]


def test_vocabularies_must_match(trio, tokenizer):
    other = build_model(SMALL, len(tokenizer) + 3, 1, 2, 0, 0)
    with pytest.raises(ValueError, match="one vocabulary"):
        ProxyModel(trio[0], other, trio[2])


def test_study_with_both_conditions(tmp_path):
    """A tiny study with conditions [self-instruct, proxy]: the rows, M untuned, the make-up."""
    from test_study import TINY

    from iftscope.study.recipe import load_recipe
    from iftscope.study.runner import Study

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a busy host
    only = ["seeds=[0]", "render.styles=[answer]", "groups=[H, I, S, self-instruct]"]
    cfg, _ = load_recipe(None, [*TINY, *only, "conditions=[self-instruct, proxy]"])
    try:
        result = Study(cfg, tmp_path / "run", progress=False).run()
    finally:
        torch.set_num_threads(threads)
    families = {k.split("/")[0] for k in result["table"]}
    assert families == {"base", "H", "I", "S", "self-instruct", "proxy-H", "large-H"}
    large_base = result["conditions"]["large_base"]
    assert set(large_base) >= {"known-heldout", "unknown", "heldout-attribute"}
    made = result["conditions"]["self_instruct"]["per_seed"]["0"]
    assert made["n"] == 4 and 0 <= made["truly_known"] <= 1
    world = json.loads((tmp_path / "run" / "world" / "large" / "summary.json").read_text())
    small = json.loads((tmp_path / "run" / "world" / "summary.json").read_text())
    ratio = world["pretrain"]["parameters"] / small["pretrain"]["parameters"]
    assert world["model"]["hidden"] == 2 * small["config"]["model"]["hidden"] and ratio > 2.5
    proxy = result["table"]["proxy-H/answer"]["known-heldout"]
    assert proxy["gen_accuracy"] is not None and proxy["spearman"] is not None  # every metric applies
    assert result["training"]["proxy-H/answer/s0"] == {"alpha": 1.0, "guide": "H/answer/s0"}
    from iftscope.outputs import check
    from iftscope.runfolder import RunFolder

    stages = {s.name: check(s.folder, s.done, s.inputs) for s in RunFolder(tmp_path / "run").stages()}
    assert {"eval large-base", "train large-H/answer/s0", "eval proxy-H/answer/s0"} <= set(stages)
    assert "train proxy-H/answer/s0" not in stages  # M is steered, never trained
    assert all(v.ok for v in stages.values()), {k: str(v) for k, v in stages.items() if not v.ok}
    from iftscope.report.render import write_report

    paths = write_report(tmp_path / "run")
    report, summary = (paths[k].read_text(encoding="utf-8") for k in ("html", "markdown"))
    for text in (report, summary):  # M untuned and the make-up are shown, not only stored
        assert "larger base M, untuned" in text and "facts the base model recalls (ground truth)" in text


def test_default_world_is_unchanged_and_bad_conditions_are_named():
    from iftscope.microworld.stage import WorldStageConfig
    from iftscope.study.recipe import load_recipe
    from iftscope.study.validate import problems

    assert "large" not in WorldStageConfig().to_json()  # the default world keeps its fingerprint
    cfg, _ = load_recipe(None, ["conditions=[proxy, magic]", "proxy.model=/nowhere", "skip_groups=[H]"])
    found = "\n".join(problems(cfg))
    assert "conditions: unknown 'magic'" in found
    assert "proxy.model: on the micro-world" in found and "proxy.group: 'H'" in found
    cfg, _ = load_recipe(None, ["conditions=[self-instruct, proxy]", "groups=[H, self-instruct, proxy-H]"])
    assert problems(cfg) == []
