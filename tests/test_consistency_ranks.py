"""The consistency measures' own ranks equal scipy's: spearman is scipy.stats.spearmanr's value to
the last bit and the paper's dense-rank correlation is the one built on scipy.stats.rankdata, on
distributions with and without ties (4 options, as the probe gives, and longer)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from iftscope.analyse.consistency import average_ranks, dense_ranks, paper_rank_correlation, spearman

values = st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.25, 0.4, 1e-9, 0.7]), min_size=2, max_size=9)


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_ranks_and_correlations_equal_scipys(p, data):
    q = data.draw(st.lists(st.floats(0, 1), min_size=len(p), max_size=len(p)))
    p, q = np.array(p), np.array(q)
    assert np.array_equal(average_ranks(p), stats.rankdata(p))
    assert np.array_equal(dense_ranks(p), stats.rankdata(p, method="dense").astype(float))
    if np.all(p == p[0]) or np.all(q == q[0]):
        assert np.isnan(spearman(p, q))
    else:
        assert spearman(p, q) == float(stats.spearmanr(p, q).statistic)  # bit for bit
    rp, rq = stats.rankdata(-p, method="dense"), stats.rankdata(-q, method="dense")
    if np.all(rp == rp[0]) or np.all(rq == rq[0]):
        assert np.isnan(paper_rank_correlation(p, q))
    else:
        assert paper_rank_correlation(p, q) == float(np.corrcoef(rp, rq)[0, 1])


def test_random_probe_distributions_equal_scipys():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        p, q = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        assert spearman(p, q) == float(stats.spearmanr(p, q).statistic)


@pytest.mark.parametrize("f", [spearman, paper_rank_correlation])
def test_nan_in_a_distribution_gives_nan(f):
    assert np.isnan(f([0.1, float("nan"), 0.5, 0.4], [0.2, 0.3, 0.1, 0.4]))
