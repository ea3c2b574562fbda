"""The whole study in one run folder: a flat list of stage calls (see stages/ and runfolder).

world -> probe -> the base model on every test set -> groups per seed -> for every (seed, group,
style): train, then evaluate -> analysis. Each stage writes atomically and is skipped when its
output exists and is intact (outputs.py: checksums, and inputs not recomputed since), so a killed
run completes when rerun with the results an uninterrupted run would give, and a damaged stage is
recomputed with whatever was computed from it. The report is written by `iftscope run`
(report.render.write_report) after the study.
"""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from iftscope.intervene.stage import read_probe_records
from iftscope.outputs import check, read_sealed
from iftscope.runfolder import Job, RunFolder
from iftscope.stages.analyse import analyse_stage
from iftscope.stages.evaluate import QA, evaluate_stage
from iftscope.stages.intervene import intervene_stage
from iftscope.stages.probe import probe_stage
from iftscope.study.conditions import intervene_config, run_after
from iftscope.study.config import StudyConfig
from iftscope.study.inputs import StudyInputs, prepare_inputs
from iftscope.study.jobs import qa_config, run_jobs
from iftscope.study.manifest import write_manifest
from iftscope.study.shared import shared_plan


class StageClock:
    """Wall time of each stage (Unix start/end, for benchmarks) and the study's stage seconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.clock: dict[str, list[float | None]] = {}
        self.seconds: dict[str, Any] = {}

    @contextmanager
    def stage(self, name: str, seconds_key: str | None = None):
        t0, wall0 = time.perf_counter(), time.time()
        self.clock[name] = [wall0, None]
        yield
        self.clock[name][1] = time.time()
        if seconds_key:
            self.seconds[seconds_key] = round(time.perf_counter() - t0, 1)

    def provenance(self) -> dict[str, Any]:
        """stage_seconds (with the total so far) and stage_clock, as summary.json stores them."""
        seconds = {**self.seconds, "total": round(time.perf_counter() - self.start, 1)}
        now = time.time()  # a stage still open (the analysis calling this) ends now
        clock = {k: [round(a, 2), round(now if b is None else b, 2)] for k, (a, b) in self.clock.items()}
        return {"stage_seconds": seconds, "stage_clock": clock}


class Study:
    """One study: a recipe's config and its run folder."""

    def __init__(self, cfg: StudyConfig, out: str | Path, progress: bool = True):
        self.cfg, self.run_dir, self.progress = cfg, RunFolder(Path(out)), progress

    def inputs(self, progress: bool | None = None) -> StudyInputs:
        return prepare_inputs(self.cfg, self.run_dir, self.progress if progress is None else progress)

    def run(self) -> dict[str, Any]:
        """Every stage in order; returns the analysis (also in analysis/summary.json)."""
        with self.run_dir.lock():
            return self._run()

    def _run(self) -> dict[str, Any]:
        cfg, run, clock = self.cfg, self.run_dir, StageClock()
        write_manifest(run, cfg)
        with clock.stage("world", "world"):
            self._check_world()
            inputs = self.inputs()
            if cfg.data.model is None:
                read_sealed(run.world, run.world_stage.done)  # seals the world as built or reused
        with clock.stage("probe", "probe"):
            records = self.probe(inputs)
        t0 = time.perf_counter()
        with clock.stage("evaluate-base"):
            self.evaluate_base(inputs)
        t_base = time.perf_counter() - t0
        with clock.stage("groups"):
            jobs = [job for seed in cfg.seeds for job in self.groups(inputs, records, seed)]
        with clock.stage("train+evaluate"):
            runs, times = self.jobs(inputs, jobs)
            more, extra = run_after(cfg, run, inputs, progress=self.progress)  # conditions' own jobs
            runs += more
            times = {**times, **{k: round(times[k] + v, 1) for k, v in extra.items()}}
        clock.seconds.update({**times, "evaluate": round(t_base + times["evaluate"], 1)})
        clock.seconds = {k: clock.seconds[k] for k in _SECONDS_ORDER if k in clock.seconds}
        with clock.stage("analysis"):
            return analyse_stage(
                run, runs, cfg.render.styles[0], clock.provenance, cfg.contrasts, parquet=cfg.parquet
            )

    def _check_world(self) -> None:
        """A built world whose outputs were damaged since is removed (said so), to be rebuilt."""
        world = self.run_dir.world_stage
        verdict = check(world.folder, world.done)
        if not verdict.ok:
            print(f"iftscope: {world.folder} is {verdict}; rebuilding it", file=sys.stderr)
            shutil.rmtree(world.folder)

    def jobs(self, inputs: StudyInputs, jobs: list[Job]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every job trained and evaluated by the recipe's executor: worker processes here (local),
        or one allocation each through submitit (slurm, submitit-local); trackers prepared first."""
        from iftscope.study.slurm import run_submitted
        from iftscope.study.trackers import prepare_trackers

        prepare_trackers(self.cfg, self.run_dir)
        if self.cfg.executor.submitit:
            return run_submitted(self.cfg, self.run_dir, inputs, jobs, progress=self.progress)
        return run_jobs(self.cfg, self.run_dir, inputs, jobs, self.progress, shared_plan(self.cfg, jobs))

    def probe(self, inputs: StudyInputs):
        """What the base model knows (probe/), through the score cache."""
        from iftscope.microworld.groundtruth import load_truth

        truth = load_truth(inputs.truth_dir) if inputs.truth_dir else None
        stage = self.run_dir.probe_stage
        if read_sealed(stage.folder, stage.done, stage.inputs) is None:
            probe_stage(
                inputs.base, inputs.questions, self.cfg.probe, self.run_dir.probe, pool=inputs.pool,
                batch_size=self.cfg.eval_batch_size, cache=self.cfg.cache, truth=truth,
                data=inputs.data_files, label=inputs.label, progress=self.progress, inputs=stage.inputs,
            )  # fmt: skip
        return read_probe_records(self.run_dir.probe)

    def evaluate_base(self, inputs: StudyInputs) -> dict[str, Any]:
        """The base model on every test set, read as the probe reads it (it has learned no QA
        format: cloze statements on the micro-world, k-shot on real data), and also in the tuned
        models' QA format (eval/base/qa), so that QA consistency compares like with like."""
        run, cfg = self.run_dir, self.cfg
        done = run.eval_done("base") and run.eval_done("base", QA)
        # through lm-eval (probe.backend) both readings load the model themselves
        loaded = None if done or cfg.probe.backend == "lm-eval" else inputs.base.load()
        sealed = run.eval_stage("base").inputs
        evaluate_stage(
            inputs.base, inputs.sets, qa_config(cfg), run.eval("base", QA), pool=inputs.pool,
            batch_size=cfg.eval_batch_size, loaded=loaded, inputs=sealed,
        )  # fmt: skip
        return evaluate_stage(
            inputs.base, inputs.sets, cfg.probe, run.eval("base"), pool=inputs.pool,
            batch_size=cfg.eval_batch_size, loaded=loaded, inputs=sealed,
        )  # fmt: skip

    def groups(self, inputs: StudyInputs, records, seed: int) -> list[Job]:
        """The seed's IFT groups and SFT examples; the jobs (group x style) the recipe asks for."""
        cfg = self.cfg
        folder = self.run_dir.groups(seed)
        summary = intervene_stage(
            inputs.questions, records, intervene_config(cfg, seed), replace(cfg.render, seed=seed),
            folder, base=inputs.base, inputs=self.run_dir.groups_stage(seed).inputs, probe=cfg.probe,
            pool=inputs.pool, tests=[q for qs in inputs.sets.values() for q in qs],
            batch_size=cfg.eval_batch_size,
        )  # fmt: skip
        names = [
            g for g in summary["groups"] if (not cfg.groups or g in cfg.groups) and g not in cfg.skip_groups
        ]
        return [Job(seed, g, style) for g in names for style in cfg.render.styles]


_SECONDS_ORDER = (
    "world",
    "probe",
    "train",
    "evaluate",
    "load",
    "curve",
    "train_and_evaluate_wall",
    "workers",
)
