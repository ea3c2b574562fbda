"""Where one default-study LoRA job's time goes, and each part's distance to the machine's limit.

For one job (group H, style answer, seed 0) of a default-study run folder, timed as a study worker
runs it (one thread per worker): process start (a fresh interpreter importing what a worker
imports), the study's inputs (read again by every job in a worker), model loading, data
preparation (reading and tokenising the examples), then the training loop split into forward,
backward and optimizer step (clipping, AdamW, schedule), the QA curve's evaluations, and the
evaluate stage (every test set, generation, behaviour). Each part's FLOPs are estimated from the
tokens its forward passes really saw (counted by a hook on the model) and divided by the float32
matrix-multiply rate measured in the same run at the same thread count:

    python bench/time_breakdown.py --run RUN [--steps 300] [--threads 1]

RUN: a default-study run folder that has reached its groups (world/, groups/s0/, probe/,
eval/base/: `iftscope run --out RUN` makes one; it is copied to a scratch folder, never written).
FLOPs: forward 2 x (matmul parameters) per token + 4 x layers x hidden x (context length) per token
for attention; LoRA's backward through the frozen weights costs what the forward does (no weight
gradients); the optimizer's elementwise work (about 12 per trainable parameter) is no matmul.
Writes bench/results/time_breakdown.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from iftscope.runfolder import Job, RunFolder
from iftscope.study.recipe import load_recipe

OUT = Path(__file__).parent / "results" / "time_breakdown.json"
JOB = Job(0, "H", "answer")


def matmul_rate(n: int = 1024, reps: int = 10) -> float:
    """GFLOP/s of an n x n fp32 matmul at this process's thread count (best of `reps`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class TokenCount:
    """What the model's transformer body and output head compute: tokens through the body, sum
    over sequences of (new tokens x context) for attention, rows through the head (the scorer
    applies the head at the scored positions only). Hooks on the body and the head."""

    def __init__(self, model):
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.config = inner.config
        named = inner.model.named_parameters()
        self.body = sum(p.numel() for n, p in named if "embed_tokens" not in n and "lora_" not in n)
        self.head = inner.lm_head.weight.numel()
        self.tokens = self.squares = self.rows = 0
        self.handles = [
            inner.model.register_forward_pre_hook(self._body, with_kwargs=True),
            inner.lm_head.register_forward_pre_hook(self._head),
        ]

    def _body(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        new = ids.shape[1]
        context = mask.sum(dim=1) if mask is not None else torch.full((ids.shape[0],), new)
        self.tokens += int(ids.shape[0] * new) if mask is None else int(mask[:, -new:].sum())
        self.squares += int((context.double() * new).sum())

    def _head(self, module, args):
        self.rows += args[0].numel() // args[0].shape[-1]

    def flops(self) -> float:
        """Forward FLOPs since the last call: 2 x parameters per token through the body and per row
        through the head, plus attention's QK^T and AV (4 x layers x hidden per token and context
        position, halved: causal)."""
        cfg = self.config
        attention = 2 * cfg.num_hidden_layers * cfg.hidden_size * self.squares
        out = 2 * self.body * self.tokens + 2 * self.head * self.rows + attention
        self.tokens = self.squares = self.rows = 0
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def process_start() -> float:
    """A fresh interpreter importing what a study worker imports (spawned, as the pool does)."""
    code = "import torch, transformers, peft, accelerate, iftscope.study.jobs, iftscope.stages.train"
    return _timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))


def breakdown(run: RunFolder, steps: int | None) -> dict:
    """Every part of one job, timed, with its FLOPs where it has matmuls."""
    from iftscope.intervene.stage import read_examples
    from iftscope.models.load import load_model
    from iftscope.study import jobs as study_jobs
    from iftscope.study.inputs import prepare_inputs
    from iftscope.train.sft import resolve, tokenize

    cfg, _ = load_recipe(run.recipe)
    recipe = cfg
    if steps:
        cfg = replace(cfg, train=replace(cfg.train, steps=steps))
    parts: dict[str, dict] = {"process start": {"seconds": process_start()}}
    t = time.perf_counter()
    inputs = prepare_inputs(cfg, run, progress=False)
    parts["study inputs (per job)"] = {"seconds": time.perf_counter() - t}
    for part in ("model loading (first in a process: model code imported)", "model loading (again)"):
        t = time.perf_counter()
        model, tok = load_model(inputs.base.path, dtype=inputs.base.dtype, device="cpu")
        parts[part] = {"seconds": time.perf_counter() - t}
    t = time.perf_counter()
    examples = read_examples(run.examples(0, JOB.group), JOB.style)
    train_cfg = resolve(replace(cfg.train, seed=JOB.seed), len(examples))
    tokenize(examples, tok, train_cfg.max_length)
    parts["data preparation"] = {"seconds": time.perf_counter() - t}
    tuned, loop = train_loop(model, tok, examples, train_cfg, study_jobs.job_curve(cfg, inputs))
    parts |= loop
    t = time.perf_counter()
    tuned.save_pretrained(run.train(JOB) / "model", safe_serialization=True)
    tok.save_pretrained(run.train(JOB) / "model")
    parts["saving the adapter"] = {"seconds": time.perf_counter() - t}
    return {"cfg": cfg, "recipe": recipe, "inputs": inputs, "parts": parts, "model": tuned, "tok": tok}


def train_loop(model, tok, examples, cfg, curve) -> tuple[object, dict[str, dict]]:
    """train_sft's loop (the same setup, batches and loss), each piece of a step timed apart."""
    from iftscope.stages.train import curve_evaluator
    from iftscope.train.labels import pad_batch
    from iftscope.train.sft import _response_tokens, _Run, _setup, _summed_loss, batch_indices

    run: _Run = _setup(model, tok, examples, cfg, torch.float32)
    count = TokenCount(run.model)
    evaluate, every, _ = curve_evaluator(curve, cfg.steps, tok)
    sums = dict.fromkeys(("forward", "backward", "optimizer step", "QA curve (during training)"), 0.0)
    flops = dict.fromkeys(sums, 0.0)
    for step in range(cfg.steps):
        run.model.train()
        idx = batch_indices(len(run.rows), step, cfg.batch_size, cfg.seed)
        total = sum(_response_tokens(run.rows[i]) for i in idx)
        ids, labels, mask = (torch.tensor(x) for x in pad_batch([run.rows[i] for i in idx], run.pad))
        t0 = time.perf_counter()
        loss = _summed_loss(run.model, ids, labels, mask) / total
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        fwd = count.flops()
        for part, seconds, f in (
            ("forward", t1 - t0, fwd),
            ("backward", t2 - t1, fwd),
            ("optimizer step", t3 - t2, 0),
        ):
            sums[part] += seconds
            flops[part] += f
        if every and ((step + 1) % every == 0 or step + 1 == cfg.steps):
            t4 = time.perf_counter()
            evaluate(run.model, step + 1)
            sums["QA curve (during training)"] += time.perf_counter() - t4
            flops["QA curve (during training)"] += count.flops()
    count.remove()
    return run.model, {k: {"seconds": sums[k], "flops": flops[k]} for k in sums}


def evaluation(state: dict, run: RunFolder) -> dict:
    """The evaluate stage of the just-trained model (every test set, generation, behaviour)."""
    from iftscope.study.jobs import evaluate_job

    model = state["model"].eval()
    count = TokenCount(model)
    t0 = time.perf_counter()
    evaluate_job(state["cfg"], run, state["inputs"], JOB, loaded=(model, state["tok"]))
    seconds = time.perf_counter() - t0
    count.remove()
    return {"seconds": seconds, "flops": count.flops()}


def per_study(cfg, run: RunFolder, measured_steps: int, workers: int = 2) -> dict[str, float]:
    """How many times each part happens in the whole study: process start and the first model
    load once per worker, the rest once per job; the training loop's parts scaled from the steps
    measured to the recipe's."""
    groups = [f.stem for f in (run.groups(0) / "examples").glob("*.jsonl") if f.stem not in cfg.skip_groups]
    jobs = len(cfg.seeds) * len(groups) * len(cfg.render.styles)
    scale = cfg.train.steps / measured_steps
    loop = ("forward", "backward", "optimizer step")
    counts = {"process start": workers, "model loading (first in a process: model code imported)": workers}
    return {"jobs": jobs, "workers": workers, "counts": counts, "loop_scale": scale, "loop": loop}


def table(result: dict) -> str:
    """One row per part: its seconds in the job, share, FLOP rate and fraction of the matmul rate,
    and its estimated seconds in the whole default study (x jobs or x workers)."""
    rows = [
        "| part | seconds (one job) | share | GFLOP/s | of the matmul rate | whole study (est., s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = sum(p["seconds"] for p in result["parts"].values())
    study = 0.0
    for name, p in result["parts"].items():
        gf, frac, whole = p.get("gflops_per_second"), p.get("fraction_of_matmul_rate"), p["study_seconds"]
        study += whole
        rows.append(
            f"| {name} | {p['seconds']:.2f} | {p['seconds'] / total:.1%} | "
            f"{'' if gf is None else f'{gf:.2f}'} | {'' if frac is None else f'{frac:.1%}'} | {whole:.0f} |"
        )
    rows.append(f"| total | {total:.2f} | 100% | | | {study:.0f} (summed over workers) |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--run", type=Path, required=True, help="a default-study run folder (world, groups, probe)"
    )
    ap.add_argument("--steps", type=int, default=0, help="training steps (0: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a study's CPU worker: 1)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="time-breakdown-"))
    try:
        for part in ("world", "groups", "probe", "tests", "recipe.yaml", "manifest.json", "eval/base"):
            src = args.run / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, scratch / part)
        run = RunFolder(scratch)
        load_before = round(os.getloadavg()[0], 2)
        rate_before = matmul_rate()
        state = breakdown(run, args.steps or None)
        state["parts"]["evaluate stage"] = evaluation(state, run)
        rate_after = matmul_rate()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    peak = (rate_before + rate_after) / 2
    cfg = state["cfg"]
    study = per_study(state["recipe"], RunFolder(args.run), cfg.train.steps)
    for name, p in state["parts"].items():
        times = study["counts"].get(name, study["jobs"])
        p["study_seconds"] = p["seconds"] * times * (study["loop_scale"] if name in study["loop"] else 1)
        if p.get("flops"):
            p["gflops_per_second"] = p["flops"] / p["seconds"] / 1e9
            p["fraction_of_matmul_rate"] = p["gflops_per_second"] / peak
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(sys.argv),
        "job": f"{JOB.group}/{JOB.style}/s{JOB.seed}",
        "threads": args.threads,
        "steps": cfg.train.steps,
        "batch_size": cfg.train.batch_size,
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
        "matmul_gflops_per_second": {"before": round(rate_before, 2), "after": round(rate_after, 2)},
        "study": {k: v for k, v in study.items() if k != "loop"},
        "parts": {k: {kk: round(v, 4) for kk, v in p.items()} for k, p in state["parts"].items()},
    }
    result["table"] = table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["table"])
    rates = f"{rate_before:.1f} before, {rate_after:.1f} after"
    print(f"matmul rate (fp32, {args.threads} thread(s), GFLOP/s): {rates}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
