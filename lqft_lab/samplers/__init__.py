"""Markov-chain samplers: local Metropolis, HMC, heatbath and flow-based independence Metropolis.

:class:`PseudofermionHMC` samples U(1) links with Nf = 2 pseudofermions (one heatbath of
``φ`` per trajectory, CG in every force); :class:`JointFlowMetropolis` and
:class:`GibbsFlowMetropolis` sample links and pseudofermions with flows
(:mod:`.joint_pseudofermion`). :class:`ReplicaExchange` runs a ladder of samplers with
swaps between neighbouring rungs, plain or through maps (T-REX). Also
:func:`sample_u1_exact`, independent exact draws of 2D U(1) gauge theory (a reference, not
a chain).

Fields are real tensors ``(B, *lattice)`` (scalars, U(1) link angles) or, for the SU(N)
samplers (``SUNHMC``, ``SUNHeatbath``), complex links ``(B, 2, L0, L1, N, N)``.

The sampler contract (every member promises it, :func:`run_chain` relies on nothing else):

* A sampler is an object built from its action (and model) and a few tuning parameters.
* ``sampler.init(x, generator=None) -> state`` starts ``B`` independent chains from fields
  ``(B, *lattice)``; a ``FlowMetropolis`` also accepts ``None`` and starts from a model draw.
* ``sampler.step(state, generator=None) -> (state, info)`` advances every chain by one
  update (a sweep, a trajectory, a proposal) and never mutates its input.
* A state is a frozen dataclass with named fields, always including ``x`` ``(B, *lattice)``;
  an info is a frozen dataclass with at least ``accepted`` ``(B,)`` (bool, or the accepted
  fraction of a sweep) plus what the method knows (``delta_H``, ``logw``, ...).
* Randomness comes only from the ``generator`` argument; tensors keep the input's dtype and
  device, and no step synchronises with the host, except where a rejection loop needs it
  (the heatbaths compact their pending links once per round: :mod:`.heatbath_sun`).
* Every accept/reject decision goes through :func:`metropolis_accept` (its unchecked core
  inside steps).
* Arguments are checked once, where they enter (the constructor, ``init``, a public
  function, :func:`run_chain`), with :mod:`lqft_lab.checks`: a refusal is a ``TypeError`` or
  ``ValueError`` naming the argument. ``init`` refuses starting fields holding NaN or
  ``inf``, half precision, and fields whose action is not finite; steps check nothing, so a
  chain costs no host synchronisation for its checks.
"""

from .base import FieldState, metropolis_accept
from .chain import Chain, run_chain
from .flow_mcmc import (
    FlowMCMCInfo,
    FlowMCMCState,
    FlowMetropolis,
    FlowMetropolisWithLocal,
    independence_metropolis,
)
from .heatbath import (
    U1Heatbath,
    U1HeatbathInfo,
    U1HeatbathState,
    link_groups,
    sample_von_mises,
    u1_staples,
)
from .heatbath_sun import SUNHeatbath, SUNHeatbathInfo, SUNHeatbathState, sample_su2_heatbath
from .hmc import HMC, OMELYAN_LAMBDA, HMCInfo, HMCState, leapfrog, omelyan
from .hmc_sun import (
    SUNHMC,
    SUNHMCInfo,
    SUNHMCState,
    sun_kinetic_energy,
    sun_leapfrog,
    sun_omelyan,
)
from .joint_pseudofermion import (
    ExactPseudofermionConditional,
    GibbsFlowMetropolis,
    JointFlowMetropolis,
    JointInfo,
    JointState,
    joint_action,
)
from .metropolis import LocalMetropolis, LocalMetropolisInfo, LocalMetropolisState
from .pseudofermion_hmc import PseudofermionHMC, PseudofermionHMCInfo, PseudofermionHMCState
from .replica_exchange import (
    IdentityMap,
    ReplicaExchange,
    ReplicaExchangeInfo,
    ReplicaExchangeState,
    swap_log_ratio,
)
from .u1_exact import sample_u1_exact, u1_links_from_plaquettes

__all__ = [
    "JointFlowMetropolis",
    "GibbsFlowMetropolis",
    "ExactPseudofermionConditional",
    "JointState",
    "JointInfo",
    "joint_action",
    "metropolis_accept",
    "sample_u1_exact",
    "u1_links_from_plaquettes",
    "FieldState",
    "Chain",
    "run_chain",
    "HMC",
    "HMCState",
    "HMCInfo",
    "leapfrog",
    "omelyan",
    "OMELYAN_LAMBDA",
    "LocalMetropolis",
    "LocalMetropolisState",
    "LocalMetropolisInfo",
    "FlowMetropolis",
    "FlowMetropolisWithLocal",
    "FlowMCMCState",
    "FlowMCMCInfo",
    "independence_metropolis",
    "U1Heatbath",
    "U1HeatbathState",
    "U1HeatbathInfo",
    "sample_von_mises",
    "u1_staples",
    "link_groups",
    "SUNHMC",
    "SUNHMCState",
    "SUNHMCInfo",
    "sun_leapfrog",
    "sun_omelyan",
    "sun_kinetic_energy",
    "SUNHeatbath",
    "SUNHeatbathState",
    "SUNHeatbathInfo",
    "sample_su2_heatbath",
    "PseudofermionHMC",
    "PseudofermionHMCState",
    "PseudofermionHMCInfo",
    "ReplicaExchange",
    "ReplicaExchangeState",
    "ReplicaExchangeInfo",
    "IdentityMap",
    "swap_log_ratio",
]
