"""Tests of lqft_lab.analysis: Γ-method against exact AR(1) values and pyerrors, ESS against
closed forms, resampling and reweighting against known results, and input validation.

Statistical tolerances are in units of the error each method itself reports, unless said.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from lqft_lab.analysis import (
    autocorrelation,
    bin_data,
    bootstrap,
    ess,
    gamma_method,
    integrated_autocorrelation_time,
    jackknife,
    mcmc_ess,
    reweight,
)


def ar1(n: int, a: float, seed: int, replicas: int = 1) -> np.ndarray:
    """Stationary AR(1) chains ``x_t = a x_{t-1} + sqrt(1-a²) η_t`` of shape ``(n, replicas)``.

    Unit variance, ``ρ(t) = a^|t|``, exact ``tau_int = (1+a) / (2(1-a))``.
    """
    eta = np.random.default_rng(seed).standard_normal((n, replicas))
    eta[0] /= np.sqrt(1 - a * a)  # x_0 ~ N(0, 1): start in equilibrium
    return lfilter([np.sqrt(1 - a * a)], [1.0, -a], eta, axis=0)


# ---------------------------------------------------------------- Γ-method: exact references


def test_gamma_iid_gaussian():
    n = 20000
    x = 3.0 + 2.0 * np.random.default_rng(0).standard_normal(n)
    res = gamma_method(x)
    assert abs(res.tau_int - 0.5) <= 3 * res.tau_int_error + 1e-12
    assert res.error == pytest.approx(x.std(ddof=1) / np.sqrt(n), rel=0.03)
    assert abs(res.value - 3.0) < 4 * res.error
    assert res.n_samples == n and res.window_converged and res.bias == 0.0
    assert res.rho[0] == 1.0 and len(res.rho) == n // 2 > res.window
    assert len(res.tau_int_running) == len(res.tau_int_running_error) == len(res.rho)


@pytest.mark.parametrize("replicas", [1, 4])
def test_gamma_ar1_exact_tau_int(replicas):
    a, n_total = 0.9, 100_000
    x = ar1(n_total // replicas, a, seed=1 + replicas, replicas=replicas)
    res = gamma_method(x[:, 0] if replicas == 1 else x)
    tau_exact = (1 + a) / (2 * (1 - a))  # 9.5
    assert res.n_samples == n_total
    assert abs(res.tau_int - tau_exact) <= 3 * res.tau_int_error
    error_exact = np.sqrt(2 * tau_exact / n_total)  # unit variance
    error_of_error = res.error * np.sqrt((res.window + 0.5) / n_total)  # Wolff eq. (44)
    assert abs(res.error - error_exact) <= 3 * error_of_error
    assert abs(res.value) <= 4 * res.error
    t = np.arange(1, 6)
    np.testing.assert_allclose(res.rho[t], a**t, atol=0.03)
    np.testing.assert_allclose(autocorrelation(x, max_lag=5), a ** np.arange(6), atol=0.03)


def test_gamma_torch_input_and_shortcuts_agree():
    x = ar1(4000, 0.5, seed=3)[:, 0]
    res = gamma_method(x)
    res_t = gamma_method(torch.from_numpy(x).float())
    assert res_t.value == pytest.approx(res.value, abs=1e-6)
    assert res_t.error == pytest.approx(res.error, rel=1e-4)
    assert integrated_autocorrelation_time(x) == (res.tau_int, res.tau_int_error)
    np.testing.assert_allclose(autocorrelation(x), res.rho, rtol=1e-12, atol=1e-15)
    # the default window S=2 and a larger one bracket the same tau_int
    assert gamma_method(x, S=4.0).window >= res.window


def test_gamma_constant_data():
    for x in (np.full(100, 0.1), np.full((50, 3), -7.0)):
        res = gamma_method(x)
        assert res.value == pytest.approx(x.flat[0], rel=1e-15)
        assert (res.error, res.tau_int, res.tau_int_error, res.window) == (0.0, 0.5, 0.0, 0)
        assert np.all(np.isfinite(res.rho)) and np.all(np.isfinite(res.tau_int_running))
    derived = gamma_method(np.ones((64, 2, 2)), f=lambda m: m[0] / m[1])
    assert (derived.value, derived.error, derived.tau_int) == (1.0, 0.0, 0.5)
    np.testing.assert_array_equal(autocorrelation(np.full(10, 2.0), max_lag=2), [1.0, 0.0, 0.0])


def test_gamma_window_not_converged_warns():
    # 3 replicas of 5 samples: W can only be 1, and with N = 15 the noise term
    # τ/sqrt(W N) is too small to stop the window there.
    x = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.warns(RuntimeWarning, match="did not converge"):
        res = gamma_method(x)
    assert not res.window_converged and res.window == 1
    assert np.isfinite(res.error) and res.error > 0
    # callers that expect it (frozen topology) silence the warning, not the verdict
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        quiet = gamma_method(x, warn=False)
    assert (quiet.value, quiet.error, quiet.tau_int, quiet.window_converged) == (
        res.value,
        res.error,
        res.tau_int,
        False,
    )


# ---------------------------------------------------------------- Γ-method: against pyerrors
# pyerrors implements the same windowing, eq. (42) and the bias correction eq. (49); for a
# primary observable on one chain the two must agree to rounding (FFT sums in another order).


@pytest.fixture(scope="module")
def pe():
    return pytest.importorskip("pyerrors")


def _pe_obs(pe, x: np.ndarray):
    """pyerrors Obs from one chain (N,) or replicas (N, R) of ensemble 'ens'."""
    if x.ndim == 1:
        return pe.Obs([x], ["ens"])
    return pe.Obs([x[:, r] for r in range(x.shape[1])], [f"ens|r{r}" for r in range(x.shape[1])])


@pytest.mark.parametrize("a, n", [(0.0, 5000), (0.7, 20000), (0.95, 3000)])
def test_gamma_matches_pyerrors_primary(pe, a, n):
    x = 1.5 + ar1(n, a, seed=int(100 * a))[:, 0]
    ours = gamma_method(x, S=2.0)
    obs = _pe_obs(pe, x)
    obs.gamma_method(S=2.0)
    assert ours.window == obs.e_windowsize["ens"]
    assert ours.value == pytest.approx(obs.value, rel=1e-12)
    assert ours.error == pytest.approx(obs.dvalue, rel=1e-9)
    assert ours.tau_int == pytest.approx(obs.e_tauint["ens"], rel=1e-9)
    assert ours.tau_int_error == pytest.approx(obs.e_dtauint["ens"], rel=1e-9)


def test_gamma_matches_pyerrors_replicas_with_equal_means(pe):
    # pyerrors subtracts each replica's own mean, Wolff/UWerr (and we) the overall mean; the
    # two coincide when every replica has the same mean, which we impose here.
    x = ar1(5000, 0.8, seed=7, replicas=4)
    x = x - x.mean(axis=0) + 0.25
    ours = gamma_method(x)
    obs = _pe_obs(pe, x)
    obs.gamma_method(S=2.0)
    assert ours.window == obs.e_windowsize["ens"]
    assert ours.value == pytest.approx(obs.value, rel=1e-12)
    assert ours.error == pytest.approx(obs.dvalue, rel=1e-9)
    assert ours.tau_int == pytest.approx(obs.e_tauint["ens"], rel=1e-9)


def test_gamma_replica_spread_counts_unlike_pyerrors(pe):
    # Documented difference: replicas whose means disagree beyond their errors inflate our
    # (Wolff's) error, while pyerrors, subtracting per-replica means, does not see it.
    x = ar1(5000, 0.5, seed=8, replicas=4) + np.array([0.0, 0.0, 0.0, 1.0])
    ours = gamma_method(x)
    obs = _pe_obs(pe, x)
    obs.gamma_method(S=2.0)
    assert ours.value == pytest.approx(obs.value, rel=1e-12)
    assert ours.error > 1.5 * obs.dvalue


def _correlated_primaries(n: int, replicas: int = 1, seed: int = 11) -> np.ndarray:
    """Two correlated autocorrelated primaries, shape (n, replicas, 2)."""
    y = ar1(n, 0.8, seed=seed, replicas=2 * replicas).reshape(n, replicas, 2)
    return np.stack([2.0 + y[..., 0], 3.0 + 0.5 * y[..., 0] + 0.5 * y[..., 1]], axis=-1)


def test_gamma_matches_pyerrors_derived_ratio(pe):
    x = _correlated_primaries(50_000)
    ours = gamma_method(x, f=lambda m: m[0] / m[1])
    obs = _pe_obs(pe, x[:, 0, 0]) / _pe_obs(pe, x[:, 0, 1])
    obs.gamma_method(S=2.0)
    assert ours.window == obs.e_windowsize["ens"]
    assert ours.value == pytest.approx(obs.value, rel=1e-12)
    # our gradient is UWerr's central difference with step = naive error h; pyerrors' is
    # exact. For A/B the relative gradient error is O((h/B)^2) ~ 1e-6 here (observed 2e-7).
    assert ours.error == pytest.approx(obs.dvalue, rel=1e-5)
    assert ours.tau_int == pytest.approx(obs.e_tauint["ens"], rel=1e-5)


def test_gamma_matches_pyerrors_derived_susceptibility(pe):
    volume = 64.0
    m = 0.2 + 0.3 * ar1(20_000, 0.8, seed=12)[:, 0]
    x = np.stack([m, m**2], axis=-1)[:, None, :]  # (N, 1, 2)
    ours = gamma_method(x, f=lambda a: volume * (a[1] - a[0] ** 2))
    mo, m2o = _pe_obs(pe, m), _pe_obs(pe, m**2)
    obs = volume * (m2o - mo**2)
    obs.gamma_method(S=2.0)
    # f is quadratic, so the central difference is exact up to rounding
    assert ours.window == obs.e_windowsize["ens"]
    assert ours.value == pytest.approx(obs.value, rel=1e-10)
    assert ours.error == pytest.approx(obs.dvalue, rel=1e-8)
    assert ours.tau_int == pytest.approx(obs.e_tauint["ens"], rel=1e-8)


def test_gamma_derived_replica_bias_correction():
    x = _correlated_primaries(2000, replicas=4, seed=21)

    def f(m):
        return m[0] ** 2 / m[1]

    res = gamma_method(x, f=f)
    f_total = f(x.mean(axis=(0, 1)))
    f_reps = np.mean([f(m) for m in x.mean(axis=0)])
    assert res.bias == pytest.approx((f_reps - f_total) / 3, rel=1e-10)
    assert res.value == pytest.approx(f_total - res.bias, rel=1e-14)
    assert 0 < abs(res.bias) < res.error  # an O(1/N) effect, well below the error


# ---------------------------------------------------------------- Γ-method: bad input


@pytest.mark.parametrize(
    "data, kwargs, exc, match",
    [
        (np.arange(3.0), {}, ValueError, ">= 4"),
        (np.array([1.0, np.nan, 2.0, 3.0, 4.0]), {}, ValueError, "NaN"),
        (np.array([1.0, np.inf, 2.0, 3.0, 4.0]), {}, ValueError, "inf"),
        (np.zeros((10, 2, 2)), {}, ValueError, "pass f"),
        (np.zeros((10, 1, 2)), {"f": lambda m: m}, ValueError, "scalar"),
        (np.zeros((10, 1, 2)), {"f": lambda m: m[5]}, ValueError, "f failed"),
        (np.ones((10, 1, 2)), {"f": lambda m: m[0] * np.inf}, ValueError, "non-finite"),
        (np.zeros((10, 1, 2)), {"f": "ratio"}, TypeError, "callable"),
        (np.zeros(10), {"S": 0.0}, ValueError, "positive"),
        (np.zeros((4, 2, 2, 2)), {}, ValueError, "shape"),
        (np.zeros(10) + 1j, {}, TypeError, "real"),
    ],
)
def test_gamma_bad_input(data, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gamma_method(data, **kwargs)


def test_autocorrelation_bad_input():
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(np.zeros(10), max_lag=10)
    with pytest.raises(ValueError, match="shape"):
        integrated_autocorrelation_time(np.zeros((10, 2, 2)))


# ---------------------------------------------------------------- ESS


def test_ess_limits():
    assert ess(np.full(100, -3.7)) == pytest.approx(1.0, abs=1e-14)
    logw = np.full(1000, -800.0)
    logw[17] = 0.0  # one weight dominates by e^800
    assert ess(logw) == pytest.approx(1e-3, rel=1e-12)
    assert ess([0.0, 0.0, -np.inf, -np.inf]) == pytest.approx(0.5, rel=1e-14)  # zero weights
    lw = np.random.default_rng(0).standard_normal(500)
    assert ess(lw + 1e4) == pytest.approx(ess(lw), rel=1e-12)  # offset (log Z) irrelevant
    assert ess(torch.from_numpy(lw)) == pytest.approx(ess(lw), rel=1e-12)


def test_ess_gaussian_closed_form():
    # p = N(0,1), q = N(0,σ²): E_q[w^k] = σ^(k-1) / sqrt(k - (k-1)/σ²) with E_q[w] = 1, and
    # ESS → 1/E_q[w²]. The delta-method variance of the estimator uses the moments k <= 4.
    sigma, n = 1.5, 100_000
    x = sigma * np.random.default_rng(1).standard_normal(n)
    logw = -0.5 * x**2 + 0.5 * (x / sigma) ** 2 + np.log(sigma)
    m = {k: sigma ** (k - 1) / np.sqrt(k - (k - 1) / sigma**2) for k in (2, 3, 4)}
    exact = 1 / m[2]
    grad = np.array([2 / m[2], -1 / m[2] ** 2])  # of ESS = E[w]²/E[w²] at (1, m2)
    cov = np.array([[m[2] - 1, m[3] - m[2]], [m[3] - m[2], m[4] - m[2] ** 2]])
    sd = np.sqrt(grad @ cov @ grad / n)
    assert abs(ess(logw) - exact) < 4 * sd
    assert 0.8 < exact < 0.85 and sd < 0.003  # the test has teeth


def test_ess_bad_input_and_mcmc_ess():
    for bad, match in [
        ([], "empty"),
        ([0.0, np.nan], "NaN"),
        ([0.0, np.inf], r"\+inf"),
        ([-np.inf, -np.inf], "zero"),
        (np.zeros((2, 2)), "one-dimensional"),
    ]:
        with pytest.raises(ValueError, match=match):
            ess(bad)
    assert mcmc_ess(1000, 0.5) == 1000.0 and mcmc_ess(1000, 9.5) == pytest.approx(1000 / 19)
    with pytest.raises(ValueError, match="tau_int"):
        mcmc_ess(1000, 0.0)


# ---------------------------------------------------------------- resampling


def test_bin_data():
    x = np.arange(10.0)
    np.testing.assert_array_equal(bin_data(x, 3), [1.0, 4.0, 7.0])  # remainder dropped
    assert bin_data(np.ones((7, 2, 3)), 2).shape == (3, 2, 3)
    with pytest.raises(ValueError, match="at least 1"):
        bin_data(x, 0)
    with pytest.raises(TypeError, match="integer"):
        bin_data(x, 2.5)
    with pytest.raises(ValueError, match="at least 2 bins"):
        jackknife(x, bin_size=6)
    with pytest.raises(ValueError, match="scalar"):
        bootstrap(np.ones((10, 2)), statistic=lambda b: b.mean(axis=0), seed=0)


def test_jackknife_bootstrap_iid_mean():
    n = 10_000
    x = np.random.default_rng(2).standard_normal(n)
    naive = x.std(ddof=1) / np.sqrt(n)
    mean, err = jackknife(x)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert err == pytest.approx(naive, rel=1e-10)  # an identity for the mean
    # generic path (any callable) agrees with the fast np.mean path
    assert jackknife(x[:500], statistic=lambda b: b.mean())[1] == pytest.approx(
        jackknife(x[:500])[1], rel=1e-10
    )
    # bootstrap: relative error of a std from 2000 replicas is ~1.6%, so 5% is ~3σ
    b_mean, b_err = bootstrap(x, n_boot=2000, seed=3)
    assert b_mean == pytest.approx(x.mean(), rel=1e-12)
    assert b_err == pytest.approx(naive, rel=0.05)
    assert bootstrap(x, statistic=lambda b: np.mean(b), n_boot=50, seed=4) == pytest.approx(
        bootstrap(x, n_boot=50, seed=np.random.default_rng(4)), rel=1e-12
    )


def test_binning_matches_gamma_method_on_ar1():
    x = ar1(100_000, 0.9, seed=5)[:, 0]
    gamma = gamma_method(x)
    # 500 bins of 200 ≈ 21 τ_int: the binned error has ~3% statistical uncertainty and is
    # biased low by ~2.4% (AR(1): 2τ_eff(B) = 2τ - 2a/((1-a)²B)); 10% is a ≥ 2σ margin.
    _, jk_err = jackknife(x, bin_size=200)
    _, bs_err = bootstrap(x, bin_size=200, n_boot=2000, seed=6)
    assert jk_err == pytest.approx(gamma.error, rel=0.10)
    assert bs_err == pytest.approx(gamma.error, rel=0.10)


def test_resampling_derived_statistic_matches_gamma():
    volume = 16.0
    m = np.random.default_rng(8).standard_normal(20_000)
    data = np.stack([m, m**2], axis=-1)  # (N, 2)

    def chi(b):
        return volume * (b[:, 1].mean() - b[:, 0].mean() ** 2)

    gamma = gamma_method(data[:, None, :], f=lambda a: volume * (a[1] - a[0] ** 2))
    jk_val, jk_err = jackknife(data, statistic=chi, bin_size=20)
    assert jk_val == pytest.approx(gamma.value, abs=0.2 * gamma.error)
    assert jk_err == pytest.approx(gamma.error, rel=0.15)  # 1000 bins: ~2.2% + Γ-method's
    assert abs(gamma.value - volume) < 4 * gamma.error  # exact χ = V var(m) = V


# ---------------------------------------------------------------- reweighting


def test_reweight_gaussian():
    # q = N(0, 1.5²), p = N(0, 1): <x²>_p = 1
    x = 1.5 * np.random.default_rng(9).standard_normal(50_000)
    logw = -0.5 * x**2 + 0.5 * (x / 1.5) ** 2
    mean, err = reweight(x**2, logw)
    assert abs(mean - 1.0) < 4 * err
    assert 0.0 < err < 0.02
    assert reweight(x**2, logw + 700.0) == pytest.approx((mean, err), rel=1e-12)
    assert reweight(torch.from_numpy(x**2), torch.from_numpy(logw)) == pytest.approx(
        (mean, err), rel=1e-12
    )


def test_reweight_uniform_weights_and_bad_input():
    x = np.random.default_rng(10).standard_normal(1000)
    mean, err = reweight(x, np.zeros_like(x))
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert err == pytest.approx(x.std(ddof=0) / np.sqrt(x.size), rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        reweight(x, np.zeros(999))
    with pytest.raises(ValueError, match="NaN"):
        reweight(np.full(3, np.nan), np.zeros(3))
