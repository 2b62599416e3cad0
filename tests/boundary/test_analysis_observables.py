"""Boundary tests of lqft_lab.analysis and lqft_lab.observables: bad input is refused by
name; edge-case input gives finite, correct results (see harness.py for the contract).

Design note: per-configuration observables (``magnetization``, ``plaquette`` …) run every
step of a chain, often on a GPU, so they check dtype and shape but not finiteness (that
would wait for the device each step); the estimators (``chi2``, ``estimate``, the Γ-method
…) refuse NaN and inf.
"""

from __future__ import annotations

import math
import warnings

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import assume, given

from lqft_lab import observables
from lqft_lab.analysis import (
    GammaResult,
    PowerLawFit,
    autocorrelation,
    bin_data,
    bootstrap,
    ess,
    fit_power_law,
    gamma_method,
    integrated_autocorrelation_time,
    jackknife,
    mcmc_ess,
    reweight,
)
from lqft_lab.observables import (
    abs_magnetization,
    binder_from_means,
    chi2,
    chi2_from_means,
    connected_two_point,
    derived_observable,
    effective_mass,
    estimate,
    ising_energy,
    ising_energy_from_means,
    magnetization,
    phi4_chain_observables,
    phi4_primaries,
    plaquette,
    pole_mass,
    pole_mass_from_means,
    stack_primaries,
    sun_mean_plaquette,
    sun_wilson_loop,
    timeslice_correlator,
    timeslice_observables,
    topological_charge,
    two_point,
    wilson_loop,
    wilson_loop_angles,
    zero_momentum_correlator,
)

from .harness import (
    BOUNDARY,
    HALF,
    INTEGER_DTYPES,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    expect_error_naming,
    non_finite,
    not_integers,
    poisoned,
    refused_or_finite,
    refuses,
)

COVERED = {  # named one by one: a new public name needs a test before it is covered
    "lqft_lab.analysis.GammaResult",
    "lqft_lab.analysis.gamma_method",
    "lqft_lab.analysis.integrated_autocorrelation_time",
    "lqft_lab.analysis.autocorrelation",
    "lqft_lab.analysis.ess",
    "lqft_lab.analysis.mcmc_ess",
    "lqft_lab.analysis.PowerLawFit",
    "lqft_lab.analysis.fit_power_law",
    "lqft_lab.analysis.bin_data",
    "lqft_lab.analysis.jackknife",
    "lqft_lab.analysis.bootstrap",
    "lqft_lab.analysis.reweight",
    "lqft_lab.observables.estimate",
    "lqft_lab.observables.phi4_chain_observables",
    "lqft_lab.observables.abs_magnetization",
    "lqft_lab.observables.binder_from_means",
    "lqft_lab.observables.chi2",
    "lqft_lab.observables.chi2_from_means",
    "lqft_lab.observables.connected_two_point",
    "lqft_lab.observables.derived_observable",
    "lqft_lab.observables.effective_mass",
    "lqft_lab.observables.ising_energy",
    "lqft_lab.observables.ising_energy_from_means",
    "lqft_lab.observables.magnetization",
    "lqft_lab.observables.phi4_primaries",
    "lqft_lab.observables.pole_mass",
    "lqft_lab.observables.pole_mass_from_means",
    "lqft_lab.observables.stack_primaries",
    "lqft_lab.observables.timeslice_correlator",
    "lqft_lab.observables.timeslice_observables",
    "lqft_lab.observables.two_point",
    "lqft_lab.observables.zero_momentum_correlator",
    "lqft_lab.observables.plaquette",
    "lqft_lab.observables.topological_charge",
    "lqft_lab.observables.wilson_loop",
    "lqft_lab.observables.wilson_loop_angles",
    "lqft_lab.observables.sun_mean_plaquette",
    "lqft_lab.observables.sun_wilson_loop",
}

RNG = np.random.default_rng(0)
CHAIN = RNG.standard_normal(64)  # (N,)
PHI = torch.randn(6, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
THETA = (
    torch.rand(3, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
) * math.pi


def _su2_links(alpha: torch.Tensor) -> torch.Tensor:
    """``diag(e^{iα}, e^{-iα})`` links ``(B, 2, L0, L1, 2, 2)`` from angles ``(B, 2, L0, L1)``."""
    U = torch.zeros(*alpha.shape, 2, 2, dtype=torch.complex128)
    U[..., 0, 0] = torch.exp(1j * alpha)
    U[..., 1, 1] = torch.exp(-1j * alpha)
    return U


U_SU2 = _su2_links(THETA)
with warnings.catch_warnings():  # "ComplexHalf support is experimental": only refused here
    warnings.simplefilter("ignore", UserWarning)
    U_SU2_HALF = U_SU2.to(torch.complex32)

#: Arrays that are not real data: NaN/inf entries, strings, None, complex.
bad_arrays = st.one_of(
    st.builds(lambda i, v: np.where(np.arange(16) == i, v, 1.0), st.integers(0, 15), non_finite),
    st.sampled_from([None, "abc", "1.0", [1.0, "x"], np.zeros(8) + 1j, {"a": 1.0}]),
)

#: Log-weights that are not: NaN or +inf (-inf is a weight of zero, allowed), non-numbers.
bad_log_weights = st.one_of(
    st.builds(
        lambda i, v: np.where(np.arange(16) == i, v, 1.0),
        st.integers(0, 15),
        st.sampled_from([math.nan, math.inf]),
    ),
    st.sampled_from([None, "abc", [1.0, "x"], np.zeros(16) + 1j, [], [-math.inf] * 16]),
)

#: Finite floats of every magnitude, the float64 limits included.
any_finite = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(-1e6, 1e6, allow_nan=False)


def definitely_bad(like: torch.Tensor):
    """Fields refused however many lattice dimensions are allowed: half or integer dtype,
    an empty batch, a list. (A dimension less can be a valid lattice of lower dimension.)"""
    return st.one_of(
        st.sampled_from(HALF).map(lambda d: like.to(d)),
        st.sampled_from(INTEGER_DTYPES).map(lambda d: like.to(d)),
        st.just(like[:0]),
        st.just(like.tolist()),
    )


def malformed(like: torch.Tensor):
    """What :func:`harness.bad_fields` draws, less the poisoned ones (same shape and dtype)."""
    return bad_fields(like).filter(
        lambda x: (
            not (isinstance(x, torch.Tensor) and x.shape == like.shape and x.dtype == like.dtype)
        )
    )


# ============================================================== analysis: Γ-method


@BOUNDARY
@given(data=bad_arrays)
def test_gamma_method_refuses_bad_data(data):
    refuses(gamma_method, "data", data)
    refuses(integrated_autocorrelation_time, "data", data)
    refuses(autocorrelation, "data", data)


@BOUNDARY
@given(S=bad_reals(0, low_open=True))
def test_gamma_method_refuses_bad_S(S):
    refuses(gamma_method, "S", CHAIN, S=S)
    refuses(integrated_autocorrelation_time, "S", CHAIN, S=S)


@BOUNDARY
@given(f=st.sampled_from([1.0, "mean", [np.mean]]))
def test_gamma_method_refuses_an_f_that_is_not_callable(f):
    refuses(gamma_method, "f", np.ones((8, 1, 2)), f=f)


@BOUNDARY
@given(f=st.sampled_from([lambda m: m, lambda m: math.nan, lambda m: math.sqrt(-1)]))
def test_gamma_method_refuses_an_f_without_a_finite_scalar(f):
    refuses(gamma_method, "f", np.random.default_rng(1).random((8, 1, 2)), f=f)


@BOUNDARY
@given(data=st.lists(any_finite, min_size=4, max_size=40))
def test_gamma_method_edge_cases_are_finite_or_refused(data):
    result = refused_or_finite(gamma_method, "data", np.array(data), warn=False)
    if result is not None:
        assert isinstance(result, GammaResult)
        assert result.error >= 0 and result.tau_int > 0
    assert_finite(refused_or_finite(integrated_autocorrelation_time, "data", data))
    rho = refused_or_finite(autocorrelation, "data", data)
    if rho is not None:
        assert rho[0] == pytest.approx(1.0)


@BOUNDARY
@given(value=moderate, n=st.integers(4, 50))
def test_gamma_method_of_constant_data_is_exact(value, n):
    result = gamma_method(np.full(n, value))
    assert result.value == pytest.approx(value) and result.error == 0 and result.tau_int == 0.5


def test_gamma_method_refuses_values_whose_variance_overflows():
    # ±1e200 squared overflows float64: Γ(0) was NaN and read as constant data, error 0
    data = np.array([1e200, -1e200] * 8)
    with expect_error_naming("data"):
        gamma_method(data)
    with expect_error_naming("data"):
        autocorrelation(data)


@BOUNDARY
@given(
    max_lag=st.one_of(
        not_integers.filter(lambda v: v is not None),  # None: the default
        st.integers(max_value=-1),
        st.integers(min_value=64),
    )
)
def test_autocorrelation_refuses_bad_max_lag(max_lag):
    refuses(autocorrelation, "max_lag", CHAIN, max_lag=max_lag)


# ============================================================== analysis: ESS


@BOUNDARY
@given(log_weights=st.one_of(bad_log_weights, st.just(np.zeros((2, 2)))))
def test_ess_refuses_bad_log_weights(log_weights):
    refuses(ess, "log_weights", log_weights)


def _direct_ess(logw: np.ndarray) -> float:
    """ESS from weights shifted by the largest log-weight (no overflow in exp)."""
    with np.errstate(over="ignore"):
        w = np.exp(logw - logw.max())
    return float(w.sum() ** 2 / (w.size * (w**2).sum()))


@BOUNDARY
@given(logw=st.lists(any_finite, min_size=1, max_size=30))
def test_ess_of_any_finite_log_weights_is_correct(logw):
    logw = np.array(logw)
    value = ess(logw)
    assert 0 < value <= 1
    assert value == pytest.approx(_direct_ess(logw), rel=1e-9)


def test_ess_of_log_weights_near_1e308_does_not_overflow():
    # Regression (issue 25): 2 * logw overflowed to inf, inf - inf = NaN, and min(1, NaN)
    # returned 1.0, "a perfect model", for weights of which one dominates completely.
    logw = np.array([1e308, 1e308, 0.0, -1e308])
    assert ess(logw) == pytest.approx(_direct_ess(logw), rel=1e-12)
    assert ess(logw) == pytest.approx(0.5, rel=1e-12)  # two equal weights of four
    assert ess(np.array([1.7e308, 0.0])) == pytest.approx(0.5)
    assert ess(torch.tensor([1e308, 0.0, 0.0], dtype=torch.float64)) == pytest.approx(1 / 3)


@BOUNDARY
@given(n=bad_integers(0))
def test_mcmc_ess_refuses_bad_n(n):
    refuses(mcmc_ess, "n", n, 1.0)


@BOUNDARY
@given(tau_int=bad_reals(0, low_open=True))
def test_mcmc_ess_refuses_bad_tau_int(tau_int):
    refuses(mcmc_ess, "tau_int", 100, tau_int)


@BOUNDARY
@given(n=st.integers(0, 10**12), tau_int=st.floats(1e-300, 1e300))
def test_mcmc_ess_is_n_over_two_tau(n, tau_int):
    value = refused_or_finite(mcmc_ess, "tau_int", n, tau_int)
    if value is not None:
        assert value == pytest.approx(n / (2 * tau_int))


# ============================================================== analysis: fits

L = np.array([4.0, 6.0, 8.0])
TAU = np.array([1.0, 2.0, 3.5])
DTAU = np.array([0.1, 0.1, 0.2])


@BOUNDARY
@given(
    bad=st.one_of(
        bad_arrays, st.sampled_from([[1.0, 2.0], [-1.0, 2.0, 3.0], 5.0, [0.0, 1.0, 2.0]])
    ),
    which=st.sampled_from(["x", "y", "y_error"]),
)
def test_fit_power_law_refuses_bad_input(bad, which):
    args = {"x": L, "y": TAU, "y_error": DTAU, which: bad}
    refuses(fit_power_law, which, **args)


@BOUNDARY
@given(
    y=st.lists(st.floats(1e-300, 1e300), min_size=3, max_size=3),
    dy=st.lists(st.floats(1e-300, 1e300), min_size=3, max_size=3),
)
def test_fit_power_law_edge_cases_are_finite_or_refused(y, dy):
    fit = refused_or_finite(fit_power_law, ("y", "y_error"), L, y, dy)
    if fit is not None:
        assert isinstance(fit, PowerLawFit) and fit.dof == 1
        refused_or_finite(fit, "x", L)  # alpha L^z may overflow for a steep fit


def test_fit_power_law_recovers_an_exact_law_and_two_points_have_no_p_value():
    fit = fit_power_law(L, 0.5 * L**1.5, 0.01 * L)
    assert fit.z == pytest.approx(1.5) and fit.alpha == pytest.approx(0.5)
    two = fit_power_law(L[:2], TAU[:2], DTAU[:2])
    assert two.dof == 0 and math.isnan(two.p_value)  # documented: no p-value without dof


@BOUNDARY
@given(x=st.one_of(bad_arrays, st.sampled_from([0.0, -1.0, [2.0, -3.0]])))
def test_power_law_fit_call_refuses_bad_x(x):
    fit = fit_power_law(L, TAU, DTAU)
    refuses(fit, "x", x)


# ============================================================== analysis: resampling


@BOUNDARY
@given(bin_size=bad_integers(1, 64))
def test_bin_data_refuses_bad_bin_size(bin_size):
    refuses(bin_data, "bin_size", CHAIN, bin_size)
    refuses(jackknife, "bin_size", CHAIN, bin_size=bin_size)
    refuses(bootstrap, "bin_size", CHAIN, bin_size=bin_size, seed=0)


@BOUNDARY
@given(data=bad_arrays)
def test_resampling_refuses_bad_data(data):
    refuses(bin_data, "data", data, 2)
    refuses(jackknife, "data", data)
    refuses(bootstrap, "data", data, seed=0)


@BOUNDARY
@given(statistic=st.sampled_from([None, 3.0, "mean", lambda b: np.nan, lambda b: b[:, 0]]))
def test_resampling_refuses_a_bad_statistic(statistic):
    data = np.ones((10, 2))
    refuses(jackknife, "statistic", data, statistic=statistic)
    refuses(bootstrap, "statistic", data, statistic=statistic, seed=0)


@BOUNDARY
@given(n_boot=bad_integers(2))
def test_bootstrap_refuses_bad_n_boot(n_boot):
    refuses(bootstrap, "n_boot", CHAIN, n_boot=n_boot, seed=0)


@BOUNDARY
@given(seed=st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=2), st.just([1.5])))
def test_bootstrap_refuses_a_bad_seed(seed):
    refuses(bootstrap, "seed", CHAIN, seed=seed)


@BOUNDARY
@given(data=st.lists(any_finite, min_size=2, max_size=30), bin_size=st.integers(1, 3))
def test_resampling_edge_cases_are_finite_or_refused(data, bin_size):
    assume(len(data) >= 2 * bin_size)
    data = np.array(data)
    for fn, kw in ((jackknife, {}), (bootstrap, {"seed": 0, "n_boot": 20})):
        result = refused_or_finite(fn, "data", data, bin_size=bin_size, **kw)
        if result is not None and np.abs(data).max() < 1e100:
            bins = bin_data(data, bin_size)
            assert result[0] == pytest.approx(bins.mean(), rel=1e-9, abs=1e-9)


# ============================================================== analysis: reweighting


@BOUNDARY
@given(values=st.one_of(bad_arrays, st.just(np.zeros(15))))
def test_reweight_refuses_bad_values(values):
    refuses(reweight, "values", values, np.zeros(16))


@BOUNDARY
@given(log_weights=bad_log_weights)
def test_reweight_refuses_bad_log_weights(log_weights):
    refuses(reweight, "log_weights", np.zeros(16), log_weights)


@BOUNDARY
@given(values=st.lists(any_finite, min_size=1, max_size=20), data=st.data())
def test_reweight_edge_cases_are_finite_or_refused(values, data):
    logw = data.draw(st.lists(any_finite, min_size=len(values), max_size=len(values)))
    result = refused_or_finite(reweight, "values", values, logw)
    if result is not None:
        w = np.exp(np.array(logw) - max(logw))
        assert result[0] == pytest.approx(np.dot(w, values) / w.sum(), rel=1e-9, abs=1e-300)


# ============================================================== observables: per configuration

PER_CONFIGURATION = [
    magnetization,
    abs_magnetization,
    two_point,
    phi4_primaries,
    timeslice_correlator,
]


@BOUNDARY
@given(phi=definitely_bad(PHI), index=st.integers(0, len(PER_CONFIGURATION) - 1))
def test_per_configuration_observables_refuse_bad_fields(phi, index):
    refuses(PER_CONFIGURATION[index], "phi", phi)


@BOUNDARY
@given(phi=malformed(PHI), index=st.integers(0, len(PER_CONFIGURATION) - 1))
def test_per_configuration_observables_on_other_shapes_refuse_or_are_finite(phi, index):
    refused_or_finite(PER_CONFIGURATION[index], "phi", phi)


@BOUNDARY
@given(
    phi=st.builds(
        lambda b, L, scale, seed: (
            scale
            * torch.randn(
                b, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
            )
        ),
        st.integers(1, 3),
        st.integers(2, 4),
        st.floats(1e-6, 1e6),
        st.integers(0, 99),
    )
)
def test_per_configuration_observables_are_correct(phi):
    M = magnetization(phi)
    torch.testing.assert_close(M, phi.mean(dim=(1, 2)))
    torch.testing.assert_close(abs_magnetization(phi), M.abs())
    G = two_point(phi)
    torch.testing.assert_close(G[:, 0, 0], (phi**2).mean(dim=(1, 2)))
    prim = phi4_primaries(phi)
    assert_finite(prim)
    c = timeslice_correlator(phi)
    assert c.shape == (phi.shape[0], phi.shape[1])


# ============================================================== observables: ensembles

ENSEMBLE = [connected_two_point, chi2, ising_energy]


@BOUNDARY
@given(phi=st.one_of(bad_fields(PHI), st.just(PHI[:1])), index=st.integers(0, 2))
def test_ensemble_estimators_refuse_bad_or_non_finite_fields(phi, index):
    # "fewer" dimensions is a valid ensemble of a 1D lattice: refused or finite
    x = phi
    if isinstance(x, torch.Tensor) and x.dim() == PHI.dim() - 1 and x.dtype == PHI.dtype:
        refused_or_finite(ENSEMBLE[index], "phi", x)
    else:
        refuses(ENSEMBLE[index], "phi", x)


@BOUNDARY
@given(
    scale=st.floats(1e-30, 1e38),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    index=st.integers(0, 2),
)
def test_ensemble_estimators_of_large_fields_are_finite_or_refused(scale, dtype, index):
    refused_or_finite(ENSEMBLE[index], "phi", (scale * PHI).to(dtype))


def test_chi2_is_the_volume_times_the_variance_of_M():
    M = PHI.mean(dim=(1, 2))
    assert chi2(PHI) == pytest.approx(16 * M.var(unbiased=False).item(), rel=1e-12)
    assert chi2(PHI.float() * 1e20) == pytest.approx(
        16e40 * M.var(unbiased=False).item(), rel=1e-5
    )  # float64 accumulation
    with expect_error_naming("phi"):
        chi2(torch.where(PHI > 1, torch.nan, PHI))  # an estimator: NaN is refused


# ============================================================== observables: correlators


@BOUNDARY
@given(G=st.one_of(definitely_bad(PHI[0]), poisoned(PHI[0]), st.just(torch.zeros(()))))
def test_zero_momentum_correlator_refuses_bad_G(G):
    refuses(zero_momentum_correlator, "G", G)


@BOUNDARY
@given(batched=st.sampled_from([1, 0, "yes", None, 1.0]))
def test_zero_momentum_correlator_refuses_a_batched_that_is_not_bool(batched):
    refuses(zero_momentum_correlator, "batched", PHI[0], batched)


@BOUNDARY
@given(
    C=st.one_of(
        bad_fields(torch.ones(6, dtype=torch.float64)), st.just(torch.ones(2, dtype=torch.float64))
    )
)
def test_effective_mass_refuses_bad_C(C):
    refuses(effective_mass, "C", C)


@BOUNDARY
@given(m=st.floats(0.01, 3.0), L0=st.integers(4, 12))
def test_effective_mass_of_a_cosh_is_exact(m, L0):
    t = torch.arange(L0, dtype=torch.float64)
    C = torch.cosh(m * (t - L0 / 2))
    torch.testing.assert_close(effective_mass(C)[1:], torch.full((L0 - 1,), m, dtype=torch.float64))
    assert zero_momentum_correlator(C[:, None].expand(L0, 3)).shape == (L0,)


# ============================================================== observables: estimates


def _series(T: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    phi = torch.randn(T, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return {"c0": phi[:, 0, 0], **phi4_primaries(phi)}


SERIES = _series()


@BOUNDARY
@given(
    series=st.one_of(
        st.sampled_from([None, [1.0, 2.0], "M", 3.0]),
        st.builds(
            lambda bad: {**SERIES, "M": bad},
            st.one_of(
                poisoned(SERIES["M"]),
                st.just(SERIES["M"][:3]),
                st.just("abc"),
                st.just(torch.zeros(16, 2, 2)),
            ),
        ),
    )
)
def test_estimate_refuses_bad_series(series):
    refuses(estimate, "series", series, "M")


@BOUNDARY
@given(
    name=st.one_of(
        st.text(max_size=4).filter(lambda s: s not in SERIES),
        st.none(),
        st.integers(),
        st.just(["M"]),
    )
)
def test_estimate_refuses_a_bad_name(name):
    refuses(estimate, "name", SERIES, name)


@BOUNDARY
@given(volume=st.one_of(not_integers.filter(lambda v: v is not None), st.integers(max_value=0)))
def test_estimate_refuses_a_bad_volume(volume):
    refuses(estimate, "volume", SERIES, "chi2", volume=volume)
    refuses(derived_observable, "volume", "chi2", volume=volume)


@BOUNDARY
@given(S=bad_reals(0, low_open=True))
def test_estimate_and_pole_mass_refuse_a_bad_S(S):
    refuses(estimate, "S", SERIES, "M", S=S)
    refuses(pole_mass, "S", {}, (4, 4), S=S)


@BOUNDARY
@given(
    seed=st.integers(0, 50),
    T=st.integers(4, 40),
    name=st.sampled_from(["M", "absM", "chi2", "E", "binder"]),
)
def test_estimate_edge_cases_are_finite_or_refused(seed, T, name):
    refused_or_finite(estimate, "series", _series(T, seed), name, volume=16)


def test_estimate_refuses_an_undefined_derived_observable_naming_series():
    zeros = {k: torch.zeros(8, dtype=torch.float64) for k in ("M2", "M4")}
    with expect_error_naming("series"):
        estimate(zeros, "binder")  # <M2> = 0: no Binder cumulant


@BOUNDARY
@given(
    keys=st.one_of(
        st.sampled_from([None, 3, ["M", 3], ["Q"], "Q"]),
        st.lists(st.text(max_size=3), min_size=1, max_size=3).filter(
            lambda ks: not set(ks) <= set(observables.PRIMARIES)
        ),
    )
)
def test_phi4_chain_observables_refuses_bad_keys(keys):
    refuses(phi4_chain_observables, "keys", keys)


def test_phi4_chain_observables_takes_one_name_as_a_string():
    assert list(phi4_chain_observables("absM")) == ["absM"]


@BOUNDARY
@given(name=st.one_of(st.text(max_size=4), st.none(), st.just(["chi2"])))
def test_derived_observable_refuses_a_bad_name(name):
    assume(not isinstance(name, str) or name not in observables.DERIVED)
    refuses(derived_observable, "name", name)


# ============================================================== observables: pole mass

L0 = 4
POLE_SERIES = {
    "M": magnetization(PHI),
    **{k: f(PHI) for k, f in timeslice_observables(L0).items()},
}


@BOUNDARY
@given(
    lattice=st.one_of(
        st.sampled_from([None, "44", (), (2, 4), (4, 1), (4.0, 4), 4]),
        st.tuples(bad_integers(3), st.just(4)),
    )
)
def test_pole_mass_refuses_a_bad_lattice(lattice):
    refuses(pole_mass, "lattice", POLE_SERIES, lattice)


@BOUNDARY
@given(
    t_range=st.one_of(
        st.sampled_from([[], "1", 1, [0], [4], [1.5]]),
        st.lists(st.integers(), min_size=1, max_size=3).filter(
            lambda ts: not all(1 <= t <= 3 for t in ts)
        ),
    )
)
def test_pole_mass_refuses_a_bad_t_range(t_range):
    refuses(pole_mass, "t_range", POLE_SERIES, (L0, 4), t_range=t_range)
    refuses(pole_mass_from_means, "t_range", np.ones(L0 + 1), L0, 4, t_range)


@BOUNDARY
@given(series=st.sampled_from([{}, {"M": POLE_SERIES["M"]}, 5]))
def test_pole_mass_refuses_incomplete_series(series):
    refuses(pole_mass, "series", series, (L0, 4))


@BOUNDARY
@given(
    means=st.one_of(bad_arrays, st.just(np.ones(3))),
    L0_=st.one_of(st.just(4), bad_integers(3)),
    spatial=st.one_of(st.just(4), bad_integers(1)),
)
def test_pole_mass_from_means_refuses_bad_input(means, L0_, spatial):
    names = ["means"] + (["L0"] if L0_ != 4 else []) + (["spatial_sites"] if spatial != 4 else [])
    refuses(pole_mass_from_means, names, means, L0_, spatial)


@BOUNDARY
@given(m=st.floats(0.1, 2.0))
def test_pole_mass_from_means_of_a_cosh_is_exact(m):
    C = np.cosh(m * (np.arange(8) - 4.0))
    assert pole_mass_from_means(np.concatenate([[0.0], C]), 8, 1) == pytest.approx(m)


def test_pole_mass_from_means_flags_noise_with_nan():
    # Documented flag, read by pole_mass: a correlator without an effective mass.
    assert math.isnan(pole_mass_from_means([0.0, 1.0, 0.0, 0.0, 0.0], 4, 4))


@BOUNDARY
@given(L0_=bad_integers(3))
def test_timeslice_observables_refuses_a_bad_L0(L0_):
    refuses(timeslice_observables, "L0", L0_)


# ============================================================== observables: from means


@BOUNDARY
@given(
    means=st.one_of(bad_arrays, st.sampled_from([[1.0], [1.0, 2.0, 3.0], 1.0])),
    index=st.integers(0, 2),
)
def test_functions_of_means_refuse_bad_means(means, index):
    fn = [lambda m: chi2_from_means(m, 16), ising_energy_from_means, binder_from_means][index]
    refuses(fn, "means", means)


@BOUNDARY
@given(volume=bad_integers(1))
def test_chi2_from_means_refuses_a_bad_volume(volume):
    refuses(chi2_from_means, "volume", [0.1, 0.5], volume)


@BOUNDARY
@given(a=any_finite, b=any_finite)
def test_functions_of_means_are_correct_or_refused(a, b):
    for fn, exact in (
        (lambda m: chi2_from_means(m, 4), lambda: 4 * (b - a * a)),
        (ising_energy_from_means, lambda: b - a * a),
        (binder_from_means, lambda: 1 - b / (3 * a * a)),
    ):
        value = refused_or_finite(fn, "means", [a, b])
        if value is not None and abs(a) < 1e100 and abs(b) < 1e200 and a != 0:
            assert value == pytest.approx(exact(), rel=1e-9, abs=1e-12)


@BOUNDARY
@given(
    primaries=st.sampled_from(
        [
            None,
            [1.0],
            {"M": [1.0, 2.0]},
            {"M": torch.zeros(3), "M2": torch.zeros(4)},
            {"M": torch.zeros(3), "M2": torch.zeros(3, dtype=torch.int64)},
        ]
    )
)
def test_stack_primaries_refuses_bad_primaries(primaries):
    refuses(stack_primaries, "primaries", primaries, ["M", "M2"][: len(primaries or [0, 0])])


@BOUNDARY
@given(keys=st.sampled_from([None, 3, [], ["Q"], [1, 2]]))
def test_stack_primaries_refuses_bad_keys(keys):
    refuses(stack_primaries, "keys", phi4_primaries(PHI), keys)


def test_stack_primaries_stacks_in_the_order_of_keys():
    prim = phi4_primaries(PHI)
    out = stack_primaries(prim, ["M2", "M"])
    torch.testing.assert_close(out, torch.stack([prim["M2"], prim["M"]], dim=-1))


# ============================================================== observables: gauge


@BOUNDARY
@given(
    theta=bad_fields(THETA).filter(
        lambda x: (
            not (isinstance(x, torch.Tensor) and x.shape == THETA.shape and x.dtype == THETA.dtype)
        )
    ),
    index=st.integers(0, 3),
)
def test_u1_observables_refuse_bad_links(theta, index):
    fn = [
        plaquette,
        topological_charge,
        lambda t: wilson_loop(t, 1, 1),
        lambda t: wilson_loop_angles(t, 2, 1),
    ][index]
    refuses(fn, "theta", theta)


@BOUNDARY
@given(R=st.one_of(bad_integers(1, 4), st.just(1)), T=st.one_of(bad_integers(1, 4), st.just(1)))
def test_wilson_loops_refuse_bad_extents(R, T):
    def good(v):
        return type(v) is int and v == 1

    assume(not (good(R) and good(T)))
    names = (["R"] if not good(R) else []) + (["T"] if not good(T) else [])
    refuses(wilson_loop, names, THETA, R, T)
    refuses(wilson_loop_angles, names, THETA, R, T)
    refuses(sun_wilson_loop, names, U_SU2, R, T)


@BOUNDARY
@given(seed=st.integers(0, 99), R=st.integers(1, 4), T=st.integers(1, 4))
def test_u1_observables_are_correct(seed, R, T):
    theta = (
        torch.rand(2, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        * 2
        - 1
    ) * math.pi
    P = plaquette(theta)
    assert bool((P.abs() <= 1).all())
    Q = topological_charge(theta)
    torch.testing.assert_close(Q, Q.round(), atol=1e-9, rtol=0)  # an integer
    torch.testing.assert_close(wilson_loop(theta, 1, 1), P)
    assert_finite(wilson_loop(theta, R, T))


@BOUNDARY
@given(
    U=st.one_of(
        st.just(THETA),  # real, not links
        st.just(U_SU2[..., :1]),  # not square
        st.just(U_SU2[:, :1]),  # one direction
        st.just(U_SU2_HALF),
        st.just(U_SU2.tolist()),
        st.just(U_SU2[:0]),
    ),
    index=st.integers(0, 1),
)
def test_sun_observables_refuse_bad_links(U, index):
    fn = [sun_mean_plaquette, lambda u: sun_wilson_loop(u, 1, 1)][index]
    refuses(fn, "U", U)


def test_sun_observables_are_correct_on_abelian_links():
    # diag(e^{iα}, e^{-iα}): the plaquette is (1/2) tr diag(e^{iθ_P}, e^{-iθ_P}) = cos θ_P
    torch.testing.assert_close(sun_mean_plaquette(U_SU2), plaquette(THETA))
    torch.testing.assert_close(sun_wilson_loop(U_SU2, 2, 3), wilson_loop(THETA, 2, 3))
