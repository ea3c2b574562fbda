"""The proxy condition's jobs (study.conditions), run after the study's own, in this process.

Per seed and style, next to the small model tuned on `proxy.group` (the group's own job, which
guides):
- `large-<group>`: M tuned directly on the same examples with the same budget (train + evaluate);
- `proxy-<group>`: M steered by the tuned small model (models.proxy), evaluated with no training.
Once: `eval/large-base`, M untuned, read as the probe reads the base model. Both rows are measured
like every tuned model (zero-shot in the trained format, generation and token shift against M,
memorisation of the group's training questions), and their consistency is with M untuned.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from tqdm.auto import tqdm

from iftscope.outputs import read_sealed
from iftscope.probe.knowledge import ProbeConfig
from iftscope.runfolder import LARGE, LARGE_BASE, STEERED, Job, RunFolder
from iftscope.stages.evaluate import evaluate_stage, read_reference
from iftscope.stages.model import ModelSpec
from iftscope.stages.train import Curve, train_stage
from iftscope.study.config import StudyConfig
from iftscope.study.inputs import StudyInputs
from iftscope.study.jobs import _train_brief, job_extras


def large_spec(cfg: StudyConfig, run: RunFolder, base: ModelSpec) -> ModelSpec:
    """M: the recipe's proxy.model on real data, else the micro-world's large base model."""
    path = cfg.proxy.model if cfg.data.model is not None else str(run.world_large_model)
    return replace(base, path=path, adapter=None)


def run_proxy(
    cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every (seed, style): M tuned directly and M proxy-guided; (run dicts, train/evaluate seconds)."""
    large = large_spec(cfg, run, inputs.base)
    t0 = time.perf_counter()
    evaluate_stage(
        large, inputs.sets, cfg.probe, run.eval(LARGE_BASE), pool=inputs.pool,
        batch_size=cfg.eval_batch_size, inputs=run.eval_stage(LARGE_BASE).inputs,
    )  # fmt: skip
    reference = read_reference(run.eval(LARGE_BASE), list(inputs.sets))
    seconds = {"train": 0.0, "evaluate": time.perf_counter() - t0}
    big = replace(inputs, base=large)  # token shift and memorisation measured against M
    jobs = [(seed, style) for seed in cfg.seeds for style in cfg.render.styles]
    bar = tqdm(total=2 * len(jobs), desc="proxy", unit="model", disable=not progress, dynamic_ncols=True)
    runs = []
    for seed, style in jobs:
        guide = Job(seed, cfg.proxy.group, style)
        runs.append(_direct(cfg, run, big, guide, reference, seconds))
        bar.update(1)
        runs.append(_steered(cfg, run, big, inputs.base, guide, reference, seconds))
        bar.update(1)
    bar.close()
    return runs, {k: round(v, 1) for k, v in seconds.items()}


def _direct(cfg, run: RunFolder, big: StudyInputs, guide: Job, reference, seconds) -> dict[str, Any]:
    """`large-<group>`: M fine-tuned on the guide group's examples, as the small model was."""
    job = Job(guide.seed, f"{LARGE}{guide.group}", guide.style)
    curve = Curve(
        big.sets[big.main_set][: cfg.curve_questions], points=cfg.curve_points, format=cfg.tuned_format,
        pool=big.pool, batch_size=cfg.eval_batch_size,
    )  # fmt: skip
    t1, trained = time.perf_counter(), []
    train = train_stage(
        big.base, run.examples(guide.seed, guide.group), guide.style, replace(cfg.train, seed=guide.seed),
        run.train(job), curve=curve, keep=lambda model, tok: trained.append((model, tok)),
        inputs=run.train_stage(job).inputs,
    )  # fmt: skip
    t2 = time.perf_counter()
    tuned = big.base.tuned(run.train(job) / "model")
    metrics = _evaluate(cfg, run, big, job, guide, tuned, reference, trained[0] if trained else None)
    seconds["train"] += t2 - t1
    seconds["evaluate"] += time.perf_counter() - t2
    return _row(job, metrics, _train_brief(train))


def _steered(cfg, run: RunFolder, big: StudyInputs, small: ModelSpec, guide: Job, reference, seconds):
    """`proxy-<group>`: M + alpha * (m tuned on the group - m), evaluated with no training of M."""
    from iftscope.models.proxy import load_proxy

    job = Job(guide.seed, f"{STEERED}{guide.group}", guide.style)
    t1, loaded, stage = time.perf_counter(), None, run.eval_stage(job)
    if read_sealed(stage.folder, stage.done, stage.inputs) is None:  # to compute: M steered, loaded
        loaded = load_proxy(big.base, small, str(run.train(guide) / "model"), cfg.proxy.alpha)
    metrics = _evaluate(cfg, run, big, job, guide, big.base, reference, loaded)
    seconds["evaluate"] += time.perf_counter() - t1
    return _row(job, metrics, {"alpha": cfg.proxy.alpha, "guide": guide.key})


def _evaluate(cfg, run: RunFolder, big: StudyInputs, job: Job, guide: Job, spec, reference, loaded):
    """As study.jobs.evaluate_job, with M's records as the consistency reference and the guide
    group's items for memorisation."""
    return evaluate_stage(
        spec, big.sets, ProbeConfig(format=cfg.tuned_format, shots=0, seed=cfg.probe.seed), run.eval(job),
        pool=big.pool, reference=reference, extras=job_extras(cfg, run, big, guide),
        batch_size=cfg.eval_batch_size, loaded=loaded, inputs=run.eval_stage(job).inputs,
    )  # fmt: skip


def _row(job: Job, metrics: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    return {"group": job.group, "style": job.style, "seed": job.seed, "metrics": metrics, "train": train}
