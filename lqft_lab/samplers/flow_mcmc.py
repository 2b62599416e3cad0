"""Independence Metropolis with normalizing-flow proposals (flow-based MCMC).

Every step proposes a fresh, independent ``x' ~ q`` from the model and accepts it with

    A(x → x') = min(1, [p(x') q(x)] / [p(x) q(x')]),   log-ratio = logw' - logw,

where ``logw = logp - logq = -S - logq`` is the importance log-weight (Albergo, Kanwar,
Shanahan, arXiv:1904.12072, eq. (9)). The unknown ``log Z`` cancels, and the chain is exact
for any flow whose support covers ``p``: a poor flow costs acceptance, never correctness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import checks
from ..actions import Phi4Action, SingleMatrixAction, SUNWilsonAction, U1WilsonAction
from ..flows.priors import HaarPrior, NormalPrior, SpectralNormalPrior, UniformAnglePrior
from ..lattice import check_field
from .base import _accept

__all__ = [
    "FlowMCMCState",
    "FlowMCMCInfo",
    "FlowMetropolis",
    "FlowMetropolisWithLocal",
    "independence_metropolis",
]


@dataclass(frozen=True)
class FlowMCMCState:
    """Current configuration of each chain and its log-densities.

    Attributes:
        x: fields ``(B, *lattice)``.
        logp: ``-S(x)``, ``(B,)``.
        logq: model log-density ``logq(x)``, ``(B,)``.
    """

    x: torch.Tensor
    logp: torch.Tensor
    logq: torch.Tensor

    @property
    def logw(self) -> torch.Tensor:
        """Log importance weight ``logp - logq`` of the current configurations, ``(B,)``."""
        return self.logp - self.logq


@dataclass(frozen=True)
class FlowMCMCInfo:
    """What happened in one step, per chain.

    Attributes:
        accepted: ``(B,)`` bool.
        logw: the proposal's log weight ``logp' - logq'``, ``(B,)``: the stream from which
            the ESS of the model can be monitored.
    """

    accepted: torch.Tensor
    logw: torch.Tensor


#: The kind of field each known prior draws (and so each flow model built on it produces),
#: and the kind each known action scores. A model and an action of different known kinds
#: are a mistake that would otherwise run: φ⁴ scores U(1) link angles ``(B, 2, L, L)`` as a
#: 3D scalar field with extent 2, and no shape check can tell.
_PRIOR_KINDS = (
    (UniformAnglePrior, "U(1) link angles"),
    (HaarPrior, "SU(N) matrices"),  # HaarLinkPrior included
    ((NormalPrior, SpectralNormalPrior), "real scalar fields"),
)
_ACTION_KINDS = (
    (U1WilsonAction, "U(1) link angles"),
    ((SUNWilsonAction, SingleMatrixAction), "SU(N) matrices"),
    (Phi4Action, "real scalar fields"),
)


def _kind(obj, table) -> str | None:
    return next((kind for cls, kind in table if isinstance(obj, cls)), None)


def _model_tensors(model):
    """The model's first parameter or buffer (its dtype and device), or ``None``."""
    if not isinstance(model, torch.nn.Module):
        return None
    first = next(iter(model.parameters()), None)
    return first if first is not None else next(iter(model.buffers()), None)


def _check_model_and_action(model, action) -> None:
    """Refuse a flow model whose fields the action is not for (see :class:`FlowMetropolis`)."""
    if not (
        callable(getattr(model, "sample", None)) and callable(getattr(model, "log_prob", None))
    ):
        raise checks.ArgumentKindError(
            f"model must be a flow model with sample(B, generator) and log_prob(x), got "
            f"{type(model).__name__}"
        )
    if not callable(action):
        raise checks.ArgumentKindError(
            f"action must be a callable S(x) -> (B,), got {type(action).__name__}"
        )
    prior = getattr(model, "prior", None)
    field, scored = _kind(prior, _PRIOR_KINDS), _kind(action, _ACTION_KINDS)
    if field is not None and scored is not None and field != scored:
        raise ValueError(
            f"the model draws {field} but the action {action!r} is for {scored}; "
            f"pass the action of the theory the model was trained for"
        )
    if prior is None or not callable(getattr(prior, "sample", None)):
        return  # nothing to draw a probe from: init reports what the action refuses
    # One prior draw of batch 1 has the fields' layout (the flow maps it in place), so the
    # action must score it; a private generator keeps every random stream untouched.
    anchor = _model_tensors(prior)
    device = anchor.device if anchor is not None else torch.device("cpu")
    with torch.no_grad():
        z = prior.sample(1, generator=torch.Generator(device=device).manual_seed(0))
        try:
            S = action(z)
        except torch.cuda.OutOfMemoryError:
            raise
        except (TypeError, ValueError, IndexError, RuntimeError) as err:
            raise ValueError(
                f"the action {action!r} cannot score the model's fields "
                f"{tuple(z.shape[1:])} {z.dtype}: {err}"
            ) from err
    if not isinstance(S, torch.Tensor) or tuple(S.shape) != (1,):
        raise ValueError(
            f"the action {action!r} must return one value per field of the model, shape "
            f"(B,), got {tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__}"
        )


class FlowMetropolis:
    """Batched independence Metropolis sampler with proposals from a flow model.

    Args:
        model: a :class:`~lqft_lab.flows.base.FlowModel` (``sample(B, generator)`` and
            ``log_prob(x)``); its dtype and device set those of the chains.
        action: ``S(x) -> (B,)``.
        batch_size: number of independent chains ``B`` when :meth:`init` starts from model
            draws (``init(None)``); each step draws ``B`` proposals, one per chain.
        prefetch: draw the proposals of this many steps in one pass of the flow and hand
            them out step by step. An independence sampler's proposals do not depend on the
            chain's state, so this changes the random stream but not the Markov chain's law;
            it is the natural way to run one on a GPU, where small batches are bound by
            kernel launches (one pass of ``B · prefetch`` samples costs about as much as one
            of ``B``). Memory grows with ``B · prefetch``. The model must not change while
            drawn-ahead proposals are in use; :meth:`init` discards them.

    The model and the action are checked against each other at construction, without a
    pass of the flow: the field the model's prior draws (U(1) link angles, SU(N) matrices,
    real scalars) must be the kind the action is for, where both are known to this module;
    and the action must score one prior draw of batch 1 (drawn with a private generator,
    so no random stream moves) as shape ``(1,)``. A flow maps its prior's space onto
    itself, so that draw has the layout of the model's fields.

    Example:
        >>> sampler = FlowMetropolis(model, Phi4Action(m2=-4.0, lam=8.0), batch_size=64)
        >>> state = sampler.init(None, generator=torch.Generator().manual_seed(0))
        >>> state, info = sampler.step(state)

    Raises:
        TypeError: for a ``model`` without ``sample`` and ``log_prob``, an ``action`` that is
            not callable, non-integer ``batch_size`` or ``prefetch``.
        ValueError: for ``batch_size`` or ``prefetch`` below 1, a model and an action of
            different theories (a U(1) flow and a φ⁴ action), an action that cannot score
            the model's fields; at :meth:`init`, for fields that do not match the model's
            lattice, dtype or device, hold NaN or ``inf``, or have a non-finite action or
            model density.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = FlowMCMCState

    def __init__(self, model, action, batch_size: int = 64, prefetch: int = 1):
        batch_size = checks.integer("batch_size", batch_size, low=1)
        prefetch = checks.integer("prefetch", prefetch, low=1)
        _check_model_and_action(model, action)
        self.model = model
        self.action = action
        self.batch_size = batch_size
        self.prefetch = prefetch
        self._ahead: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __repr__(self) -> str:
        extra = f", prefetch={self.prefetch}" if self.prefetch > 1 else ""
        return (
            f"FlowMetropolis({type(self.model).__name__}, {self.action!r}, "
            f"B={self.batch_size}{extra})"
        )

    def _propose(self, n: int, generator: torch.Generator | None):
        with torch.no_grad():
            x, logq = self.model.sample(n, generator=generator)
            return x, -self.action(x), logq

    def _next_proposals(self, n: int, generator: torch.Generator | None):
        """``n`` proposals for one step, from the drawn-ahead ones when ``prefetch > 1``."""
        if self.prefetch == 1:
            return self._propose(n, generator)
        if not self._ahead or self._ahead[-1][0].shape[0] != n:
            drawn = self._propose(n * self.prefetch, generator)
            # reversed, so that pop() hands them out in the order drawn
            self._ahead = list(zip(*(t.split(n) for t in drawn), strict=True))[::-1]
        return self._ahead.pop()

    def init(
        self, x: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> FlowMCMCState:
        """Start the chains.

        Args:
            x: ``None`` to start ``batch_size`` chains from a first model draw (accepted by
                construction, so there is no burn-in), or given fields ``(B, *lattice)``
                whose ``logq`` is computed with the reverse flow.
            generator: random source for the first draw.

        Raises:
            TypeError: for an ``x`` that is neither ``None`` nor a tensor, a bad ``generator``.
            ValueError: if ``x`` does not match the model's lattice, dtype or device, holds
                NaN or ``inf``, or has a non-finite action or model density (also for the
                model's own first draw, naming the model).
        """
        self._ahead = []
        if x is None:
            anchor = _model_tensors(self.model)
            checks.random_generator(
                "generator", generator, anchor.device if anchor is not None else None
            )
            x, logp, logq = self._propose(self.batch_size, generator)
            _check_densities(logp, logq, "the model's first draw (model)")
            return FlowMCMCState(x=x, logp=logp, logq=logq)
        check_field(x, name="x", allow_complex=True, finite=True)
        self._check_like_model(x)
        checks.random_generator("generator", generator, x.device)
        x = x.detach()
        with torch.no_grad():
            logq = self.model.log_prob(x)
            logp = -self.action(x)
        _check_densities(logp, logq, "x")
        return FlowMCMCState(x=x, logp=logp, logq=logq)

    def _check_like_model(self, x: torch.Tensor) -> None:
        """Given starting fields must have the model's lattice, dtype and device."""
        shape = getattr(self.model, "lattice_shape", None)
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(
                f"x of shape {tuple(x.shape)} does not match the model's lattice "
                f"(B, {', '.join(map(str, shape))})"
            )
        anchor = _model_tensors(self.model)
        if anchor is not None and anchor.is_floating_point():
            if x.real.dtype != anchor.dtype or x.device.type != anchor.device.type:
                raise ValueError(
                    f"x is {x.dtype} on {x.device} but the model is {anchor.dtype} on "
                    f"{anchor.device}; convert x with .to(...)"
                )

    def step(
        self, state: FlowMCMCState, generator: torch.Generator | None = None
    ) -> tuple[FlowMCMCState, FlowMCMCInfo]:
        """Propose one fresh model draw per chain and accept or reject it."""
        x1, logp1, logq1 = self._next_proposals(state.x.shape[0], generator)
        logw1 = logp1 - logq1
        accepted = _accept(logw1 - state.logw, generator)  # 1904.12072 eq. (9)
        keep = accepted.view(-1, *([1] * (x1.dim() - 1)))  # (B, 1, ..., 1)
        new = FlowMCMCState(
            x=torch.where(keep, x1, state.x),
            logp=torch.where(accepted, logp1, state.logp),
            logq=torch.where(accepted, logq1, state.logq),
        )
        return new, FlowMCMCInfo(accepted=accepted, logw=logw1)


def _check_densities(logp: torch.Tensor, logq: torch.Tensor, what: str) -> None:
    """A chain starts where ``logp`` and ``logq`` are finite: else its weight is undefined."""
    bad = ~(torch.isfinite(logp) & torch.isfinite(logq))
    if bool(bad.any()):
        raise ValueError(
            f"{what} has a non-finite action or model density in {int(bad.sum())} of "
            f"{bad.numel()} chains"
        )


def _check_local_sampler(local) -> None:
    """A local sampler has ``init(x) -> state`` and ``step(state, generator)``."""
    if not (hasattr(local, "init") and hasattr(local, "step")):
        raise TypeError(f"local must be a sampler with init and step methods, got {local!r}")


def _local_moves(local, x: torch.Tensor, n: int, generator) -> torch.Tensor:
    """The fields ``x`` after ``n`` steps of the local sampler ``local``."""
    start = getattr(local, "_start", None)  # init without its checks: x comes from the chain
    state = start(x) if start is not None else local.init(x)
    for _ in range(n):
        state, _ = local.step(state, generator)
    return state.x


class FlowMetropolisWithLocal:
    """Flow-MH moves alternated with the moves of an exact local sampler.

    One step is one flow-MH proposal per chain (:class:`FlowMetropolis`), then ``n_local``
    steps of ``local`` (a heatbath sweep, an HMC trajectory); the chains' ``logq`` is then
    recomputed by the reverse flow for the next MH test. Each part leaves ``p`` invariant,
    so their composition does too, whatever the flow.

    Why combine them: an independence sampler with heavy-tailed weights keeps a chain on a
    configuration of large weight ``p/q`` for many steps, and its τ_int is set by those
    runs of rejections. A local move changes the configuration, and so its weight, at once,
    while flow proposals keep crossing the barriers that freeze local updates (topology).
    For 2D U(1) at L = 16, β = 6 (notebook 02), one heatbath sweep per step cut τ_int(Q) from
    ≥ 175 steps of flow-MH alone to 26 ± 2 with the same flow (``data/README.md``). A step
    costs a reverse pass of the flow more than a flow-MH step, plus the local moves.
    Gabrié, Rotskoff and Vanden-Eijnden (arXiv:2105.12603) combine the two moves this way.

    Args:
        model, action, batch_size, prefetch: as for :class:`FlowMetropolis`.
        local: a sampler with ``init(x) -> state`` and ``step(state, generator) ->
            (state, info)`` whose ``state.x`` holds the fields, leaving ``exp(-S)``
            invariant (e.g. :class:`~lqft_lab.samplers.U1Heatbath`).
        n_local: local steps after each flow-MH move (>= 1).

    ``info.accepted`` is the flow-MH move's.

    Raises:
        TypeError: for a ``local`` without ``init`` and ``step``, a non-integer ``n_local``,
            and what :class:`FlowMetropolis` refuses.
        ValueError: for ``n_local < 1``, and what :class:`FlowMetropolis` refuses.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = FlowMCMCState

    def __init__(self, model, action, local, n_local: int = 1, batch_size: int = 64, prefetch=1):
        _check_local_sampler(local)
        n_local = checks.integer("n_local", n_local, low=1)
        self.flow = FlowMetropolis(model, action, batch_size=batch_size, prefetch=prefetch)
        self.local = local
        self.n_local = n_local

    def __repr__(self) -> str:
        return f"FlowMetropolisWithLocal({self.flow!r}, {self.local!r}, n_local={self.n_local})"

    def init(
        self, x: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> FlowMCMCState:
        """Start the chains, as :meth:`FlowMetropolis.init`."""
        return self.flow.init(x, generator)

    def step(
        self, state: FlowMCMCState, generator: torch.Generator | None = None
    ) -> tuple[FlowMCMCState, FlowMCMCInfo]:
        """One flow-MH move, then ``n_local`` local steps, per chain."""
        state, info = self.flow.step(state, generator)
        x = _local_moves(self.local, state.x, self.n_local, generator)
        with torch.no_grad():  # the moved fields' densities, without the flow's prefetch reset
            state = FlowMCMCState(x=x, logp=-self.flow.action(x), logq=self.flow.model.log_prob(x))
        return state, info


def independence_metropolis(
    logp: torch.Tensor, logq: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact sequential independence Metropolis over a precomputed stream of proposals.

    One chain visits the proposals in order; the first is accepted by construction (as in
    ``make_mcmc_ensemble`` of arXiv:2101.08176). Proposal ``i`` is accepted when
    ``log u_i < logw_i - logw_current``, the rule of
    :func:`~lqft_lab.samplers.base.metropolis_accept` written as a comparison of
    ``logw_current`` with the precomputed threshold ``logw_i - log u_i``: the current weight
    depends on earlier decisions, so only the thresholds vectorise. NaN weights are rejected.

    Args:
        logp: ``-S`` of the proposals, 1D ``(N,)``.
        logq: model log-density of the proposals, 1D ``(N,)``.
        generator: random source for the uniforms (on the device of ``logp``).

    Returns:
        ``(index, accepted)``: ``index (N,)`` long, the chain's configuration at step ``t`` is
        proposal ``index[t]``; ``accepted (N,)`` bool, with ``accepted[0] = True``. A NaN
        weight counts as ``-inf``: such a proposal is never moved to, and a chain that
        starts on one leaves it at the first proposal with a weight.

    Raises:
        TypeError: if ``logp`` or ``logq`` is not a tensor, or ``generator`` not a generator.
        ValueError: for tensors that are not non-empty 1D float32/float64 of equal length on
            one device, a generator on another device.

    Example:
        >>> x, logq = model.sample(10_000)
        >>> index, accepted = independence_metropolis(-action(x), logq)
        >>> chain = x[index]
    """
    checks.tensor("logp", logp, finite=False)
    checks.tensor("logq", logq, finite=False, device=logp.device)
    if logp.dim() != 1 or logp.shape != logq.shape or logp.numel() == 0:
        raise ValueError(
            f"logp and logq must be non-empty 1D tensors of equal length, "
            f"got {tuple(logp.shape)} and {tuple(logq.shape)}"
        )
    checks.random_generator("generator", generator, logp.device)
    logw = (logp - logq).detach()
    logw = torch.where(torch.isnan(logw), -math.inf, logw)  # NaN: never moved to
    u = torch.rand(logw.shape, generator=generator, device=logw.device, dtype=logw.dtype)
    threshold = (logw - torch.log(u)).cpu().tolist()  # accept i iff logw_cur < threshold_i
    weights = logw.cpu().tolist()
    index = [0] * len(weights)
    accepted = [True] + [False] * (len(weights) - 1)
    current, current_logw = 0, weights[0]
    for i in range(1, len(weights)):
        if current_logw < threshold[i]:  # NaN on either side compares False: rejected
            current, current_logw = i, weights[i]
            accepted[i] = True
        index[i] = current
    return (
        torch.tensor(index, dtype=torch.long, device=logp.device),
        torch.tensor(accepted, dtype=torch.bool, device=logp.device),
    )
