"""The Python API: the stages and the whole study as functions (docs/api.md shows them in use).

These are the functions the `iftscope` command calls; results come back as typed records and
plain dicts (pandas-ready lists of rows), and every stage writes its folder as the CLI would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iftscope.runfolder import Job, RunFolder
from iftscope.stages.analyse import analyse_stage, finished_runs
from iftscope.stages.evaluate import evaluate_stage as evaluate_model
from iftscope.stages.evaluate import read_records
from iftscope.stages.intervene import intervene_stage as build_groups
from iftscope.stages.model import ModelSpec
from iftscope.stages.probe import CacheConfig, ProbeOutcome
from iftscope.stages.probe import probe_stage as probe_model
from iftscope.stages.train import Curve
from iftscope.stages.train import train_stage as train_model
from iftscope.study.config import StudyConfig
from iftscope.study.recipe import load_recipe, shipped
from iftscope.study.results import StudyResult, load_run

__all__ = [
    "CacheConfig", "Curve", "Job", "ModelSpec", "ProbeOutcome", "RunFolder", "StudyConfig", "StudyResult",
    "analyse_run", "build_groups", "evaluate_model", "load_recipe", "load_run", "probe_model",
    "read_records", "run_study", "train_model",
]  # fmt: skip


def run_study(
    recipe: str | Path | StudyConfig | None = None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    report: bool = True,
) -> StudyResult:
    """The whole study, as `iftscope run RECIPE key=value ... --out OUT` runs it: a recipe file, a
    shipped recipe's name (`"smoke"`, `"default"`, ...), a StudyConfig, or None for the default
    micro-world study. Resumes a killed run in the same folder."""
    from iftscope.report.render import write_report
    from iftscope.study.runner import Study

    if isinstance(recipe, StudyConfig):
        if overrides:
            raise ValueError("overrides apply to a recipe file or name, not to a StudyConfig")
        cfg = recipe
    else:
        cfg, _ = load_recipe(shipped(None if recipe is None else str(recipe)), list(overrides))
    from iftscope.study.validate import check_recipe

    check_recipe(cfg, str(recipe) if recipe is not None and not isinstance(recipe, StudyConfig) else "recipe")
    out = Path(out) if out is not None else Path("runs") / cfg.name
    Study(cfg, out, progress=progress).run()
    if report:
        write_report(out)
    return load_run(out)


def analyse_run(folder: str | Path, report: bool = True) -> StudyResult:
    """Redo the analysis (and the report) of a finished study from its stored evaluations."""
    from iftscope.report.render import write_report
    from iftscope.runs import read_json

    run = RunFolder(Path(folder))
    runs, old = finished_runs(run), read_json(run.summary)
    cfg, _ = load_recipe(run.recipe)
    kept: dict[str, Any] = {k: old[k] for k in ("stage_seconds", "stage_clock") if k in old}
    with run.lock():
        analyse_stage(run, runs, cfg.render.styles[0], lambda: kept, cfg.contrasts, parquet=cfg.parquet)
        if report:
            write_report(run)
    return load_run(run.root)
