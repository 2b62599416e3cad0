"""Power-law fits: exact recovery, calibrated errors, and bad input."""

import numpy as np
import pytest

from lqft_lab.analysis import fit_power_law


def test_exact_power_law_is_recovered():
    L = np.array([6, 8, 10, 12, 14])
    fit = fit_power_law(L, 0.3 * L**2.1, 0.02 * 0.3 * L**2.1)
    assert fit.z == pytest.approx(2.1, abs=1e-10)
    assert fit.alpha == pytest.approx(0.3, rel=1e-10)
    assert fit.chi2 == pytest.approx(0, abs=1e-12)
    assert fit.dof == 3
    assert fit(L) == pytest.approx(0.3 * L**2.1)


def test_errors_are_calibrated():
    # Gaussian noise of known size: the pull (z - z_true)/z_error must be standard normal
    # and chi² must follow its distribution with dof = 3 (checked by mean and by a KS test).
    from scipy import stats

    rng = np.random.default_rng(7)
    L = np.array([6, 8, 10, 12, 14], dtype=float)
    truth = 1.5 * L**0.7
    pulls, pvalues = [], []
    for _ in range(2000):
        err = 0.05 * truth
        fit = fit_power_law(L, truth * np.exp(rng.normal(0, 0.05, L.size)), err)
        pulls.append((fit.z - 0.7) / fit.z_error)
        pvalues.append(fit.p_value)
    assert stats.kstest(pulls, "norm").pvalue > 0.01
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_bad_input():
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2], [1, -1], [0.1, 0.1])
    with pytest.raises(ValueError, match="distinct"):
        fit_power_law([2, 2], [1, 1.1], [0.1, 0.1])
    with pytest.raises(ValueError, match="equal length"):
        fit_power_law([1, 2, 3], [1, 2], [0.1, 0.1])
    with pytest.raises(ValueError, match="NaN"):
        fit_power_law([1, 2], [1, float("nan")], [0.1, 0.1])
