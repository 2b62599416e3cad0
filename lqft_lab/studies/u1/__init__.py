"""Notebook 02's compositions: U(1) gauge theory with gauge-equivariant flows.

Everything here is a thin composition of the tested pieces (actions, samplers, flows,
analysis) so that the notebook's cells stay short. Conventions:

* links are angles ``(B, 2, L, L)``; ``S = -β Σ_P cos θ_P`` (:class:`U1WilsonAction`);
* ``χ_t = ⟨Q²⟩/V`` with the geometric charge :func:`~lqft_lab.observables.topological_charge`;
* a flow's ``logq`` is a density with respect to ``dθ`` on ``[-π, π)^{n_links}``, while
  :func:`lqft_lab.exact.u1_log_z` is normalised to the Haar measure ``dθ/2π`` per link, so
  ``E_q[e^{-S}/q] = Z · (2π)^{n_links}``; :func:`log_z_estimate` removes that factor;
* results are frozen dataclasses (or a markdown table as a string), never plots: the
  notebook draws.

The pieces:

- :mod:`.chains`: one algorithm's chains at one coupling, analysed with the Γ-method
  (:func:`run_u1_algorithm` → :class:`U1Run`).
- :mod:`.training`: the recipe of the shipped flows (:func:`train_u1_flow`) and the shipped
  flows themselves (:func:`shipped_u1_flow`).
- :mod:`.estimates`: ``log Z`` from importance weights (:func:`log_z_estimate`) and the
  charge of a flow's proposals against the exact ``P(Q)`` (:func:`charge_distribution`).
- :mod:`.scan`: the notebook's sizes per mode (:class:`U1Sizes`) and its τ_int(Q) scan over
  β (:func:`run_u1_scan` → :class:`U1Scan`, :func:`scan_table`, :func:`scan_records`), and
  the exact values it is checked against (:func:`exact_table`).

References:
    G. Kanwar et al., arXiv:2003.06413 (gauge-equivariant flows for U(1));
    D. Albergo et al., arXiv:2101.08176 (the tutorial's U(1) example, L = 8, β = 2);
    U. Wolff, hep-lat/0306017 (Γ-method); C. Bonati, P. Rossi, arXiv:1901.09830 (exact results).
"""

from .chains import ALGORITHMS, HMC_SETTINGS, U1Run, run_u1_algorithm, u1_observables
from .estimates import (
    ChargeDistribution,
    LogZEstimate,
    charge_distribution,
    charge_table,
    log_z_estimate,
)
from .scan import U1Scan, U1Sizes, exact_table, run_u1_scan, scan_records, scan_table
from .training import ShippedFlow, shipped_u1_flow, train_u1_flow

__all__ = [
    "ALGORITHMS",
    "HMC_SETTINGS",
    "u1_observables",
    "U1Run",
    "run_u1_algorithm",
    "train_u1_flow",
    "ShippedFlow",
    "shipped_u1_flow",
    "LogZEstimate",
    "log_z_estimate",
    "ChargeDistribution",
    "charge_distribution",
    "charge_table",
    "U1Sizes",
    "U1Scan",
    "run_u1_scan",
    "scan_table",
    "scan_records",
    "exact_table",
]
