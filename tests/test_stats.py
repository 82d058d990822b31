import numpy as np
import pytest

from mdsgap import stats


def test_mean_ci_covers_the_mean_and_widens_with_seed_spread():
    rng = np.random.default_rng(0)
    tight = [rng.normal(0.5, 0.1, 200) for _ in range(3)]
    spread = [rng.normal(mu, 0.1, 200) for mu in (0.2, 0.5, 0.8)]
    m, lo, hi = stats.mean_ci(tight)
    assert lo < m < hi and m == pytest.approx(0.5, abs=0.02)
    _, lo2, hi2 = stats.mean_ci(spread)
    assert hi2 - lo2 > 5 * (hi - lo)


def test_mean_ci_single_group_is_the_plain_bootstrap_and_nan_safe():
    g = np.array([0.0, 1.0] * 50 + [np.nan])
    m, lo, hi = stats.mean_ci([g], n_boot=2000)
    assert m == pytest.approx(0.5) and lo == pytest.approx(0.4, abs=0.03) and hi == pytest.approx(0.6, abs=0.03)
    assert all(np.isnan(v) for v in stats.mean_ci([np.array([np.nan])]))


def test_seeds_ci_is_mean_ci_with_one_group_per_seed():
    vals = [0.2, 0.5, 0.8]
    assert stats.seeds_ci(vals) == stats.mean_ci([np.array([v]) for v in vals])
