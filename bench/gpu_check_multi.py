"""bench/gpu_check.py's stage 7: K = 6 LoRA adapters on one base at Llama-2-7B's shape, trained one
at a time (each on the loaded base, adapters_per_pass 1) against all six in one forward/backward
pass per micro-batch (adapters_per_pass 6, train.multi): tokens/s, fraction of the matmul peak,
peak memory, and how far the two paths' adapters are apart (bf16 autocast: rounding, not zero).

Each job has its own examples (a sixth of the set each), seed and batch order; the per-job batch
is small (what a study of one group's few hundred examples uses), which is where one adapter per
pass leaves a GPU idle.
"""

from __future__ import annotations

import time
from dataclasses import replace

import gpu_check_common as common
from gpu_check_common import Context, matmul_params, random_llama, rate
from gpu_check_train import _sft_config, examples

K = 6


def _jobs(ctx: Context, tag: str) -> list:
    from iftscope.train.multi import AdapterJob

    s = ctx.sizes
    data = examples(ctx, s.sft_examples)
    cfg = _sft_config(s, steps=s.sft_steps, lr=2e-4, lora=True)
    cfg = replace(cfg, batch_size=s.multi_batch, micro_batch_size=s.multi_micro)
    share = max(1, len(data) // K)
    return [
        AdapterJob(
            data[i * share : (i + 1) * share] or data,
            ctx.work / f"multi-{tag}" / f"job{i}",
            replace(cfg, seed=i),
        )
        for i in range(K)
    ]


def _tokens(jobs, tok) -> int:
    """Real tokens (no padding) in every step's batch of every job."""
    from iftscope.train.sft import batch_indices, resolve, tokenize

    total = 0
    for job in jobs:
        rows, cfg = tokenize(job.examples, tok, job.cfg.max_length), resolve(job.cfg, len(job.examples))
        steps = range(cfg.steps)
        total += sum(
            len(rows[i][0]) for st in steps for i in batch_indices(len(rows), st, cfg.batch_size, cfg.seed)
        )
    return total


def _timed(model, tok, jobs, k: int) -> tuple[float, dict]:
    """Seconds and peak memory of training `jobs` k per pass on `model` (kept loaded)."""
    from iftscope.train.multi import train_adapters

    common.reset_memory()
    common.sync()
    t0 = time.perf_counter()
    for i in range(0, len(jobs), k):
        train_adapters(model, tok, jobs[i : i + k])
    common.sync()
    return time.perf_counter() - t0, common.peak_memory()


def multi_adapter(ctx: Context) -> dict:
    """Six jobs one at a time vs six in one pass, on the 7B-shape base built once."""
    from safetensors.torch import load_file

    s, tok = ctx.sizes, ctx.tok()
    model = random_llama(s.large, tok, s.dtype, ctx.device)
    flops = 4 * matmul_params(model)  # LoRA: forward 2N + backward through frozen weights 2N per token
    alone, together = _jobs(ctx, "alone"), _jobs(ctx, "together")
    t_alone, mem_alone = _timed(model, tok, alone, 1)
    t_together, mem_together = _timed(model, tok, together, K)
    worst = 0.0
    for a, b in zip(alone, together, strict=True):
        wa, wb = (load_file(str(j.out / "model" / "adapter_model.safetensors")) for j in (a, b))
        worst = max(worst, max(float((wa[n] - wb[n]).abs().max()) for n in wa))
    tokens = _tokens(together, tok)
    return {
        "shape": s.large,
        "adapters": K,
        "config": {"steps": s.sft_steps, "batch_size": s.multi_batch, "micro_batch_size": s.multi_micro},
        "one_at_a_time": rate(tokens, t_alone, flops, ctx.peak) | mem_alone,
        "six_per_pass": rate(tokens, t_together, flops, ctx.peak) | mem_together,
        "speedup_six_per_pass": round(t_alone / t_together, 3) if t_together else None,
        "max_abs_adapter_difference": worst,
    }
