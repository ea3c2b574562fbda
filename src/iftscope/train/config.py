"""What an SFT run is told, and what follows from it before the first step.

`SFTConfig` is the whole recipe of one fine-tuning run. `resolve` turns its relative settings
(epochs, warmup ratio) into absolute ones for a given number of examples, so every group of equal
size trains for the same steps; `lr_factor` is the learning-rate schedule over those steps, and
`prepare_model` wraps the base model in the configured LoRA adapters (or leaves it whole).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class SFTConfig:
    """One fine-tuning recipe: budget, optimiser, LoRA or full, checkpointing; the same for every group."""

    steps: int = 400  # optimiser steps (every group gets the same)
    epochs: float = 0.0  # > 0: steps = ceil(epochs x examples / batch_size) instead of `steps`
    batch_size: int = 32  # global: split across processes
    micro_batch_size: int = 0  # > 0: gradient accumulation in slices of this many per process
    lr: float = 3e-3  # peak learning rate (AdamW)
    warmup: int = 20  # linear warmup steps
    warmup_ratio: float = 0.0  # > 0: warmup = round(ratio x steps) instead of `warmup`
    schedule: str = "linear"  # linear or cosine decay to 0 after the warmup
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 1.0  # clip the gradient norm to this (0: off)
    lora: bool = True  # LoRA adapters; false (--no-lora, --full): full fine-tuning
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling alpha (the update is scaled by alpha / r)
    lora_dropout: float = 0.0  # dropout on the LoRA input
    target_modules: tuple[str, ...] = LLAMA_MODULES  # LoRA on these linear layers (Llama names)
    max_length: int = 256  # tokens per example; longer ones are cut
    checkpoint_every: int = 100  # steps between resumable checkpoints (0: none)
    seed: int = 0  # LoRA init and batch order (a study sets it from `seeds`)


def resolve(cfg: SFTConfig, examples: int) -> SFTConfig:
    """Steps from epochs and warmup from its ratio, so every group of equal size gets equal steps."""
    if cfg.schedule not in ("linear", "cosine"):
        raise ValueError(f"train.schedule must be linear or cosine, got {cfg.schedule!r}")
    if cfg.epochs > 0:
        cfg = replace(cfg, steps=max(1, math.ceil(cfg.epochs * examples / cfg.batch_size)))
    if cfg.warmup_ratio > 0:
        cfg = replace(cfg, warmup=round(cfg.warmup_ratio * cfg.steps))
    return cfg


def lr_factor(cfg: SFTConfig) -> Callable[[int], float]:
    """The learning rate's multiplier at each step: linear warmup, then linear or cosine decay to 0."""

    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        done = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        return max(0.0, 1 - done)

    return factor


def prepare_model(base, cfg: SFTConfig):
    """The model to train: `base` itself (full fine-tuning) or wrapped in LoRA adapters on the
    target modules it has."""
    if not cfg.lora:
        return base
    from peft import get_peft_model

    return get_peft_model(base, lora_config(base, cfg))


def lora_config(base, cfg: SFTConfig):
    """peft's LoraConfig for `cfg` on the target modules `base` has (ValueError when none)."""
    import warnings

    from peft import LoraConfig

    # peft asks transformers a deprecated question; the warning says nothing about this run
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    present = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    targets = [m for m in cfg.target_modules if m in present]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {cfg.target_modules} is in this model")
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
