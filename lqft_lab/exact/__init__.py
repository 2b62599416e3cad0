"""Exact references that samplers, flows and observables are tested against.

One module per theory; every function is deterministic and returns float64 NumPy data:

* :mod:`.free_field`: the free scalar field (φ⁴ at λ = 0) on a periodic lattice: propagator,
  χ₂, the pole mass, ``log Z``.
* :mod:`.u1`: 2D U(1) Wilson gauge theory on a torus by the character expansion: ``log Z``,
  plaquette, Wilson loops, topological susceptibility, ``P(Q)``; :mod:`.u1_derivatives`
  their β-derivatives (``d⟨cos θ_P⟩/dβ``, ``dχ_t/dβ``, ``d log Z/dβ``).
* :mod:`.sun`: SU(N): the Weyl measure, single-matrix integrals and the 2D lattice
  character expansion.
* :mod:`.schwinger`: the Nf = 2 Schwinger model: free Wilson fermions (spectrum, ``log det``,
  propagator, condensate, pion correlator; torch tensors or floats), exact 2×2 expectation
  values, and det²-reweighted exact pure-gauge draws (random: seeded by a generator, with
  honest errors).

The free-field and U(1) functions are also importable from here (``exact.u1_plaquette``);
the SU(N) ones from :mod:`.sun`, the Schwinger-model ones from :mod:`.schwinger`.
"""

from . import free_field, schwinger, sun, u1, u1_derivatives
from .free_field import (
    free_field_chi2,
    free_field_ising_energy,
    free_field_log_z,
    free_field_momentum_propagator,
    free_field_phi2,
    free_field_pole_mass,
    free_field_propagator,
    free_field_zero_momentum_correlator,
    lattice_momentum_squared,
)
from .u1 import (
    DefectReferences,
    u1_charge_distribution,
    u1_defect_references,
    u1_energy_variance,
    u1_log_z,
    u1_plaquette,
    u1_plaquette_infinite_volume,
    u1_swap_acceptance,
    u1_topological_susceptibility,
    u1_topological_susceptibility_infinite_volume,
    u1_wilson_loop,
)
from .u1_derivatives import (
    u1_log_z_derivative,
    u1_plaquette_derivative,
    u1_susceptibility_derivative,
)

__all__ = [
    "free_field",
    "u1",
    "sun",
    "schwinger",
    "free_field_chi2",
    "free_field_ising_energy",
    "free_field_log_z",
    "free_field_momentum_propagator",
    "free_field_phi2",
    "free_field_pole_mass",
    "free_field_propagator",
    "free_field_zero_momentum_correlator",
    "lattice_momentum_squared",
    "u1_charge_distribution",
    "u1_defect_references",
    "DefectReferences",
    "u1_energy_variance",
    "u1_swap_acceptance",
    "u1_log_z",
    "u1_plaquette",
    "u1_plaquette_infinite_volume",
    "u1_topological_susceptibility",
    "u1_topological_susceptibility_infinite_volume",
    "u1_wilson_loop",
    "u1_derivatives",
    "u1_log_z_derivative",
    "u1_plaquette_derivative",
    "u1_susceptibility_derivative",
]
