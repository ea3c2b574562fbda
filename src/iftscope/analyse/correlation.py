"""Does consistency with the base model go with tuned accuracy? Tested within test sets.

Why not the pooled partial correlation (`stats.partial_correlation`, the paper's approach)? Its
control, the base model's accuracy on a test set, takes one value per set (three values in the
micro-world): a straight line fitted on its ranks cannot remove set differences that are not linear
in those ranks, so whatever separates the sets (they differ in both accuracy and consistency) shows
up as a correlation, and its permutation p-value treats rows from different sets as exchangeable
when they are not. Here the test set is a fixed effect instead: x and y are ranked within each set,
only within-set association counts, and rows are permuted only within their set (and, optionally,
within blocks such as the training seed).

A second problem is that where the base model is nearly always right, agreeing with it is agreeing
with the gold answer. `base_wrong_metrics` measures both quantities on the questions the base model
got wrong, where they can come apart.

Entry points (pure functions, no file I/O):
- `stratified_correlation(x, y, strata, blocks=None)`: the test itself;
- `correlation_from_rows(rows, x="spearman", y="accuracy")`: the same over `tables.tidy_rows`-like rows;
- `paper_partial_spearman(x, y, z)`: the paper's form, kept only as a labelled comparison;
- `base_wrong_metrics(base, tuned)` / `base_wrong_rows(base_by_set, runs)`: rows restricted to the
  questions the base model got wrong, ready for `correlation_from_rows`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from iftscope.analyse.consistency import spearman as option_spearman
from iftscope.analyse.stats import partial_correlation

MIN_STRATUM = 3


def _within_z(v: np.ndarray) -> np.ndarray:
    """Average ranks standardised to mean 0 and population sd 1 (so mean(zx * zy) is Spearman's r)."""
    r = stats.rankdata(v)
    return (r - r.mean()) / r.std()


def _exclusion(x: np.ndarray, y: np.ndarray) -> str | None:
    if len(x) < MIN_STRATUM:
        return f"fewer than {MIN_STRATUM} rows"
    if np.all(x == x[0]):
        return "x constant"
    if np.all(y == y[0]):
        return "y constant"
    return None


def _permutations(cells: Sequence[np.ndarray], n: int, n_perm: int, rng) -> np.ndarray:
    """(n_perm, n) row indices, each row a permutation that only moves indices within their cell."""
    perm = np.tile(np.arange(n), (n_perm, 1))
    for idx in cells:
        if len(idx) > 1:
            perm[:, idx] = idx[rng.permuted(np.tile(np.arange(len(idx)), (n_perm, 1)), axis=1)]
    return perm


def _p_two_sided(observed: float, null: np.ndarray) -> float:
    """(1 + #|null| >= |observed|) / (n_perm + 1): a permutation p-value is never zero."""
    return float((1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (len(null) + 1))


def _prepare(x, y, strata, blocks) -> tuple[np.ndarray, np.ndarray, list, list, int]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    strata = list(strata)
    blocks = [None] * len(strata) if blocks is None else list(blocks)
    if not (len(x) == len(y) == len(strata) == len(blocks)):
        raise ValueError("x, y, strata (and blocks) must have one length")
    keep = np.isfinite(x) & np.isfinite(y)
    pick = np.flatnonzero(keep)
    return x[keep], y[keep], [strata[i] for i in pick], [blocks[i] for i in pick], int((~keep).sum())


def _strata(x: np.ndarray, y: np.ndarray, strata: list) -> tuple[dict, dict[str, dict[str, Any]]]:
    """(usable stratum -> row indices, in first-seen order; excluded name -> {reason, n})."""
    groups, excluded = {}, {}
    for s in dict.fromkeys(strata):
        g = np.flatnonzero([t == s for t in strata])
        reason = _exclusion(x[g], y[g])
        if reason:
            excluded[str(s)] = {"reason": reason, "n": len(g)}
        else:
            groups[s] = g
    return groups, excluded


def stratified_correlation(
    x: Sequence[float],
    y: Sequence[float],
    strata: Sequence[Hashable],
    blocks: Sequence[Hashable] | None = None,
    n_perm: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman correlation of x and y within strata (test sets), pooled, with a stratified permutation test.

    Statistic: x and y are ranked within each stratum (average ranks for ties), the ranks are
    standardised within the stratum, and r = mean over all rows of zx * zy. That equals the
    n-weighted mean of the per-stratum Spearman correlations, so differences between strata in
    level or spread of x or y cannot contribute (the stratum is a fixed effect); ranking rather than
    centring raw values keeps each stratum on the same scale whatever its units, and matches the
    per-question Spearman used elsewhere. The weights n_s are close to n_s - 1, the inverse of a
    per-stratum r's null variance, so larger strata count more, as they should.

    p-value: x is permuted only within (stratum, block) cells, which is exactly the exchangeability
    the null "no association inside any stratum" gives; with `blocks` (e.g. the training seed),
    anything x and y share through the block (a seed effect on both) is kept in every permutation and
    so is not mistaken for association. Two-sided, (1 + count) / (n_perm + 1). Cells of size 1 cannot
    be permuted: when every cell has size 1 the p-value is 1 by construction. The permutations are
    drawn at once (memory about 16 * n_perm * n bytes: small for runs x sets rows).

    Rows with a non-finite x or y are dropped (counted in `n_dropped`). Strata with fewer than 3
    rows, or where x or y is constant (no ranks to correlate), contribute nothing and are listed in
    `excluded` with the reason.

    Returns: r, p_value, n (rows used), n_strata (strata used), n_perm, n_dropped,
    per_stratum {name: {r, p, n}} (same permutations, per stratum), excluded {name: {reason, n}},
    blocked (whether blocks were given), method (a one-line description)."""
    x, y, strata, blocks, dropped = _prepare(x, y, strata, blocks)
    groups, excluded = _strata(x, y, strata)
    blocked = any(b is not None for b in blocks)
    out: dict[str, Any] = {
        "r": float("nan"),
        "p_value": float("nan"),
        "n": 0,
        "n_strata": len(groups),
        "n_perm": n_perm,
        "n_dropped": dropped,
        "per_stratum": {},
        "excluded": excluded,
        "blocked": blocked,
        "method": "Spearman within strata (n-weighted), permuted within strata" + " and blocks" * blocked,
    }
    if groups:
        out.update(_permutation_test(x, y, strata, blocks, groups, n_perm, seed))
    return out


def _permutation_test(x, y, strata, blocks, groups: dict, n_perm: int, seed: int) -> dict[str, Any]:
    """r, p_value, n and per_stratum of stratified_correlation, from the usable strata `groups`."""
    idx = np.concatenate(list(groups.values()))
    zx = np.concatenate([_within_z(x[g]) for g in groups.values()])
    zy = np.concatenate([_within_z(y[g]) for g in groups.values()])
    labels = [(strata[i], blocks[i]) for i in idx]
    cells = [np.flatnonzero([lab == c for lab in labels]) for c in dict.fromkeys(labels)]
    perm = _permutations(cells, len(idx), n_perm, np.random.default_rng(seed))
    products = zx[perm] * zy  # (n_perm, n): the null draws of zx * zy, row by row
    bounds = np.cumsum([0] + [len(g) for g in groups.values()])
    per = {}
    for s, lo, hi in zip(groups, bounds[:-1], bounds[1:], strict=True):
        r_s = float(np.mean(zx[lo:hi] * zy[lo:hi]))
        per[str(s)] = {"r": r_s, "p": _p_two_sided(r_s, products[:, lo:hi].mean(axis=1)), "n": int(hi - lo)}
    r = float(np.mean(zx * zy))
    return {"r": r, "p_value": _p_two_sided(r, products.mean(axis=1)), "n": len(idx), "per_stratum": per}


def correlation_from_rows(
    rows: Iterable[Mapping[str, Any]],
    x: str = "spearman",
    y: str = "accuracy",
    stratum: str = "set",
    block: str | None = None,
    n_perm: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """`stratified_correlation` over rows such as `tables.tidy_rows` or `base_wrong_rows` give.

    Default: per-run Spearman consistency vs tuned accuracy, test set as the stratum; pass
    block="seed" to permute only within (set, seed). Rows whose x or y is None are treated as
    missing (counted in n_dropped). Returns stratified_correlation's dict plus x, y, stratum, block."""
    rows = list(rows)

    def col(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]

    out = stratified_correlation(
        col(x), col(y), [r[stratum] for r in rows], [r[block] for r in rows] if block else None,
        n_perm=n_perm, seed=seed,
    )  # fmt: skip
    return {**out, "x": x, "y": y, "stratum": stratum, "block": block}


def paper_partial_spearman(
    x: Sequence[float], y: Sequence[float], z: Sequence[float], n_perm: int = 5000, seed: int = 0
) -> dict[str, Any]:
    """The paper's form, for comparison only: rank x, y, z over all rows, regress rank(x) and rank(y)
    on rank(z), correlate the residuals (the paper: Spearman of them).

    Not a valid test when z is one value per test set (see the module docstring): the line on rank(z)
    leaves non-linear set differences in both residuals, and the p-value (from
    `stats.partial_correlation`, for the Pearson correlation of the residuals) permutes rows freely
    across sets. Returns: r (the paper's Spearman of residuals), r_pearson_residuals, p_value (for
    r_pearson_residuals, free permutation), n, method."""
    res = partial_correlation(x, y, z, n_perm=n_perm, seed=seed)
    return {
        "r": res["paper_spearman"],
        "r_pearson_residuals": res["r"],
        "p_value": res["p_value"],
        "n": res["n"],
        "method": "paper: Spearman of residuals of rank(x), rank(y) on rank(z); rows permuted freely",
    }


def _get(record: Any, key: str) -> Any:
    return record[key] if isinstance(record, Mapping) else getattr(record, key)


def base_wrong_metrics(base: Sequence[Any], tuned: Sequence[Any]) -> dict[str, Any]:
    """A tuned model's accuracy and consistency with the base, on the questions the base got wrong.

    Where the base model is nearly always right, agreeing with it is agreeing with the gold answer,
    so consistency and accuracy are tied by construction; on the questions it got wrong they can
    separate (a model that stays consistent there stays wrong). Records: dicts (a records-<set>.jsonl
    row) or ProbeRecords, with question_id, distribution and correct. Questions are matched by id;
    tuned questions the base never saw are skipped (n_unmatched).

    Returns: accuracy (tuned, on base-wrong questions; NaN if none), spearman (mean per-question
    Spearman between base and tuned option distributions, average ranks, undefined ones left out as
    in `consistency.summarise`), spearman_undefined, n (base-wrong questions), n_unmatched."""
    by_id = {_get(b, "question_id"): b for b in base}
    pairs = [(by_id[_get(t, "question_id")], t) for t in tuned if _get(t, "question_id") in by_id]
    wrong = [(b, t) for b, t in pairs if not _get(b, "correct")]
    rho = np.array([option_spearman(_get(b, "distribution"), _get(t, "distribution")) for b, t in wrong])
    finite = rho[np.isfinite(rho)]
    return {
        "accuracy": float(np.mean([bool(_get(t, "correct")) for _, t in wrong])) if wrong else float("nan"),
        "spearman": float(finite.mean()) if len(finite) else float("nan"),
        "spearman_undefined": int(len(rho) - len(finite)),
        "n": len(wrong),
        "n_unmatched": len(tuned) - len(pairs),
    }


def base_wrong_rows(
    base_by_set: Mapping[str, Sequence[Any]], runs: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per run and test set on the base model's wrong questions.

    `runs`: mappings with "set", "records" (the tuned model's records on that set) and any
    identifying keys (group, style, seed, ...), which are copied into the row. Output rows: those
    keys, set, and base_wrong_metrics' keys (accuracy, spearman, spearman_undefined, n, n_unmatched),
    so `correlation_from_rows(base_wrong_rows(...))` runs the stratified test on them."""
    return [
        {**{k: v for k, v in run.items() if k != "records"},
         **base_wrong_metrics(base_by_set[run["set"]], run["records"])}
        for run in runs
    ]  # fmt: skip
