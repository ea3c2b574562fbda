"""SIGTERM (a scheduler's preemption, `kill PID`) ends a study like Ctrl-C: one line, exit 143,
the run folder unlocked and resumable; the rerun completes."""

import json
import os
import signal
import subprocess
import sys
import time

from test_study import TINY

from iftscope.cli import main


def test_sigterm_stops_a_study_cleanly_and_the_rerun_completes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "iftscope", "run", *TINY, "--out", str(out), "--quiet"]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.time() + 300
    while not (out / "probe").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)  # the study is working: its world is built, the probe has started
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM); run the same command again to resume" in err and "Traceback" not in err
    assert not (out / "analysis").exists() and not (out / ".lock.holder").exists()
    assert main(["run", *TINY, "--out", str(out), "--quiet"]) == 0
    assert "verdict" in json.loads((out / "analysis" / "summary.json").read_text())
