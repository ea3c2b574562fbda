"""Within-set correlation of consistency and accuracy: known answers, calibration under a null with
large between-set differences (against the old pooled partial correlation), power, blocks; and
Cohen's kappa with more than two classes."""

import math

import numpy as np
import pytest

from iftscope.analyse.consistency import cohen_kappa
from iftscope.analyse.correlation import (
    base_wrong_metrics,
    base_wrong_rows,
    correlation_from_rows,
    paper_partial_spearman,
    stratified_correlation,
)
from iftscope.analyse.stats import partial_correlation

# --- known answers ---------------------------------------------------------------------------

# A: x = 1..4, y = 1,3,2,4: d = 0,-1,1,0, rho = 1 - 6*2/(4*15) = 0.8
# B: y falls as x rises: rho = -1
# pooled = (4 * 0.8 + 3 * -1) / 7 = 0.2 / 7
HAND_X = [1, 2, 3, 4, 10, 20, 30, 5, 6, 1, 2, 3, float("nan")]
HAND_Y = [1, 3, 2, 4, 300, 200, 100, 9, 9, 7, 7, 7, 1]
HAND_S = ["A"] * 4 + ["B"] * 3 + ["C"] * 2 + ["D"] * 3 + ["A"]


def test_hand_built_within_stratum_values():
    out = stratified_correlation(HAND_X, HAND_Y, HAND_S, n_perm=20_000)
    assert out["per_stratum"]["A"]["r"] == pytest.approx(0.8)
    assert out["per_stratum"]["B"]["r"] == pytest.approx(-1.0)
    assert out["r"] == pytest.approx(0.2 / 7)
    assert (out["n"], out["n_strata"], out["n_dropped"]) == (7, 2, 1)
    assert out["excluded"] == {
        "C": {"reason": "fewer than 3 rows", "n": 2},
        "D": {"reason": "y constant", "n": 3},
    }
    # exact permutation p: n = 4, |rho| >= 0.8 in 8 of 24 orders; n = 3, |rho| = 1 in 2 of 6
    assert out["per_stratum"]["A"]["p"] == pytest.approx(1 / 3, abs=0.015)
    assert out["per_stratum"]["B"]["p"] == pytest.approx(1 / 3, abs=0.015)
    assert {"r", "p_value", "n", "n_strata", "n_perm", "n_dropped", "per_stratum", "excluded", "blocked",
            "method"} == set(out)  # fmt: skip


def test_set_levels_and_scales_do_not_matter():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    s = np.repeat(["a", "b", "c"], 10)
    shift = np.repeat([0.0, 100.0, -50.0], 10)
    base = stratified_correlation(x, y, s, n_perm=500)
    moved = stratified_correlation(np.exp(x) + shift, 3 * y - shift, s, n_perm=500)  # monotone within set
    assert moved["r"] == pytest.approx(base["r"]) and moved["p_value"] == base["p_value"]
    order = rng.permutation(30)
    shuffled = stratified_correlation(x[order], y[order], s[order], n_perm=500)
    assert shuffled["r"] == pytest.approx(base["r"])
    for name in "abc":
        assert shuffled["per_stratum"][name]["r"] == pytest.approx(base["per_stratum"][name]["r"])


def test_between_set_differences_alone_give_no_correlation():
    # perfectly correlated across sets, exactly unrelated inside each (rho = 0 by construction)
    x = [1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24]
    y = [2, 4, 1, 3, 12, 14, 11, 13, 22, 24, 21, 23]
    out = stratified_correlation(x, y, np.repeat([0, 1, 2], 4), n_perm=2000)
    assert out["r"] == pytest.approx(0.0, abs=1e-12) and out["p_value"] > 0.9
    assert paper_partial_spearman(x, y, np.repeat([0.3, 0.6, 0.99], 4), n_perm=200)["n"] == 12


def test_single_row_cells_cannot_be_permuted():
    out = stratified_correlation([1, 2, 3, 4], [1, 2, 3, 4], "ssss", blocks=[0, 1, 2, 3], n_perm=100)
    assert out["r"] == pytest.approx(1.0) and out["p_value"] == 1.0 and out["blocked"]
    assert "blocks" in out["method"]


def test_nothing_usable():
    out = stratified_correlation([1, 2], [2, 1], ["a", "a"], n_perm=10)
    assert math.isnan(out["r"]) and math.isnan(out["p_value"]) and out["n"] == 0
    with pytest.raises(ValueError):
        stratified_correlation([1, 2, 3], [1, 2], ["a"] * 3)


def test_rows_interface_and_paper_form():
    rows = [
        {"set": s, "seed": i % 2, "spearman": x, "accuracy": y}
        for i, (s, x, y) in enumerate(zip(HAND_S, HAND_X, HAND_Y, strict=True))
    ]
    rows.append({"set": "A", "seed": 0, "spearman": None, "accuracy": 0.5})
    out = correlation_from_rows(rows, n_perm=500)
    assert out["r"] == pytest.approx(0.2 / 7) and out["n_dropped"] == 2
    assert (out["x"], out["y"], out["stratum"], out["block"]) == ("spearman", "accuracy", "set", None)
    assert correlation_from_rows(rows, block="seed", n_perm=50)["blocked"]
    x, y, z = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5], [7, 7, 7, 7, 7]
    paper = paper_partial_spearman(x, y, z, n_perm=500)
    old = partial_correlation(x, y, z, n_perm=500)
    assert paper["r"] == old["paper_spearman"] and paper["r_pearson_residuals"] == old["r"]
    assert paper["p_value"] == old["p_value"] and "paper" in paper["method"]


# --- base-wrong questions ----------------------------------------------------------------------


def _rec(qid, dist, gold, correct=None):
    pred = int(np.argmax(dist))
    return {"question_id": qid, "gold": gold, "distribution": dist, "prediction": pred,
            "correct": pred == gold if correct is None else correct}  # fmt: skip


def test_base_wrong_metrics_by_hand():
    base = [
        _rec("q1", [0.7, 0.1, 0.1, 0.1], 0),  # base right: left out
        _rec("q2", [0.1, 0.2, 0.3, 0.4], 0),  # wrong; tuned reverses the order: rho = -1, tuned right
        _rec("q3", [0.5, 0.2, 0.2, 0.1], 1),  # wrong; tuned uniform: rho undefined, tuned wrong
        _rec("q4", [0.1, 0.6, 0.2, 0.05], 2),  # wrong; tuned keeps the order: rho = 1, tuned wrong
    ]
    tuned = [
        _rec("q1", [0.1, 0.7, 0.1, 0.1], 0),
        _rec("q2", [0.4, 0.3, 0.2, 0.1], 0),
        _rec("q3", [0.25] * 4, 1, correct=False),
        _rec("q4", [0.2, 0.5, 0.25, 0.05], 2),
        _rec("q9", [0.4, 0.3, 0.2, 0.1], 0),  # the base never saw it
    ]
    m = base_wrong_metrics(base, tuned)
    assert m == {"accuracy": pytest.approx(1 / 3), "spearman": pytest.approx(0.0), "spearman_undefined": 1,
                 "n": 3, "n_unmatched": 1}  # fmt: skip
    rows = base_wrong_rows({"s": base}, [{"group": "H", "seed": 0, "set": "s", "records": tuned}])
    assert rows == [{"group": "H", "seed": 0, "set": "s", **m}]
    none_wrong = base_wrong_metrics(base[:1], tuned[:1])
    assert none_wrong["n"] == 0 and math.isnan(none_wrong["accuracy"]) and math.isnan(none_wrong["spearman"])


# --- simulations -------------------------------------------------------------------------------

SETS, PER_SET = 3, 42
BASE_ACC = np.array([0.45, 0.70, 0.99])  # the old control: one value per set
MU_X = np.array([0.55, 0.85, 0.70])  # set means of consistency, not in the control's order
MU_Y = np.array([0.30, 0.80, 0.60])  # set means of tuned accuracy


def _simulate(rng, rho=0.0):
    """One study's rows: big set differences; inside a set x, y bivariate normal with correlation rho;
    y rounded to an accuracy on 250 questions (ties, as in the real data)."""
    e1, e2 = rng.normal(size=(2, SETS * PER_SET))
    s = np.repeat(np.arange(SETS), PER_SET)
    x = MU_X[s] + 0.02 * e1
    y = np.round((MU_Y[s] + 0.03 * (rho * e1 + np.sqrt(1 - rho**2) * e2)) * 250) / 250
    return x, y, s


def _rejection_rate(n_sims, rho, seed, old=False):
    rng = np.random.default_rng(seed)
    rejected = 0
    for i in range(n_sims):
        x, y, s = _simulate(rng, rho)
        if old:
            p = partial_correlation(x, y, BASE_ACC[s], n_perm=199, seed=i)["p_value"]
        else:
            p = stratified_correlation(x, y, s, n_perm=199, seed=i)["p_value"]
        rejected += p < 0.05
    return rejected / n_sims


def test_null_with_large_set_differences_is_not_significant():
    # 199 permutations: p takes values k / 200, so p < 0.05 is an exact level-0.045 test; enough
    # resolution at 0.05 and 1,000 data sets stay fast because the permutations are vectorised
    new = _rejection_rate(1000, 0.0, seed=2024)
    old = _rejection_rate(1000, 0.0, seed=2024, old=True)  # the same 1,000 data sets
    print(f"\nnull, 3 sets x {PER_SET}: stratified rejects {new:.1%} (of 1000), "
          f"old pooled partial correlation rejects {old:.1%} (same data sets)")  # fmt: skip
    assert 1 - new >= 0.93, f"stratified test not significant in only {1 - new:.1%} of 1000 null data sets"
    assert old > 0.5, f"the old pooled test was expected to reject often, rejected {old:.1%}"


def test_power_with_a_within_set_relation():
    strong, moderate = _rejection_rate(200, 0.6, seed=7), _rejection_rate(200, 0.3, seed=8)
    print(f"\npower (200 data sets): r = 0.6 within sets {strong:.1%}, r = 0.3 within sets {moderate:.1%}")
    assert strong >= 0.95, f"power at r = 0.6 only {strong:.1%}"
    assert moderate >= 0.6, f"power at r = 0.3 only {moderate:.1%}"


def test_blocks_absorb_a_shared_seed_effect():
    """A training seed that moves both x and y, nothing else: blocking on seed keeps the level."""
    rng = np.random.default_rng(11)
    seeds, per_cell, n_sims = 6, 7, 300
    s = np.repeat(np.arange(SETS), seeds * per_cell)
    seed = np.tile(np.repeat(np.arange(seeds), per_cell), SETS)
    rejected = {"blocked": 0, "unblocked": 0}
    for i in range(n_sims):
        effect = rng.normal(size=seeds)[seed]
        x, y = MU_X[s] + effect + rng.normal(size=len(s)), MU_Y[s] + effect + rng.normal(size=len(s))
        rejected["blocked"] += stratified_correlation(x, y, s, seed, n_perm=199, seed=i)["p_value"] < 0.05
        rejected["unblocked"] += stratified_correlation(x, y, s, n_perm=199, seed=i)["p_value"] < 0.05
    rate = {k: v / n_sims for k, v in rejected.items()}
    print(f"\nshared seed effect, no within-seed relation: rejects blocked {rate['blocked']:.1%}, "
          f"unblocked {rate['unblocked']:.1%}")  # fmt: skip
    assert rate["blocked"] <= 0.08 and rate["unblocked"] > 0.5, rate


# --- Cohen's kappa -----------------------------------------------------------------------------


def _labels(confusion):
    a, b = [], []
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            a += [i] * count
            b += [j] * count
    return a, b


def test_cohen_kappa_three_classes_by_hand():
    # rows: a's label, columns: b's. observed 15/20 = 0.75; marginals a (.30,.35,.35), b (.35,.30,.35)
    # chance = .105 + .105 + .1225 = .3325; kappa = .4175 / .6675 = 167 / 267
    a, b = _labels([[5, 1, 0], [2, 4, 1], [0, 1, 6]])
    assert cohen_kappa(a, b, 3) == pytest.approx(167 / 267)
    assert cohen_kappa(a, b, 5) == pytest.approx(167 / 267)  # unused classes change nothing
    assert cohen_kappa(a, b, 2) == pytest.approx(167 / 267)  # label 2 >= n_classes: tables grow


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([0, 0, 1, 1], [0, 0, 1, 1], 2) == 1.0
    assert math.isnan(cohen_kappa(np.array([3, 3, 3]), np.array([3, 3, 3]), 2))  # chance agreement 1
    assert math.isnan(cohen_kappa([], [], 4))
    # labels up to 3 with n_classes 2: observed 0.75, chance (1/4)(1/4) * 2 + (1/4)(1/2) = 0.25
    assert cohen_kappa([0, 1, 2, 3], [0, 1, 3, 3], 2) == pytest.approx((0.75 - 0.25) / 0.75)
    for bad in (([0, -1], [0, 1]), ([0, 1], [0]), ([0.5, 1.0], [0, 1])):
        with pytest.raises(ValueError):
            cohen_kappa(*bad, 3)
