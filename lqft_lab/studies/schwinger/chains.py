"""Notebook 04's chains and comparisons: the observables every sampler measures, HMC and
pseudofermion-HMC chains that record their integrator's health, flow-MH chains, and every
sampler's estimates next to an exact reference with pulls."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ... import checks
from ...analysis import gamma_method
from ...observables import schwinger_observables, topological_charge
from ...samplers import (
    HMC,
    Chain,
    FlowMetropolis,
    PseudofermionHMC,
    run_chain,
)
from .. import _checks
from ..u1.chains import u1_observables


def chain_observables(kappa: float) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """What every chain of notebook 04 measures: ``plaquette``, ``condensate`` (per flavour,
    exact), ``pion_1`` (``C_π(1)``) from :func:`~lqft_lab.observables.schwinger_observables`,
    and the topological charge ``Q``; each ``theta (B, 2, L0, L1) -> (B,)``.

    Raises:
        TypeError, ValueError: for a ``kappa`` outside ``[0, 1)``, naming it.
    """
    observables = schwinger_observables(kappa, (1,))
    observables["Q"] = topological_charge
    return observables


class _Recorder:
    """Delegates to an HMC sampler and keeps the last step's info, so that run_chain's
    observables can read ``ΔH`` and the CG iterations of the step just taken."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.State = getattr(sampler, "State", None)
        self.info = None

    def init(self, x, generator=None):
        return self.sampler.init(x, generator=generator)

    def step(self, state, generator=None):
        state, self.info = self.sampler.step(state, generator)
        return state, self.info


def run_hmc_chain(
    sampler: HMC | PseudofermionHMC,
    x0: torch.Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
    observables: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    *,
    thermalize: int = 0,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = False,
) -> Chain:
    """An HMC chain through :func:`~lqft_lab.samplers.run_chain` that also records what each
    trajectory did: ``delta_H`` (``ΔH``), ``boltzmann`` (``e^{-ΔH}``, whose mean is exactly 1
    for a reversible, area-preserving integrator) and, for pseudofermion HMC,
    ``cg_iterations`` (all CG iterations of the trajectory), as series ``(n_steps, B)``
    beside the ``observables``. A callback (a
    :class:`~lqft_lab.widgets.SamplingDashboard`'s) sees their latest means live.

    Args:
        sampler: an :class:`~lqft_lab.samplers.HMC` (e.g. on
            :class:`~lqft_lab.actions.SchwingerAction`) or a
            :class:`~lqft_lab.samplers.PseudofermionHMC`.
        x0, n_steps, generator, observables, thermalize, callback, progress: as for
            :func:`~lqft_lab.samplers.run_chain` (measured every trajectory).

    Returns:
        The :class:`~lqft_lab.samplers.Chain`, with ``delta_H``, ``boltzmann`` (and
        ``cg_iterations``) among its ``observables``.

    Raises:
        TypeError, ValueError: for a ``sampler`` that is neither, ``observables`` that are
            not a mapping or that use the recorded names, and what ``run_chain`` refuses.
    """
    _checks.instance("sampler", sampler, (HMC, PseudofermionHMC))
    observables = dict(_checks.mapping("observables", observables or {}, empty=True))
    recorder = _Recorder(sampler)
    recorded = {
        "delta_H": lambda x: recorder.info.delta_H.to(x.dtype),
        "boltzmann": lambda x: torch.exp(-recorder.info.delta_H).to(x.dtype),
    }
    if isinstance(sampler, PseudofermionHMC):
        recorded["cg_iterations"] = lambda x: recorder.info.cg_iterations.to(x.dtype)
    clash = sorted(set(recorded) & set(observables))
    if clash:
        raise ValueError(f"observables must not use the recorded names {clash}")
    observables.update(recorded)
    return run_chain(
        recorder, x0, n_steps, generator, observables,
        thermalize=thermalize, callback=callback, progress=progress,
    )  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """One sampler's estimate of one observable next to its reference.

    Attributes:
        sampler, observable: names.
        value, error, tau_int: the Γ-method estimate (chains as replicas).
        reference, reference_error: the reference (error 0 for an exact value).
        pull: ``(value - reference) / sqrt(error² + reference_error²)``.
    """

    sampler: str
    observable: str
    value: float
    error: float
    tau_int: float
    reference: float
    reference_error: float
    pull: float


def compare_samplers(
    chains: Mapping[str, Chain], reference: Mapping[str, tuple[float, float]]
) -> list[Comparison]:
    """Every chain's Γ-method estimate of every referenced observable, with its pull.

    Args:
        chains: sampler name → :class:`~lqft_lab.samplers.Chain`; observables a chain did
            not measure are skipped.
        reference: observable name → ``(value, error)``: an exact value (error 0), a
            reweighted reference, or another sampler's estimate.

    Returns:
        One :class:`Comparison` per (sampler, observable), in the order given.

    Raises:
        TypeError, ValueError: for ``chains`` that are not chains, a ``reference`` that is
            not pairs of finite numbers (errors ``>= 0``), a pull with zero error on both
            sides.
    """
    _checks.mapping("chains", chains, of=Chain)
    _checks.mapping("reference", reference)
    rows = []
    for name, pair in reference.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise checks.ArgumentKindError(
                f"reference[{name!r}] must be a pair (value, error), got {pair!r:.80}"
            )
        checks.real(f"reference[{name!r}] value", pair[0])
        checks.real(f"reference[{name!r}] error", pair[1], low=0)
    for sampler, chain in chains.items():
        for name, (ref, ref_err) in reference.items():
            if name not in chain.observables:
                continue
            data = chain.observables[name].detach().double().cpu().numpy()  # (T, B)
            result = gamma_method(data, warn=False)
            sigma = math.hypot(result.error, ref_err)
            if sigma == 0:
                raise ValueError(f"{sampler}: {name} has zero error and an exact reference")
            rows.append(
                Comparison(
                    sampler=sampler,
                    observable=name,
                    value=result.value,
                    error=result.error,
                    tau_int=result.tau_int,
                    reference=float(ref),
                    reference_error=float(ref_err),
                    pull=(result.value - ref) / sigma,
                )
            )
    return rows


def comparison_table(rows: Sequence[Comparison], reference_name: str = "reference") -> str:
    """A Markdown table of :func:`compare_samplers`' rows: estimate ± error, τ_int, the
    reference (± its error) and the pull in σ.

    Raises:
        TypeError: for rows that are not :class:`Comparison`, a non-string name.
    """
    if not isinstance(reference_name, str):
        raise checks.ArgumentKindError(f"reference_name must be a string, got {reference_name!r}")
    lines = [
        f"| sampler | observable | estimate | τ_int | {reference_name} | pull |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        _checks.instance("rows[i]", row, Comparison)
        ref = f"{row.reference:.5f}"
        if row.reference_error > 0:
            ref += f" ± {row.reference_error:.5f}"
        lines.append(
            f"| {row.sampler} | {row.observable} | {row.value:.5f} ± {row.error:.5f} | "
            f"{row.tau_int:.2f} | {ref} | {row.pull:+.2f}σ |"
        )
    return "\n".join(lines)


def flow_mh_chain(
    model,
    action,
    n_steps: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    *,
    thermalize: int | None = None,
    observables: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = False,
) -> Chain:
    """Flow-based Metropolis chains on the model's lattice, measuring notebook 02's observables.

    ``batch_size`` independent chains of :class:`~lqft_lab.samplers.FlowMetropolis` (one
    fresh flow proposal per chain per step, accepted with
    ``min(1, w(x')/w(x))``, ``w = p/q``) run through :func:`~lqft_lab.samplers.run_chain`,
    measuring ``plaq`` (mean ``cos θ_P``), ``Q`` (geometric charge) and ``chi_t = Q²/V``
    every step (:func:`~lqft_lab.studies.u1.u1_observables`). The chains start from the
    model's own draws, which are not yet distributed as ``p``; the first ``thermalize``
    steps are discarded (by default 10% of ``n_steps``, at least 10, as in notebook 02).
    Analyse with :func:`~lqft_lab.analysis.gamma_method` (chains as replicas): the chain is
    exact for any flow, and a poor flow shows up as a long ``τ_int``, not as a bias.

    Args:
        model: a U(1) flow on square links ``(B, 2, L, L)`` (e.g. from
            :func:`train_schwinger_flow`); its dtype and device are the chains'.
        action: ``S(θ) -> (B,)``, e.g. :class:`~lqft_lab.actions.schwinger.SchwingerAction`.
        n_steps: production steps, ``>= 2``.
        batch_size: number of chains, ``>= 1``.
        generator: random source on the model's device (``None``: torch's global one).
        thermalize: steps discarded first, ``>= 0``.
        observables: name → ``theta -> (B,)`` measured instead of notebook 02's (e.g.
            :func:`chain_observables`); ``None``: ``{"plaq", "Q", "chi_t"}``.
        callback: ``run_chain``'s ``callback(step, summary)``, e.g. a
            :class:`~lqft_lab.widgets.SamplingDashboard`'s.
        progress: show a progress bar.

    Returns:
        The :class:`~lqft_lab.samplers.Chain`: ``observables`` (by default
        ``{"plaq", "Q", "chi_t"}``) of shape ``(n_steps, batch_size)``, ``accepted``,
        ``log_weights`` of the proposals.

    Raises:
        TypeError, ValueError: naming the argument: a ``model`` that is not a flow of square
            U(1) links, an ``action`` that is not callable or not for those links,
            ``n_steps < 2``, ``batch_size < 1``, a negative ``thermalize``, a
            ``generator`` that is not a ``torch.Generator`` on the model's device type, a
            non-bool ``progress``.
    """
    shape = tuple(getattr(model, "lattice_shape", ()))
    if not isinstance(model, torch.nn.Module) or len(shape) != 3 or shape[0] != 2:
        raise checks.ArgumentKindError(
            f"model must be a flow of U(1) links (B, 2, L, L), got {type(model).__name__} "
            f"with lattice {shape}"
        )
    if shape[1] != shape[2]:
        raise ValueError(f"model must sample a square lattice (2, L, L), got {shape}")
    n_steps = checks.integer("n_steps", n_steps, low=2)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    if thermalize is not None:
        thermalize = checks.integer("thermalize", thermalize, low=0)
    parameter = next(model.parameters(), None)
    _checks.generator("generator", generator, None if parameter is None else parameter.device)
    _checks.flag("progress", progress)
    sampler = FlowMetropolis(model, action, batch_size=batch_size)  # checks model vs action
    thermalize = max(10, n_steps // 10) if thermalize is None else thermalize
    return run_chain(
        sampler,
        None,
        n_steps,
        generator,
        u1_observables(shape[1]) if observables is None else observables,
        thermalize=thermalize,
        callback=callback,
        progress=progress,
    )
