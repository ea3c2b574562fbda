"""The analyse stage: every finished job's metrics into tables with CIs over seeds, paired tests,
the partial correlation and the verdict; writes analysis/runs.csv and analysis/summary.json (last).
`iftscope analyse` reruns it from a run folder's stored evaluations."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iftscope.analyse.correlation import base_wrong_rows
from iftscope.analyse.inference import ContrastsConfig
from iftscope.analyse.makeup import group_makeup
from iftscope.analyse.tables import summarise_study
from iftscope.outputs import seal
from iftscope.parquet import jsonl_twins, parquet_enabled, write_parquet
from iftscope.runfolder import LARGE_BASE, Job, RunFolder
from iftscope.runs import atomic_write_json, atomic_write_text, read_json, read_jsonl
from iftscope.stages.evaluate import PROBE, QA


def analyse_stage(
    run: RunFolder,
    runs: Sequence[dict[str, Any]],
    style: str,
    provenance: Callable[[], dict[str, Any]] = dict,
    contrasts: ContrastsConfig | None = None,
    parquet: bool | None = None,
) -> dict[str, Any]:
    """`runs`: one dict per job (group, style, seed, metrics, train); `style` is the headline's;
    `provenance()` (stage times and clocks, asked for once the analysis is computed) is stored with
    the results. `parquet` (None: if pyarrow is installed, True, False): Parquet copies of
    runs.csv and of every per-question record file (iftscope.parquet), before summary.json."""

    runs = sorted(runs, key=lambda r: (r["seed"], r["group"], r["style"]))
    result, rows = compute_summary(run, runs, style, contrasts)
    result = {**result, **provenance()}
    atomic_write_text(run.runs_csv, _csv(rows))
    if parquet_enabled(parquet):
        write_parquet(run.runs_parquet, rows)
        jsonl_twins([run.probe_records, *_record_files(run, runs, result["base"])])
    atomic_write_json(run.summary, result)
    seal(run.analysis, run.analysis_stage([Job(r["seed"], r["group"], r["style"]) for r in runs]).inputs)
    return result


def compute_summary(
    run: RunFolder, runs: Sequence[dict[str, Any]], style: str, contrasts: ContrastsConfig | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary.json's content less provenance, runs.csv's rows) from the run folder's stored
    evaluations of `runs`, writing nothing: what analyse_stage stores, and what a bench reads for
    a subset of the seeds (bench/budget_compare.py)."""
    # one order whoever calls (the study in plan order, `iftscope analyse` from summary.json): the
    # tables, runs.csv and the permutation tests do not depend on how the jobs were listed
    runs = sorted(runs, key=lambda r: (r["seed"], r["group"], r["style"]))
    base = read_json(run.eval("base") / "metrics.json")
    tuned = _records(run, runs, base)  # every job's records, read once for both uses below
    by_key = {(f"{r['group']}/{r['style']}/s{r['seed']}", r["set"]): r["records"] for r in tuned}

    def correct(key: str, test_set: str) -> dict[str, bool] | None:
        rows = by_key.get((key, test_set))
        return None if rows is None else {r["question_id"]: r["correct"] for r in rows}

    # like for like: the base's probe records against each tuned model's, read by the same probe
    # (the QA records where a run has no probe reading, e.g. a folder from before both instruments)
    probed = _records(run, runs, base, PROBE) or tuned
    wrong = base_wrong_rows({s: read_jsonl(run.eval_records("base", s)) for s in base}, probed)
    base_qa = read_json(run.eval("base", QA) / "metrics.json") if run.eval_done("base", QA) else None
    result, rows = summarise_study(runs, base, correct, style, contrasts, wrong, base_qa)
    seeds = sorted({r["seed"] for r in runs})
    groups = {s: read_json(run.groups(s) / "summary.json") for s in seeds if run.groups_done(s)}
    result = {
        **result,
        **group_makeup(groups),
        "conditions": _conditions(run, runs),
        "probe": read_json(run.probe / "summary.json"),
    }
    return result, rows


def _conditions(run: RunFolder, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the optional conditions add (study.conditions), when they ran: `large_base`, the
    proxy condition's untuned M on every test set; `self_instruct`, the self-generated group's
    make-up per seed and its mean (intervene.selfinstruct.makeup)."""
    from iftscope.intervene.selfinstruct import makeup

    out: dict[str, Any] = {}
    if run.eval_done(LARGE_BASE):
        out["large_base"] = read_json(run.eval(LARGE_BASE) / "metrics.json")
    seeds = sorted({r["seed"] for r in runs if r["group"] == "self-instruct"})
    if not seeds:
        return out
    from iftscope.intervene.stage import read_probe_records
    from iftscope.microworld.groundtruth import load_truth

    known = {r.question_id: r.known for r in read_probe_records(run.probe)}
    truth = load_truth(run.world) if run.world_recall.exists() else None
    per_seed = {}
    for seed in seeds:
        groups = read_json(run.groups(seed) / "groups.json")
        items = next(g["items"] for g in groups if g["name"] == "self-instruct")
        writing = read_json(run.groups(seed) / "summary.json")["groups"]["self-instruct"].get("writing")
        per_seed[str(seed)] = makeup(items, known, truth, writing)
    first = per_seed[str(seeds[0])]
    keys = [k for k, v in first.items() if k != "n" and type(v) in (int, float)]  # numbers, not flags
    mean = {k: float(np.mean([m[k] for m in per_seed.values() if m[k] is not None])) for k in keys}
    if first.get("written"):
        mean["written"] = True
    out["self_instruct"] = {"per_seed": per_seed, "mean": mean}
    return out


def _records(
    run: RunFolder, runs: Sequence[dict[str, Any]], sets, instrument: str | None = None
) -> list[dict[str, Any]]:
    """Every job's records per test set (in QA, or read with `instrument`), as
    analyse.correlation.base_wrong_rows takes them."""
    out = []
    for r in runs:
        job = Job(r["seed"], r["group"], r["style"])
        for s in sets:
            if run.eval_records(job, s, instrument).exists():
                records = read_jsonl(run.eval_records(job, s, instrument))
                out.append(
                    {"group": job.group, "style": job.style, "seed": job.seed, "set": s, "records": records}
                )
    return out


def _record_files(run: RunFolder, runs: Sequence[dict[str, Any]], sets) -> list:
    """The base model's and every job's records-<set>.jsonl."""
    names = ["base", *(Job(r["seed"], r["group"], r["style"]) for r in runs)]
    return [run.eval_records(name, s) for name in names for s in sets]


def finished_runs(run: RunFolder) -> list[dict[str, Any]]:
    """The jobs of a finished study, as analyse_stage takes them, from the run folder alone."""
    if not run.analysis_done:
        raise FileNotFoundError(f"{run.root} has no finished study (run `iftscope run` first)")
    out = []
    for key, train in read_json(run.summary)["training"].items():
        job = Job.from_key(key)
        metrics = read_json(run.eval(job) / "metrics.json")
        out.append(
            {"group": job.group, "style": job.style, "seed": job.seed, "metrics": metrics, "train": train}
        )
    return out


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()
