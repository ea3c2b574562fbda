"""Knowledge-aware curation of a user's IFT data: make it consistent with what the model knows.

Ren et al. found that fine-tuning on answers that contradict the model's confident beliefs brings
little and can harm, while consistent data works. Curation applies that to any QA dataset:
- `drop`: remove the items the model confidently contradicts;
- `relabel`: give those items the model's own answer (self-aligning targets);
- `keep`: change nothing, only annotate every item with the probe's verdict.
It does not add knowledge: it removes (or rewrites) the items that would have tried to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from iftscope.types import LETTERS, ProbeRecord, Question

POLICIES = ("drop", "relabel", "keep")


@dataclass(frozen=True)
class Decision:
    question_id: str
    verdict: str  # known / contradicts / unsure
    action: str  # kept / dropped / relabelled
    gold: int
    model: int
    confidence: float


def verdict(r: ProbeRecord, confidence: float) -> str:
    if r.known:
        return "known"
    if r.confidently_wrong(confidence):
        return "contradicts"
    return "unsure"


def curate(
    questions: Sequence[Question], records: Sequence[ProbeRecord], policy: str, confidence: float = 0.5
) -> tuple[list[Question], list[Decision]]:
    """The curated questions (input order) and one decision per input question."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {list(POLICIES)}")
    by_id = {r.question_id: r for r in records}
    missing = [q.id for q in questions if q.id not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} questions have no probe record (first: {missing[0]!r})")
    kept, decisions = [], []
    for q in questions:
        r = by_id[q.id]
        v = verdict(r, confidence)
        action = "kept"
        if v == "contradicts" and policy == "drop":
            action = "dropped"
        elif v == "contradicts" and policy == "relabel":
            action = "relabelled"
        decisions.append(Decision(q.id, v, action, q.answer, r.prediction, r.confidence))
        if action == "dropped":
            continue
        meta = {**q.metadata, "iftscope_verdict": v, "iftscope_model_answer": LETTERS[r.prediction]}
        if action == "relabelled":
            meta["iftscope_original_answer"] = LETTERS[q.answer]
            kept.append(replace(q, answer=r.prediction, explanation=None, metadata=meta))
        else:
            kept.append(replace(q, metadata=meta))
    return kept, decisions


def report(decisions: Sequence[Decision], questions: Sequence[Question], policy: str) -> dict[str, Any]:
    verdicts = Counter(d.verdict for d in decisions)
    actions = Counter(d.action for d in decisions)
    by_id = {q.id: q for q in questions}
    changed = sorted((d for d in decisions if d.action != "kept"), key=lambda d: -d.confidence)
    return {
        "policy": policy,
        "n": len(decisions),
        "verdicts": dict(verdicts),
        "actions": dict(actions),
        "changed": [
            {
                "id": d.question_id,
                "question": by_id[d.question_id].question,
                "gold": by_id[d.question_id].choices[d.gold],
                "model": by_id[d.question_id].choices[d.model],
                "confidence": round(d.confidence, 4),
                "action": d.action,
            }
            for d in changed
        ],
    }


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(rep: dict[str, Any], top: int = 50) -> str:
    v, a = rep["verdicts"], rep["actions"]
    lines = [
        f"# Curation ({rep['policy']})",
        "",
        f"{rep['n']} items: {v.get('known', 0)} known to the model, {v.get('contradicts', 0)} that it "
        f"confidently contradicts, {v.get('unsure', 0)} unsure. Actions: "
        + ", ".join(f"{k} {n}" for k, n in sorted(a.items()))
        + ".",
        "",
        "Expected effect, honestly: consistent data makes IFT work better (Ren et al. 2024: H > S > I),",
        "but curation adds no knowledge. Dropped items are facts the model will not learn from IFT anyway;",
        "relabelled items teach the model's own (possibly wrong) answer. A contradicted item may also be",
        "a wrong gold label: review the list below.",
        "",
        "| id | confidence | gold | model | action | question |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in rep["changed"][:top]:
        lines.append(
            f"| {_cell(c['id'])} | {c['confidence']:.3f} | {_cell(c['gold'])} | {_cell(c['model'])} | "
            f"{c['action']} | {_cell(c['question'])} |"
        )
    return "\n".join(lines) + "\n"
