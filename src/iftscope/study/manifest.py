"""The run's manifest: what ran, from which code, on what machine. Saved before any stage runs."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import yaml

from iftscope.runfolder import RunFolder
from iftscope.runs import atomic_write_json, atomic_write_text, fingerprint
from iftscope.study.recipe import StudyConfig, to_dict
from iftscope.version import __version__


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# how the jobs run and where they are reported, not what they compute: left out of the recipe's
# hash, so a study started on one machine may be resumed on Slurm (and older run folders keep theirs)
OPERATIONAL = ("parquet", "report_to", "executor")


def recipe_hash(cfg: StudyConfig) -> str:
    """The fingerprint of what the recipe computes (less the OPERATIONAL keys)."""
    return fingerprint({k: v for k, v in to_dict(cfg).items() if k not in OPERATIONAL})


def manifest(cfg: StudyConfig) -> dict[str, Any]:
    import torch
    import transformers

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:  # pragma: no cover
        peft_version = None
    return {
        "recipe_hash": recipe_hash(cfg),
        "iftscope": __version__,
        "git_commit": _git_commit(),
        "seeds": list(cfg.seeds),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft_version,
        },
        "hardware": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpus": torch.cuda.device_count(),
            "training_processes": cfg.launch.processes,
            "python": platform.python_version(),
        },
    }


def write_manifest(run: RunFolder, cfg: StudyConfig) -> None:
    """The resolved recipe and the manifest; a folder holding another recipe's run is refused."""
    out = run.root
    out.mkdir(parents=True, exist_ok=True)
    man = manifest(cfg)
    existing = run.manifest
    if existing.exists():
        import json

        old = json.loads(existing.read_text(encoding="utf-8"))
        if old.get("recipe_hash") != man["recipe_hash"]:
            raise ValueError(
                f"{out} holds a run of another recipe (hash {old.get('recipe_hash')}, this one "
                f"{man['recipe_hash']}); choose another --out or delete it"
            )
    atomic_write_text(run.recipe, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    atomic_write_json(existing, man)
