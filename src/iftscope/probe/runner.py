"""The probe stage's I/O: stream records to DIR/records.jsonl, summarise, resume after a crash."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from iftscope.microworld.groundtruth import agreement
from iftscope.probe.coverage import coverage, coverage_markdown
from iftscope.probe.formats import PromptFormat
from iftscope.probe.knowledge import ProbeConfig, probe
from iftscope.runs import atomic_write_json, atomic_write_text, fingerprint, read_jsonl
from iftscope.types import LETTERS, ProbeRecord, Question

if TYPE_CHECKING:  # the scorer (torch) is imported by whoever makes one, not by the probe's config
    from iftscope.models.scorer import Scorer


def _finished_ids(partial: Path, questions: Sequence[Question]) -> int:
    """How many leading questions a crashed run already wrote (complete lines only)."""
    if not partial.exists():
        return 0
    lines = partial.read_bytes().split(b"\n")
    done = 0
    for line, q in zip(lines[:-1], questions, strict=False):  # last piece: empty or torn
        if json.loads(line)["question_id"] != q.id:
            break
        done += 1
    with open(partial, "r+b") as f:  # drop anything after the last good line
        f.truncate(sum(len(x) + 1 for x in lines[:done]))
    return done


def run_probe(
    scorer: Scorer,
    questions: Sequence[Question],
    pool: Sequence[Question],
    fmt: PromptFormat,
    cfg: ProbeConfig,
    out: str | Path,
    progress: bool = True,
    extra: dict | None = None,
    truth: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """Probe, streaming records to disk; `truth` (micro-world) adds agreement with ground truth.
    Writes records.jsonl, coverage.json, coverage.md and summary.json (last) into OUT."""
    out, extra = Path(out), extra or {}
    ids = {"questions": [q.id for q in questions], "pool": [q.id for q in pool]}
    key = fingerprint({"format": fmt.id, "config": asdict(cfg), **ids, **extra})
    partial = _claim_partial(out, key)
    t0 = time.perf_counter()
    done = _finished_ids(partial, questions)
    _stream(probe(scorer, questions[done:], pool, fmt, cfg), partial, len(questions), done, progress)
    records = [ProbeRecord.from_json(r) for r in read_jsonl(partial)]
    summary = summarise(records, questions)
    seconds = round(time.perf_counter() - t0, 2)
    summary.update(
        {"format": fmt.id, "format_about": fmt.about, "config": asdict(cfg), "seconds": seconds,
         "resumed_at": done, **extra}
    )  # fmt: skip
    if truth is not None:
        summary["ground_truth"] = agreement(records, truth)
    cov = coverage(records, questions)
    atomic_write_json(out / "coverage.json", cov)
    atomic_write_text(out / "coverage.md", coverage_markdown(cov))
    os.replace(partial, out / "records.jsonl")
    (out / "records.jsonl.partial.key").unlink()
    atomic_write_json(out / "summary.json", summary)
    return summary


def _claim_partial(out: Path, key: str) -> Path:
    """records.jsonl.partial, kept only if the probe that wrote it had the same key (the same
    format, config, questions, pool and model): a partial file from another probe is useless."""
    out.mkdir(parents=True, exist_ok=True)
    partial, meta = out / "records.jsonl.partial", out / "records.jsonl.partial.key"
    if not meta.exists() or meta.read_text() != key:
        partial.unlink(missing_ok=True)
        atomic_write_text(meta, key)
    return partial


def _stream(records: Iterable[ProbeRecord], partial: Path, total: int, done: int, progress: bool) -> None:
    """Append each record as it comes (a crash loses at most the line being written)."""
    bar = tqdm(total=total, initial=done, desc="probe", unit="q", disable=not progress)
    with open(partial, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            f.flush()
            bar.update(1)
        os.fsync(f.fileno())
    bar.close()


def summarise(records: Sequence[ProbeRecord], questions: Sequence[Question]) -> dict[str, Any]:
    n = len(records)
    acc = sum(r.correct for r in records) / n if n else float("nan")
    per_domain: dict[str, dict[str, float]] = {}
    for d in sorted({r.domain or "(none)" for r in records}):
        rs = [r for r in records if (r.domain or "(none)") == d]
        per_domain[d] = {
            "n": len(rs),
            "accuracy": sum(r.correct for r in rs) / len(rs),
            "known": sum(r.known for r in rs) / len(rs),
        }
    width = max((len(q.choices) for q in questions), default=4)
    return {
        "n": n,
        "accuracy": acc,
        "known_fraction": sum(r.known for r in records) / n if n else float("nan"),
        "confident_wrong_fraction": sum(r.confidently_wrong(0.5) for r in records) / max(n, 1),
        "per_domain": per_domain,
        "per_category": dict(Counter(r.category for r in records)),
        "predicted_letters": {LETTERS[i]: sum(r.prediction == i for r in records) for i in range(width)},
        "gold_letters": {LETTERS[i]: sum(r.gold == i for r in records) for i in range(width)},
        "mean_option_mass": sum(r.option_mass for r in records) / n if n else float("nan"),
    }


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"probed {s['n']} questions with {s['format']}: accuracy {s['accuracy']:.3f} "
        f"(confidently wrong: {s['confident_wrong_fraction']:.3f})"
    ]
    rule = s.get("config", {}).get("known_rule", "?")
    lines.append(f"known ({rule} rule): {s['known_fraction']:.3f}")
    lines.append(f"mean probability on the options (letters or texts): {s['mean_option_mass']:.3f}")
    lines.append("categories: " + ", ".join(f"{k} {v}" for k, v in sorted(s["per_category"].items())))
    lines.append(
        "predicted letters: "
        + " ".join(f"{k} {v}" for k, v in s["predicted_letters"].items())
        + "   gold letters: "
        + " ".join(f"{k} {v}" for k, v in s["gold_letters"].items())
    )
    if "ground_truth" in s:
        g = s["ground_truth"]
        lines.append(
            f"agreement of 'known' with ground truth (micro-world): {g['probe']['agreement']:.3f} "
            f"(this probe's rule); {g['correct']['agreement']:.3f} if known = correct"
        )
    for d, v in list(s["per_domain"].items())[:12]:
        lines.append(f"  {d}: n {v['n']}, accuracy {v['accuracy']:.3f}, known {v['known']:.3f}")
    return "\n".join(lines)
