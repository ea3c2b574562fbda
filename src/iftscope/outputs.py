"""Checksummed stage outputs: what a finished stage wrote, so that a rerun (and `iftscope verify`)
can tell an intact stage from a damaged one before trusting it.

A stage folder's `outputs.json` is written atomically right after the stage's done-file (the file
the stage writes last): every file the stage left in its folder (path relative to the folder,
size, sha256, modification time) and the digest of each stage folder it was computed from (its
`inputs`). A stage is then

    intact     every listed file is there with its size and checksum, and its inputs are unchanged
    damaged    a listed file was altered or truncated (the file is named)
    missing    a listed file (or the done-file) was deleted
    stale      an input stage was recomputed since (its digest changed): this one must follow
    unsealed   done, but without outputs.json (written by an older iftscope, or killed between
               the two writes); a rerun seals it as it finds it
    not run    no done-file yet (never started, or interrupted: the stage resumes)

Cost: files up to BIG (64 MiB) are hashed on every check (a few MB per stage on the micro-world);
a bigger file (a full fine-tuning's weights, GBs) is checked by size and, when its modification
time is the recorded one, not rehashed - `iftscope verify --full` rehashes everything. Hidden
files (a writer's temporary `.x.tmp`, the lock), `*.damaged`, `*.partial*`, logs (`launch.log`, appended
by each rerun) and `checkpoint/` folders are working files, not outputs, and are not listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iftscope.runs import atomic_write_json, read_done, read_json

MANIFEST = "outputs.json"
BIG = 64 << 20  # bytes: bigger files are rehashed only when their size or mtime changed (or --full)
_WORKING = (".damaged", ".partial", ".partial.key", ".tmp", ".log")  # .log: appended by reruns


@dataclass(frozen=True)
class Verdict:
    """One stage's state (see the module docstring); `file` names what is wrong, `why` how."""

    state: str
    file: str = ""
    why: str = ""

    @property
    def ok(self) -> bool:
        """Nothing to recompute: intact, unsealed (trusted as found) or simply not run yet."""
        return self.state in ("intact", "unsealed", "not run")

    def __str__(self) -> str:
        detail = f"{self.file} ({self.why})" if self.why else self.file
        return f"{self.state}: {detail}" if detail else self.state


def output_files(folder: Path) -> Iterator[Path]:
    """Every output file under `folder` (sorted), working files and the manifest left out."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or rel.as_posix() == MANIFEST:
            continue
        if any(p.startswith(".") or p == "checkpoint" for p in rel.parts) or path.name.endswith(_WORKING):
            continue
        yield path


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest(folder: Path) -> str | None:
    """A stage's identity: the hash of its listed files' checksums (None when it is not sealed)."""
    try:
        files = read_json(Path(folder) / MANIFEST)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    blob = json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def seal(folder: str | Path, inputs: Sequence[Path] = ()) -> dict[str, Any]:
    """Record what the finished stage in `folder` wrote (and its inputs' digests); returns it."""
    folder = Path(folder)
    files = {}
    for path in output_files(folder):
        st = path.stat()
        files[path.relative_to(folder).as_posix()] = {
            "size": st.st_size, "sha256": _sha256(path), "mtime_ns": st.st_mtime_ns,
        }  # fmt: skip
    record = {
        "files": files,
        "inputs": {os.path.relpath(p, folder): digest(Path(p)) for p in inputs},
    }
    atomic_write_json(folder / MANIFEST, record)
    return record


def check(folder: str | Path, done: str, inputs: Sequence[Path] = (), full: bool = False) -> Verdict:
    """The state of the stage in `folder` whose done-file is `done` (see the module docstring)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.exists():
        return Verdict("unsealed") if (folder / done).exists() else Verdict("not run")
    try:
        record = read_json(manifest)
        files, recorded = dict(record["files"]), dict(record["inputs"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Verdict("damaged", MANIFEST, f"unreadable: {e}")
    for rel, want in files.items():
        verdict = _check_file(folder / rel, rel, want, full)
        if verdict is not None:
            return verdict
    for rel, was in recorded.items():
        now = digest(folder / rel)
        if None not in (was, now) and now != was:  # unknown (unsealed) is not evidence of change
            return Verdict("stale", os.path.normpath(folder / rel), "recomputed since this stage used it")
    return Verdict("intact")


def _check_file(path: Path, rel: str, want: dict[str, Any], full: bool) -> Verdict | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return Verdict("missing", rel, "deleted")
    if st.st_size != want["size"]:
        return Verdict("damaged", rel, f"{st.st_size} bytes, {want['size']} written")
    if not full and st.st_size > BIG and st.st_mtime_ns == want.get("mtime_ns"):
        return None  # a big file unchanged in size and time: not rehashed (see the docstring)
    if _sha256(path) != want["sha256"]:
        return Verdict("damaged", rel, "checksum differs")
    return None


def read_sealed(folder: str | Path, done: str, inputs: Sequence[Path] = ()) -> Any | None:
    """The stage's done-file when the stage may be skipped, else None (it must run). A damaged,
    incomplete or stale stage is said so in one line and its done-file set aside, so the stage is
    recomputed; an unsealed one is sealed as found."""
    folder = Path(folder)
    verdict = check(folder, done, inputs)
    if verdict.state == "not run":
        return None
    if verdict.state in ("unsealed", "intact"):
        value = read_done(folder / done)  # (a done-file that is not JSON is set aside here)
        if value is not None and verdict.state == "unsealed":
            seal(folder, inputs)
        return value
    print(f"iftscope: {folder} is {verdict}; recomputing it", file=sys.stderr)
    discard(folder, done, aside=verdict.file == done)
    return None


def discard(folder: Path, done: str, aside: bool = False) -> None:
    """Mark a stage not done: its manifest removed and its done-file deleted (or, when the
    done-file itself is what was damaged, kept as `<done>.damaged` for a look)."""
    (folder / MANIFEST).unlink(missing_ok=True)
    if aside and (folder / done).exists():
        os.replace(folder / done, folder / f"{done}.damaged")
    else:
        (folder / done).unlink(missing_ok=True)
