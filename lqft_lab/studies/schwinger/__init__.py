"""Notebook 04's compositions: the Nf = 2 Schwinger model's samplers, flows and comparisons.

The target is the gauge field's marginal with two flavours of Wilson fermions integrated out,
``p(θ) ∝ e^{-S_g(θ)} (det D_κ(θ))²``, i.e. the action
:class:`~lqft_lab.actions.schwinger.SchwingerAction` ``S = S_g - 2 log|det D_κ|`` (hopping
form of ``D``, antiperiodic in time; conventions in :mod:`lqft_lab.actions.wilson_dirac`).
A gauge-equivariant U(1) flow (:func:`~lqft_lab.flows.build_u1_flow`) is trained on it by
reverse KL, with either gradient estimator of :class:`~lqft_lab.train.TrainConfig`
(``"reparameterization"`` backpropagates through ``slogdet``; ``"score"`` never
differentiates the action, arXiv:2308.13294), and then used as the proposal of an
independence Metropolis chain, which is exact for any flow (arXiv:2202.11712).

The pieces:

- :mod:`.sizes`: the notebook's chains and budgets per mode (:class:`SchwingerSizes`).
- :mod:`.chains`: :func:`chain_observables` (plaquette, condensate, ``C_π(1)``, ``Q``),
  :func:`run_hmc_chain` (an HMC or pseudofermion-HMC chain that also records ``ΔH``,
  ``e^{-ΔH}`` and the CG iterations as series), :func:`flow_mh_chain`, and
  :func:`compare_samplers` / :func:`comparison_table` (every sampler against an exact
  reference, with pulls).
- :mod:`.joint`: :func:`train_pseudofermion_flow`, the joint reverse KL of a pseudofermion
  flow ``q(φ | θ)`` (part 2: links and pseudofermions sampled together, no determinant);
  :func:`joint_ess` (marginal against joint weights on the same links) and
  :func:`plot_parallel_transport`.
- :mod:`.costs`: :func:`sampler_costs` / :func:`cost_table` (seconds per independent sample
  of each sampler, ``time per step × 2 τ_int``, side by side).
- :mod:`.scaling`: :func:`proposal_costs` / :func:`proposal_cost_table` /
  :func:`plot_proposal_costs` (what one proposal
  costs against ``L``: flow passes, a CG solve and its iterations, a dense determinant, a
  pseudofermion-HMC trajectory, side by side).
- :mod:`.spectrum`: :func:`uniform_flux` and :func:`kappa_scan` (the near-zero mode of a
  charged configuration as ``κ → κ_c``).
- :mod:`.training`: :func:`train_schwinger_flow`, the recipe of the shipped
  ``data/models/schwinger_*`` flows, and :func:`shipped_schwinger_flow`, which loads them.

Conventions: links ``θ (B, 2, L, L)`` on a square lattice, ``L`` a multiple of 4 (the flows'
stripe masks); float64 by default, because ``log|det D|`` enters ``log p`` and an
accept/reject; chain observables are those of notebook 02
(:func:`~lqft_lab.studies.u1.u1_observables`: ``plaq``, ``Q``, ``chi_t``).

References:
    M. S. Albergo et al., "Flow-based sampling in the lattice Schwinger model at
    criticality", arXiv:2202.11712;
    P. Białas, P. Korcyl, T. Stebel et al., "Training normalizing flows with computationally
    intensive target probability distributions", arXiv:2308.13294;
    G. Kanwar et al., arXiv:2003.06413 (gauge-equivariant U(1) flows).
"""

from .chains import (
    Comparison,
    chain_observables,
    compare_samplers,
    comparison_table,
    flow_mh_chain,
    run_hmc_chain,
)
from .costs import SamplerCost, cost_table, sampler_costs
from .joint import (
    joint_ess,
    plot_parallel_transport,
    shipped_pseudofermion_flow,
    train_pseudofermion_flow,
)
from .scaling import ProposalCost, plot_proposal_costs, proposal_cost_table, proposal_costs
from .sizes import SchwingerSizes
from .spectrum import KappaScan, kappa_scan, uniform_flux
from .training import shipped_schwinger_flow, train_schwinger_flow

__all__ = [
    "SchwingerSizes",
    "chain_observables",
    "run_hmc_chain",
    "uniform_flux",
    "KappaScan",
    "kappa_scan",
    "Comparison",
    "compare_samplers",
    "comparison_table",
    "SamplerCost",
    "sampler_costs",
    "cost_table",
    "train_schwinger_flow",
    "shipped_schwinger_flow",
    "flow_mh_chain",
    "train_pseudofermion_flow",
    "joint_ess",
    "plot_parallel_transport",
    "shipped_pseudofermion_flow",
    "ProposalCost",
    "proposal_costs",
    "plot_proposal_costs",
    "proposal_cost_table",
]
