"""Knowledge consistency between a base and a tuned model's option distributions, per question.

Correct forms first, then the paper's own variants for comparison:
- Spearman with average ranks for ties (the paper's dense ranks distort ties: 11% of its bf16
  distributions had exact ties); undefined (NaN) when either distribution is constant, e.g. uniform;
- KL(base || tuned) and KL(tuned || base) in nats, exact: 0 log 0 = 0, and +inf when one model gives
  an option zero probability that the other does not (the only source of inf);
- cosine similarity; argmax agreement; transitions correct->wrong / wrong->correct; Cohen's kappa
  (agreement corrected for chance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import rel_entr


def _check(p: np.ndarray, q: np.ndarray) -> None:
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"distributions must be 1-D and of one length, got {p.shape} and {q.shape}")


def kl(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = np.asarray(p, float), np.asarray(q, float)
    _check(p, q)
    return float(rel_entr(p, q).sum())


def spearman(p: Sequence[float], q: Sequence[float]) -> float:
    """Average ranks for ties; NaN when either side is constant (correlation undefined) or holds a
    NaN. Computed as scipy.stats.spearmanr computes it (the Pearson correlation of average ranks,
    np.corrcoef), with the ranks made here: the same numbers, without scipy's per-call overhead,
    which dominated a tuned model's consistency over thousands of questions."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    _check(p, q)
    if np.all(p == p[0]) or np.all(q == q[0]) or np.isnan(p).any() or np.isnan(q).any():
        return float("nan")
    ranks = np.column_stack((average_ranks(p), average_ranks(q)))
    return float(np.corrcoef(ranks, rowvar=False)[1, 0])


def paper_rank_correlation(p: Sequence[float], q: Sequence[float]) -> float:
    """The paper's variant: Pearson correlation of dense descending ranks (ties share a rank)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if np.isnan(p).any() or np.isnan(q).any():
        return float("nan")
    rp, rq = dense_ranks(-p), dense_ranks(-q)
    if np.all(rp == rp[0]) or np.all(rq == rq[0]):
        return float("nan")
    return float(np.corrcoef(rp, rq)[0, 1])


def _ties(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each element's 1-based dense rank, the sorted positions where a new value starts + n):
    the tie structure scipy.stats.rankdata's average and dense methods are built from."""
    sorter = np.argsort(x, kind="mergesort")
    inverse = np.empty(sorter.size, dtype=np.intp)
    inverse[sorter] = np.arange(sorter.size)
    xs = x[sorter]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    return starts.cumsum()[inverse], np.r_[np.nonzero(starts)[0], len(starts)]


def average_ranks(x: np.ndarray) -> np.ndarray:
    """scipy.stats.rankdata(x) (method "average") of a 1-D array without NaN: exact halves."""
    dense, count = _ties(x)
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def dense_ranks(x: np.ndarray) -> np.ndarray:
    """scipy.stats.rankdata(x, method="dense") of a 1-D array without NaN, as floats."""
    return _ties(x)[0].astype(float)


def cosine(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = np.asarray(p, float), np.asarray(q, float)
    _check(p, q)
    return float(p @ q / (np.linalg.norm(p) * np.linalg.norm(q)))


def cohen_kappa(a: Sequence[int], b: Sequence[int], n_classes: int) -> float:
    """Agreement of two label sequences beyond what their marginals give by chance.

    `n_classes` is a minimum: a label >= n_classes grows the tables to the largest label + 1 instead
    of failing. Kappa does not depend on classes nobody used (they add 0 to the chance agreement),
    so this is exact, and one odd prediction index (e.g. a base record with more options than the
    tuned width `evaluate.qa.set_metrics` passes) should not abort a whole study's analysis.
    Negative or non-integer labels, and sequences of different lengths, raise ValueError. NaN when
    chance agreement is 1 (both always give the same single label) or the sequences are empty."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"label sequences must be 1-D and of one length, got {a.shape} and {b.shape}")
    if len(a) == 0:
        return float("nan")
    if a.dtype.kind not in "iub" or b.dtype.kind not in "iub":  # signed, unsigned, bool
        raise ValueError(f"labels must be integers, got {a.dtype} and {b.dtype}")
    if a.min() < 0 or b.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    width = max(n_classes, int(a.max()) + 1, int(b.max()) + 1)
    observed = float(np.mean(a == b))
    pa = np.bincount(a, minlength=width) / len(a)
    pb = np.bincount(b, minlength=width) / len(b)
    expected = float(pa @ pb)
    return float("nan") if expected == 1.0 else (observed - expected) / (1.0 - expected)


def per_question(base: Sequence[float], tuned: Sequence[float], gold: int) -> dict[str, Any]:
    """Every consistency measure for one question."""
    b, t = int(np.argmax(base)), int(np.argmax(tuned))
    return {
        "argmax_agree": b == t,
        "spearman": spearman(base, tuned),
        "paper_rank_corr": paper_rank_correlation(base, tuned),
        "kl_base_tuned": kl(base, tuned),
        "kl_tuned_base": kl(tuned, base),
        "cosine": cosine(base, tuned),
        "base_correct": b == gold,
        "tuned_correct": t == gold,
    }


def summarise(rows: Sequence[dict[str, Any]], n_options: int, base_pred, tuned_pred) -> dict[str, Any]:
    """Means over questions (NaN-aware, with the number of undefined values said aloud)."""
    out: dict[str, Any] = {"n": len(rows)}
    for key in ("spearman", "paper_rank_corr", "kl_base_tuned", "kl_tuned_base", "cosine"):
        vals = np.array([r[key] for r in rows], float)
        finite = vals[np.isfinite(vals)]
        out[key] = float(finite.mean()) if len(finite) else float("nan")
        out[f"{key}_undefined"] = int(np.isnan(vals).sum())
        out[f"{key}_infinite"] = int(np.isinf(vals).sum())
    out["argmax_agreement"] = float(np.mean([r["argmax_agree"] for r in rows])) if rows else float("nan")
    out["kappa"] = cohen_kappa(base_pred, tuned_pred, n_options) if rows else float("nan")
    out["correct_to_wrong"] = sum(r["base_correct"] and not r["tuned_correct"] for r in rows)
    out["wrong_to_correct"] = sum(not r["base_correct"] and r["tuned_correct"] for r in rows)
    return out
