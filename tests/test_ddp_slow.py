"""Two CPU processes (gloo, through accelerate) give the loss curve of one with the same global batch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_train.py")


def run(out: Path, procs: int, mode: str) -> list[float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    subprocess.run([*cmd, str(SCRIPT), str(out), mode], check=True, timeout=600, capture_output=True)
    summary = json.loads((out / "train.json").read_text())
    assert summary["processes"] == procs
    return [r["loss"] for r in summary["log"]]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_processes_match_one(tmp_path, mode):
    one = run(tmp_path / "one", 1, mode)
    two = run(tmp_path / "two", 2, mode)
    assert len(one) == len(two) == 8
    assert two == pytest.approx(one, rel=1e-4, abs=1e-5)
    assert one[-1] < one[0]
