"""The whole study in one run folder: world, probe, groups, training, evaluation, analysis, report.

Layout (the run folder is the only interface between stages):
    recipe.yaml, manifest.json        the resolved recipe; hashes, versions, commit, hardware
    world/                            micro-world and its base model (reused when it matches)
    probe/                            what the base model knows (records, coverage)
    eval/base/                        the base model on every test set
    groups/s<seed>/                   IFT groups and SFT examples per seed
    train/<group>/<style>/s<seed>/    adapter (or weights) and train.json
    eval/<group>/<style>/s<seed>/     records per test set and metrics.json
    analysis/, report/                tables, summary.json, summary.md, report.html
Each stage writes atomically and is skipped when its output exists, so a killed run completes
when rerun, with the results an uninterrupted run would give.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from iftscope.data import load_questions
from iftscope.evaluate.qa import score_sets, set_metrics
from iftscope.intervene.stage import read_examples, read_probe_records, run_intervene
from iftscope.models.load import load_model
from iftscope.models.scorer import HFScorer
from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig, probe
from iftscope.probe.runner import run_probe
from iftscope.runs import atomic_write_json, atomic_write_jsonl, read_json
from iftscope.study.launch import train_launched
from iftscope.study.manifest import write_manifest
from iftscope.study.recipe import StudyConfig
from iftscope.train.sft import resolve, train_sft
from iftscope.types import ProbeRecord, Question


def micro_world_sets(questions: Sequence[Question]) -> dict[str, list[Question]]:
    """Held-out known people, never-pretrained people, and the attribute kept out of all IFT."""
    m = [(q, q.metadata) for q in questions]
    return {
        "known-heldout": [q for q, x in m if x["split"] == "known_test" and not x["held_out_attribute"]],
        "unknown": [q for q, x in m if x["split"] == "unknown_test" and not x["held_out_attribute"]],
        "heldout-attribute": [q for q, x in m if x["known"] and x["held_out_attribute"]],
    }


class Study:
    def __init__(self, cfg: StudyConfig, out: str | Path, progress: bool = True):
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.times: dict[str, float] = {}
        self.clock: dict[str, list[float]] = {}  # stage -> [start, end], Unix time (for benchmarks)

    @contextmanager
    def _stage(self, name: str):
        start = time.time()
        yield
        self.clock[name] = [start, time.time()]

    # -- inputs -------------------------------------------------------------------------------
    def prepare(self, quiet: bool = False) -> None:
        from iftscope.microworld.stage import build_world

        t0 = time.perf_counter()
        if self.cfg.data.model is None:
            build_world(self.out / "world", self.cfg.world, progress=self.progress and not quiet)
            self.base = str(self.out / "world" / "model")
            self.questions = load_questions(self.out / "world" / "questions.jsonl")
            self.sets = micro_world_sets(self.questions)
            self.truth_dir = self.out / "world"
        else:
            self.base = self.cfg.data.model
            self.questions = [q for p in self.cfg.data.ift for q in load_questions(p)]
            self.sets = {name: load_questions(p) for name, p in self.cfg.data.tests.items()}
            self.truth_dir = None
        self.pool = [q for p in self.cfg.data.pool for q in load_questions(p)] or self.questions
        for name, qs in self.sets.items():  # the test sets as run, for the report and for provenance
            path = self.out / "tests" / f"{name}.jsonl"
            if not path.exists():
                atomic_write_jsonl(path, (q.to_json() for q in qs))
        self.times["world"] = round(time.perf_counter() - t0, 1)

    def _scorer(self, adapter: Path | None = None) -> HFScorer:
        model, tok = load_model(self.base, adapter=adapter, **self._where)
        return HFScorer(model, tok, batch_size=self.cfg.eval_batch_size)

    @property
    def _where(self) -> dict[str, str]:
        return {"device": self.cfg.device, "dtype": self.cfg.dtype}

    # -- stages -------------------------------------------------------------------------------
    def probe(self) -> list[ProbeRecord]:
        t0, folder = time.perf_counter(), self.out / "probe"
        if not (folder / "summary.json").exists():
            from iftscope.microworld.groundtruth import load_truth

            truth = load_truth(self.truth_dir) if self.truth_dir else None
            fmt = get_format(self.cfg.probe.format)
            scorer = self._scorer()
            run_probe(scorer, self.questions, self.pool, fmt.with_tokenizer(scorer.tokenizer), self.cfg.probe,
                      folder, progress=self.progress, truth=truth)  # fmt: skip
        self.times["probe"] = round(time.perf_counter() - t0, 1)
        return read_probe_records(folder)

    def evaluate(self, name: str, adapter: Path | None, extra=None) -> dict[str, Any]:
        """Records and metrics of one model on every test set; `extra(scorer)` adds `_memorisation`."""
        folder = self.out / "eval" / name
        if (folder / "metrics.json").exists():
            return read_json(folder / "metrics.json")
        # The base model is read as the probe reads it (it has learned no QA format: cloze statements
        # on the micro-world, k-shot on real data); tuned models zero-shot as they were trained.
        if name == "base":
            fmt, cfg = get_format(self.cfg.probe.format), self.cfg.probe
        else:
            fmt = get_format(self.cfg.eval_format)
            cfg = ProbeConfig(format=fmt.name, shots=0, seed=self.cfg.probe.seed)
        scorer = self._scorer(adapter)
        records = score_sets(scorer, self.sets, fmt.with_tokenizer(scorer.tokenizer), cfg, self.pool)
        base = None if name == "base" else self._base_records()
        metrics = {s: set_metrics(rs, base[s] if base else None) for s, rs in records.items()}
        if self.cfg.generation_questions and name != "base":
            metrics[self.main_set]["generation"] = self._generation(scorer)
        if extra is not None:
            metrics["_memorisation"] = extra(scorer)
            metrics["_behaviour"] = self._stability(scorer, records[self.main_set])
        for s, rs in records.items():
            atomic_write_jsonl(folder / f"records-{s}.jsonl", (r.to_json() for r in rs))
        atomic_write_json(folder / "metrics.json", metrics)
        # what a resumed run reads back (key order, JSON types): fresh and resumed runs agree exactly
        return read_json(folder / "metrics.json")

    @property
    def main_set(self) -> str:
        return "known-heldout" if "known-heldout" in self.sets else next(iter(self.sets))

    def _generation(self, scorer: HFScorer) -> dict[str, Any]:
        """Greedy answers of the tuned model on main-set questions, and their shift from the base."""
        from iftscope.evaluate.generation import generation_metrics
        from iftscope.intervene.render import instruction, wrap

        if not hasattr(self, "_base_model"):
            self._base_model = load_model(self.base, **self._where)[0]
        qs = self.sets[self.main_set][: self.cfg.generation_questions]
        prompts = [wrap(self.cfg.render.template, instruction(q, None)) for q in qs]
        return generation_metrics(scorer.model, self._base_model, scorer.tokenizer, qs, prompts)

    def _memorisation(self, scorer: HFScorer, gdir: str, group: str) -> dict[str, Any]:
        """The trained questions themselves (is the target memorised?) and, on the micro-world, the
        pretrained biographies read as the probe reads them (did fine-tuning erase them?)."""
        groups = json.loads((Path(gdir) / "groups.json").read_text())
        items = next(g for g in groups if g["name"] == group)["items"]
        by_id = {q.id: q for q in self.questions}
        trained = [replace(by_id[it["question_id"]], answer=it["target"]) for it in items]
        fmt = get_format(self.cfg.eval_format).with_tokenizer(scorer.tokenizer)
        recs = list(probe(scorer, trained, self.pool, fmt, ProbeConfig(format=fmt.name, shots=0)))
        out: dict[str, Any] = {
            "trained_n": len(recs),
            "target_accuracy": sum(r.correct for r in recs) / max(len(recs), 1),
            "gold_accuracy": sum(r.prediction == it["gold"] for r, it in zip(recs, items, strict=True))
            / max(len(recs), 1),
        }
        if self.cfg.probe.format == "cloze":
            cloze = get_format("cloze")
            held = self.sets[self.main_set][:200]  # a sample: this runs for every tuned model
            rs = list(probe(scorer, held, held, cloze, replace(self.cfg.probe, format="cloze", shots=0)))
            out["retention_accuracy"] = sum(r.correct for r in rs) / max(len(rs), 1)
            out["retention_known"] = sum(r.known for r in rs) / max(len(rs), 1)
        return out

    def _stability(self, scorer: HFScorer, main: list[ProbeRecord], n: int = 200) -> dict[str, Any]:
        """Does the answer stay when the question is reworded (micro-world) or the options are
        rotated (letter formats)? Agreement with the answers already scored on the main set."""
        from iftscope.microworld.lexicon import QUESTION_PARAPHRASES

        qs = self.sets[self.main_set][:n]
        fmt = get_format(self.cfg.eval_format).with_tokenizer(scorer.tokenizer)
        cfg = ProbeConfig(format=fmt.name, shots=0)

        def answers(questions):
            return [
                q.choices[r.prediction]
                for q, r in zip(questions, probe(scorer, questions, self.pool, fmt, cfg), strict=True)
            ]

        base, out = [q.choices[r.prediction] for q, r in zip(qs, main, strict=False)], {}
        if all("attribute" in q.metadata and "name" in q.metadata for q in qs):
            para = [
                replace(
                    q, question=QUESTION_PARAPHRASES[q.metadata["attribute"]].format(name=q.metadata["name"])
                )
                for q in qs
            ]
            out["paraphrase_stability"] = sum(a == b for a, b in zip(base, answers(para), strict=True)) / len(
                qs
            )
        if fmt.mode == "letter":
            rot = [
                replace(q, choices=q.choices[1:] + q.choices[:1], answer=(q.answer - 1) % len(q.choices))
                for q in qs
            ]
            out["permutation_stability"] = sum(a == b for a, b in zip(base, answers(rot), strict=True)) / len(
                qs
            )
        return out

    def _base_records(self) -> dict[str, list[ProbeRecord]]:
        return {s: _read_records(self.out / "eval" / "base" / f"records-{s}.jsonl") for s in self.sets}

    def groups(self, records: list[ProbeRecord], seed: int) -> Path:
        folder = self.out / "groups" / f"s{seed}"
        if not (folder / "summary.json").exists():
            base = (
                load_model(self.base, **self._where) if "self-explained" in self.cfg.render.styles else None
            )
            run_intervene(
                self.questions,
                records,
                folder,
                replace(self.cfg.intervene, seed=seed),
                replace(self.cfg.render, seed=seed),
                base,
            )
        return folder

    def train(self, examples_file: Path, style: str, folder: Path, seed: int) -> dict[str, Any]:
        if (folder / "train.json").exists():
            return read_json(folder / "train.json")
        from iftscope.evaluate.qa import qa_evaluator

        model, tok = load_model(self.base, dtype=self.cfg.dtype, device="cpu")  # accelerate places it
        examples = read_examples(examples_file, style)
        cfg = resolve(replace(self.cfg.train, seed=seed), len(examples))  # epochs -> steps
        # QA accuracy at checkpoints on a sample of the main set: the training curve people ask for
        sample = self.sets[self.main_set][: self.cfg.curve_questions]
        every = max(1, cfg.steps // self.cfg.curve_points) if self.cfg.curve_questions else 0
        evaluate = (
            qa_evaluator(sample, tok, self.cfg.eval_batch_size, self.cfg.eval_format, self.pool)
            if every
            else None
        )
        train_sft(model, tok, examples, folder, cfg, progress=False, evaluate=evaluate, evaluate_every=every)
        return read_json(folder / "train.json")  # as a resumed run reads it

    # -- the whole study ----------------------------------------------------------------------
    def workers(self, n_jobs: int) -> int:
        import os

        import torch

        if self.cfg.launch.distributed:  # each job's training takes every GPU in turn
            return 1
        if self.cfg.workers:
            return max(1, min(self.cfg.workers, n_jobs))
        if torch.cuda.is_available() or self.cfg.data.model is not None:
            return 1
        return max(1, min(os.cpu_count() or 1, 4, n_jobs))

    def train_folder(self, seed: int, group: str, style: str) -> Path:
        return self.out / "train" / group / style / f"s{seed}"

    def job(self, seed: int, group: str, style: str, gdir: str) -> dict[str, Any]:
        """Train one group in one style with one seed, then evaluate it (each step skipped if done)."""
        folder = self.train_folder(seed, group, style)
        t1 = time.perf_counter()
        if self.cfg.launch.distributed and not (folder / "train.json").exists():
            train_launched(self.cfg.launch, self.out, seed, group, style, folder)
        tr = self.train(Path(gdir) / "examples" / f"{group}.jsonl", style, folder, seed)
        t2 = time.perf_counter()
        metrics = self.evaluate(
            f"{group}/{style}/s{seed}",
            folder / "model",
            lambda scorer: self._memorisation(scorer, gdir, group),
        )
        return {
            "group": group, "style": style, "seed": seed, "metrics": metrics, "train": _train_brief(tr),
            "train_seconds": t2 - t1, "eval_seconds": time.perf_counter() - t2,
        }  # fmt: skip

    def run(self) -> dict[str, Any]:
        t_start = time.perf_counter()
        write_manifest(self.out, self.cfg)
        with self._stage("world"):
            self.prepare()
        with self._stage("probe"):
            records = self.probe()
        t0 = time.perf_counter()
        with self._stage("evaluate-base"):
            self.evaluate("base", None)
        t_base = time.perf_counter() - t0
        plan = []
        with self._stage("groups"):
            for seed in self.cfg.seeds:
                gdir = self.groups(records, seed)
                summary = read_json(gdir / "summary.json")["groups"]
                names = [
                    g
                    for g in summary
                    if (not self.cfg.groups or g in self.cfg.groups) and g not in self.cfg.skip_groups
                ]
                plan += [(seed, g, style, gdir) for g in names for style in self.cfg.render.styles]
        self.clock["train+evaluate"] = [time.time(), 0.0]
        bar = tqdm(
            total=len(plan), desc="train+eval", unit="model", disable=not self.progress, dynamic_ncols=True
        )
        jobs = [(seed, group, style, str(gdir)) for seed, group, style, gdir in plan]
        t_jobs = time.perf_counter()
        workers = self.workers(len(jobs))
        runs, t_train, t_eval = [], 0.0, 0.0
        if workers == 1:
            results = (self.job(*j) for j in jobs)
        else:  # small models on CPU: one thread per process, several processes
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_job_in_worker, [(self.cfg, str(self.out), j) for j in jobs])
        for run in results:
            t_train, t_eval = t_train + run.pop("train_seconds"), t_eval + run.pop("eval_seconds")
            runs.append(run)
            bar.set_postfix_str(f"{run['group']}/{run['style']}/s{run['seed']}")
            bar.update(1)
        bar.close()
        if workers > 1:
            pool.shutdown()
        # train and evaluate: summed over worker processes; train_and_evaluate_wall: the stage's wall time
        self.times.update(
            {
                "train": round(t_train, 1),
                "evaluate": round(t_base + t_eval, 1),
                "train_and_evaluate_wall": round(time.perf_counter() - t_jobs, 1),
                "workers": workers,
            }
        )
        self.clock["train+evaluate"][1] = time.time()
        from iftscope.study.analysis import analyse

        with self._stage("analysis"):
            result = analyse(self.out, self.cfg, runs, self.times)
        self.times["total"] = round(time.perf_counter() - t_start, 1)
        result["stage_seconds"] = self.times
        result["stage_clock"] = {k: [round(a, 2), round(b, 2)] for k, (a, b) in self.clock.items()}
        atomic_write_json(self.out / "analysis" / "summary.json", result)
        return result


def _job_in_worker(args: tuple[StudyConfig, str, tuple]) -> dict[str, Any]:
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()  # a worker's bars would interleave with the study's own
    cfg, out, job = args
    study = Study(cfg, out, progress=False)
    study.prepare(quiet=True)
    return study.job(*job)


def _read_records(path: Path) -> list[ProbeRecord]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [ProbeRecord.from_json(r) for r in rows]


def _train_brief(tr: dict[str, Any]) -> dict[str, Any]:
    log = tr.get("log", [])
    return {k: tr.get(k) for k in ("final_loss", "seconds", "tokens_per_second", "examples")} | {
        "loss_curve": [r["loss"] for r in log],
        "qa_curve": [[r["step"], r["qa_accuracy"]] for r in log if "qa_accuracy" in r],
    }
