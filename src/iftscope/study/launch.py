"""Training a study's jobs under `accelerate launch`: several GPUs (DDP), FSDP, DeepSpeed, nodes.

Every stage of the study runs in the main process except training: when the recipe asks for more
than one training process, or names an `accelerate config` file, each job's training is a child
`accelerate launch -m iftscope.study.child RUN_FOLDER SEED GROUP STYLE` that rebuilds the study
from the run folder's resolved recipe and trains that one job. The run folder stays the only
interface; the child's resume and atomic writes are the trainer's own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from iftscope.study.config import LaunchConfig


def launch_command(launch: LaunchConfig, out: Path, seed: int, group: str, style: str) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file is not None:
        if not Path(launch.config_file).exists():
            raise FileNotFoundError(f"launch.config_file: {launch.config_file}: no such file")
        cmd += ["--config_file", launch.config_file]
        if launch.processes > 1:
            cmd += ["--num_processes", str(launch.processes)]
    else:  # DDP on the GPUs (or, without any, CPU processes over gloo)
        cmd += ["--multi_gpu", "--num_processes", str(launch.processes), "--num_machines", "1"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(launch.main_process_port or _free_port())]
    return cmd + ["-m", "iftscope.study.child", str(out), str(seed), group, style]


def train_launched(launch: LaunchConfig, out: Path, seed: int, group: str, style: str, folder: Path) -> None:
    """Train one job in child processes; their output goes to `folder/launch.log`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "launch.log"
    with log.open("ab") as fh:
        done = subprocess.run(launch_command(launch, out, seed, group, style), stdout=fh, stderr=fh)
    if done.returncode != 0 or not (folder / "train.json").exists():
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"training {group}/{style}/s{seed} under accelerate launch failed (exit {done.returncode}); "
            f"the end of {log}:\n" + "\n".join(tail)
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
