"""Mixed precision for SFT: fp32 master weights, half-precision compute, the asked dtype on disk.

A bf16 model trained in bf16 does not learn at fine-tuning rates: bf16 keeps 8 significant bits,
so near a weight of 0.02 its spacing is 1.2e-4 and an AdamW update of lr 2e-5 rounds away. As
every mixed-precision trainer does, the weights that train are held in fp32 and the forward pass
runs under accelerate's bf16 (or fp16) autocast; a frozen LoRA base stays in half precision. A
full fine-tuning ends cast to the dtype asked for and is saved in it (bf16 halves the disk).
"""

from __future__ import annotations

import torch

HALF = {torch.bfloat16: "bf16", torch.float16: "fp16"}
NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weights_dtype(model, dtype: str | torch.dtype | None) -> torch.dtype:
    """The dtype the user asked for (a name or a torch dtype); None or "auto": the model's own."""
    if dtype is None or dtype == "auto":
        return next(model.parameters()).dtype
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in NAMES:
        raise ValueError(f"dtype must be one of {sorted(NAMES)}, got {dtype!r}")
    return NAMES[dtype]


def mixed_precision(dtype: torch.dtype) -> str:
    """accelerate's mixed_precision for weights asked in `dtype`: bf16, fp16 or no."""
    return HALF.get(dtype, "no")


def accelerator(dtype: torch.dtype):
    """An accelerate.Accelerator for weights in `dtype`: bf16/fp16 autocast (fp16 with loss
    scaling) or none; the CPU when there is no GPU (several CPU processes: gloo). accelerate keeps
    one mixed-precision setting per process and refuses another: a process that trains again in
    another dtype (tests, an in-process study) starts its accelerator state afresh, keeping the
    process group."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    wanted = mixed_precision(dtype)
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != wanted:
        AcceleratorState._reset_state(reset_partial_state=False)  # accelerate's own tests do this
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=wanted)


def upcast_trainable(model) -> None:
    """Hold every trainable parameter in fp32 (the master weights); frozen ones stay as they are."""
    for p in model.parameters():
        if p.requires_grad and p.dtype in HALF:
            p.data = p.data.float()
