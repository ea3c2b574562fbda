"""The run folder's layout, in one place: every path and every "is this stage done?" rule.

    recipe.yaml, manifest.json        the resolved recipe; hashes, versions, commit, hardware
    world/                            micro-world and its base model (reused when it matches)
    tests/<set>.jsonl                 the test sets as run
    probe/                            what the base model knows (records, coverage)
    groups/s<seed>/                   IFT groups and SFT examples per seed
    train/<group>/<style>/s<seed>/    adapter (or weights), train.json, launch.log
    eval/base/, eval/<job>/           records-<set>.jsonl and metrics.json per model
    analysis/                         runs.csv, summary.json
    report/                           report.html, summary.md
    .lock, .lock.holder               held by the process working in the folder (host, pid)

A stage is done when its last-written file exists (each stage writes that file atomically, last),
so a killed run resumes with the results an uninterrupted run would give. Nothing else in the
package spells a path inside a run folder.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Job:
    """One fine-tuning of the study: a group, in a style, with a training seed."""

    seed: int
    group: str
    style: str

    @property
    def key(self) -> str:
        """`group/style/s<seed>`: the job's name in tables, folders and summary.json."""
        return f"{self.group}/{self.style}/s{self.seed}"

    @classmethod
    def from_key(cls, key: str) -> Job:
        group, style, seed = key.split("/")
        return cls(int(seed.removeprefix("s")), group, style)


@dataclass(frozen=True)
class RunFolder:
    """Paths of one study's run folder; `*_done` say whether a stage may be skipped."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- the run ---------------------------------------------------------------------------------
    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    # -- inputs ----------------------------------------------------------------------------------
    @property
    def world(self) -> Path:
        return self.root / "world"

    @property
    def world_model(self) -> Path:
        return self.world / "model"

    @property
    def world_questions(self) -> Path:
        return self.world / "questions.jsonl"

    @property
    def tests(self) -> Path:
        return self.root / "tests"

    def test_set(self, name: str) -> Path:
        return self.tests / f"{name}.jsonl"

    # -- stages ----------------------------------------------------------------------------------
    @property
    def probe(self) -> Path:
        return self.root / "probe"

    @property
    def probe_done(self) -> bool:
        return (self.probe / "summary.json").exists()

    def groups(self, seed: int) -> Path:
        return self.root / "groups" / f"s{seed}"

    def groups_done(self, seed: int) -> bool:
        return (self.groups(seed) / "summary.json").exists()

    def examples(self, seed: int, group: str) -> Path:
        return self.groups(seed) / "examples" / f"{group}.jsonl"

    def train(self, job: Job) -> Path:
        return self.root / "train" / job.group / job.style / f"s{job.seed}"

    def train_done(self, job: Job) -> bool:
        return (self.train(job) / "train.json").exists()

    def eval(self, name: str | Job) -> Path:
        """`eval/base` for the base model, `eval/<group>/<style>/s<seed>` for a tuned one."""
        return self.root / "eval" / (name.key if isinstance(name, Job) else name)

    def eval_done(self, name: str | Job) -> bool:
        return (self.eval(name) / "metrics.json").exists()

    def eval_records(self, name: str | Job, test_set: str) -> Path:
        return self.eval(name) / f"records-{test_set}.jsonl"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def summary(self) -> Path:
        return self.analysis / "summary.json"

    @property
    def runs_csv(self) -> Path:
        return self.analysis / "runs.csv"

    @property
    def analysis_done(self) -> bool:
        return self.summary.exists()

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for this process: a second study (or analysis) on the same folder is
        refused with the holder's host and pid. The lock is the operating system's, so a holder that
        died has released it and the next run takes it over."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        holder = self.root / ".lock.holder"
        lock = FileLock(str(self.lock_file), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            who = holder.read_text(encoding="utf-8").strip() if holder.exists() else "another process"
            raise RunFolderBusy(
                f"{self.root} is in use by {who}; wait for it, or use another --out"
            ) from None
        try:
            holder.write_text(f"{socket.gethostname()} pid {os.getpid()}\n", encoding="utf-8")
            yield
        finally:
            holder.unlink(missing_ok=True)
            lock.release()


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""
