"""The study's LoRA jobs on one loaded base (`adapters_per_pass: K`, K >= 1): the base is loaded
once per worker process and kept; the jobs, K at a time, are trained in one multi-adapter pass
(stages.adapters, train.multi) and every tuned adapter is evaluated while the base is still loaded.

K = 1 saves the base's reload per job (the CPU case: a small model is compute-bound at one job's
batch already, so batching jobs buys nothing there); K > 1 fills a GPU with several adapters'
batches. Each job ends as the one-at-a-time path ends it (same files, same numbers to float
rounding). Full fine-tuning, `accelerate launch` and `adapters_per_pass: 0` keep study.jobs's
one-job-one-load path; so does a job holding a checkpoint of that path.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from iftscope.runfolder import Job, RunFolder
from iftscope.stages.adapters import AdapterSpec, shareable, train_adapters_stage
from iftscope.study.config import StudyConfig
from iftscope.study.inputs import StudyInputs
from iftscope.study.jobs import Plan, evaluate_job, job_curve, job_result, run_job, worker_context

_LOADED: dict[Any, tuple[Any, Any]] = {}  # this process's base model: spec -> (model, tokenizer)


def shared_plan(cfg: StudyConfig, jobs: list[Job]) -> Plan | None:
    """The jobs K at a time on a loaded base, or None when the study trains one job per load."""
    k = cfg.adapters_per_pass
    if k < 1 or not cfg.train.lora or cfg.launch.distributed:
        return None
    return [jobs[i : i + k] for i in range(0, len(jobs), k)], _task_in_worker, run_task


def _task_in_worker(args: tuple[StudyConfig, str, list[Job]]) -> list[dict[str, Any]]:
    return run_task(*worker_context(args))


def run_task(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, task: list[Job]) -> list[dict[str, Any]]:
    """Train the task's jobs in one pass on this process's loaded base, evaluate each tuned adapter
    as it stands; a job the pass cannot continue goes the one-at-a-time way. One result per job."""
    specs = [_spec(cfg, run, inputs, job) for job in task]
    together = [i for i, s in enumerate(specs) if shareable(s)]
    results: dict[int, dict[str, Any]] = {
        i: run_job(cfg, run, inputs, task[i]) for i in range(len(task)) if i not in together
    }
    if not together:
        return [results[i] for i in range(len(task))]
    model, tok, load = _base(inputs.base)
    evaluated: dict[int, tuple[dict[str, Any], float]] = {}

    def keep(j: int, tuned, tokenizer) -> None:  # job j just trained: evaluated as it stands
        t0, job = time.perf_counter(), task[together[j]]
        metrics = evaluate_job(cfg, run, inputs, job, loaded=(tuned, tokenizer))
        evaluated[j] = metrics, time.perf_counter() - t0

    t0 = time.perf_counter()
    trains = train_adapters_stage(
        model, tok, [specs[i] for i in together], dtype=inputs.base.dtype, load_seconds=load, keep=keep
    )
    t_train = (time.perf_counter() - t0 + load - sum(s for _, s in evaluated.values())) / len(together)
    for j, i in enumerate(together):
        metrics, t_eval = evaluated.get(j) or _evaluate_now(cfg, run, inputs, task[i])
        results[i] = job_result(task[i], trains[j], metrics, t_train, t_eval)
    return [results[i] for i in range(len(task))]


def _evaluate_now(
    cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job
) -> tuple[dict[str, Any], float]:
    """A job trained earlier (a resumed study): evaluated from its folder (or read back)."""
    t0 = time.perf_counter()
    return evaluate_job(cfg, run, inputs, job), time.perf_counter() - t0


def _spec(cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, job: Job) -> AdapterSpec:
    """What train_job would give train_stage for this job."""
    return AdapterSpec(
        run.examples(job.seed, job.group), job.style, replace(cfg.train, seed=job.seed), run.train(job),
        curve=job_curve(cfg, inputs, run, job), inputs=tuple(run.train_stage(job).inputs),
    )  # fmt: skip


def _base(spec) -> tuple[Any, Any, float]:
    """(model, tokenizer, seconds spent loading them now): loaded once per process, on the CPU as
    train_stage loads it (train.multi moves it to the GPU, where it then stays)."""
    from iftscope.models.load import load_model

    if spec in _LOADED:
        return (*_LOADED[spec], 0.0)
    _LOADED.clear()
    t0 = time.perf_counter()
    _LOADED[spec] = load_model(spec.path, dtype=spec.dtype, device="cpu")
    return (*_LOADED[spec], time.perf_counter() - t0)
