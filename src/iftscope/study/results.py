"""A finished study as typed, pandas-ready results: `iftscope.load_run(DIR)` and what
`iftscope.run_study` returns."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iftscope.runfolder import RunFolder
from iftscope.runs import read_json
from iftscope.study.config import StudyConfig


@dataclass(frozen=True)
class StudyResult:
    """What a study found. `runs` and `table()` are lists of flat dicts:
    `pandas.DataFrame(result.runs)` is the tidy table every figure is drawn from."""

    folder: RunFolder
    config: StudyConfig
    summary: dict[str, Any]  # analysis/summary.json (schema: docs/run-folder.md)
    runs: list[dict[str, Any]]  # analysis/runs.csv: one row per (group, style, seed, test set)

    @property
    def verdict(self) -> str:
        return self.summary["verdict"]

    @property
    def report(self) -> Path:
        return self.folder.report / "report.html"

    def table(self) -> list[dict[str, Any]]:
        """The headline: one row per group/style and test set with the mean accuracy over seeds,
        its 95% t interval (None with one seed) and the seeds' values."""
        rows = []
        for key, cells in self.summary["table"].items():
            group, _, style = key.partition("/")
            for test_set, cell in cells.items():
                acc = cell["accuracy"]
                ci = acc.get("ci") or (None, None)
                rows.append({
                    "group": group, "style": style or None, "set": test_set, "accuracy": acc["mean"],
                    "ci_low": ci[0], "ci_high": ci[1], "seeds": len(acc.get("values", [])),
                })  # fmt: skip
        return rows

    def paired_tests(self) -> list[dict[str, Any]]:
        """H minus each group, per style and test set (difference, CI, p)."""
        return list(self.summary["paired_tests"])


def load_run(folder: str | Path) -> StudyResult:
    """The results of a finished `iftscope run` folder."""
    from iftscope.study.recipe import load_recipe

    run = RunFolder(Path(folder))
    if not run.analysis_done:
        raise FileNotFoundError(f"{run.root}: no finished study here (no {run.summary.name})")
    cfg, _ = load_recipe(run.recipe)
    with run.runs_csv.open(encoding="utf-8") as f:
        runs = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return StudyResult(run, cfg, read_json(run.summary), runs)


def _number(text: str) -> Any:
    if text in ("", "None"):
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
