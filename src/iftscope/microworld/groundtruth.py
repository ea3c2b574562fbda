"""Micro-world only: does the probe's "known" agree with what the model really memorised?

Ground truth for a question is "the person was pretrained and the model recalls the fact in a
paraphrase it never saw" (the world's recall.jsonl). Every known rule of the probe is checked,
whatever rule the probe itself used: `probe` is the records' own `known` label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iftscope.runs import read_jsonl
from iftscope.types import ProbeRecord


def load_truth(world_dir: str | Path) -> dict[str, bool]:
    rows = read_jsonl(Path(world_dir) / "recall.jsonl")
    return {r["question_id"]: bool(r["known_person"] and r["recalled"]) for r in rows}


def agreement(
    records: Sequence[ProbeRecord], truth: dict[str, bool], threshold: float = 0.5
) -> dict[str, Any]:
    rs = [r for r in records if r.question_id in truth]
    out: dict[str, Any] = {"n": len(rs), "truly_known": sum(truth[r.question_id] for r in rs)}
    for name, label in (
        ("probe", lambda r: r.known),
        ("generative", lambda r: r.gold_abs_prob >= threshold),
        ("correct", lambda r: r.correct),
        ("correct_confident", lambda r: r.confidently_right(threshold)),
    ):
        both = sum(label(r) and truth[r.question_id] for r in rs)
        probe_only = sum(label(r) and not truth[r.question_id] for r in rs)
        truth_only = sum(not label(r) and truth[r.question_id] for r in rs)
        out[name] = {
            "agreement": (len(rs) - probe_only - truth_only) / len(rs) if rs else float("nan"),
            "probe_known_truly_unknown": probe_only,
            "probe_unknown_truly_known": truth_only,
            "both_known": both,
        }
    return out
