"""Many LoRA adapters on one base on this CPU: the study's jobs one at a time (today: the base
loaded for each, train_sft), on a base loaded once (adapters_per_pass 1) and K adapters per
forward/backward pass (adapters_per_pass K), side by side in one run, in rounds (each round runs
every mode once, in turn), so a busy host slows every mode alike; the best round per mode counts.

    python bench/multi_adapter.py --run RUN [--jobs 6] [--steps 30] [--threads 1] [--rounds 2]

RUN: a default-study run folder that has reached its groups (world/model, groups/s0/examples).
Jobs: the first `--jobs` groups of seed 0 in the answer style, the default study's training
config with `--steps` steps. Also checks at this shape that the K-in-one-pass adapters equal the
one-at-a-time ones (max absolute difference of the saved weights). Writes
bench/results/multi_adapter.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from iftscope.intervene.stage import read_examples
from iftscope.models.load import load_model
from iftscope.runfolder import RunFolder
from iftscope.study.recipe import load_recipe
from iftscope.train.multi import AdapterJob, train_adapters
from iftscope.train.sft import train_sft

OUT = Path(__file__).parent / "results" / "multi_adapter.json"


def jobs(run: RunFolder, n: int, steps: int, out: Path) -> list[AdapterJob]:
    cfg, _ = load_recipe(run.recipe)
    files = sorted((run.groups(0) / "examples").glob("*.jsonl"))[:n]
    train = replace(cfg.train, steps=steps, seed=0)
    return [AdapterJob(read_examples(f, "answer"), out / f.stem, train) for f in files]


def one_at_a_time(model_dir: str, todo: list[AdapterJob]) -> None:
    """Today's path: each job loads its base and trains alone (train_sft under accelerate)."""
    for job in todo:
        model, tok = load_model(model_dir, device="cpu")
        train_sft(model, tok, job.examples, job.out, job.cfg, progress=False)


def shared(model_dir: str, todo: list[AdapterJob], k: int) -> None:
    """The base loaded once; the jobs k at a time in one pass each (train.multi)."""
    model, tok = load_model(model_dir, device="cpu")
    for i in range(0, len(todo), k):
        train_adapters(model, tok, todo[i : i + k])


def max_difference(a: list[AdapterJob], b: list[AdapterJob]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        wa, wb = (load_file(str(j.out / "model" / "adapter_model.safetensors")) for j in (x, y))
        worst = max(worst, max(float((wa[k] - wb[k]).abs().max()) for k in wa))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a study's CPU worker: 1)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run, scratch = RunFolder(args.run), Path(tempfile.mkdtemp(prefix="multi-adapter-"))
    model_dir = str(run.world_model)
    k = args.jobs
    modes = {
        "one at a time, base loaded per job (adapters_per_pass 0)": lambda t: one_at_a_time(model_dir, t),
        "base loaded once, one adapter at a time (adapters_per_pass 1)": lambda t: shared(model_dir, t, 1),
        f"base loaded once, {k} adapters per pass (adapters_per_pass {k})": lambda t: shared(model_dir, t, k),
    }
    load_model(model_dir, device="cpu")  # model code imported before any mode is timed
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    load = [round(os.getloadavg()[0], 2)]
    try:
        for r in range(args.rounds):
            for i, (mode, fn) in enumerate(modes.items()):
                todo = jobs(run, args.jobs, args.steps, scratch / f"r{r}m{i}")
                t0 = time.perf_counter()
                fn(todo)
                seconds[mode].append(round(time.perf_counter() - t0, 2))
        examples = args.jobs * args.steps * jobs(run, 1, 1, scratch)[0].cfg.batch_size
        diff = max_difference(
            jobs(run, args.jobs, args.steps, scratch / "r0m0"),
            jobs(run, args.jobs, args.steps, scratch / "r0m2"),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load.append(round(os.getloadavg()[0], 2))
    base = min(seconds[next(iter(modes))])
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "threads": args.threads,
        "jobs": args.jobs,
        "steps": args.steps,
        "load_average_1min": load,
        "modes": {
            m: {
                "seconds_per_round": s,
                "best_seconds": min(s),
                "examples_per_second": round(examples / min(s), 1),
                "speed_vs_one_at_a_time": round(base / min(s), 3),
            }
            for m, s in seconds.items()
        },
        "max_abs_weight_difference_pass_vs_alone": diff,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
