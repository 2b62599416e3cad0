"""Helpers for notebook 03: SU(N) spectral flows on single matrices and on the 2D lattice.

Thin compositions of the tested pieces (actions, samplers, flows, analysis, exact) so that
each of the notebook's cells is one step: :mod:`.single` (one matrix: Boyda et al.'s
targets, training, symmetry checks, traces reweighted against exact values),
:mod:`.lattice` (the 2D Wilson theory: lattice flows; flow-MH, HMC and heatbath chains) and
:mod:`.sizes` (the notebook's statistics per mode). Conventions:

* single matrices are ``(B, N, N)``, lattice links ``(B, 2, L, L, N, N)`` (complex);
* every flow density is with respect to normalised Haar measure, the measure of the exact
  results in :mod:`lqft_lab.exact.sun`, so importance weights ``e^{-S}/q`` need no offset;
* the three single-matrix targets are those of Boyda et al. (arXiv:2008.05456, Fig. 4):
  ``S(U) = -(β/N) Re tr Σ_k c_k U^k`` at ``β = 9``;
* functions return results (frozen dataclasses, dicts, Markdown tables as strings), never
  plots: the notebook draws.

References:
    D. Boyda et al., "Sampling using SU(N) gauge equivariant flows", arXiv:2008.05456;
    N. Cabibbo, E. Marinari, Phys. Lett. B 119 (1982) 387 (pseudo-heatbath);
    U. Wolff, hep-lat/0306017 (Γ-method).
"""

from .lattice import (
    ALGORITHMS,
    HMC_SETTINGS,
    LatticeFlow,
    SUNRun,
    lattice_equivariance,
    lattice_exact_table,
    lattice_flows,
    run_sun_algorithm,
    run_sun_study,
    sun_observables,
    sun_study_table,
    train_sun_flow,
)
from .single import (
    SINGLE_MATRIX_TARGETS,
    SingleMatrixMeasurement,
    measure_single_matrix_flow,
    single_matrix_action,
    single_matrix_equivariance,
    single_matrix_table,
    single_matrix_targets_table,
    train_single_matrix_flow,
    train_single_matrix_flows,
)
from .sizes import NotebookSizes, notebook_sizes

__all__ = [
    "SINGLE_MATRIX_TARGETS",
    "ALGORITHMS",
    "HMC_SETTINGS",
    "NotebookSizes",
    "notebook_sizes",
    "single_matrix_action",
    "train_single_matrix_flow",
    "train_single_matrix_flows",
    "single_matrix_equivariance",
    "single_matrix_targets_table",
    "SingleMatrixMeasurement",
    "measure_single_matrix_flow",
    "single_matrix_table",
    "train_sun_flow",
    "LatticeFlow",
    "lattice_flows",
    "lattice_equivariance",
    "lattice_exact_table",
    "sun_observables",
    "SUNRun",
    "run_sun_algorithm",
    "run_sun_study",
    "sun_study_table",
]
