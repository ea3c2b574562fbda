"""Inference over training seeds (analyse.inference, analyse.tables): known answers and simulations."""

import numpy as np
import pytest
from scipy import stats

from iftscope.analyse.inference import (
    ContrastsConfig,
    default_secondary,
    holm,
    paired_over_seeds,
    parse_contrast,
    slope_over_seeds,
)
from iftscope.analyse.stats import paired_bootstrap
from iftscope.analyse.tables import dose_response, paired_tests, verdict


def test_seed_level_t_matches_a_hand_computation():
    per_seed = [[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 0]]  # means 0.75, 0.25, 0.75
    out = paired_over_seeds(per_seed, n_boot=2000)
    means = np.array([0.75, 0.25, 0.75])
    half = stats.t.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
    assert out["difference"] == pytest.approx(means.mean()) and out["seeds"] == 3 and out["questions"] == 12
    assert out["t_ci_low"] == pytest.approx(means.mean() - half) and out["t_ci_high"] == pytest.approx(
        means.mean() + half
    )
    assert out["p_value"] == pytest.approx(stats.ttest_1samp(means, 0).pvalue)
    assert out["ci_low"] < out["difference"] < out["ci_high"]  # the cluster bootstrap interval


def test_too_few_seeds_give_no_interval_over_seeds():
    out = paired_over_seeds([[1, 0, 1, 1], [1, 1, 0, 1]], n_boot=500)
    assert out["seeds"] == 2 and out["ci_low"] is None and out["p_value"] is None
    assert out["question_ci_low"] <= 0.75 <= out["question_ci_high"]


def test_the_cluster_interval_includes_the_seeds_spread():
    """Seeds that disagree widen the interval; the question-level one does not see it."""
    rng = np.random.default_rng(1)
    per_seed = [rng.binomial(1, p, 400) - rng.binomial(1, 0.2, 400) for p in (0.3, 0.9, 0.5, 0.7)]
    out = paired_over_seeds(per_seed)
    assert out["ci_high"] - out["ci_low"] > 2 * (out["question_ci_high"] - out["question_ci_low"])


def test_null_rejection_rate_is_nominal_over_seeds_not_over_questions(capsys):
    """No true difference between the groups, but each training run has its own offset (the
    randomness of training): the seed-level test rejects at about 5%; a bootstrap over questions
    that ignores the seeds rejects far more often."""
    rng = np.random.default_rng(0)
    sims, seeds, n = 1000, 3, 200
    new = old = 0
    for _ in range(sims):
        per_seed = []
        for _ in range(seeds):
            pa, pb = np.clip(0.5 + rng.normal(0, 0.1, 2), 0.01, 0.99)  # each run's own accuracy
            per_seed.append(rng.binomial(1, pa, n) - rng.binomial(1, pb, n))
        new += paired_over_seeds(per_seed, n_boot=50)["p_value"] < 0.05
        flat = np.concatenate(per_seed)
        old += paired_bootstrap(np.clip(flat, 0, 1), np.clip(-flat, 0, 1), n_boot=200)["p_value"] < 0.05
    rate, old_rate = new / sims, old / sims
    print(
        f"null rejection over {sims} simulations: seed-level t {rate:.3f}; question bootstrap {old_rate:.3f}"
    )
    assert 0.03 <= rate <= 0.07, rate
    assert old_rate > 0.3, old_rate


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.2]) == [None, 0.2]


def test_contrasts_parse_and_default():
    assert parse_contrast("mix-0.25 vs unknown-gold") == ("mix-0.25", "unknown-gold")
    with pytest.raises(ValueError, match="expected 'A vs B'"):
        parse_contrast("H-I")
    groups = ["H", "I", "S", "mix-0.75", "mix-0.25", "counterfactual"]
    assert default_secondary(groups, ("H", "I")) == [
        ("S", "I"), ("H", "S"), ("mix-0.25", "I"), ("mix-0.25", "S"), ("mix-0.75", "I"), ("mix-0.75", "S"),
        ("H", "counterfactual"),
    ]  # fmt: skip


def _runs(groups, seeds, sets=("main",), style="answer"):
    return [
        {"group": g, "style": style, "seed": s, "metrics": {x: {} for x in sets}}
        for g in groups
        for s in seeds
    ]


def test_paired_tests_on_a_hand_built_study():
    """H right on every question; I right on the first k of 10 in seed k; S on all but one."""

    def correct(key, test_set):
        group, _, seed = key.split("/")
        k = int(seed[1:])
        right = {"H": 10, "I": k, "S": 9}[group]
        return {f"q{i}": i < right for i in range(10)}

    tests = paired_tests(correct, _runs("HIS", [2, 4, 6]), ContrastsConfig(), "main", "answer")
    by = {(t["a"], t["b"]): t for t in tests}
    assert by[("H", "I")]["role"] == "primary" and "p_holm" not in by[("H", "I")]
    assert by[("H", "I")]["seed_differences"] == pytest.approx([0.8, 0.6, 0.4])
    assert by[("S", "I")]["difference"] == pytest.approx(0.9 - 0.4)
    assert (
        by[("H", "S")]["seed_differences"] == pytest.approx([0.1, 0.1, 0.1])
        and by[("H", "S")]["p_value"] == 0
    )
    family = [by[("S", "I")]["p_value"], by[("H", "S")]["p_value"]]
    assert [by[c]["p_holm"] for c in (("S", "I"), ("H", "S"))] == pytest.approx(holm(family))


def _test(a, b, diff, p, role="primary", seeds=3):
    t = {"a": a, "b": b, "role": role, "difference": diff, "p_value": p, "seeds": seeds,
         "ci_low": diff - 0.1, "ci_high": diff + 0.1, "question_ci_low": 0,
         "question_ci_high": 0}  # fmt: skip
    return t | ({"p_holm": p} if role == "secondary" else {})


def test_verdict_follows_the_tested_contrasts():
    table = {
        f"{g}/answer": {"main": {"accuracy": {"mean": m}}} for g, m in (("H", 0.9), ("I", 0.3), ("S", 0.6))
    }
    v = verdict(
        table, [_test("H", "I", 0.6, 0.001), _test("S", "I", 0.3, 0.2, "secondary")], "main", "answer", 0.05
    )
    assert v.startswith("Self-aligning, not learning: on main") and "(H 0.900 vs I 0.300;" in v
    assert "S (I's items, the model's own answers) not separated from I" in v and "Holm-adjusted p = 0.2" in v
    assert verdict(table, [_test("H", "I", 0.6, 0.2)], "main", "answer", 0.05).startswith(
        "No clear difference"
    )
    assert verdict(table, [_test("H", "I", -0.6, 0.01)], "main", "answer", 0.05).startswith("Learning:")
    few = _test("H", "I", 0.6, None, seeds=2)
    assert verdict(table, [few], "main", "answer", 0.05).startswith("Too few training seeds to judge H vs I")
    assert verdict(table, [], "main", "answer", 0.05).startswith("Not enough groups")


def test_dose_response_slope_over_seeds():
    rows = [{"group": g, "style": "answer", "seed": s, "set": "main", "accuracy": acc + 0.01 * s}
            for s in (0, 1, 2) for g, acc in (("I", 0.2), ("mix-0.5", 0.5), ("S", 0.8))]  # fmt: skip
    dr = dose_response(rows, "main", "answer")
    assert dr["groups"] == ["I", "mix-0.5", "S"] and dr["r"] == [0.0, 0.5, 1.0]
    assert dr["slope"] == pytest.approx(0.6) and dr["seed_slopes"] == pytest.approx([0.6] * 3)
    assert dr["p_value"] == 0.0 and [a["mean"] for a in dr["accuracy"]] == pytest.approx([0.21, 0.51, 0.81])
    assert slope_over_seeds([0, 1], [[0, 1], [0, 3]])["p_value"] is None  # 2 seeds: no test
    assert dose_response(rows[:2], "main", "answer") is None
