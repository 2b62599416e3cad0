"""Flow samplers of links and pseudofermions together (notebook 04, part 2).

The target is the joint density of U(1) links and an Nf = 2 pseudofermion,

    p(θ, φ) ∝ exp(-S_g(θ) - φ†(D†D)^{-1}φ),

whose θ-marginal is ``e^{-S_g} det(D†D)``: the links of every sampler here are distributed
as with the exact determinant, while the weights need only a CG solve. With a gauge flow
``q(θ)`` and a model ``q(φ | θ)`` of the pseudofermion (a
:class:`~lqft_lab.flows.pseudofermion.PseudofermionFlow`, or
:class:`ExactPseudofermionConditional`), the log weight of a joint draw is

    log w(θ, φ) = -S_g(θ) - S_pf(θ, φ) - log q(θ) - log q(φ | θ).

- :class:`JointFlowMetropolis`: independence Metropolis on ``(θ, φ)`` with proposals
  ``θ' ~ q``, ``φ' ~ q(· | θ')`` (Albergo et al., arXiv:2106.05934).
- :class:`GibbsFlowMetropolis`: the exact heatbath ``φ = D†χ`` at the current links, then a
  flow proposal ``θ' ~ q`` for the links' conditional ``p(θ | φ)``, accepted with
  ``S_g + S_pf`` at the fixed ``φ``. No model of ``φ`` is needed; the acceptance lost to the
  pseudofermion's noise shows against the marginal flow-MH of part 1.
- With :class:`ExactPseudofermionConditional` (``q(φ | θ) = CN(0, D†D)``, which needs
  ``det D``: small lattices) ``log w(θ, φ) = -S_g + log det D†D + N log π - log q(θ)`` is
  the marginal weight of part 1 to rounding, whatever ``φ``: joint flow-MH becomes the
  marginal one. An approximate ``q(φ | θ)`` can only lower the ESS (Jensen's inequality on
  the ``φ`` integral of the weights).

With even/odd pseudofermions (``action.even_odd``) the target's ``φ`` lives on the even sites.
A flow of ``φ`` on the whole lattice then meets a target that ignores the odd sites, and
its reverse KL is unbounded (spreading ``φ`` on the odd sites lowers ``log q`` for free).
So the odd sites carry an auxiliary ``CN(0, 1)`` field, a factor ``π^{-V} e^{-|φ_o|²}`` of
the target (:func:`joint_action`) that leaves the even sites' law and the links' exactly as
they were.

States carry the links as ``x`` (what :func:`~lqft_lab.samplers.run_chain` measures) and the
pseudofermion as ``phi``. Every log density is float64; ``S_pf`` is solved by CG in
complex128 (:class:`~lqft_lab.actions.PseudofermionAction`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import checks
from ..actions.pseudofermion import PseudofermionAction
from ..actions.u1 import check_links
from ..actions.wilson_dirac import check_fermion
from .base import _accept
from .flow_mcmc import FlowMCMCState

__all__ = [
    "joint_action",
    "ExactPseudofermionConditional",
    "JointState",
    "JointInfo",
    "JointFlowMetropolis",
    "GibbsFlowMetropolis",
]


def _odd_norm2(action: PseudofermionAction, phi: torch.Tensor) -> torch.Tensor:
    """``|φ_o|²`` per sample, ``(B,)``."""
    odd = 1 - action.dirac.parity_mask(phi.shape[1], phi.shape[2], device=phi.device)
    return (odd * (phi.conj() * phi).real).flatten(1).sum(dim=1)


def joint_action(
    action: PseudofermionAction, theta: torch.Tensor, phi: torch.Tensor, dense: bool = False
):
    """``S_g + S_pf``, plus ``|φ_o|²`` on the odd sites with ``action.even_odd`` (module
    docstring); ``(B,)``, differentiable in ``theta`` and ``phi``. With ``dense``, ``S_pf``
    by a dense solve with ``D†`` instead of CG (small lattices, accurate near zero modes):
    :meth:`~lqft_lab.actions.PseudofermionAction.dense_fermion_action`."""
    if checks.boolean("dense", dense):
        S = action.gauge(theta) + action.dense_fermion_action(theta, phi)
    else:
        S = action(theta, phi)
    if action.even_odd:
        S = S + _odd_norm2(action, phi).to(S.dtype)
    return S


class ExactPseudofermionConditional:
    """``q(φ | θ) = CN(0, D†D)`` (``CN(0, M†M)`` on the even sites with ``even_odd``, and
    the auxiliary ``CN(0, 1)`` on the odd ones), the target's own conditional: ``φ = D†χ``
    and ``log q(φ | θ) = -φ†(D†D)^{-1}φ - log det(D†D) - N log π``, ``N`` the complex
    components.
    The determinant is dense (:meth:`~lqft_lab.actions.wilson_dirac.WilsonDirac.log_abs_det`):
    small lattices only.

    Args:
        action: the :class:`~lqft_lab.actions.PseudofermionAction` whose conditional it is.
    """

    def __init__(self, action: PseudofermionAction):
        if not isinstance(action, PseudofermionAction):
            raise checks.ArgumentKindError(
                f"action must be a PseudofermionAction, got {type(action).__name__}"
            )
        self.action = action

    def _log_normaliser(self, theta: torch.Tensor) -> torch.Tensor:
        n = self.action.n_components(theta)
        logdet = 2 * self.action.dirac.log_abs_det(theta.to(torch.float64))
        return (-logdet - n * math.log(math.pi)).to(theta.dtype)

    def _auxiliary(self, phi: torch.Tensor) -> torch.Tensor:
        """``log`` of the odd sites' ``CN(0, 1)`` (zero without ``even_odd``)."""
        if not self.action.even_odd:
            return phi.real.new_zeros(phi.shape[0])
        V = phi.shape[1] * phi.shape[2]
        return -_odd_norm2(self.action, phi) - V * math.log(math.pi)

    def sample(self, theta: torch.Tensor, generator: torch.Generator | None = None):
        """``(φ, log q(φ | θ))`` with ``φ = D†χ`` exactly (``S_pf = χ†χ``, no solve)."""
        check_links(theta)
        phi, S_pf = self.action._heatbath(theta, generator)
        if self.action.even_odd:
            odd = 1 - self.action.dirac.parity_mask(*phi.shape[1:3], device=phi.device)
            noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device)
            phi = phi + odd.to(phi.real.dtype) * noise
        logq = -S_pf + self._log_normaliser(theta) + self._auxiliary(phi).to(theta.dtype)
        return phi, logq

    def log_prob(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``log q(φ | θ)``, ``(B,)`` (one CG solve and one dense determinant)."""
        logq = -self.action.fermion_action(theta, phi) + self._log_normaliser(theta)
        return logq + self._auxiliary(phi).to(logq.dtype)


@dataclass(frozen=True)
class JointState(FlowMCMCState):
    """A flow-MCMC state with a pseudofermion: links ``x`` ``(B, 2, L0, L1)``, ``logp =
    -S_g - S_pf`` and ``logq`` (of the pair, or of the links alone for
    :class:`GibbsFlowMetropolis`), ``(B,)``, and ``phi`` ``(B, L0, L1, 2)``."""

    phi: torch.Tensor = None


@dataclass(frozen=True)
class JointInfo:
    """``accepted`` ``(B,)``; ``logw`` of the proposals ``(B,)`` (the ESS stream); and the CG
    iterations of the step's solve, ``cg_iterations`` ``(B,)``."""

    accepted: torch.Tensor
    logw: torch.Tensor
    cg_iterations: torch.Tensor


def _check_parts(gauge_model, action) -> None:
    if not isinstance(action, PseudofermionAction):
        raise checks.ArgumentKindError(
            f"action must be a PseudofermionAction, got {type(action).__name__}"
        )
    if not (hasattr(gauge_model, "sample") and hasattr(gauge_model, "log_prob")):
        raise checks.ArgumentKindError(
            f"gauge_model must be a flow model with sample and log_prob, got "
            f"{type(gauge_model).__name__}"
        )


def _finite(state: JointState, what: str) -> JointState:
    bad = ~(torch.isfinite(state.logp) & torch.isfinite(state.logq))
    if bool(bad.any()):
        raise ValueError(f"{what}: non-finite action or model density in {int(bad.sum())} chains")
    return state


class JointFlowMetropolis:
    """Independence Metropolis on links and pseudofermions: ``θ' ~ q(θ)``,
    ``φ' ~ q(φ | θ')``, accepted with ``min(1, w'/w)``, ``w = p(θ, φ)/(q(θ) q(φ | θ))``.

    Args:
        gauge_model: a U(1) flow model (``sample(B, generator)``, ``log_prob(θ)``).
        fermion_model: ``q(φ | θ)`` with ``sample(θ, generator) -> (φ, log q)`` and
            ``log_prob(θ, φ)``: a :class:`~lqft_lab.flows.pseudofermion.PseudofermionFlow`
            or :class:`ExactPseudofermionConditional`.
        action: the :class:`~lqft_lab.actions.PseudofermionAction` of the target.
        batch_size: chains started by ``init(None)``.
    """

    State = JointState

    def __init__(self, gauge_model, fermion_model, action, batch_size: int = 64):
        _check_parts(gauge_model, action)
        if not (hasattr(fermion_model, "sample") and hasattr(fermion_model, "log_prob")):
            raise checks.ArgumentKindError(
                f"fermion_model must have sample and log_prob, got {type(fermion_model).__name__}"
            )
        self.gauge_model = gauge_model
        self.fermion_model = fermion_model
        self.action = action
        self.batch_size = checks.integer("batch_size", batch_size, low=1)

    def _propose(self, n: int, generator):
        with torch.no_grad():
            theta, logq_theta = self.gauge_model.sample(n, generator=generator)
            phi, logq_phi = self.fermion_model.sample(theta, generator)
            logp = -joint_action(self.action, theta, phi)
        iterations = self.action.last_iterations
        return JointState(x=theta, phi=phi, logp=logp, logq=logq_theta + logq_phi), iterations

    def init(self, x=None, generator: torch.Generator | None = None) -> JointState:
        """Start from a first joint draw (``x=None``), or from given ``(theta, phi)``."""
        checks.random_generator("generator", generator)
        if x is None:
            return _finite(self._propose(self.batch_size, generator)[0], "the first draw")
        if not (isinstance(x, tuple) and len(x) == 2):
            raise checks.ArgumentKindError(f"x must be None or a pair (theta, phi), got {x!r:.60}")
        theta, phi = x
        check_links(theta, "theta", finite=True)
        check_fermion(phi, theta, "phi")
        if not bool(torch.isfinite(phi).all()):
            raise ValueError("phi holds NaN or inf")
        with torch.no_grad():
            logq = self.gauge_model.log_prob(theta) + self.fermion_model.log_prob(theta, phi)
            logp = -joint_action(self.action, theta, phi)
        return _finite(JointState(x=theta, phi=phi, logp=logp, logq=logq), "x")

    def step(self, state: JointState, generator: torch.Generator | None = None):
        proposal, iterations = self._propose(state.x.shape[0], generator)
        accepted = _accept(proposal.logw - state.logw, generator)
        return _select(accepted, proposal, state), JointInfo(accepted, proposal.logw, iterations)


def _select(accepted: torch.Tensor, new: JointState, old: JointState) -> JointState:
    links = accepted.view(-1, 1, 1, 1)
    return JointState(
        x=torch.where(links, new.x, old.x),
        phi=torch.where(links, new.phi, old.phi),
        logp=torch.where(accepted, new.logp, old.logp),
        logq=torch.where(accepted, new.logq, old.logq),
    )


class GibbsFlowMetropolis:
    """MH-within-Gibbs: ``φ = D†χ`` at the current links (exact), then ``θ' ~ q(θ)`` for
    ``p(θ | φ) ∝ e^{-S_g(θ) - S_pf(θ, φ)}``, accepted with
    ``min(1, p(θ' | φ) q(θ) / (p(θ | φ) q(θ')))``. One CG solve per step, at ``θ'``
    (at the current links ``S_pf = χ†χ`` exactly).

    Args:
        gauge_model: a U(1) flow model (``sample(B, generator)``, ``log_prob(θ)``).
        action: the :class:`~lqft_lab.actions.PseudofermionAction` of the target.
        batch_size: chains started by ``init(None)``.
    """

    State = JointState

    def __init__(self, gauge_model, action, batch_size: int = 64):
        _check_parts(gauge_model, action)
        self.gauge_model = gauge_model
        self.action = action
        self.batch_size = checks.integer("batch_size", batch_size, low=1)

    def init(self, x: torch.Tensor | None = None, generator=None) -> JointState:
        """Start from a model draw (``x=None``) or given links; ``phi`` is drawn each step."""
        checks.random_generator("generator", generator)
        if x is not None:
            check_links(x, "x", finite=True)
        with torch.no_grad():
            if x is None:
                x, logq = self.gauge_model.sample(self.batch_size, generator=generator)
            else:
                logq = self.gauge_model.log_prob(x)
            phi, S_pf = self.action._heatbath(x, generator)
            logp = -self.action.gauge(x) - S_pf
        return _finite(JointState(x=x, phi=phi, logp=logp, logq=logq), "the start")

    def step(self, state: JointState, generator: torch.Generator | None = None):
        with torch.no_grad():
            theta = state.x
            phi, S_pf = self.action._heatbath(theta, generator)  # exact conditional
            logp = -self.action.gauge(theta) - S_pf
            new, logq_new = self.gauge_model.sample(theta.shape[0], generator=generator)
            logp_new = -self.action.gauge(new) - self.action.fermion_action(new, phi)
            iterations = self.action.last_iterations
        current = JointState(x=theta, phi=phi, logp=logp, logq=state.logq)
        proposal = JointState(x=new, phi=phi, logp=logp_new, logq=logq_new)
        accepted = _accept(proposal.logw - current.logw, generator)
        return _select(accepted, proposal, current), JointInfo(accepted, proposal.logw, iterations)
