"""Supervised fine-tuning: LoRA or full, one config, the same budget for every group.

A short loop over the field's libraries: peft for LoRA, accelerate for devices and processes (the
same code runs on one CPU, two CPU processes over gloo, or many GPUs with DDP via `accelerate
launch`; FSDP and DeepSpeed are refused, see train.distributed). bf16 weights train as fp32
master weights under bf16 autocast (train.precision). Batches are a function of the step (seeded
epoch permutations), so a resumed run sees exactly the batches an uninterrupted one would. The
loss is the mean over the response tokens of the *global* batch, whatever the number of processes.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from iftscope.models.load import pad_token_id
from iftscope.runs import atomic_dir, atomic_write_json
from iftscope.train.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from iftscope.train.config import LLAMA_MODULES, SFTConfig, lr_factor, prepare_model, resolve
from iftscope.train.distributed import check_distributed
from iftscope.train.labels import IGNORE, pad_batch, tokenize_example
from iftscope.train.precision import accelerator, upcast_trainable, weights_dtype
from iftscope.types import SFTExample

__all__ = ["LLAMA_MODULES", "SFTConfig", "batch_indices", "resolve", "tokenize", "train_sft"]

Evaluate = Callable[[Any, int], dict[str, float]]


def tokenize(examples: Sequence[SFTExample], tokenizer, max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per example: prompt + response tokenised as one text (the tokenizer's
    BOS), the labels on the response's tokens in context and EOS (see train.labels)."""
    return [tokenize_example(tokenizer, ex.prompt, ex.response, max_length) for ex in examples]


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """The global batch of a step: consecutive slices of seeded per-epoch permutations."""
    out: list[int] = []
    start = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        order = list(range(n))
        random.Random(f"sft-{seed}-{epoch}").shuffle(order)
        out += order[offset : offset + batch_size - len(out)]
    return out


@dataclass
class _Run:
    """What every step needs, built once by `_setup`: the prepared model and optimiser, the
    (resolved) config and the tokenized examples."""

    acc: Any  # accelerate.Accelerator
    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    params: list[torch.nn.Parameter]
    rows: list[tuple[list[int], list[int]]]
    cfg: SFTConfig
    pad: int
    dtype: torch.dtype  # the weights as asked: a full fine-tuning is saved in it


def train_sft(
    base_model,
    tokenizer,
    examples: Sequence[SFTExample],
    out: str | Path,
    cfg: SFTConfig,
    progress: bool = True,
    evaluate: Evaluate | None = None,
    evaluate_every: int = 0,
    dtype: str | torch.dtype | None = None,
    on_saved: Callable[[Any], None] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune and save to `out/model` (adapter or full weights, safetensors); resumes from
    `out/checkpoint`, deleted once the model is saved. `evaluate(model, step)` adds metrics to the
    log every `evaluate_every` steps. `dtype` (default: the model's own) bfloat16 or float16: fp32
    master weights under that autocast, a full model saved in it (see train.precision).
    `on_saved(model)`: the tuned model as saved, in eval mode, still loaded (one process only), so a
    caller can evaluate it without reading it back. `on_log(row)`: each step's log row as it is
    written (main process only), for experiment trackers."""
    out = Path(out)
    run = _setup(base_model, tokenizer, examples, cfg, weights_dtype(base_model, dtype))
    start, log = load_checkpoint(run.acc, out / "checkpoint")
    t0 = time.perf_counter()
    tokens = _train_steps(run, start, log, out / "checkpoint", progress, evaluate, evaluate_every, on_log)
    summary = _summary(run, start, log, tokens, time.perf_counter() - t0)
    _save(run, tokenizer, out, summary)
    remove_checkpoint(run.acc, out / "checkpoint")
    if on_saved is not None and run.acc.num_processes == 1:
        # without accelerate's autocast wrapper: the model then runs as one read from its folder
        on_saved(run.acc.unwrap_model(run.model, keep_fp32_wrapper=False).eval())
    return summary


def _setup(base_model, tokenizer, examples: Sequence[SFTExample], cfg: SFTConfig, dtype: torch.dtype) -> _Run:
    """Accelerator (refused under FSDP or DeepSpeed), seeded torch, tokenized examples, resolved
    config, (LoRA) model with fp32 trainable weights, optimiser and schedule, in this order: the
    seed comes before LoRA's random initialisation."""
    acc = accelerator(dtype)  # bf16/fp16 weights: autocast over fp32 master weights
    check_distributed(acc)
    torch.manual_seed(cfg.seed)
    rows = tokenize(examples, tokenizer, cfg.max_length)
    cfg = resolve(cfg, len(rows))
    if cfg.batch_size % acc.num_processes:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {acc.num_processes} processes")
    model = prepare_model(base_model, cfg)
    upcast_trainable(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    model, optimizer = acc.prepare(model, optimizer)
    # not prepared: accelerate would step it once per process, but our batch is already global
    acc.register_for_checkpointing(scheduler)
    return _Run(acc, model, optimizer, scheduler, params, rows, cfg, pad_token_id(tokenizer), dtype)


def _train_steps(
    run: _Run,
    start: int,
    log: list[dict[str, Any]],
    ckpt: Path,
    progress: bool,
    evaluate: Evaluate | None,
    evaluate_every: int,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Steps `start`..end: one log row each (evaluated at every `evaluate_every`-th and the last
    step), a checkpoint every `checkpoint_every` steps. Returns the real tokens seen."""
    acc, cfg = run.acc, run.cfg
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc="sft",
        unit="step",
        disable=not (progress and acc.is_main_process),
    )
    tokens = 0
    for step in range(start, cfg.steps):
        loss, real = _step(run, step)
        tokens += real
        row: dict[str, Any] = {"step": step + 1, "loss": round(loss, 5), "lr": run.scheduler.get_last_lr()[0]}
        if evaluate and evaluate_every and ((step + 1) % evaluate_every == 0 or step + 1 == cfg.steps):
            row.update(evaluate(acc.unwrap_model(run.model), step + 1))
        log.append(row)
        if on_log is not None and acc.is_main_process:
            on_log(row)
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.update(1)
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save_checkpoint(acc, ckpt, step + 1, log)
    bar.close()
    return tokens


def _step(run: _Run, step: int) -> tuple[float, int]:
    """One optimiser step on this process's share of the global batch: (the global batch's mean
    token loss, its real tokens)."""
    acc, cfg = run.acc, run.cfg
    run.model.train()
    idx = batch_indices(len(run.rows), step, cfg.batch_size, cfg.seed)[acc.process_index :: acc.num_processes]
    count = torch.tensor(sum(_response_tokens(run.rows[i]) for i in idx), device=acc.device)
    global_count = acc.reduce(count, reduction="sum")
    token_loss, real = _backward(run, idx, global_count)
    if cfg.grad_clip:
        acc.clip_grad_norm_(run.params, cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    loss = (acc.reduce(token_loss.detach(), reduction="sum") / global_count).item()
    return loss, int(acc.reduce(real, reduction="sum").item())


def _backward(run: _Run, idx: list[int], global_count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of this process's examples, in micro-batches (gradient accumulation), scaled so
    that they add up to those of the global token mean. Returns (summed token loss, real tokens)."""
    acc, model = run.acc, run.model
    micro = run.cfg.micro_batch_size or len(idx)
    token_loss, real = torch.zeros((), device=acc.device), torch.zeros((), device=acc.device)
    for lo in range(0, len(idx), micro):
        last = lo + micro >= len(idx)
        ids, labels, mask = (
            torch.tensor(x, device=acc.device)
            for x in pad_batch([run.rows[i] for i in idx[lo : lo + micro]], run.pad)
        )
        with contextlib.nullcontext() if last else acc.no_sync(model):  # sync grads once per step
            part = _summed_loss(model, ids, labels, mask)
            # DDP averages gradients over processes: scale so the result is the global token mean
            acc.backward(part * acc.num_processes / global_count)
        token_loss, real = token_loss + part.detach(), real + mask.sum()
    return token_loss, real


def _summary(run: _Run, start: int, log: list[dict[str, Any]], tokens: int, seconds: float) -> dict[str, Any]:
    """train.json: the resolved config, throughput, the final loss and the log of every step."""
    return {
        "config": asdict(run.cfg),
        "examples": len(run.rows),
        "processes": run.acc.num_processes,
        "resumed_from_step": start,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens else math.nan,
        "final_loss": log[-1]["loss"] if log else None,
        "trainable_parameters": sum(p.numel() for p in run.params),
        "log": log,
    }


def _save(run: _Run, tokenizer, out: Path, summary: dict[str, Any]) -> None:
    """Write out/model (weights and tokenizer) and out/train.json; every process must call it."""
    acc = run.acc
    acc.wait_for_everyone()
    model = acc.unwrap_model(run.model)
    if not run.cfg.lora:  # the whole model in the dtype asked, in memory as on disk (an adapter: fp32);
        for p in model.parameters():  # parameters only: buffers such as RoPE's inv_freq stay as a
            p.data = p.data.to(run.dtype)  # model loaded in that dtype has them (float32)
    state = acc.get_state_dict(run.model)  # every process: a collective under FSDP / ZeRO-3
    if acc.is_main_process:
        with atomic_dir(out / "model") as tmp:
            model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        atomic_write_json(out / "train.json", summary)
    acc.wait_for_everyone()


def _response_tokens(row: tuple[list[int], list[int]]) -> int:
    """Tokens the loss counts in one example (labels shifted by one, as the loss sees them)."""
    return sum(label != IGNORE for label in row[1][1:])


def _summed_loss(model, ids, labels, mask):
    """The summed token loss of one (micro-)batch; the caller divides by the global count."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
