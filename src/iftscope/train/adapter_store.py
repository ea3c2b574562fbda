"""What train.multi writes per job: its adapter as a lone run saves it, and its resumable checkpoint.

A job of a multi-adapter pass ends as `train_sft` ends it: OUT/model (a peft adapter folder with
the tokenizer, safetensors) and OUT/train.json, so every reader (evaluation, `iftscope evaluate`,
a study's resume) treats both paths alike. Its checkpoint (OUT/checkpoint) holds the adapter's
weights (safetensors), its AdamW and schedule state, the step and the log; written beside the
previous one and renamed over it, as train.checkpoint does. It is not accelerate's checkpoint
format: `resumable` tells a caller which path can continue a job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from iftscope.runs import atomic_dir, atomic_write_json

FORMAT = "iftscope-adapter-pass/1"


def resumable(out: str | Path) -> bool:
    """True when OUT has no checkpoint, or one this module wrote (train.multi can continue it)."""
    state = Path(out) / "checkpoint" / "state.json"
    if not state.exists():
        return True
    return json.loads(state.read_text()).get("format") == FORMAT


def save_slot_checkpoint(
    path: Path, step: int, log: list[dict[str, Any]], params, optimizer, scheduler
) -> None:
    """The job's state after `step` steps, swapped in atomically."""
    from safetensors.torch import save_file

    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(
        {str(i): p.detach().contiguous().cpu() for i, p in enumerate(params)},
        str(tmp / "adapter.safetensors"),
    )
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt"
    )
    (tmp / "state.json").write_text(json.dumps({"format": FORMAT, "step": step, "log": log}))
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_slot_checkpoint(path: Path, params, optimizer, scheduler, log: list[dict[str, Any]]) -> int:
    """Restore a job's checkpoint into its parameters, optimiser and schedule, extend `log` with
    the saved rows; the step to continue from (0 without a checkpoint)."""
    if not (path / "state.json").exists():
        return 0
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a multi-adapter checkpoint; resume it with one adapter at a time")
    weights = load_file(str(path / "adapter.safetensors"))
    if len(weights) != len(params):
        raise ValueError(f"{path}: {len(weights)} saved adapter tensors, the model has {len(params)}")
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(weights[str(i)].to(p.device, p.dtype))
    saved = torch.load(path / "optimizer.pt", map_location=params[0].device, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    log.extend(state["log"])
    return int(state["step"])


def save_adapter(model, tokenizer, name: str, out: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """OUT/model (adapter `name` saved as a lone run's adapter: peft's file names and keys, the
    tokenizer), OUT/train.json (last), then the checkpoint deleted. Returns the summary."""
    with atomic_dir(out / "model") as tmp:
        model.save_pretrained(tmp, selected_adapters=[name], safe_serialization=True)
        sub = tmp / name  # peft puts every adapter but "default" in a folder of its name
        if sub.is_dir():
            for f in sub.iterdir():
                os.replace(f, tmp / f.name)
            sub.rmdir()
        tokenizer.save_pretrained(tmp)
    atomic_write_json(out / "train.json", summary)
    ckpt = out / "checkpoint"
    for p in (ckpt, ckpt.with_name(ckpt.name + ".tmp"), ckpt.with_name(ckpt.name + ".old")):
        shutil.rmtree(p, ignore_errors=True)
    return summary
