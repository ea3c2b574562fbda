"""What reading every model with both instruments costs: on a finished study's run folder (e.g. the
`smoke` recipe's), time the evaluation passes a tuned model gets, in the trained QA format (as
before) and as the probe reads the base (the added pass), and the base model's added QA-format pass.
Repeated, interleaved, in one process with one thread (the host is shared; the median is reported).
Retention is no longer read separately (it comes from the probe pass), which saves its pass.

    iftscope run smoke --out /tmp/smoke --quiet
    python bench/instruments_cost.py /tmp/smoke [--repeats 3] [--json bench/results/instruments_cost.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from iftscope.evaluate import behaviour
from iftscope.runfolder import Job, RunFolder
from iftscope.runs import read_json
from iftscope.stages.evaluate import evaluate_stage
from iftscope.study.inputs import prepare_inputs
from iftscope.study.jobs import qa_config
from iftscope.study.recipe import load_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = RunFolder(Path(args.run))
    cfg, _ = load_recipe(run.recipe)
    inputs = prepare_inputs(cfg, run, progress=False)
    job = Job.from_key(sorted(read_json(run.summary)["training"])[0])
    tuned = inputs.base.tuned(run.train(job) / "model")
    loaded_tuned, loaded_base = tuned.load(), inputs.base.load()
    held = inputs.sets[inputs.main_set][:200]
    times: dict[str, list[float]] = {"tuned_qa": [], "tuned_probe": [], "base_qa": [], "retention_before": []}
    from iftscope.models.scorer import HFScorer

    scorer = HFScorer(*loaded_tuned, batch_size=cfg.eval_batch_size)
    passes = {
        "tuned_qa": (tuned, qa_config(cfg), loaded_tuned),
        "tuned_probe": (tuned, cfg.probe, loaded_tuned),
        "base_qa": (inputs.base, qa_config(cfg), loaded_base),
    }
    for _ in range(args.repeats):
        for name, (spec, probe_cfg, loaded) in passes.items():
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                evaluate_stage(
                    spec, inputs.sets, probe_cfg, Path(tmp), pool=inputs.pool,
                    batch_size=cfg.eval_batch_size, loaded=loaded,
                )  # fmt: skip
                times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        behaviour.retention(scorer, held, cfg.probe)
        times["retention_before"].append(time.perf_counter() - t0)
    median = {k: round(statistics.median(v), 3) for k, v in times.items()}
    n_jobs = len(read_json(run.summary)["training"])
    added = n_jobs * (median["tuned_probe"] - median["retention_before"]) + median["base_qa"]
    out = {
        "run": str(run.root), "recipe": cfg.name, "job_timed": job.key, "jobs": n_jobs,
        "questions": {s: len(q) for s, q in inputs.sets.items()}, "seconds_median": median, "seconds": times,
        "added_seconds_per_study": round(added, 2),
        "stage_seconds": read_json(run.summary)["stage_seconds"],
    }  # fmt: skip
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
