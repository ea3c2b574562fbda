"""SFT checkpoints: accelerate's full training state plus our step and log, swapped in atomically.

A checkpoint holds everything a resumed run needs to continue as if never stopped: model,
optimizer and scheduler state, every process's RNG (accelerate's part), and the step reached with
the log so far (ours, in state.json). It is written beside the previous one and renamed over it
once complete, so a crash while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def load_checkpoint(acc, path: Path) -> tuple[int, list[dict[str, Any]]]:
    """Restore the state saved at `path` into the prepared objects of `acc`; (step, log) to
    continue from, or (0, []) when there is no finished checkpoint."""
    if not (path / "state.json").exists():
        return 0, []
    acc.load_state(str(path))
    state = json.loads((path / "state.json").read_text())
    return state["step"], state["log"]


def save_checkpoint(acc, path: Path, step: int, log: list[dict[str, Any]]) -> None:
    """Save the state after `step` steps (every process takes part; the main one writes our part)."""
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


def remove_checkpoint(acc, path: Path) -> None:
    """Delete the checkpoint at `path` (and any half-written swap) once the final model is saved:
    a 7B full fine-tuning's is tens of GB that nothing reads again."""
    acc.wait_for_everyone()
    if acc.is_main_process:
        for p in (path, path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")):
            shutil.rmtree(p, ignore_errors=True)
    acc.wait_for_everyone()
