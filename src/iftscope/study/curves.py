"""What a study job records while it trains: the QA curve on held-out main-set questions and, on
the micro-world, the acquisition curve on the job's own taught facts asked in a held-back wording,
both read at the same evenly spaced steps (the report's early-stopping view)."""

from __future__ import annotations

from iftscope.runfolder import Job, RunFolder
from iftscope.runs import read_json
from iftscope.stages.train import Curve
from iftscope.study.config import StudyConfig
from iftscope.study.inputs import StudyInputs
from iftscope.types import Question


def job_curve(
    cfg: StudyConfig, inputs: StudyInputs, run: RunFolder | None = None, job: Job | None = None
) -> Curve:
    """The QA curve every job's training records (held-out main-set questions) and, on the
    micro-world when the job is given, its acquisition curve: the first half as many of the
    group's taught facts asked in the held-back wording (the `reworded` acquisition set)."""
    taught: list[Question] = []
    if run is not None and job is not None and inputs.truth_dir is not None and cfg.curve_questions:
        from iftscope.microworld.acquisition import acquisition_sets

        items = group_items(run, job)
        pairs = [(it["question_id"], it["target"]) for it in items]
        sets = acquisition_sets(inputs.questions, pairs, cfg.world.world, seed=cfg.probe.seed)
        taught = sets.get("reworded", [])[: max(1, cfg.curve_questions // 2)]
    return Curve(
        inputs.sets[inputs.main_set][: cfg.curve_questions], points=cfg.curve_points,
        format=cfg.tuned_format, pool=inputs.pool, batch_size=cfg.eval_batch_size, taught=taught,
    )  # fmt: skip


def group_items(run: RunFolder, job: Job) -> list[dict]:
    """The job's group's items (groups/s<seed>/groups.json)."""
    return next(g for g in read_json(run.groups(job.seed) / "groups.json") if g["name"] == job.group)["items"]
