"""The lm-evaluation-harness bridge's files: write a task folder, read `--log_samples` files, run
lm-eval through its Python API, and write imported records as a probe folder.

A task folder holds `<task>.yaml` and `data/<set>.jsonl` per question set, a group YAML over the
sets and `iftscope-export.json` (what was exported, from which settings). lm-eval is imported only
where it runs: exporting and importing need no lm-eval installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from iftscope.probe.coverage import coverage, coverage_markdown
from iftscope.probe.formats import PromptFormat
from iftscope.probe.knowledge import ProbeConfig
from iftscope.probe.lmeval import EXPORT_VERSION, group_yaml, task_docs, task_yaml
from iftscope.probe.runner import summarise
from iftscope.runs import atomic_dir, atomic_write_json, atomic_write_jsonl, atomic_write_text
from iftscope.types import ProbeRecord, Question


def task_name(prefix: str, set_name: str) -> str:
    """lm-eval task names: letters, digits and underscores."""
    return re.sub(r"\W+", "_", f"{prefix}_{set_name}").strip("_").lower()


def export_tasks(
    out: str | Path,
    sets: dict[str, Sequence[Question]],
    pool: Sequence[Question],
    fmt: PromptFormat,
    cfg: ProbeConfig,
    prefix: str = "iftscope",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the task folder (replacing OUT in one rename); returns what iftscope-export.json says."""
    out = Path(out).resolve()
    tasks: dict[str, str] = {}
    docs = {name: task_docs(qs, pool, fmt, cfg, name) for name, qs in sets.items()}  # fail before writing
    with atomic_dir(out) as tmp:
        for name, rows in docs.items():
            task = tasks[name] = task_name(prefix, name)
            atomic_write_jsonl(tmp / "data" / f"{name}.jsonl", rows)
            atomic_write_text(tmp / f"{task}.yaml", task_yaml(task, str(out / "data" / f"{name}.jsonl")))
        group = task_name(prefix, "all")
        atomic_write_text(tmp / f"{group}.yaml", group_yaml(group, list(tasks.values())))
        info = {
            "version": EXPORT_VERSION,
            "group": group,
            "tasks": tasks,
            "documents": {name: len(rows) for name, rows in docs.items()},
            "questions": {name: len(qs) for name, qs in sets.items()},
            "format": fmt.id,
            "probe": asdict(cfg),
            **(extra or {}),
        }
        atomic_write_json(tmp / "iftscope-export.json", info)
    return info


def sample_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files given, a folder standing for every samples_*.jsonl under it (lm-eval's names)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("samples_*.jsonl"))
            if not found:
                raise FileNotFoundError(f"{p}: no samples_*.jsonl under it (run lm_eval with --log_samples)")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files


def read_samples(paths: Sequence[str | Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file:line, sample) for every logged sample."""
    for path in sample_files(paths):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{n}", json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None


def lm_eval_model_args(cfg: ProbeConfig, model_path: str, dtype: str, adapter: str | None) -> dict[str, Any]:
    """probe.lm_eval_args as a dict, `pretrained` (and `dtype`, the adapter's arguments for the
    lm-eval model type: lmeval_run.ADAPTER_ARGS) filled in from the study."""
    from iftscope.probe.lmeval_run import adapter_args, parse_model_args

    args = parse_model_args(cfg.lm_eval_args)
    args.setdefault("pretrained", model_path)
    args.setdefault("dtype", dtype)
    for key, value in (adapter_args(cfg.lm_eval_model, adapter) if adapter else {}).items():
        args.setdefault(key, value)
    return args


def write_probe_folder(
    records: Sequence[ProbeRecord],
    questions: Sequence[Question],
    out: str | Path,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """records.jsonl, coverage.json/.md and summary.json (last), as `iftscope probe` writes them."""
    out = Path(out)
    summary = summarise(records, questions)
    summary.update(extra)
    cov = coverage(records, questions)
    atomic_write_jsonl(out / "records.jsonl", (r.to_json() for r in records))
    atomic_write_json(out / "coverage.json", cov)
    atomic_write_text(out / "coverage.md", coverage_markdown(cov))
    atomic_write_json(out / "summary.json", summary)
    return summary
