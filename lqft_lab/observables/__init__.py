"""Observables: measurements on sampled fields, shaped for error analysis.

Contract: *per-configuration* observables take a batch ``(B, *lattice)`` and return
``(B,)`` (one number per configuration, on the input's device); *ensemble* observables take
an ensemble ``(N, *lattice)`` of samples of one distribution and return an estimate of an
expectation value (a tensor, or a Python float for scalar summaries). Errors of derived
quantities come from per-configuration primaries fed to the Γ-method, see
:mod:`lqft_lab.observables.scalar`. U(1) gauge observables (plaquette, Wilson loops,
topological charge) take link angles ``(B, 2, L0, L1)``, see :mod:`.gauge`; SU(N) ones take
complex links ``(B, 2, L0, L1, N, N)``, see :mod:`.gauge_sun`. Fermion observables of the
Schwinger model (chiral condensate, pion correlator, low modes of the Wilson–Dirac operator)
take U(1) links and the hopping parameter ``kappa``, see :mod:`.fermion`.
"""

from .estimates import PRIMARIES, estimate, phi4_chain_observables, pole_mass
from .fermion import (
    chiral_condensate,
    lowest_eigenvalues,
    pion_correlator,
    schwinger_observables,
    stochastic_condensate,
)
from .gauge import plaquette, topological_charge, wilson_loop, wilson_loop_angles
from .gauge_sun import sun_mean_plaquette, sun_wilson_loop
from .scalar import (
    DERIVED,
    abs_magnetization,
    binder_from_means,
    chi2,
    chi2_from_means,
    connected_two_point,
    derived_observable,
    effective_mass,
    ising_energy,
    ising_energy_from_means,
    magnetization,
    phi4_primaries,
    pole_mass_from_means,
    stack_primaries,
    timeslice_correlator,
    timeslice_observables,
    two_point,
    zero_momentum_correlator,
)

__all__ = [
    "DERIVED",
    "PRIMARIES",
    "estimate",
    "phi4_chain_observables",
    "abs_magnetization",
    "binder_from_means",
    "chi2",
    "chi2_from_means",
    "connected_two_point",
    "derived_observable",
    "effective_mass",
    "ising_energy",
    "ising_energy_from_means",
    "magnetization",
    "phi4_primaries",
    "pole_mass",
    "pole_mass_from_means",
    "stack_primaries",
    "timeslice_correlator",
    "timeslice_observables",
    "two_point",
    "zero_momentum_correlator",
    "plaquette",
    "topological_charge",
    "wilson_loop",
    "wilson_loop_angles",
    "sun_mean_plaquette",
    "sun_wilson_loop",
    "chiral_condensate",
    "stochastic_condensate",
    "pion_correlator",
    "lowest_eigenvalues",
    "schwinger_observables",
]
