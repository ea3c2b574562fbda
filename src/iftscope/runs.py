"""Run-folder plumbing: atomic writes and config fingerprints.

Every artifact is written to a temporary sibling and renamed into place, so a crash never leaves
a half-written file that a later stage could mistake for a finished one. A write that fails (disk
full, a read-only or foreign folder) removes its temporary and raises WriteError, which names the
file and says that a rerun resumes (the CLI prints it as one line).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# what the user can do about a failed write, by errno (anything else: "fix the cause")
_ADVICE = {
    errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some of your disk quota",
    errno.EFBIG: "free some disk space", errno.EROFS: "make the folder writable",
    errno.EACCES: "make the folder writable", errno.EPERM: "make the folder writable",
}  # fmt: skip


class WriteError(OSError):
    """A file that could not be written (OSError's errno, strerror and filename); nothing
    half-written was left in its place."""

    def __str__(self) -> str:
        return f"could not write {self.filename}: {self.strerror}; nothing was half-written. {advice(self)}"


def advice(e: OSError) -> str:
    """What to do after a failed write: the cure for its errno, then rerun to resume."""
    cure = _ADVICE.get(e.errno or 0, "fix the cause")
    return f"{cure[0].upper()}{cure[1:]}, then run the same command again: it resumes where it stopped"


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes a WriteError naming it."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(e.errno, e.strerror or str(e), str(path)) from e


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    return atomic_write_text(path, "".join(lines))


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path` in one rename. An OSError inside
    (a full disk while saving a model) removes the temporary and becomes a WriteError naming `path`."""
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _writing(path):
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (configs, input lists)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file (blank lines skipped); a bad line names the file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from e
    return rows


def read_done(path: str | Path) -> Any | None:
    """A stage's last-written JSON (its "done" mark), or None when it is missing or damaged. A
    damaged one (truncated, edited, a disk error) is said so on stderr and renamed aside
    (`<name>.damaged`), so the stage is recomputed instead of the run ending in a JSON traceback."""
    import sys

    path = Path(path)
    if not path.exists():
        return None
    try:
        return read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        print(f"iftscope: {path} is damaged ({e}); moved to {aside.name}, recomputing", file=sys.stderr)
        return None
