"""Inference at the level of the randomness: group contrasts over training seeds.

A tuned model's accuracy varies with its training seed (group sampling, initialisation, batch
order) far more than with the questions drawn, so a difference between two groups is first taken
within each seed (mean over the questions both were read on) and then:
- tested over seeds: a one-sample t interval and test of the per-seed differences (n_seeds - 1
  degrees of freedom);
- given a two-level (cluster) bootstrap interval: seeds resampled, then questions within each drawn
  seed, the default interval of the report.
With fewer than MIN_SEEDS seeds neither is shown: a question-level interval within seeds is kept,
labelled as ignoring the training randomness. Secondary contrasts get Holm-adjusted p-values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SEEDS = 3  # a t interval over 2 seeds has 1 degree of freedom: not an interval to act on


@dataclass(frozen=True)
class ContrastsConfig:
    """Which group differences a study tests (on its main test set and style)."""

    primary: str = "H vs I"  # reported unadjusted; the verdict rests on it
    # () = S vs I, H vs S, each mixture vs I and vs S, counterfactual vs H, unknown-gold vs H
    secondary: tuple[str, ...] = ()
    alpha: float = 0.05  # level of every test; secondaries are Holm-adjusted as one family


def parse_contrast(text: str) -> tuple[str, str]:
    """`"H vs I"` -> ("H", "I"); group names may contain hyphens (mix-0.25, unknown-gold)."""
    parts = [p.strip() for p in text.split(" vs ")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"contrast {text!r}: expected 'A vs B', e.g. 'S vs I'")
    return parts[0], parts[1]


def default_secondary(groups: Sequence[str], primary: tuple[str, str]) -> list[tuple[str, str]]:
    """The paper's claims beyond the primary, among the groups a study has."""
    mixes = sorted((g for g in groups if g.startswith("mix-")), key=lambda g: float(g[4:]))
    wanted = [("S", "I"), ("H", "S")] + [(m, ref) for m in mixes for ref in ("I", "S")]
    wanted += [("H", "counterfactual"), ("H", "unknown-gold")]
    have = set(groups)
    return [c for c in wanted if c != primary and c[0] in have and c[1] in have]


def paired_over_seeds(
    per_seed: Sequence[Sequence[float]], n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """`per_seed[i]`: the per-question differences a - b within training seed i. Returns the mean
    of the per-seed means (`difference`), the cluster-bootstrap interval (`ci_low`, `ci_high`),
    the seed-level t test (`p_value`, `t_ci_low`, `t_ci_high`), and, always, a question-level
    bootstrap within seeds (`question_ci_low/high`, `question_p_value`) that ignores the seeds."""
    arrays = [np.asarray(d, float) for d in per_seed if len(d)]
    if not arrays:
        raise ValueError("no paired questions in any seed")
    means = np.array([d.mean() for d in arrays])
    k = len(arrays)
    out: dict[str, Any] = {
        "difference": float(means.mean()),
        "seeds": k,
        "seed_differences": [float(m) for m in means],
        "questions": int(sum(len(d) for d in arrays)),
        "ci_low": None, "ci_high": None, "p_value": None, "t_ci_low": None, "t_ci_high": None,
    }  # fmt: skip
    rng = np.random.default_rng(seed)
    qb = np.stack([_question_means(d, n_boot, 1, rng)[:, 0] for d in arrays], axis=1).mean(axis=1)
    out.update(_interval(qb, level, "question_"))
    if k >= MIN_SEEDS:
        out.update(_seed_t(means, level))
        out.update(
            {k_: v for k_, v in _interval(_cluster(arrays, n_boot, rng), level, "").items() if "ci" in k_}
        )
    return out


def _seed_t(means: np.ndarray, level: float) -> dict[str, float]:
    """One-sample t interval and two-sided test of the per-seed differences."""
    k, sd = len(means), means.std(ddof=1)
    if sd <= 1e-12 * max(1.0, abs(means.mean())):  # every seed gave the same difference
        p = 1.0 if means[0] == 0 else 0.0
        return {"p_value": p, "t_ci_low": float(means[0]), "t_ci_high": float(means[0])}
    from scipy import stats  # here: the recipe check (study.config) imports this module, not scipy

    half = stats.t.ppf(0.5 + level / 2, k - 1) * sd / np.sqrt(k)
    p = float(stats.ttest_1samp(means, 0.0).pvalue)
    return {"p_value": p, "t_ci_low": float(means.mean() - half), "t_ci_high": float(means.mean() + half)}


def _question_means(d: np.ndarray, n_boot: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, k] means of question resamples of `d` (multinomial over its distinct values:
    exact and fast for correctness differences, which take three values)."""
    values, counts = np.unique(d, return_counts=True)
    drawn = rng.multinomial(len(d), counts / counts.sum(), size=(n_boot, k))
    return drawn @ values / len(d)


def _cluster(arrays: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Two-level bootstrap: k seeds drawn with replacement, questions resampled within each draw."""
    k = len(arrays)
    pick = rng.integers(0, k, size=(n_boot, k))
    qmeans = np.stack([_question_means(d, n_boot, k, rng) for d in arrays])  # [seed, boot, slot]
    return qmeans[pick, np.arange(n_boot)[:, None], np.arange(k)[None, :]].mean(axis=1)


def _interval(boots: np.ndarray, level: float, prefix: str) -> dict[str, float]:
    """Percentile interval and two-sided p ((count + 1) / (n + 1): never exactly zero)."""
    lo, hi = np.quantile(boots, [(1 - level) / 2, 0.5 + level / 2])
    tail = min(np.sum(boots <= 0), np.sum(boots >= 0))
    p = min(1.0, 2 * (tail + 1) / (len(boots) + 1))
    return {f"{prefix}ci_low": float(lo), f"{prefix}ci_high": float(hi), f"{prefix}p_value": float(p)}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (family-wise error), None kept in place."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    order = sorted(idx, key=lambda i: p_values[i])
    out: list[float | None] = list(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[i]))
        out[i] = running
    return out


def slope_over_seeds(r: Sequence[float], per_seed: Sequence[Sequence[float]], level: float = 0.95) -> dict:
    """Dose-response: per seed, the least-squares slope of accuracy on the share r of
    self-aligning targets; then a t interval and test of the slopes over seeds."""
    x = np.asarray(r, float)
    slopes = np.array([np.polyfit(x, np.asarray(y, float), 1)[0] for y in per_seed])
    out: dict[str, Any] = {
        "slope": float(slopes.mean()),
        "seed_slopes": slopes.tolist(),
        "seeds": len(slopes),
    }
    out.update({"p_value": None, "ci_low": None, "ci_high": None})
    if len(slopes) >= MIN_SEEDS:
        t = _seed_t(slopes, level)
        out.update({"p_value": t["p_value"], "ci_low": t["t_ci_low"], "ci_high": t["t_ci_high"]})
    return out
