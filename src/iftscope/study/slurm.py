"""The study's jobs on Slurm through submitit (recipe block `executor`, kind `slurm`): each (group,
style, seed) job trains and evaluates in its own allocation, under `accelerate launch` on all of
its GPUs when it has several; kind `submitit-local` runs the same pickled jobs as processes on this
machine (submitit's local executor: the Slurm path less the scheduler, to try a recipe).

The run folder on a shared filesystem is the only channel: a job writes its train/ and eval/
folders atomically, and the main process, which has run every stage before the jobs, reads each
finished job back from them (study.jobs.run_job skips what is done). The main process submits,
waits with a progress bar, and records each job's scheduler id in submitit/jobs.json.

Resuming: a rerun skips the jobs whose results are in the run folder. A job of an earlier attempt
still alive (its id in jobs.json: on Slurm PENDING or RUNNING by sacct, locally its controller
process still running) is waited for again, never run twice at once; any other unfinished job is
submitted afresh (its training resumes from its last checkpoint). When the main process is stopped
(Ctrl-C, SIGTERM) its Slurm jobs keep running, for the rerun to re-attach; local ones are sent
SIGINT (one that ignores it, as under a shell's background job, is waited for by the rerun).
A job timed out or preempted by Slurm is requeued by submitit (StudyJob.checkpoint).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from iftscope.extras import missing
from iftscope.runfolder import Job, RunFolder
from iftscope.runs import atomic_write_json, read_json
from iftscope.study.config import StudyConfig
from iftscope.study.inputs import StudyInputs

EXECUTORS = ("local", "slurm", "submitit-local")
PARTS = ("train", "evaluate", "load", "curve")  # a job's seconds, as study.jobs.run_jobs sums them
ALIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}


def executor_problems(cfg: StudyConfig) -> list[str]:
    """What is wrong with the recipe's `executor` block (study.validate lists it with the rest)."""
    ex, out = cfg.executor, []
    if ex.kind not in EXECUTORS:
        out.append(f"executor.kind: {ex.kind!r} (allowed: {', '.join(EXECUTORS)})")
    if ex.submitit and missing("slurm"):
        out.append(f"executor.kind: {ex.kind}: {missing('slurm')}")
    out += [f"executor.{k}: {getattr(ex, k)} (must be >= 0)" for k in ("gpus_per_job", "max_running")
            if getattr(ex, k) < 0]  # fmt: skip
    out += [f"executor.{k}: {getattr(ex, k)} (must be >= 1)" for k in ("cpus_per_job", "mem_gb", "time_min")
            if getattr(ex, k) < 1]  # fmt: skip
    if ex.submitit and cfg.adapters_per_pass:
        out.append(
            f"adapters_per_pass: {cfg.adapters_per_pass} with executor.kind {ex.kind}: each job runs in "
            "its own allocation (set adapters_per_pass: 0)"
        )
    if ex.poll_seconds <= 0:
        out.append(f"executor.poll_seconds: {ex.poll_seconds} (must be > 0)")
    out += [f"executor.sbatch.{k}: an option name without dashes or '=' (e.g. qos: high)"
            for k in ex.sbatch if k.startswith("-") or "=" in k]  # fmt: skip
    if ex.submitit and ex.gpus_per_job > 1 and cfg.launch.processes not in (1, ex.gpus_per_job):
        out.append(
            f"launch.processes: {cfg.launch.processes} but executor.gpus_per_job {ex.gpus_per_job} "
            "(leave launch.processes 1: each job then trains on all its GPUs)"
        )
    return out


def submitit_parameters(cfg: StudyConfig) -> dict[str, Any]:
    """submitit.AutoExecutor's parameters for one job (sbatch options on Slurm)."""
    ex = cfg.executor
    params: dict[str, Any] = {
        "name": f"iftscope-{cfg.name}", "timeout_min": ex.time_min, "mem_gb": ex.mem_gb,
        "cpus_per_task": ex.cpus_per_job, "gpus_per_node": ex.gpus_per_job, "nodes": 1, "tasks_per_node": 1,
        "slurm_additional_parameters": dict(ex.sbatch), "slurm_setup": list(ex.setup),
        "local_setup": list(ex.setup),
    }  # fmt: skip
    if ex.partition is not None:
        params["slurm_partition"] = ex.partition
    if ex.account is not None:
        params["slurm_account"] = ex.account
    return params


def make_executor(cfg: StudyConfig, run: RunFolder):
    """A submitit executor writing its job files and logs under the run folder's submitit/."""
    import submitit

    cluster = "slurm" if cfg.executor.kind == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=run.submitit / "%j", cluster=cluster)
    executor.update_parameters(**submitit_parameters(cfg))
    return executor


class StudyJob:
    """What runs in a job's allocation: the job trained and evaluated from the run folder alone.
    Checkpointable the submitit way: timed out or preempted, it is requeued with the same
    arguments, and its training resumes from its last checkpoint."""

    def __call__(self, cfg: StudyConfig, root: str, job: Job) -> dict[str, Any]:
        import torch
        from transformers.utils import logging as hf_logging

        from iftscope.study.inputs import prepare_inputs
        from iftscope.study.jobs import run_job

        hf_logging.disable_progress_bar()
        if not torch.cuda.is_available():
            torch.set_num_threads(min(cfg.executor.cpus_per_job, os.cpu_count() or 1))
        cfg = in_allocation(cfg)
        run = RunFolder(Path(root))
        return run_job(cfg, run, prepare_inputs(cfg, run, progress=False), job)

    def checkpoint(self, *args: Any, **kwargs: Any):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def in_allocation(cfg: StudyConfig) -> StudyConfig:
    """A job with several GPUs trains on all of them under accelerate launch (launch.processes)."""
    gpus = cfg.executor.gpus_per_job
    if gpus > 1 and cfg.launch.processes == 1 and cfg.launch.config_file is None:
        return replace(cfg, launch=replace(cfg.launch, processes=gpus))
    return cfg


def _recorded(run: RunFolder) -> dict[str, dict[str, str]]:
    return read_json(run.submitted) if run.submitted.exists() else {}


def _reattach(cfg: StudyConfig, run: RunFolder, job: Job, recorded: dict[str, dict[str, str]]):
    """The earlier attempt's job for `job` while it is still alive: on Slurm queued or running
    (sacct), locally its controller process still running; None otherwise."""
    entry = recorded.get(job.key)
    if not entry or entry.get("kind") != cfg.executor.kind:
        return None
    import submitit

    if cfg.executor.kind != "slurm":
        return LocalProcess(run.submitit / "%j", entry["id"]) if _alive(entry["id"]) else None
    handle = submitit.SlurmJob(folder=run.submitit / "%j", job_id=entry["id"])
    return handle if handle.state.split(" ")[0] in ALIVE else None


def _alive(pid: str) -> bool:
    """Whether the submitit controller process `pid` still runs (not a zombie, not a reused pid)."""
    try:
        return b"submitit" in Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


class LocalProcess:
    """A submitit-local job started by an earlier main process, known by its controller's pid
    (submitit's LocalJob needs the process object, which died with that main process)."""

    def __init__(self, folder: Path, job_id: str):
        import submitit

        self.job_id, self._job = job_id, submitit.LocalJob(folder, job_id)
        self.paths = self._job.paths

    def done(self) -> bool:
        return not _alive(self.job_id)

    def result(self) -> Any:
        return self._job.result()

    def cancel(self, check: bool = True) -> None:
        import signal

        if _alive(self.job_id):
            os.kill(int(self.job_id), signal.SIGINT)


def run_submitted(
    cfg: StudyConfig, run: RunFolder, inputs: StudyInputs, jobs: Sequence[Job], progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every job through submitit, as study.jobs.run_jobs returns them: (one dict per job, the
    stage's seconds). Jobs that failed are listed, with their logs, once the others have ended."""
    t0, limit = time.perf_counter(), cfg.executor.max_running or max(1, len(jobs))
    todo = [j for j in jobs if not (run.train_done(j) and run.eval_done(j))]
    recorded = _recorded(run)
    running = {j: h for j in todo if (h := _reattach(cfg, run, j, recorded)) is not None}
    queue = [j for j in todo if j not in running]
    executor = make_executor(cfg, run) if queue else None
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"train+eval ({cfg.executor.kind})",
               unit="model", disable=not progress, dynamic_ncols=True)  # fmt: skip
    seconds: dict[Job, dict[str, float]] = {}
    failed: list[str] = []
    try:
        while queue or running:
            while queue and len(running) < limit:
                j = queue.pop(0)
                running[j] = executor.submit(StudyJob(), cfg, str(run.root.resolve()), j)
                recorded[j.key] = {"id": str(running[j].job_id), "kind": cfg.executor.kind}
                atomic_write_json(run.submitted, recorded)
            for j in [j for j, h in running.items() if h.done()]:
                _ended(run, j, running.pop(j), seconds, failed)
                bar.update(1)
            bar.set_postfix_str(f"{len(running)} submitted, {len(queue)} to submit")
            if running:
                time.sleep(cfg.executor.poll_seconds)
    finally:
        _leave(cfg, running)
        bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed; rerun to retry them:\n" + "\n".join(failed))
    return _collect(cfg, run, inputs, jobs, seconds, time.perf_counter() - t0, limit)


def _ended(run: RunFolder, job: Job, handle, seconds: dict[Job, dict[str, float]], failed: list) -> None:
    """A job the scheduler reports ended: its seconds, or why it failed and where its log is. The
    run folder decides: a job whose results are there succeeded, whatever submitit recorded."""
    try:
        result = handle.result()
        seconds[job] = {part: result[f"{part}_seconds"] for part in PARTS}
    except Exception as e:  # noqa: BLE001 - submitit re-raises the job's own error, whatever it was
        if run.train_done(job) and run.eval_done(job):
            return
        failed.append(f"  - {job.key} (job {handle.job_id}): {_reason(str(e)) or type(e).__name__}; "
                      f"log: {handle.paths.stderr}")  # fmt: skip


def _reason(text: str) -> str:
    """The error line of a job's failure (submitit's message holds the whole log): the last line
    that names an exception, else the last line."""
    import re

    lines = [x.strip() for x in text.splitlines() if x.strip()]
    named = [x for x in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b", x)]
    return (named or lines or [""])[-1]


def _leave(cfg: StudyConfig, running: dict[Job, Any]) -> None:
    """Jobs still out when the main process stops: Slurm's keep running (a rerun re-attaches to
    them); local ones are sent SIGINT (a rerun waits for any that did not stop)."""
    if not running:
        return
    if cfg.executor.kind != "slurm":
        for handle in running.values():
            handle.cancel(check=False)
        return
    ids = ", ".join(str(h.job_id) for h in running.values())
    print(f"iftscope: {len(running)} job(s) still queued or running on Slurm ({ids}); "
          "rerun the same command to wait for them again", file=sys.stderr)  # fmt: skip


def _collect(cfg, run, inputs, jobs, seconds, wall: float, workers: int):
    """Each job's results read back from the run folder (run_job skips what is done), with the
    seconds its allocation spent training (loading the base, the QA curve) and evaluating."""
    from iftscope.study.jobs import run_job

    runs, total = [], dict.fromkeys(PARTS, 0.0)
    for job in jobs:
        result = run_job(cfg, run, inputs, job)
        for part in PARTS:
            total[part] += seconds.get(job, {}).get(part, 0.0)
        runs.append({k: v for k, v in result.items() if not k.endswith("_seconds")})
    times = {k: round(v, 1) for k, v in total.items()} | {"evaluate": total["evaluate"]}
    return runs, {**times, "train_and_evaluate_wall": round(wall, 1), "workers": workers}
