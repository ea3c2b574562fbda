"""Every consistency and statistics measure against hand-computed values."""

import math

import numpy as np
import pytest

from iftscope.analyse.consistency import (
    cohen_kappa,
    cosine,
    kl,
    paper_rank_correlation,
    per_question,
    spearman,
    summarise,
)
from iftscope.analyse.stats import mean_ci, paired_bootstrap, partial_correlation


def test_kl_by_hand_with_zeros():
    assert kl([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))  # 0 log 0 = 0
    assert kl([0.5, 0.5], [1.0, 0.0]) == math.inf  # tuned gives zero to an option base does not
    assert kl([0.0, 1.0], [0.0, 1.0]) == 0.0  # one-hot on one-hot
    assert kl([0.25] * 4, [0.7, 0.1, 0.1, 0.1]) == pytest.approx(
        0.25 * sum(math.log(0.25 / x) for x in (0.7, 0.1, 0.1, 0.1))
    )


def test_rank_correlations_with_ties_and_uniform():
    assert spearman([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)
    assert spearman([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    # average ranks (3.5, 3.5, 1.5, 1.5) vs (4, 3, 2, 1): covariance 4, norms 2 and sqrt(5)
    assert spearman([0.4, 0.4, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(4 / (2 * math.sqrt(5)))
    assert math.isnan(spearman([0.25] * 4, [0.4, 0.3, 0.2, 0.1]))  # uniform: undefined, said as NaN
    # the paper's dense descending ranks: (1, 1, 2, 2) vs (1, 2, 3, 4)
    assert paper_rank_correlation([0.4, 0.4, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(
        2 / math.sqrt(5)
    )
    assert paper_rank_correlation([0.5, 0.2, 0.2, 0.1], [0.5, 0.3, 0.1, 0.1]) == pytest.approx(
        np.corrcoef([1, 2, 2, 3], [1, 2, 3, 3])[0, 1]
    )


def test_cosine_kappa_and_summary():
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0 and cosine([0.5, 0.5], [0.5, 0.5]) == pytest.approx(1.0)
    assert cohen_kappa([0, 0, 1, 1], [0, 0, 1, 1], 2) == 1.0
    assert cohen_kappa([0, 1, 0, 1], [0, 0, 1, 1], 2) == 0.0  # agreement 0.5 = chance 0.5
    rows = [
        per_question([0.7, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1], 0),
        per_question([0.25] * 4, [0.1, 0.6, 0.2, 0.1], 1),
        per_question([0.6, 0.4, 0.0, 0.0], [0.4, 0.6, 0.0, 0.0], 0),
    ]
    s = summarise(rows, 4, [0, 0, 0], [0, 1, 1])
    assert s["spearman_undefined"] == 1 and not math.isnan(s["spearman"])
    assert s["kl_base_tuned_infinite"] == 0 and s["correct_to_wrong"] == 1 and s["wrong_to_correct"] == 1
    assert s["argmax_agreement"] == pytest.approx(1 / 3)


def test_mean_ci_and_paired_bootstrap():
    ci = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
    assert ci["mean"] == 2.0 and ci["ci"] == pytest.approx([2 - half, 2 + half])
    assert mean_ci([0.5])["ci"] is None and mean_ci([0.5, 0.7])["ci"] is None  # too few seeds
    assert mean_ci([0.5, 0.7], min_n=2)["ci"] is not None
    same = paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0])
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    better = paired_bootstrap([1] * 50, [0] * 50)
    assert (
        better["difference"] == 1.0
        and better["p_value"] == pytest.approx(2 / 10_001)
        and better["ci_low"] == 1.0
    )
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])


def test_partial_correlation_by_hand():
    # z constant: residuals are the centred ranks, so r is Spearman's rho = 1 - 6 * 4 / (5 * 24)
    out = partial_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], [7, 7, 7, 7, 7], n_perm=2000)
    assert out["r"] == pytest.approx(0.8) and out["paper_spearman"] == pytest.approx(0.8)
    # exact two-sided p: 16 of the 120 orders of 5 ranks have |rho| >= 0.8 (sum of squared rank
    # differences <= 4: the identity, 4 adjacent swaps, 3 pairs of disjoint ones; and their reverses);
    # 2000 seeded permutations estimate it to within about 0.008 (one standard error)
    assert out["p_value"] == pytest.approx(16 / 120, abs=0.03)
    rng = np.random.default_rng(0)
    z = rng.normal(size=300)
    x, y = z + rng.normal(size=300), z + rng.normal(size=300)  # related only through z
    assert abs(partial_correlation(x, y, z, n_perm=500)["r"]) < 0.15
    assert partial_correlation(x, x + 0.01 * rng.normal(size=300), z, n_perm=200)["r"] > 0.95
