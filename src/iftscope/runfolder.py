"""The run folder's layout, in one place: every path and every "is this stage done?" rule.

    recipe.yaml, manifest.json        the resolved recipe; hashes, versions, commit, hardware
    world/                            micro-world and its base model (reused when it matches)
    tests/<set>.jsonl                 the test sets as run
    probe/                            what the base model knows (records, coverage)
    groups/s<seed>/                   IFT groups and SFT examples per seed
    train/<group>/<style>/s<seed>/    adapter (or weights), train.json, launch.log
    eval/base/, eval/<job>/           records-<set>.jsonl and metrics.json per model
    eval/base/qa/, eval/<job>/probe/  the same, read with the other instrument (like for like)
    analysis/                         runs.csv, summary.json (runs.parquet: a copy)
    report/                           report.html, summary.md
    trackers/                         TensorBoard events, MLflow store (recipe key report_to)
    submitit/                         submitit's job files and logs; jobs.json (executor: slurm)
    .lock, .lock.holder               held by the process working in the folder (host, pid)
    <stage folder>/outputs.json       what the finished stage wrote, with checksums (outputs.py)

A Parquet copy of a CSV or JSONL table (records-<set>.parquet, probe/records.parquet) lies next to
it under the same name (parquet_twin).

A stage is done when its last-written file exists (each stage writes that file atomically, last),
so a killed run resumes with the results an uninterrupted run would give; `outputs.json`, written
right after, lets a rerun (and `iftscope verify`) check the stage's outputs before trusting them.
`Stage` names each stage's folder, done-file and the stages it was computed from (a recomputed
input makes it stale). Nothing else in the package spells a path inside a run folder.
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
class Stage:
    """One stage's outputs: its folder, its done-file (written last) and its input stages' folders."""

    name: str
    folder: Path
    done: str
    inputs: tuple[Path, ...] = ()


# The proxy condition's rows (study.proxyjobs): M untuned is evaluated in eval/large-base;
# `large-<group>` is M tuned on the group; `proxy-<group>` is M steered by the small model tuned on
# the group, evaluated with no training of its own. Both are compared with M untuned.
LARGE_BASE, LARGE, STEERED = "large-base", "large-", "proxy-"


def trained_job(job: Job) -> Job:
    """The training a job's evaluation reads: its own, or the guide's for a proxy-guided row."""
    if job.group.startswith(STEERED):
        return Job(job.seed, job.group.removeprefix(STEERED), job.style)
    return job


def reference_of(job: Job) -> str:
    """The evaluation a tuned model's consistency is measured against: its own base model's."""
    return LARGE_BASE if job.group.startswith((LARGE, STEERED)) else "base"


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
    def world_large_model(self) -> Path:
        """The world's second, larger base model (`world.large`: the proxy condition's M)."""
        return self.world / "large" / "model"

    @property
    def world_recall(self) -> Path:
        """Per fact: recalled by the world's base model (the micro-world's ground truth)."""
        return self.world / "recall.jsonl"

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

    def eval(self, name: str | Job, instrument: str | None = None) -> Path:
        """`eval/base` for the base model, `eval/<group>/<style>/s<seed>` for a tuned one; with
        `instrument` the same model read with the other instrument: `eval/base/qa` (the base in the
        tuned models' QA format), `eval/<job>/probe` (a tuned model read as the probe reads the base)."""
        folder = self.root / "eval" / (name.key if isinstance(name, Job) else name)
        return folder / instrument if instrument else folder

    def eval_done(self, name: str | Job, instrument: str | None = None) -> bool:
        return (self.eval(name, instrument) / "metrics.json").exists()

    def eval_records(self, name: str | Job, test_set: str, instrument: str | None = None) -> Path:
        return self.eval(name, instrument) / f"records-{test_set}.jsonl"

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

    # -- stages as units of verification (outputs.py) --------------------------------------------
    @property
    def world_stage(self) -> Stage:
        return Stage("world", self.world, "summary.json")

    @property
    def probe_stage(self) -> Stage:
        return Stage("probe", self.probe, "summary.json", (self.world,))

    def groups_stage(self, seed: int) -> Stage:
        return Stage(f"groups s{seed}", self.groups(seed), "summary.json", (self.probe,))

    def train_stage(self, job: Job) -> Stage:
        return Stage(f"train {job.key}", self.train(job), "train.json", (self.groups(job.seed),))

    def eval_stage(self, name: str | Job) -> Stage:
        if isinstance(name, Job):
            inputs = (self.train(trained_job(name)), self.eval(reference_of(name)))
            return Stage(f"eval {name.key}", self.eval(name), "metrics.json", inputs)
        return Stage(f"eval {name}", self.eval(name), "metrics.json", (self.world,))

    def analysis_stage(self, jobs: list[Job]) -> Stage:
        inputs = (self.probe, self.eval("base"), *(self.eval(j) for j in jobs))
        return Stage("analysis", self.analysis, "summary.json", inputs)

    def stages(self) -> list[Stage]:
        """Every stage this folder holds or will hold, in study order (jobs found on disk)."""
        seeds = sorted(int(p.name[1:]) for p in self.root.glob("groups/s*") if p.name[1:].isdigit())
        keys = {
            p.relative_to(self.root / d).as_posix()
            for d in ("train", "eval")
            for p in self.root.glob(f"{d}/*/*/s*")
        }
        jobs = sorted(Job.from_key(k) for k in keys if k.split("/")[-1][1:].isdigit())
        out = [self.world_stage] if self.world.exists() else []
        out += [self.probe_stage, self.eval_stage("base"), *(self.groups_stage(s) for s in seeds)]
        if self.eval(LARGE_BASE).exists():
            out.append(self.eval_stage(LARGE_BASE))
        for job in jobs:
            trains = [self.train_stage(job)] if trained_job(job) == job else []
            out += [*trains, self.eval_stage(job)]
        return [*out, self.analysis_stage(jobs)]

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for this process: a second study (or analysis) on the same folder is
        refused with the holder's host and pid. The lock is the operating system's, so a holder that
        died has released it and the next run takes it over."""
        from filelock import FileLock, Timeout

        _refuse_read_only(self.root)
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

    # -- scale-out: Parquet copies, trackers, submitit --------------------------------------------
    @property
    def runs_parquet(self) -> Path:
        return parquet_twin(self.runs_csv)

    @property
    def probe_records(self) -> Path:
        return self.probe / "records.jsonl"

    @property
    def trackers(self) -> Path:
        """Experiment trackers' local stores: tensorboard/<study>/<job key>/, mlflow/ (a file store)."""
        return self.root / "trackers"

    @property
    def submitit(self) -> Path:
        """submitit's pickled jobs, results and logs, one subfolder per scheduler job id."""
        return self.root / "submitit"

    @property
    def submitted(self) -> Path:
        """Job key -> the scheduler's job id of its latest submission (to re-attach on a rerun)."""
        return self.submitit / "jobs.json"


def parquet_twin(path: Path) -> Path:
    """The Parquet copy of a CSV or JSONL table: the same name, `.parquet`."""
    return Path(path).with_suffix(".parquet")


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


def _refuse_read_only(root: Path) -> None:
    """Refuse a run folder this process cannot write, before any work (a read-only mount, another
    user's folder): tried by creating a file, which is what every stage will need."""
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise PermissionError(
            f"{root} is not writable ({e.strerror}); make it writable or choose another --out"
        ) from None
