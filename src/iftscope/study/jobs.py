"""The study's fine-tunings: each (seed, group, style) trained, then evaluated, in this process or
in a pool of worker processes (small models on CPU), or trained under `accelerate launch`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from iftscope.intervene.stage import group_questions
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.runfolder import Job, RunFolder
from iftscope.runs import read_jsonl
from iftscope.stages.evaluate import PROBE, QA, Extras, chain, evaluate_stage, read_reference, with_instrument
from iftscope.stages.train import train_stage
from iftscope.study.config import StudyConfig
from iftscope.study.curves import group_items, job_curve
from iftscope.study.inputs import StudyInputs, prepare_inputs


def workers(cfg: StudyConfig, n_jobs: int) -> int:
    """Parallel train+eval processes: the recipe's, else one per GPU (each worker sees one GPU), else
    1 on real data or under accelerate or a device map, else up to 4 CPU processes (one thread each)."""
    import torch

    if cfg.launch.distributed or cfg.device == "map":  # each job takes every GPU in turn
        return 1
    gpus = len(_gpu_ids()) if torch.cuda.is_available() else 0
    if cfg.workers:
        return max(1, min(cfg.workers, n_jobs, gpus or cfg.workers))
    if gpus:
        return max(1, min(gpus, n_jobs))
    if cfg.data.model is not None:
        return 1
    return max(1, min(os.cpu_count() or 1, 4, n_jobs))


def _gpu_ids() -> list[str]:
    """The GPUs this process may use, named as CUDA_VISIBLE_DEVICES names them (else 0..n-1)."""
    import torch

    count = torch.cuda.device_count()
    visible = [x.strip() for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    return visible[:count] if visible else [str(i) for i in range(count)]


def _pin_gpu(ids) -> None:
    """Pool initializer: this worker process sees one GPU only, taken from the queue `ids` (set
    before the worker's first CUDA call, which is when CUDA reads the variable)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ids.get()


def _pool(n: int):
    """n spawned worker processes; on GPUs each pinned to its own GPU, after this process has let
    go of the models it holds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    ctx = multiprocessing.get_context("spawn")
    if not torch.cuda.is_available():
        return ProcessPoolExecutor(n, mp_context=ctx)
    release_models()
    ids = ctx.Queue()
    for gpu in _gpu_ids()[:n]:
        ids.put(gpu)
    return ProcessPoolExecutor(n, mp_context=ctx, initializer=_pin_gpu, initargs=(ids,))


# how the jobs run: (the jobs grouped into tasks, a task in a worker process given (cfg, run
# folder, task), a task in this process); each task returns one result per job. Default: one job a task.
Plan = tuple[list[list[Job]], Callable[[tuple], list[dict]], Callable[..., list[dict]]]


def run_jobs(
    cfg: StudyConfig,
    run: RunFolder,
    inputs: StudyInputs,
    jobs: Sequence[Job],
    progress: bool = True,
    plan: Plan | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every job, in order; (one dict per job, the stage's seconds: train, evaluate, the base's
    loading and the QA curve summed over worker processes, train_and_evaluate_wall the stage's
    wall time, workers). `plan`: another grouping of the jobs (study.shared). This is the `local`
    executor; the others submit each job through submitit (study.slurm.run_submitted)."""
    tasks, in_worker, here = plan or ([[j] for j in jobs], _job_in_worker, _job_here)
    t0, n = time.perf_counter(), workers(cfg, len(tasks))
    bar = tqdm(total=len(jobs), desc="train+eval", unit="model", disable=not progress, dynamic_ncols=True)
    runs, seconds = [], dict.fromkeys(("train", "evaluate", "load", "curve"), 0.0)
    if n > 1:
        pool = _pool(n)
        results = pool.map(in_worker, [(cfg, str(run.root), t) for t in tasks])
    else:  # lazily, so progress shows task by task
        pool, results = None, (here(cfg, run, inputs, t) for t in tasks)
    try:
        for result in (r for done in results for r in done):
            for part in seconds:
                seconds[part] += result.pop(f"{part}_seconds")
            runs.append(result)
            bar.set_postfix_str(f"{result['group']}/{result['style']}/s{result['seed']}")
            bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    bar.close()
    wall = round(time.perf_counter() - t0, 1)
    return runs, {
        "train": round(seconds["train"], 1),
        "evaluate": seconds["evaluate"],
        "load": round(seconds["load"], 1),
        "curve": round(seconds["curve"], 1),
        "train_and_evaluate_wall": wall,
        "workers": n,
    }


def worker_context(args: tuple[StudyConfig, str, Any]) -> tuple[StudyConfig, RunFolder, StudyInputs, Any]:
    """In a worker process: one thread per CPU worker, no progress bars; (cfg, run folder, the
    study's inputs, the task)."""
    import torch
    from transformers.utils import logging as hf_logging

    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # CPU workers share the cores
    hf_logging.disable_progress_bar()  # a worker's bars would interleave with the study's own
    cfg, out, task = args
    run = RunFolder(Path(out))
    return cfg, run, prepare_inputs(cfg, run, progress=False), task


def _job_in_worker(args: tuple[StudyConfig, str, list[Job]]) -> list[dict[str, Any]]:
    return _job_here(*worker_context(args))


def _job_here(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, task: list[Job]) -> list[dict[str, Any]]:
    return [run_job(cfg, run, inputs, job) for job in task]


def run_job(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job) -> dict[str, Any]:
    """Train one group in one style with one seed, then evaluate it (each step skipped if done),
    reported to the recipe's experiment trackers (study.trackers) as it goes."""
    from iftscope.study.trackers import open_trackers

    tracked = open_trackers(cfg, run, job)
    try:
        return _train_and_evaluate(cfg, run, inputs, job, tracked)
    finally:
        if tracked is not None:
            tracked.finish()


def _train_and_evaluate(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job, tracked) -> dict:
    from iftscope.study.launch import train_launched

    t1 = time.perf_counter()
    if cfg.launch.distributed and not run.train_done(job):
        release_models()  # the launched processes need every GPU's memory
        train_launched(cfg.launch, run.root, job.seed, job.group, job.style, run.train(job))
    trained: list[tuple[Any, Any]] = []  # the model this process just trained, evaluated as it is
    # (through lm-eval, which reads it from its folder, it is let go first and read again for the extras)
    keep = None if cfg.probe.backend == "lm-eval" else lambda model, tok: trained.append((model, tok))
    train = train_job(cfg, run, inputs, job, keep=keep, on_log=tracked.step if tracked else None)
    if tracked:
        tracked.steps(train.get("log", []))  # the steps not seen live (resumed, launched)
    t2 = time.perf_counter()
    metrics = evaluate_job(cfg, run, inputs, job, loaded=trained[0] if trained else None)
    if tracked:
        tracked.final(metrics, train["config"]["steps"])
    return job_result(job, train, metrics, t2 - t1, time.perf_counter() - t2)


def job_result(
    job: Job, train: dict[str, Any], metrics: dict[str, Any], t_train: float, t_eval: float
) -> dict:
    """What run_jobs collects of a job: its seconds of training (the base's loading and the QA
    curve, from train.json's `timing`, are parts of it) and of evaluation."""
    timing = train.get("timing", {})
    return {
        "group": job.group, "style": job.style, "seed": job.seed, "metrics": metrics,
        "train": _train_brief(train), "train_seconds": t_train, "evaluate_seconds": t_eval,
        "load_seconds": timing.get("load", 0.0), "curve_seconds": timing.get("curve", 0.0),
    }  # fmt: skip


def train_job(
    cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job, keep=None, on_log=None
) -> dict[str, Any]:
    """One job's fine-tuning (the same budget for every group), with its QA curve; `keep(model,
    tokenizer)` gets the tuned model when this call trained it, `on_log(row)` each step's log
    row (train_stage)."""
    examples = run.examples(job.seed, job.group)
    return train_stage(
        inputs.base, examples, job.style, replace(cfg.train, seed=job.seed), run.train(job),
        curve=job_curve(cfg, inputs, run, job), keep=keep, inputs=run.train_stage(job).inputs, on_log=on_log,
    )  # fmt: skip


def evaluate_job(
    cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job, loaded=None
) -> dict[str, Any]:
    """A tuned model on every test set with both instruments: as the probe reads the base model
    (eval/<job>/probe, consistency with the base's probe records) and zero-shot as it was trained
    (consistency with the base read in that same QA format); the first is stored in the second's
    metrics as `<set>.probe`. `loaded`: (model, tokenizer) when the job's model is still in memory
    (else read from its folder, once for both). With `probe.backend: lm-eval` both instruments'
    scoring goes through lm-eval (the model read from its folder) and only the extras use `loaded`
    (read after lm-eval's runs when not given)."""
    tuned, sets = inputs.base.tuned(run.train(job) / "model"), list(inputs.sets)
    if cfg.probe.backend == "lm-eval" and loaded is None:
        release_models()  # lm-eval loads the tuned model itself: leave it the device's memory
    elif loaded is None and not run.eval_done(job):
        loaded = tuned.load()
    base_probe = read_reference(run.eval("base"), sets)
    sealed = run.eval_stage(job).inputs
    probed = evaluate_stage(
        tuned, inputs.sets, cfg.probe, run.eval(job, PROBE), pool=inputs.pool, reference=base_probe,
        batch_size=cfg.eval_batch_size, loaded=loaded, inputs=sealed,
    )  # fmt: skip
    extras = chain(with_instrument(probed, base_probe), job_extras(cfg, run, inputs, job))
    return evaluate_stage(
        tuned, inputs.sets, qa_config(cfg), run.eval(job), pool=inputs.pool,
        reference=read_reference(run.eval("base", QA), sets), extras=extras,
        batch_size=cfg.eval_batch_size, loaded=loaded, inputs=sealed,
    )  # fmt: skip


def qa_config(cfg: StudyConfig) -> ProbeConfig:
    """How tuned models are read in QA: zero-shot in the format they were trained with, scored by
    the probe's backend (native, or lm-eval with the same model type and arguments)."""
    p = cfg.probe
    return ProbeConfig(
        format=cfg.tuned_format, shots=0, seed=p.seed, backend=p.backend, lm_eval_model=p.lm_eval_model,
        lm_eval_args=p.lm_eval_args,
    )  # fmt: skip


def job_extras(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job) -> Extras:
    """What a tuned model is measured on besides QA: generation and token shift, memorised
    targets and retained biographies, stability under rewording and rotation."""
    from iftscope.evaluate import behaviour
    from iftscope.microworld.lexicon import QUESTION_PARAPHRASES

    main = inputs.main_set

    def extras(scorer, records) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if cfg.generation_questions:
            base_model = _base_model(inputs.base)
            qs = inputs.sets[main][: cfg.generation_questions]
            gen = behaviour.generation(
                scorer.model, base_model, scorer.tokenizer, qs, cfg.render.template, cfg.render.show_options
            )
            out[main] = {"generation": gen}
        items = group_items(run, job)
        by_id = group_questions(inputs.questions, run.groups(job.seed))  # with those the model wrote
        trained = [replace(by_id[it["question_id"]], answer=it["target"]) for it in items]
        mem = behaviour.memorisation(
            scorer, trained, [it["gold"] for it in items], inputs.pool, cfg.tuned_format
        )
        if get_format(cfg.probe.format).own_statements:  # biographies, read as the base probe reads them
            mem.update(_retention(scorer, run.eval_records(job, main, PROBE), inputs.sets[main][:200], cfg))
        out["_memorisation"] = mem
        if inputs.truth_dir is not None:  # micro-world: the taught facts asked differently
            out["_acquisition"] = _acquisition(cfg, inputs, items, scorer)
        held = inputs.sets[main][:200]
        out["_behaviour"] = behaviour.stability(
            scorer, held, records[main], inputs.pool, cfg.tuned_format, QUESTION_PARAPHRASES
        )
        return out

    return extras


def _acquisition(cfg: StudyConfig, inputs: StudyInputs, items: list[dict], scorer) -> dict[str, Any]:
    """The group's acquisition sets (microworld.acquisition), scored (evaluate.acquisition)."""
    from iftscope.evaluate.acquisition import score_acquisition
    from iftscope.microworld.acquisition import acquisition_sets

    taught = [(it["question_id"], it["target"]) for it in items]
    sets = acquisition_sets(inputs.questions, taught, cfg.world.world, seed=cfg.probe.seed)
    # what the base model already said: its probe prediction was the taught target (H, S: ~1; I: 0)
    base = sum(it["base_prediction"] == it["target"] for it in items) / len(items)
    scored = score_acquisition(scorer, sets, inputs.pool, cfg.tuned_format, cfg.probe)
    return {name: {**m, "base_agreement": round(base, 6)} for name, m in scored.items()}


def _retention(scorer, probed: Path, held, cfg: StudyConfig) -> dict[str, float]:
    """Retained biographies: from the probe instrument's records of the same questions when it is
    the cloze probe (no second pass), else read again."""
    from iftscope.evaluate import behaviour

    if cfg.probe.format != "cloze" or not probed.exists():
        return behaviour.retention(scorer, held, cfg.probe)
    rs = read_jsonl(probed)[: len(held)]
    n = max(len(rs), 1)
    return {
        "retention_accuracy": sum(r["correct"] for r in rs) / n,
        "retention_known": sum(r["known"] for r in rs) / n,
    }


_BASE_MODELS: dict[Any, Any] = {}


def release_models() -> None:
    """Drop the models this process holds (the base model kept for token shift) and hand the GPU
    memory torch's allocator keeps cached back to the driver, before child processes train."""
    import gc

    import torch

    _BASE_MODELS.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _base_model(spec):
    """The untuned model for token shift, loaded once per process."""
    if spec not in _BASE_MODELS:
        _BASE_MODELS.clear()
        _BASE_MODELS[spec] = spec.load()[0]
    return _BASE_MODELS[spec]


def _train_brief(tr: dict[str, Any]) -> dict[str, Any]:
    log = tr.get("log", [])
    return {k: tr.get(k) for k in ("final_loss", "seconds", "tokens_per_second", "examples")} | {
        "loss_curve": [r["loss"] for r in log],
        "qa_curve": [[r["step"], r["qa_accuracy"]] for r in log if "qa_accuracy" in r],
        "acquisition_curve": [
            [r["step"], r["acquisition_accuracy"]] for r in log if "acquisition_accuracy" in r
        ],
    }
