"""Coverage: how much of a domain the base model already knows, and how far to trust that.

Answers what a team asks before it pays for IFT data: the fraction known overall and per domain,
position bias (predicted letters against gold letters), calibration (confidence against
accuracy), and the confident disagreements with the gold label, for a human to review (the paper's
Incompatible groups were enriched with wrong gold labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iftscope.types import LETTERS, ProbeRecord, Question


def calibration_table(records: Sequence[ProbeRecord], bins: int = 10) -> list[dict[str, Any]]:
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        rs = [r for r in records if lo <= r.confidence < hi or (b == bins - 1 and r.confidence == 1.0)]
        if rs:
            rows.append(
                {
                    "confidence": f"{lo:.1f}-{hi:.1f}",
                    "n": len(rs),
                    "mean_confidence": sum(r.confidence for r in rs) / len(rs),
                    "accuracy": sum(r.correct for r in rs) / len(rs),
                }
            )
    return rows


def expected_calibration_error(table: list[dict[str, Any]]) -> float:
    n = sum(row["n"] for row in table)
    return sum(row["n"] * abs(row["mean_confidence"] - row["accuracy"]) for row in table) / n if n else 0.0


def letter_table(records: Sequence[ProbeRecord], width: int) -> list[dict[str, Any]]:
    n = max(len(records), 1)
    return [
        {
            "letter": LETTERS[i],
            "gold": sum(r.gold == i for r in records) / n,
            "predicted": sum(r.prediction == i for r in records) / n,
            "predicted_when_wrong": sum(r.prediction == i and not r.correct for r in records)
            / max(sum(not r.correct for r in records), 1),
        }
        for i in range(width)
    ]


def suspected_label_errors(
    records: Sequence[ProbeRecord], questions: Sequence[Question], top: int = 20
) -> list[dict[str, Any]]:
    by_id = {q.id: q for q in questions}
    wrong = sorted((r for r in records if not r.correct), key=lambda r: -r.confidence)[:top]
    return [
        {
            "id": r.question_id,
            "question": by_id[r.question_id].question,
            "gold": by_id[r.question_id].choices[r.gold],
            "model": by_id[r.question_id].choices[r.prediction],
            "confidence": r.confidence,
        }
        for r in wrong
    ]


def _rates(rs: Sequence[ProbeRecord]) -> dict[str, Any]:
    """Known (the probe's rule), correct (argmax, the paper's) and correct with confidence > 0.5."""
    n = max(len(rs), 1)
    return {
        "n": len(rs),
        "known": sum(r.known for r in rs) / n,
        "correct": sum(r.correct for r in rs) / n,
        "correct_confident": sum(r.confidently_right(0.5) for r in rs) / n,
    }


def coverage(records: Sequence[ProbeRecord], questions: Sequence[Question]) -> dict[str, Any]:
    width = max((len(q.choices) for q in questions), default=4)
    calib = calibration_table(records)
    per_domain = {}
    for d in sorted({r.domain or "(none)" for r in records}):
        per_domain[d] = _rates([r for r in records if (r.domain or "(none)") == d])
    return {
        **_rates(records),
        "per_domain": per_domain,
        "letters": letter_table(records, width),
        "calibration": calib,
        "expected_calibration_error": expected_calibration_error(calib),
        "suspected_label_errors": suspected_label_errors(records, questions),
    }


def _md(text: Any) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def coverage_markdown(cov: dict[str, Any]) -> str:
    out = [
        "# Coverage: what the base model already knows",
        "",
        f"Known (the probe's rule): {cov['known']:.1%}; correct (argmax, the paper's 'known'): "
        f"{cov['correct']:.1%}; correct and confident (> 0.5): {cov['correct_confident']:.1%}.",
        "",
        "| domain | n | known | correct | correct, confident |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {_md(d)} | {v['n']} | {v['known']:.1%} | {v['correct']:.1%} | {v['correct_confident']:.1%} |"
        for d, v in cov["per_domain"].items()
    ]
    out += [
        "",
        "## Position bias",
        "",
        "| letter | gold | predicted | predicted when wrong |",
        "| --- | --- | --- | --- |",
    ]
    out += [
        f"| {r['letter']} | {r['gold']:.1%} | {r['predicted']:.1%} | {r['predicted_when_wrong']:.1%} |"
        for r in cov["letters"]
    ]
    out += [
        "",
        f"## Calibration (expected calibration error {cov['expected_calibration_error']:.3f})",
        "",
        "| confidence | n | mean confidence | accuracy |",
        "| --- | --- | --- | --- |",
    ]
    out += [
        f"| {r['confidence']} | {r['n']} | {r['mean_confidence']:.3f} | {r['accuracy']:.3f} |"
        for r in cov["calibration"]
    ]
    out += [
        "",
        "## Suspected label errors (most confident disagreements with gold)",
        "",
        "| id | confidence | gold | model | question |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in cov["suspected_label_errors"]:
        cells = [
            _md(r["id"]),
            f"{r['confidence']:.3f}",
            _md(r["gold"]),
            _md(r["model"]),
            _md(r["question"])[:120],
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
