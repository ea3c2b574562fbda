"""A full disk, a read-only run folder (issue 17 item 5): a failed write leaves no partial file,
the command ends in one line naming the file and saying that a rerun resumes, and the rerun
reaches the clean run's results; a folder that cannot be written is refused before any work."""

import errno
import os
import shutil
import subprocess
import sys

import pytest
from test_study import _without_clocks

from iftscope import runs
from iftscope.cli import main
from iftscope.runs import WriteError, atomic_dir, atomic_write_json, read_json


def _full_disk_at(monkeypatch, k: int) -> list[int]:
    """The k-th fsync from now (every atomic write makes one) fails as on a full disk."""
    calls, real = [0], os.fsync

    def fsync(fd):
        calls[0] += 1
        if calls[0] == k:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(runs.os, "fsync", fsync)
    return calls


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    _full_disk_at(monkeypatch, 1)
    with pytest.raises(WriteError) as e:
        atomic_write_json(target, {"a": 2})
    assert str(e.value).startswith(
        f"could not write {target}: No space left on device; nothing was half-written."
    )
    assert "run the same command again" in str(e.value) and e.value.errno == errno.ENOSPC
    assert read_json(target) == {"a": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    with pytest.raises(WriteError, match="could not write .*model: No space left"):
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "w.bin").write_bytes(b"1")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.slow  # two whole `iftscope run`s with their reports (minutes); the writer's own test is above
@pytest.mark.parametrize("k", [25])
def test_disk_full_mid_study_then_rerun(small_study, tmp_path, monkeypatch, capsys, k):
    overrides, _, _, clean = small_study
    out = tmp_path / "run"
    args = ["run", *overrides, "--out", str(out), "--quiet"]
    calls = _full_disk_at(monkeypatch, k)
    assert main(args) == 2 and calls[0] == k
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("iftscope run:")]
    assert line.startswith(f"iftscope run: error: could not write {out}/") and "Traceback" not in err
    assert "No space left on device" in line and "run the same command again" in line
    assert not [p for p in out.rglob(".*.tmp")]  # nothing half-written left behind
    monkeypatch.undo()
    assert main(args) == 0
    assert _without_clocks(read_json(out / "analysis" / "summary.json")) == _without_clocks(clean)


def _read_only_runner(folder):
    """A command prefix under which `folder` is read-only (root writes anywhere: a read-only bind
    mount in a user namespace then), or None where this system offers none."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return (
        None
        if probe.returncode
        else ["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"', "sh"]
    )


def test_read_only_run_folder_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    prefix = _read_only_runner(folder)
    if prefix is None:
        pytest.skip("no way to make a read-only folder here")
    cmd = [*prefix, sys.executable, "-m", "iftscope", "run", "smoke", "--out", str(folder / "run"), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    why = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert done.stderr.strip() == (
        f"iftscope run: error: {folder / 'run'} is not writable ({why}); "
        "make it writable or choose another --out"
    )
