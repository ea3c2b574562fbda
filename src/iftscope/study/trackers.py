"""Experiment trackers (recipe key `report_to`: tensorboard, mlflow, wandb) for the study's jobs,
through accelerate's tracker classes (accelerate.tracking), the ones `Accelerator(log_with=...)`
builds: one tracker run per (group, style, seed) job, named by its key `group/style/s<seed>`, under
one experiment (project) named after the study.

Each run gets the job's settings as its configuration, the loss and learning rate of every
training step and the QA accuracy at the curve points (live, as the job trains in this process),
then the evaluation's final metrics (`eval/<set>/<metric>`). Steps not seen live (a training
resumed from a checkpoint, or run under `accelerate launch`) are logged from train.json when the
training ends. A job found finished on a rerun opens no tracker run (it would only repeat one).

The stores lie in the run folder (runfolder.trackers): TensorBoard event files under
tensorboard/<study>/<job key>/, MLflow's file store under mlflow/ (unless MLFLOW_TRACKING_URI
names a server), Weights & Biases offline under wandb/ (unless WANDB_MODE says otherwise).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from iftscope.runfolder import Job, RunFolder
from iftscope.study.config import StudyConfig
from iftscope.study.recipe import to_dict

TRACKERS = ("tensorboard", "mlflow", "wandb")


class JobTrackers:
    """The open tracker runs of one job; `step` logs a training row, `final` the evaluation."""

    def __init__(self, trackers: list[Any]):
        self.trackers, self.logged = trackers, set()

    def log(self, values: dict[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def step(self, row: dict[str, Any]) -> None:
        """One training log row (step, loss, lr, qa_accuracy at curve points), once per step."""
        if row["step"] in self.logged:
            return
        self.logged.add(row["step"])
        names = {"loss": "train/loss", "lr": "train/lr", "qa_accuracy": "train/qa_accuracy"}
        self.log({names[k]: float(v) for k, v in row.items() if k in names}, row["step"])

    def steps(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.step(row)

    def final(self, metrics: dict[str, Any], step: int) -> None:
        """The evaluation's numbers, `eval/<set or section>/<metric>`, at the last training step."""
        self.log(dict(_numbers(metrics, "eval")), step)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()


def _numbers(value: Any, prefix: str) -> Iterable[tuple[str, float]]:
    """Every finite number in a nested mapping, keyed by its path (lists and texts left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{prefix}/{str(k).lstrip('_')}")
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        yield prefix, float(value)


def _config(cfg: StudyConfig, job: Job) -> dict[str, Any]:
    """The job's settings as flat scalars (TensorBoard's hparams and MLflow's params take no lists)."""
    out: dict[str, Any] = {"study": cfg.name, "group": job.group, "style": job.style, "seed": job.seed}
    for block in ("train", "render", "probe"):
        for k, v in to_dict(getattr(cfg, block)).items():
            out[f"{block}.{k}"] = v if isinstance(v, int | float | str | bool) else str(v)
    return out


def _mlflow_store(run: RunFolder) -> None:
    """MLflow writes to the run folder's file store unless MLFLOW_TRACKING_URI names another."""
    import mlflow

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks to opt in to it
        mlflow.set_tracking_uri((run.trackers / "mlflow").resolve().as_uri())


def prepare_trackers(cfg: StudyConfig, run: RunFolder) -> None:
    """Before any job: the study's MLflow experiment, made once here (jobs in parallel processes
    would race to create it)."""
    if "mlflow" not in cfg.report_to:
        return
    import mlflow

    _mlflow_store(run)
    if mlflow.get_experiment_by_name(cfg.name) is None:
        mlflow.create_experiment(cfg.name)


def _tracker(name: str, cfg: StudyConfig, run: RunFolder, job: Job):
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    if name == "tensorboard":
        return TensorBoardTracker(job.key, run.trackers / "tensorboard" / cfg.name)
    if name == "mlflow":
        _mlflow_store(run)
        tags = {"group": job.group, "style": job.style, "seed": str(job.seed)}
        return MLflowTracker(experiment_name=cfg.name, run_name=job.key, tags=tags)
    folder = run.trackers / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    mode = os.environ.get("WANDB_MODE", "offline")  # never reaches a server unless asked to
    return WandBTracker(cfg.name, name=job.key, group=job.group, dir=str(folder), mode=mode)


def open_trackers(cfg: StudyConfig, run: RunFolder, job: Job) -> JobTrackers | None:
    """The job's tracker runs, started and given its settings; None when the recipe asks for no
    tracker or the job is already finished (trained and evaluated)."""
    if not cfg.report_to or (run.train_done(job) and run.eval_done(job)):
        return None
    from accelerate import PartialState

    PartialState()  # accelerate's trackers log on its main process: this one
    prepare_trackers(cfg, run)
    trackers = [_tracker(name, cfg, run, job) for name in cfg.report_to]
    config = _config(cfg, job)
    for tracker in trackers:
        tracker.start()
        tracker.store_init_configuration(config)
    return JobTrackers(trackers)
