"""The probe stage with `probe.backend: lm-eval`: export the questions as an lm-eval task folder,
score it with lm-evaluation-harness (any model type it has: hf, vllm ...), import its samples.

Writes what the native probe writes (records.jsonl, coverage, summary.json last) plus
OUT/lm-eval/ (the task folder and the samples). A rerun whose samples are already there (same
export) imports them again without scoring.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from iftscope.probe.formats import get_format
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.lmeval import ImportedSet, records_from_samples
from iftscope.probe.lmeval_io import export_tasks, lm_eval_model_args, read_samples, write_probe_folder
from iftscope.probe.lmeval_run import lm_eval_device, require_lm_eval, run_lm_eval
from iftscope.runs import atomic_write_json, read_json
from iftscope.stages.model import ModelSpec
from iftscope.types import Question

SET = "probe"  # the one question set the probe stage exports


def lm_eval_records(
    model: ModelSpec,
    sets: dict[str, Sequence[Question]],
    pool: Sequence[Question],
    cfg: ProbeConfig,
    work: Path,
    batch_size: int = 32,
) -> tuple[dict[str, ImportedSet], dict[str, Any]]:
    """Score `sets` with lm-eval in WORK (tasks/, samples/): (set -> imported records, provenance).
    Samples already there from the same export are imported again without scoring."""
    lm_eval = require_lm_eval()
    fmt = get_format(cfg.format)
    if fmt.uses_chat_template:
        from transformers import AutoTokenizer

        fmt = fmt.with_tokenizer(AutoTokenizer.from_pretrained(model.path))
    args = lm_eval_model_args(cfg, model.path, model.dtype, model.adapter)
    tasks_dir, samples_dir = work / "tasks", work / "samples"
    info = export_tasks(tasks_dir, dict(sets), pool, fmt, cfg, extra={"model_args": args})
    files = {name: samples_dir / f"samples_{task}.jsonl" for name, task in info["tasks"].items()}
    done = (samples_dir / "export.json").exists() and read_json(samples_dir / "export.json") == info
    if not done or not all(f.exists() for f in files.values()):
        (samples_dir / "export.json").unlink(missing_ok=True)
        device = lm_eval_device(model.device)
        run_lm_eval(
            tasks_dir, list(info["tasks"].values()), cfg.lm_eval_model, args, samples_dir, batch_size, device
        )
        atomic_write_json(samples_dir / "export.json", info)
    imported = records_from_samples(read_samples(list(files.values())))
    for name, questions in sets.items():
        if name not in imported or [q.id for q in imported[name].questions] != [q.id for q in questions]:
            raise ValueError(
                f"{files[name]}: not the questions of set {name} (delete {samples_dir} and rerun)"
            )
    provenance = {
        "backend": "lm-eval",
        "lm_eval": {"version": lm_eval.__version__, "model": cfg.lm_eval_model, "model_args": args,
                    "samples": [str(f) for f in files.values()]},
    }  # fmt: skip
    return imported, provenance


def lm_eval_probe_stage(
    model: ModelSpec,
    questions: Sequence[Question],
    cfg: ProbeConfig,
    out: str | Path,
    *,
    pool: Sequence[Question] = (),
    batch_size: int = 32,
    truth: dict[str, bool] | None = None,
    data: Sequence[str] = (),
    label: str | None = None,
) -> dict[str, Any]:
    """Probe through lm-eval; returns the summary written to OUT/summary.json."""
    out, t0 = Path(out), time.perf_counter()
    imported, provenance = lm_eval_records(model, {SET: questions}, pool, cfg, out / "lm-eval", batch_size)
    got = imported[SET]
    extra: dict[str, Any] = {
        "format": got.format.id, "format_about": got.format.about, "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t0, 2), "resumed_at": 0, "model": label or model.path,
        "adapter": model.adapter, "data": [str(p) for p in data], **provenance,
    }  # fmt: skip
    if truth is not None:
        from iftscope.microworld.groundtruth import agreement

        extra["ground_truth"] = agreement(got.records, truth)
    return write_probe_folder(got.records, questions, out, extra)
