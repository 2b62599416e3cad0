"""Statistical analysis of Monte Carlo data: errors, autocorrelations, ESS, reweighting.

Contract for every function here:

* inputs are numpy arrays, torch tensors (detached and copied to the CPU), or sequences;
  they are analysed in float64;
* time (the sample or Markov-chain index) is **axis 0**; replicas, when present, are axis 1;
* results are Python floats, numpy arrays, or frozen dataclasses of those, never tensors;
* bad input (NaN, too few samples, wrong shapes) raises ``ValueError`` with a sentence;
* no global RNG: resampling takes a ``seed`` or ``numpy.random.Generator``;
* conventions: ``tau_int = 1/2`` for uncorrelated data; ESS of importance weights is
  normalised to ``(0, 1]`` and should be measured on >= 4096 fresh samples.

Modules: :mod:`.autocorr` (Wolff's Γ-method), :mod:`.ess`, :mod:`.resampling` (binning,
jackknife, bootstrap), :mod:`.reweighting` (self-normalised importance sampling),
:mod:`.fits` (power laws such as ``τ_int = α L^z``), :mod:`.derivatives` (estimators of
``d⟨O⟩/dβ``: independent ensembles, reweighting, flowed and Stein estimators).
"""

from .autocorr import GammaResult, autocorrelation, gamma_method, integrated_autocorrelation_time
from .derivatives import (
    DerivativeEstimate,
    covariance_derivative,
    flowed_difference,
    independent_difference,
    reweighted_difference,
    stein_derivative,
)
from .ess import ess, mcmc_ess
from .fits import PowerLawFit, fit_power_law
from .resampling import bin_data, bootstrap, jackknife
from .reweighting import reweight

__all__ = [
    "GammaResult",
    "gamma_method",
    "integrated_autocorrelation_time",
    "autocorrelation",
    "ess",
    "mcmc_ess",
    "PowerLawFit",
    "fit_power_law",
    "bin_data",
    "jackknife",
    "bootstrap",
    "reweight",
    "DerivativeEstimate",
    "independent_difference",
    "covariance_derivative",
    "reweighted_difference",
    "flowed_difference",
    "stein_derivative",
]
