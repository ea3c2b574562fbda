"""Many LoRA adapters on one frozen base, trained in one forward/backward pass (multi-LoRA training
as mLoRA/ASPEN do it): every example goes through its own job's adapter.

Each job keeps what it would have alone (train.sft): its tokenized examples and seeded batch
order, its LoRA initialisation (peft's, drawn right after seeding torch with the job's seed, as a
lone run draws it), the mean loss over its own response tokens, its gradient clipping, its AdamW
state and learning-rate schedule, its log, its checkpoints (OUT/checkpoint, resumable) and its
saved adapter (OUT/model, OUT/train.json). The base is frozen and adapter k touches only job k's
examples, so the gradient of the summed per-job mean losses with respect to adapter k is job k's
gradient alone. A job's rows of the combined batch are consecutive: each LoRA layer adds, to each
job's rows, that job's adapter only (a forward hook on peft's LoRA layers, peft's own adapter
forward switched off for the pass; as S-LoRA/Punica route a batch over adapters, by slices).

One process (no `accelerate launch`); LoRA dropout must be 0 (K jobs would share one random
stream); float16 is refused (it needs loss scaling), bfloat16 runs under autocast over fp32
adapters as train.sft does. Full fine-tuning keeps train.sft's one-at-a-time path.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from iftscope.models.load import pad_token_id
from iftscope.train.adapter_store import load_slot_checkpoint, save_adapter, save_slot_checkpoint
from iftscope.train.config import SFTConfig, lora_config, lr_factor, resolve
from iftscope.train.labels import IGNORE, pad_batch
from iftscope.train.precision import HALF, weights_dtype
from iftscope.train.sft import Evaluate, batch_indices, tokenize
from iftscope.types import SFTExample

__all__ = ["AdapterJob", "train_adapters"]


@dataclass(frozen=True)
class AdapterJob:
    """One LoRA fine-tuning of a pass: what `train_sft` would be given for it alone."""

    examples: Sequence[SFTExample]
    out: Path
    cfg: SFTConfig
    evaluate: Evaluate | None = None  # evaluate(model, step) -> metrics for the log (the QA curve)
    evaluate_every: int = 0


@dataclass
class _Slot:
    """A job's state in the pass: its adapter's name, parameters, optimiser, schedule and log."""

    name: str
    job: AdapterJob
    cfg: SFTConfig
    rows: list[tuple[list[int], list[int]]]
    params: list[torch.nn.Parameter] = field(default_factory=list)
    optimizer: Any = None
    scheduler: Any = None
    step: int = 0
    start: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    loss: float = 0.0


def check_jobs(jobs: Sequence[AdapterJob]) -> None:
    """ValueError for what one pass cannot do exactly as the jobs alone would."""
    if not jobs:
        raise ValueError("no jobs to train")
    for job in jobs:
        if not job.cfg.lora:
            raise ValueError(f"{job.out}: full fine-tuning trains one model at a time (train.lora is false)")
        if job.cfg.lora_dropout:
            raise ValueError(
                f"{job.out}: several adapters in one pass need lora_dropout 0 (one random stream)"
            )


def train_adapters(
    base_model,
    tokenizer,
    jobs: Sequence[AdapterJob],
    *,
    progress: bool = False,
    dtype: str | torch.dtype | None = None,
    on_saved: Callable[[int, Any], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every job's LoRA adapter on `base_model` in one pass per step; each job written as
    `train_sft` writes it (OUT/model, OUT/train.json; resumed from OUT/checkpoint). Returns each
    job's train.json. `on_saved(i, model)`: the model with job i's adapter active, in eval mode,
    after every job is saved. The base comes back without adapters (peft's unload)."""
    check_jobs(jobs)
    wdtype = weights_dtype(base_model, dtype)
    if wdtype == torch.float16:
        raise ValueError("float16 training needs loss scaling: use bfloat16, or one adapter at a time")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, slots = _setup(base_model.to(device), tokenizer, jobs)
    pad, t0 = pad_token_id(tokenizer), time.perf_counter()
    bar = tqdm(
        total=sum(s.cfg.steps for s in slots), initial=sum(s.step for s in slots), disable=not progress
    )
    try:
        while active := [s for s in slots if s.step < s.cfg.steps]:
            _pass_step(model, active, pad, device, wdtype)
            for s in active:
                s.seconds = time.perf_counter() - t0
                _after_step(model, s, slots)
            bar.update(len(active))
        bar.close()
        summaries = [
            save_adapter(model, tokenizer, s.name, s.job.out, _summary(s, len(slots))) for s in slots
        ]
        if on_saved is not None:
            for i, s in enumerate(slots):
                with _active(model, s.name, slots):
                    on_saved(i, model.eval())
    finally:
        model.unload()  # the base as it was, its modules unwrapped, still loaded
    return summaries


def _setup(base, tokenizer, jobs: Sequence[AdapterJob]):
    """The peft model with one adapter per job, each initialised right after seeding torch with
    its job's seed (as train_sft does), its fp32 parameters, optimiser, schedule and checkpoint."""
    from peft import get_peft_model

    model, slots = None, []
    for i, job in enumerate(jobs):
        name = f"job{i}"
        torch.manual_seed(job.cfg.seed)
        rows = tokenize(job.examples, tokenizer, job.cfg.max_length)
        cfg = resolve(job.cfg, len(rows))
        if model is None:
            model = get_peft_model(base, lora_config(base, cfg), adapter_name=name)
        else:
            model.add_adapter(name, lora_config(base, cfg))
        slots.append(_Slot(name, job, cfg, rows))
    for s in slots:
        s.params = _adapter_params(model, s.name)
        s.optimizer = torch.optim.AdamW(s.params, lr=s.cfg.lr, weight_decay=s.cfg.weight_decay)
        s.scheduler = torch.optim.lr_scheduler.LambdaLR(s.optimizer, lr_factor(s.cfg))
        s.start = s.step = load_slot_checkpoint(
            s.job.out / "checkpoint", s.params, s.optimizer, s.scheduler, s.log
        )
    return model, slots


def _adapter_params(model, name: str) -> list[torch.nn.Parameter]:
    """The adapter's parameters in module order, trainable, in fp32 (the master weights)."""
    params = [p for n, p in model.named_parameters() if f".{name}." in n]
    for p in params:
        if p.dtype in HALF:
            p.data = p.data.float()
        p.requires_grad_(True)
    return params


@contextlib.contextmanager
def _routed(model, spans: list[tuple[str, int, int]], slots: list[_Slot]):
    """Rows lo:hi of the batch (one job's, consecutive) go through that job's adapter only: peft's
    own LoRA forward is switched off for the pass (its `disable_adapter`), and a forward hook on
    every LoRA layer adds lora_B(lora_A(x[lo:hi])) x scaling for each job (views of x, one
    concatenation), the same per-row sum a lone run's layer computes."""
    from peft.tuners.lora import LoraLayer

    def hook(module, args, output):
        x = args[0]
        deltas = []
        for name, lo, hi in spans:
            a, b = module.lora_A[name], module.lora_B[name]
            deltas.append(b(a(module.lora_dropout[name](x[lo:hi].to(a.weight.dtype)))) * module.scaling[name])
        return output + torch.cat(deltas).to(output.dtype)

    with model.disable_adapter():  # it also freezes every adapter: made trainable again around it
        _trainable(slots)
        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, LoraLayer)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
    _trainable(slots)


def _trainable(slots: list[_Slot]) -> None:
    for s in slots:
        for p in s.params:
            p.requires_grad_(True)


@contextlib.contextmanager
def _active(model, name: str, slots: list[_Slot]):
    """Job `name`'s adapter alone active (evaluation); every adapter trainable again after."""
    model.base_model.set_adapter(name)
    try:
        yield
    finally:
        _trainable(slots)


def _pass_step(model, active: list[_Slot], pad: int, device, wdtype: torch.dtype) -> None:
    """One optimiser step of every active job, their batches in one forward/backward pass per
    micro-batch (a job's micro-batches as train.sft cuts them, the i-th of every job together)."""
    model.train()
    plans = []
    for s in active:
        idx = batch_indices(len(s.rows), s.step, s.cfg.batch_size, s.cfg.seed)
        micro = s.cfg.micro_batch_size or len(idx)
        count = sum(_response_tokens(s.rows[i]) for i in idx)
        plans.append((s, [idx[lo : lo + micro] for lo in range(0, len(idx), micro)], count))
    summed = {s.name: 0.0 for s in active}
    for m in range(max(len(chunks) for _, chunks, _ in plans)):
        parts = [(s, chunks[m], count) for s, chunks, count in plans if m < len(chunks)]
        rows = [s.rows[i] for s, chunk, _ in parts for i in chunk]
        ends = list(itertools.accumulate(len(chunk) for _, chunk, _ in parts))
        spans = [(s.name, end - len(chunk), end) for (s, chunk, _), end in zip(parts, ends, strict=True)]
        ids, labels, mask = (torch.tensor(x, device=device) for x in pad_batch(rows, pad))
        autocast = torch.autocast(device.type, dtype=wdtype) if wdtype in HALF else contextlib.nullcontext()
        with _routed(model, spans, active), autocast:
            per_example = _example_losses(model, ids, labels, mask)
        total, lo = 0.0, 0
        for s, chunk, count in parts:
            part = per_example[lo : lo + len(chunk)].sum()
            total = total + part / count
            summed[s.name] += part.item()
            s.tokens += int(mask[lo : lo + len(chunk)].sum())
            lo += len(chunk)
        total.backward()
    for s, _, count in plans:
        if s.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(s.params, s.cfg.grad_clip)
        s.optimizer.step()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        s.loss = summed[s.name] / count


def _after_step(model, s: _Slot, slots: list[_Slot]) -> None:
    """The step's log row (evaluated with the job's adapter alone active when due); a checkpoint
    every `checkpoint_every` steps, as train.sft logs and saves."""
    s.step += 1
    row: dict[str, Any] = {"step": s.step, "loss": round(s.loss, 5), "lr": s.scheduler.get_last_lr()[0]}
    every = s.job.evaluate_every
    if s.job.evaluate and every and (s.step % every == 0 or s.step == s.cfg.steps):
        with _active(model, s.name, slots):
            row.update(s.job.evaluate(model, s.step))
    s.log.append(row)
    if s.cfg.checkpoint_every and s.step % s.cfg.checkpoint_every == 0 and s.step < s.cfg.steps:
        save_slot_checkpoint(s.job.out / "checkpoint", s.step, s.log, s.params, s.optimizer, s.scheduler)


def _summary(s: _Slot, k: int) -> dict[str, Any]:
    """train.json as train.sft writes it, plus how many adapters shared the pass; `seconds` is
    the pass's wall time until this job's last step."""
    steps_here = s.step - s.start
    return {
        "config": asdict(s.cfg),
        "examples": len(s.rows),
        "processes": 1,
        "resumed_from_step": s.start,
        "seconds": round(s.seconds, 2),
        "tokens_per_second": round(s.tokens / s.seconds, 1) if s.seconds and steps_here else float("nan"),
        "final_loss": s.log[-1]["loss"] if s.log else None,
        "trainable_parameters": sum(p.numel() for p in s.params),
        "log": s.log,
        "adapters_per_pass": k,
    }


def _response_tokens(row: tuple[list[int], list[int]]) -> int:
    """Tokens the loss counts in one example (labels shifted by one, as the loss sees them)."""
    return sum(label != IGNORE for label in row[1][1:])


def _example_losses(model, ids, labels, mask) -> torch.Tensor:
    """Each example's summed token loss (fp32 logits), one value per row."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="none"
    )
    return loss.view(target.shape).sum(dim=1)
