"""Zero-shot QA of a model on named test sets, and its consistency with the base model.

The scoring is the probe's (one scorer, one format), so the base model and every tuned model are
read the same way; consistency compares their option distributions question by question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from iftscope.analyse.consistency import per_question, summarise
from iftscope.models.scorer import Scorer
from iftscope.probe.formats import PromptFormat
from iftscope.probe.knowledge import ProbeConfig, probe
from iftscope.types import ProbeRecord, Question


def score_sets(
    scorer: Scorer,
    sets: dict[str, Sequence[Question]],
    fmt: PromptFormat,
    cfg: ProbeConfig,
    pool: Sequence[Question] = (),
) -> dict[str, list[ProbeRecord]]:
    """Records per test set (a letter format draws its demonstrations from `pool`)."""
    return {name: list(probe(scorer, qs, pool or qs, fmt, cfg)) for name, qs in sets.items()}


def set_metrics(tuned: Sequence[ProbeRecord], base: Sequence[ProbeRecord] | None = None) -> dict[str, Any]:
    """Accuracy of one test set, and consistency with the base model when its records are given."""
    out: dict[str, Any] = {
        "n": len(tuned),
        "accuracy": float(np.mean([r.correct for r in tuned])) if tuned else float("nan"),
        "mean_gold_prob": float(np.mean([r.gold_prob for r in tuned])) if tuned else float("nan"),
    }
    if base is not None:
        by_id = {r.question_id: r for r in base}
        pairs = [(by_id[t.question_id], t) for t in tuned if t.question_id in by_id]
        rows = [per_question(b.distribution, t.distribution, t.gold) for b, t in pairs]
        width = max((len(t.distribution) for t in tuned), default=4)
        out["consistency"] = summarise(
            rows, width, [b.prediction for b, _ in pairs], [t.prediction for _, t in pairs]
        )
    return out


def qa_evaluator(questions, tokenizer, batch_size: int = 64, fmt_name: str = "qa", pool=None):
    """Accuracy on held-out questions, zero-shot, read as the plain SFT template asks them (format
    `qa`) or in another format."""
    from iftscope.models.scorer import HFScorer
    from iftscope.probe.formats import get_format

    def evaluate(model, step: int) -> dict[str, float]:
        model.eval()
        scorer = HFScorer(model, tokenizer, batch_size=batch_size)
        fmt = get_format(fmt_name).with_tokenizer(tokenizer)
        records = list(
            probe(scorer, questions, pool or questions, fmt, ProbeConfig(format=fmt.name, shots=0))
        )
        return {"qa_accuracy": round(sum(r.correct for r in records) / len(records), 4)}

    return evaluate
