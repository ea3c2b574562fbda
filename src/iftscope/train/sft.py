"""Supervised fine-tuning: LoRA or full, one config, the same budget for every group.

A short loop over the field's libraries: peft for LoRA, accelerate for devices and processes (the
same code runs on one CPU, two CPU processes over gloo, or many GPUs with DDP/FSDP/DeepSpeed via
`accelerate launch`). Batches are a function of the step (seeded epoch permutations), so a resumed
run sees exactly the batches an uninterrupted one would. The loss is the mean over the response
tokens of the *global* batch, whatever the number of processes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from iftscope.models.load import pad_token_id
from iftscope.runs import atomic_dir, atomic_write_json
from iftscope.train.labels import IGNORE, build_example, pad_batch
from iftscope.types import SFTExample

LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class SFTConfig:
    steps: int = 400
    epochs: float = 0.0  # > 0: steps = ceil(epochs x examples / batch_size) instead of `steps`
    batch_size: int = 32  # global: split across processes
    micro_batch_size: int = 0  # > 0: gradient accumulation in slices of this many per process
    lr: float = 3e-3
    warmup: int = 20
    warmup_ratio: float = 0.0  # > 0: warmup = round(ratio x steps) instead of `warmup`
    schedule: str = "linear"  # linear or cosine decay to 0 after the warmup
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lora: bool = True  # False: full fine-tuning
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = LLAMA_MODULES
    max_length: int = 256
    checkpoint_every: int = 100
    seed: int = 0


def tokenize(examples: Sequence[SFTExample], tokenizer, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Prompt with the tokenizer's special tokens (BOS), response without: the boundary is exact."""
    rows = []
    for ex in examples:
        prompt = tokenizer(ex.prompt)["input_ids"]
        response = tokenizer(ex.response, add_special_tokens=False)["input_ids"]
        rows.append(build_example(prompt, response, tokenizer.eos_token_id, max_length))
    return rows


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


def _prepare_model(base, cfg: SFTConfig):
    if not cfg.lora:
        return base
    import warnings

    from peft import LoraConfig, get_peft_model

    # peft asks transformers a deprecated question; the warning says nothing about this run
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    targets = [m for m in cfg.target_modules if m in present]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {cfg.target_modules} is in this model")
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora)


def resolve(cfg: SFTConfig, examples: int) -> SFTConfig:
    """Steps from epochs and warmup from its ratio, so every group of equal size gets equal steps."""
    from dataclasses import replace

    if cfg.schedule not in ("linear", "cosine"):
        raise ValueError(f"train.schedule must be linear or cosine, got {cfg.schedule!r}")
    if cfg.epochs > 0:
        cfg = replace(cfg, steps=max(1, math.ceil(cfg.epochs * examples / cfg.batch_size)))
    if cfg.warmup_ratio > 0:
        cfg = replace(cfg, warmup=round(cfg.warmup_ratio * cfg.steps))
    return cfg


def _schedule(cfg: SFTConfig):
    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        done = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        return max(0.0, 1 - done)

    return factor


def train_sft(
    base_model,
    tokenizer,
    examples: Sequence[SFTExample],
    out: str | Path,
    cfg: SFTConfig,
    progress: bool = True,
    evaluate: Callable[[Any, int], dict[str, float]] | None = None,
    evaluate_every: int = 0,
) -> dict[str, Any]:
    """Fine-tune and save to `out/model` (adapter or full weights, safetensors); resumes from
    `out/checkpoint`. `evaluate(model, step)` adds metrics to the log every `evaluate_every` steps."""
    from accelerate import Accelerator

    out = Path(out)
    acc = Accelerator(cpu=not torch.cuda.is_available())  # several CPU processes: gloo
    torch.manual_seed(cfg.seed)
    rows = tokenize(examples, tokenizer, cfg.max_length)
    cfg = resolve(cfg, len(rows))
    if cfg.batch_size % acc.num_processes:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {acc.num_processes} processes")
    model = _prepare_model(base_model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg))
    model, optimizer = acc.prepare(model, optimizer)
    # not prepared: accelerate would step it once per process, but our batch is already global
    acc.register_for_checkpointing(scheduler)
    ckpt, start, log = out / "checkpoint", 0, []
    if (ckpt / "state.json").exists():
        acc.load_state(str(ckpt))
        state = json.loads((ckpt / "state.json").read_text())
        start, log = state["step"], state["log"]
    pad = pad_token_id(tokenizer)
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc="sft",
        unit="step",
        disable=not (progress and acc.is_main_process),
    )
    t0, tokens = time.perf_counter(), 0
    for step in range(start, cfg.steps):
        model.train()
        idx = batch_indices(len(rows), step, cfg.batch_size, cfg.seed)[acc.process_index :: acc.num_processes]
        count = torch.tensor(sum(_response_tokens(rows[i]) for i in idx), device=acc.device)
        global_count = acc.reduce(count, reduction="sum")
        micro = cfg.micro_batch_size or len(idx)
        token_loss, real = torch.zeros((), device=acc.device), torch.zeros((), device=acc.device)
        for lo in range(0, len(idx), micro):
            last = lo + micro >= len(idx)
            ids, labels, mask = (
                torch.tensor(x, device=acc.device)
                for x in pad_batch([rows[i] for i in idx[lo : lo + micro]], pad)
            )
            with contextlib.nullcontext() if last else acc.no_sync(model):  # sync grads once per step
                part = _summed_loss(model, ids, labels, mask)
                # DDP averages gradients over processes: scale so the result is the global token mean
                acc.backward(part * acc.num_processes / global_count)
            token_loss, real = token_loss + part.detach(), real + mask.sum()
        if cfg.grad_clip:
            acc.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = (acc.reduce(token_loss.detach(), reduction="sum") / global_count).item()
        tokens += int(acc.reduce(real, reduction="sum").item())
        row: dict[str, Any] = {"step": step + 1, "loss": round(loss, 5), "lr": scheduler.get_last_lr()[0]}
        if evaluate and evaluate_every and ((step + 1) % evaluate_every == 0 or step + 1 == cfg.steps):
            row.update(evaluate(acc.unwrap_model(model), step + 1))
        log.append(row)
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.update(1)
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _checkpoint(acc, ckpt, step + 1, log)
    bar.close()
    seconds = time.perf_counter() - t0
    summary = {
        "config": asdict(cfg),
        "examples": len(rows),
        "processes": acc.num_processes,
        "resumed_from_step": start,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens else math.nan,
        "final_loss": log[-1]["loss"] if log else None,
        "trainable_parameters": sum(p.numel() for p in params),
        "log": log,
    }
    acc.wait_for_everyone()
    state = acc.get_state_dict(model)  # every process: a collective under FSDP / ZeRO-3
    if acc.is_main_process:
        with atomic_dir(out / "model") as tmp:
            acc.unwrap_model(model).save_pretrained(tmp, state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        atomic_write_json(out / "train.json", summary)
    acc.wait_for_everyone()
    return summary


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


def _checkpoint(acc, path: Path, step: int, log: list[dict]) -> None:
    """accelerate's full state (model, optimizer, scheduler, RNG of every process) plus our step
    and log, written beside the old checkpoint and renamed over it once complete."""
    tmp = path.with_name(path.name + ".tmp")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "state.json").write_text(json.dumps({"step": step, "log": log}))
        old = path.with_name(path.name + ".old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
