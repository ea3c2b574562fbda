"""Statistics with their uncertainty: CIs over seeds, paired bootstrap, partial correlation.

The paper reported single runs on 250-question test sets (a standard error of about 3 points) and
a non-standard partial correlation; here every figure carries its interval or p-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float], level: float = 0.95, min_n: int = 3) -> dict[str, Any]:
    """Mean and Student-t interval over seeds; none from fewer than `min_n` values (a t interval
    over 2 seeds has 1 degree of freedom: not an interval to act on)."""
    v = np.asarray(values, float)
    out: dict[str, Any] = {
        "mean": float(v.mean()) if len(v) else float("nan"),
        "values": v.tolist(),
        "n": len(v),
    }
    if len(v) >= max(2, min_n):
        half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
        out["ci"] = [float(v.mean() - half), float(v.mean() + half)]
    else:
        out["ci"] = None
    return out


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Difference of means a - b over the same questions, resampling questions jointly.

    p-value: two-sided, twice the smaller tail of the bootstrap distribution around zero, with the
    usual +1 correction (the smallest possible value is 2 / (n_boot + 1))."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("paired samples must be 1-D, non-empty and of one length")
    rng = np.random.default_rng(seed)
    d = a - b
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 0.5 + level / 2])
    # (count + 1) / (n + 1): a resampling p-value is never exactly zero
    tail = min(np.sum(boots <= 0), np.sum(boots >= 0))
    p = 2 * (tail + 1) / (n_boot + 1)
    return {
        "difference": float(d.mean()),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p_value": float(min(1.0, p)),
    }


def _residuals(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones_like(z), z])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def partial_correlation(
    x: Sequence[float], y: Sequence[float], z: Sequence[float], n_perm: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Rank partial correlation of x and y controlling for z.

    Standard form: Pearson correlation of the residuals of rank(x) and rank(y) on rank(z), with a
    permutation p-value. The paper's form (Spearman of those residuals) is given for comparison."""
    rx, ry, rz = (stats.rankdata(np.asarray(v, float)) for v in (x, y, z))
    if len(rx) < 4:
        raise ValueError("a partial correlation needs at least 4 observations")
    ex, ey = _residuals(rx, rz), _residuals(ry, rz)
    if np.allclose(ex, 0) or np.allclose(ey, 0):
        return {"r": float("nan"), "p_value": float("nan"), "paper_spearman": float("nan"), "n": len(rx)}
    r = float(np.corrcoef(ex, ey)[0, 1])
    rng = np.random.default_rng(seed)
    perms = np.array([np.corrcoef(rng.permutation(ex), ey)[0, 1] for _ in range(n_perm)])
    p = (1 + np.sum(np.abs(perms) >= abs(r) - 1e-12)) / (n_perm + 1)
    return {
        "r": r,
        "p_value": float(p),
        "paper_spearman": float(stats.spearmanr(ex, ey).statistic),
        "n": len(rx),
    }
