"""bench/gpu_check.py's scoring stages: correctness (1), probe throughput (2), iftscope vs lm-eval (3).

Each stage takes the run's Context and returns its JSON record; the entry point times it, adds the
peak memory and writes it. The probe is driven through the same objects `iftscope probe` uses
(HFScorer, the `paper` format, `probe`), on models built in memory so that a 7B-shaped model is
never written to disk.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from gpu_check_common import Context, TokenCounter, matmul_params, questions, rate, sync

from iftscope.models.generate import generate_batched
from iftscope.models.scorer import HFScorer
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, choose_demos, letter_token_ids, probe


def _prompts(fmt, qs, pool, shots: int) -> list[str]:
    cfg = ProbeConfig(format=fmt.name, shots=shots, demos="first")
    return [fmt.letter_prompt(q, q.choices, choose_demos(q, pool, cfg, 0) if shots else []) for q in qs]


def _scores(model, tok, prompts, ids, batch: int, min_shared: int) -> tuple[np.ndarray, float]:
    """Letter log-probabilities and their tie rate, batch `batch`, prefixes shared from `min_shared`
    tokens (0: never, every prompt encoded whole)."""
    scores = HFScorer(model, tok, batch_size=batch, min_shared=min_shared).letter_logprobs(prompts, ids)
    return scores.logprobs, scores.tie_rate


@torch.no_grad()
def _native_tie_rate(model, tok, prompts, ids, batch: int) -> float:
    """Ties among the scored letters when read from the model's own logits (its dtype's head): what
    a scorer without the float32 head sees."""
    ties = []
    tok.padding_side = "right"
    for lo in range(0, len(prompts), batch):
        enc = tok(prompts[lo : lo + batch], return_tensors="pt", padding=True).to(model.device)
        last = enc["attention_mask"].sum(1) - 1  # right-padded: each row's last real position
        logits = model(**enc).logits[torch.arange(len(last)), last][:, ids]
        top = logits.topk(2, dim=-1).values
        ties += (top[:, 0] == top[:, 1]).tolist()
    return float(np.mean(ties))


def correctness(ctx: Context) -> dict:
    """Prefix-cached vs plain vs one-sequence scores; bf16 vs fp32 argmax and ties; batched vs
    one-at-a-time greedy generation, on the small model, 5-shot `paper` prompts."""
    s, tok = ctx.sizes, ctx.tok()
    fmt = get_format("paper").with_tokenizer(tok)
    qs, pool = questions(ctx.data, s.correctness_questions)
    prompts = _prompts(fmt, qs, pool, 5)
    half = ctx.load_small()
    ids = letter_token_ids(HFScorer(half, tok), fmt, len(qs[0].choices))
    cached, tie_half = _scores(half, tok, prompts, ids, 32, 64)
    plain, _ = _scores(half, tok, prompts, ids, 32, 0)
    single, _ = _scores(half, tok, prompts, ids, 1, 0)
    native = _native_tie_rate(half, tok, prompts, ids, 16)
    gen = _generation(half, tok, fmt, qs, s)
    del half
    full = ctx.load_small("float32")
    exact, tie_full = _scores(full, tok, prompts, ids, 32, 64)
    del full
    untied = exact.max(1) != np.sort(exact, 1)[:, -2]
    agree = cached.argmax(1) == exact.argmax(1)
    return {
        "questions": len(prompts),
        "shots": 5,
        "dtype": s.dtype,
        "prompt_tokens_mean": round(float(np.mean([len(tok(p)["input_ids"]) for p in prompts])), 1),
        "max_diff_cached_vs_plain": float(np.abs(cached - plain).max()),
        "max_diff_cached_vs_single": float(np.abs(cached - single).max()),
        "max_diff_plain_vs_single": float(np.abs(plain - single).max()),
        "argmax_cached_vs_single": float(np.mean(cached.argmax(1) == single.argmax(1))),
        "tie_rate_scored": tie_half,
        "tie_rate_native_logits": native,
        "tie_rate_fp32": tie_full,
        "argmax_agreement_vs_fp32": float(agree.mean()),
        "argmax_agreement_vs_fp32_untied": float(agree[untied].mean()) if untied.any() else None,
        "max_diff_vs_fp32": float(np.abs(cached - exact).max()),
        **gen,
    }


def _generation(model, tok, fmt, qs, s) -> dict:
    """Greedy answers of batched (left-padded) generation vs one prompt at a time."""
    prompts = [tok(p)["input_ids"] for p in _prompts(fmt, qs[: s.generation_prompts], [], 0)]
    sync()
    t0 = time.perf_counter()
    batched = generate_batched(model, tok, prompts, s.new_tokens, batch_size=len(prompts))
    sync()
    t1 = time.perf_counter()
    alone = generate_batched(model, tok, prompts, s.new_tokens, batch_size=1)
    sync()
    t2 = time.perf_counter()
    same = [a == b for a, b in zip(batched, alone, strict=True)]
    first = [
        next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        for a, b in zip(batched, alone, strict=True)
    ]
    return {
        "generation_prompts": len(prompts),
        "generation_identical": float(np.mean(same)),
        "generation_first_divergence": [f for f in first if f is not None][:10],
        "generation_seconds_batched": round(t1 - t0, 3),
        "generation_seconds_single": round(t2 - t1, 3),
    }


def probe_throughput(ctx: Context) -> dict:
    """The 5-shot `paper` probe at the large (7B) shape: batch sizes x prefix reuse on/off."""
    from gpu_check_common import random_llama

    s, tok = ctx.sizes, ctx.tok()
    model = random_llama(s.large, tok, s.dtype, ctx.device)
    fmt = get_format("paper").with_tokenizer(tok)
    qs, pool = questions(ctx.data, s.probe_questions)
    cfg = ProbeConfig(format="paper", shots=5, demos="first", batch_questions=256)
    flops = 2 * matmul_params(model, head=False)  # the head runs at the scored positions only
    runs = []
    for batch in s.probe_batches:
        for reuse in (True, False):
            counter = TokenCounter(model)
            scorer = HFScorer(model, tok, batch_size=batch, min_shared=64 if reuse else 0)
            sync()
            t0 = time.perf_counter()
            records = list(probe(scorer, qs, pool, fmt, cfg))
            sync()
            seconds = time.perf_counter() - t0
            counter.close()
            row = {"batch": batch, "prefix_reuse": reuse, "questions": len(records)}
            runs.append(row | rate(counter.tokens, seconds, flops, ctx.peak))
            runs[-1]["questions_per_second"] = round(len(records) / seconds, 2)
    return {"shape": s.large, "parameters": sum(p.numel() for p in model.parameters()), "runs": runs}


def lm_eval_compare(ctx: Context) -> dict:
    """iftscope vs lm-eval's `hf` backend on the small model: same questions, 5-shot `mmlu` letter
    prompts (the pool's first five as demonstrations), one run each; time ratio and argmax agreement."""
    import tempfile
    from pathlib import Path

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from probe_vs_lm_eval import theirs, write_task

    s, tok = ctx.sizes, ctx.tok()
    model = ctx.load_small()
    qs, pool = questions(ctx.data, s.lm_eval_questions)
    fmt = get_format("mmlu")
    scorer = HFScorer(model, tok, batch_size=32)
    ids = letter_token_ids(scorer, fmt, len(qs[0].choices))
    cfg = ProbeConfig(format="mmlu", shots=5, demos="first", batch_questions=256)
    sync()
    t0 = time.perf_counter()
    records = list(probe(scorer, qs, pool, fmt, cfg))
    sync()
    ours_seconds = time.perf_counter() - t0
    ours = scorer.letter_logprobs(_prompts(fmt, qs, pool, 5), ids).logprobs
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=32, device=ctx.device)
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        test, dev = Path(tmp) / "test.jsonl", Path(tmp) / "dev.jsonl"
        plain = [{"question": q.question, "choices": list(q.choices), "answer": q.answer} for q in qs]
        test.write_text("".join(_json(r) for r in plain))
        dev.write_text(
            "".join(
                _json({"question": q.question, "choices": list(q.choices), "answer": q.answer})
                for q in pool[:6]
            )
        )
        domain = (qs[0].domain or "general knowledge").replace("_", " ")
        write_task(Path(tmp), "gpu_check_letter", "letter", domain, len(qs[0].choices), test, dev)
        theirs_ll, theirs_seconds = theirs(lm, Path(tmp), "gpu_check_letter", 5)
    return {
        "lm_eval": lm_eval.__version__,
        "questions": len(qs),
        "ours_seconds": round(ours_seconds, 3),
        "lm_eval_seconds": round(theirs_seconds, 3),
        "time_ratio_lm_eval_over_ours": round(theirs_seconds / ours_seconds, 3),
        "argmax_agreement": float(np.mean(ours.argmax(1) == theirs_ll.argmax(1))),
        "probe_prediction_agreement": float(np.mean([r.prediction for r in records] == theirs_ll.argmax(1))),
        "max_abs_loglik_diff": float(np.abs(ours - theirs_ll).max()),
    }


def _json(row: dict) -> str:
    import json

    return json.dumps(row) + "\n"
