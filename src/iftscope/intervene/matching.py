"""Confidence-matched H and I, and what each group is made of.

H (known, right) and I (confidently wrong) differ in more than the knowledge they teach: the base
model is typically far surer of H's answers than of I's. Matching draws both from the same
distribution of the base model's confidence in its own prediction: stratified sampling over
confidence bins (equal width in log-odds), the same number of items from each pool in each bin (seeded). The
achieved match is reported as the two-sample Kolmogorov-Smirnov distance and quartiles, of the
pools (before) and of the groups drawn (after).

`composition` says what a group is made of: on the micro-world the share of people the base model
never saw in pretraining, the confidence categories, and the quartiles of the base confidence.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from iftscope.types import Group, ProbeRecord, Question

Pair = tuple[Question, ProbeRecord]


def _logit(confidence: float) -> float:
    c = min(max(confidence, 1e-12), 1 - 1e-12)
    return float(np.log(c / (1 - c)))


def _bins(a: Sequence[Pair], b: Sequence[Pair], n_bins: int) -> tuple[list[list[Pair]], list[list[Pair]]]:
    """Both pools split over n_bins bins of equal width in log-odds of the confidence, spanning
    their joint range (equal width in the confidence itself would lump 0.95 with 0.9999, where
    known items crowd)."""
    conf = [_logit(r.confidence) for _, r in (*a, *b)]
    lo, hi = (min(conf), max(conf)) if conf else (0.0, 1.0)
    edges = np.linspace(lo, hi, n_bins + 1)[1:-1]

    def split(pool: Sequence[Pair]) -> list[list[Pair]]:
        out: list[list[Pair]] = [[] for _ in range(n_bins)]
        for pair in pool:
            out[int(np.searchsorted(edges, _logit(pair[1].confidence), side="right"))].append(pair)
        return out

    return split(a), split(b)


def matched_capacity(h: Sequence[Pair], i: Sequence[Pair], n_bins: int, size: int | None = None) -> int:
    """The largest matched group size: the overlap of the two pools, bin by bin. Raises, naming
    both pools, when it is 0 or below a requested `size`."""
    hb, ib = _bins(h, i, n_bins)
    capacity = sum(min(len(x), len(y)) for x, y in zip(hb, ib, strict=True))
    if capacity < 1 or (size is not None and capacity < size):
        raise ValueError(
            f"intervene.match_confidence: H ({len(h)} candidates) and I ({len(i)}) overlap in only "
            f"{capacity} items over {n_bins} confidence bins, {size or 1} needed (turn matching off, "
            "lower intervene.size, or use fewer bins)"
        )
    return capacity


def matched_sample(
    h: Sequence[Pair], i: Sequence[Pair], size: int, n_bins: int, rng: random.Random
) -> tuple[list[Pair], list[Pair]]:
    """`size` items from each pool, the same number per confidence bin (allocated in proportion to
    the bins' overlap, largest remainders first), each group in a seeded random order."""
    hb, ib = _bins(h, i, n_bins)
    cap = [min(len(x), len(y)) for x, y in zip(hb, ib, strict=True)]
    total = sum(cap)
    quota = [size * c / total for c in cap]
    counts = [int(q) for q in quota]
    for b in sorted(range(n_bins), key=lambda b: (counts[b] - quota[b], b))[: size - sum(counts)]:
        counts[b] += 1
    out_h, out_i = [], []
    for k, x, y in zip(counts, hb, ib, strict=True):
        out_h += rng.sample(x, k)
        out_i += rng.sample(y, k)
    rng.shuffle(out_h)
    rng.shuffle(out_i)
    return out_h, out_i


def match_report(pools: dict[str, Sequence[Pair]], groups: dict[str, Sequence[float]]) -> dict[str, Any]:
    """How alike H's and I's base confidences are: KS distance and quartiles of the candidate pools
    (what an unmatched draw approximates) and of the groups drawn."""

    def ks(a: Sequence[float], b: Sequence[float]) -> float | None:
        from scipy import stats  # here, not at the top: the recipe check imports this module

        return float(stats.ks_2samp(a, b).statistic) if len(a) and len(b) else None

    before = {g: [r.confidence for _, r in pools[g]] for g in ("H", "I")}
    return {
        "ks_before": ks(before["H"], before["I"]),
        "ks_after": ks(groups["H"], groups["I"]),
        "quartiles_before": {g: _quartiles(v) for g, v in before.items()},
        "quartiles_after": {g: _quartiles(groups[g]) for g in ("H", "I")},
    }


def _quartiles(values: Sequence[float]) -> list[float] | None:
    return [round(float(x), 4) for x in np.quantile(values, [0.25, 0.5, 0.75])] if len(values) else None


def composition(
    group: Group, questions: dict[str, Question], records: dict[str, ProbeRecord]
) -> dict[str, Any]:
    """A group's make-up: share of never-pretrained people (micro-world metadata `known`), shares
    of confidence categories, quartiles of the base model's confidence in its own prediction."""
    items = group.items
    n = max(len(items), 1)
    cats = Counter(records[it.question_id].category for it in items if it.question_id in records)
    out: dict[str, Any] = {
        "categories": {c: round(k / n, 4) for c, k in sorted(cats.items())},
        "confidence_quartiles": _quartiles([it.base_confidence for it in items]),
    }
    flags = [questions[it.question_id].metadata.get("known") for it in items if it.question_id in questions]
    if flags and all(f is not None for f in flags):
        out["never_pretrained_share"] = round(sum(not f for f in flags) / n, 4)
    return out
