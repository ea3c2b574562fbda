"""The run folder: one place for its layout, and a lock so two studies never work in one folder."""

import subprocess
import sys
import textwrap

import pytest

from iftscope.cli import main
from iftscope.runfolder import Job, RunFolder, RunFolderBusy


def test_layout_and_done_rules(tmp_path):
    run, job = RunFolder(tmp_path), Job(2, "mix-0.25", "answer")
    assert job.key == "mix-0.25/answer/s2" and Job.from_key(job.key) == job
    assert run.train(job) == tmp_path / "train" / "mix-0.25" / "answer" / "s2"
    assert (
        run.eval_records(job, "unknown")
        == tmp_path / "eval" / "mix-0.25" / "answer" / "s2" / "records-unknown.jsonl"
    )
    assert not run.eval_done(job)
    (run.eval(job)).mkdir(parents=True)
    (run.eval(job) / "metrics.json").write_text("{}")
    assert run.eval_done(job) and not run.eval_done("base")


def test_a_second_process_is_refused_with_the_holders_name(tmp_path, capsys):
    run = RunFolder(tmp_path / "run")
    with run.lock():
        assert "pid" in (run.root / ".lock.holder").read_text()
        code = textwrap.dedent(f"""
            from iftscope.runfolder import RunFolder
            with RunFolder({str(run.root)!r}).lock():
                pass
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode != 0 and "is in use by" in done.stderr and "pid" in done.stderr
        assert main(["analyse", str(run.root)]) == 2  # no finished study: refused before the lock
    with run.lock():  # released: taken again
        pass


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    run = RunFolder(tmp_path / "run")
    code = textwrap.dedent(f"""
        import os, signal
        from iftscope.runfolder import RunFolder
        with RunFolder({str(run.root)!r}).lock():
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code])
    assert done.returncode == -9 and (run.root / ".lock.holder").exists()  # died holding it
    with run.lock():
        pass


def test_busy_is_a_user_error(tmp_path, capsys):
    run = RunFolder(tmp_path / "run")
    with run.lock(), pytest.raises(RunFolderBusy):
        with RunFolder(tmp_path / "run").lock():
            pass
