"""What an independent sample costs: each sampler's wall time per step times ``2 τ_int``.

A chain of ``B`` parallel chains that ran ``thermalize + steps`` steps in ``seconds`` costs
``seconds / (B (thermalize + steps))`` per step of one chain (thermalisation and
measurements included, as in :mod:`lqft_lab.studies.phi4_scaling`); ``2 τ_int`` steps make
one effectively independent measurement of an observable, so

    cost per independent sample = seconds per chain-step × 2 τ_int.

A step is one HMC trajectory or one flow proposal. The flow's training is not in this
number: it is paid once and reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ... import checks
from ...analysis import gamma_method
from ...samplers import Chain
from .. import _checks


@dataclass(frozen=True)
class SamplerCost:
    """One sampler's bill.

    Attributes:
        sampler: its name.
        acceptance: mean acceptance of the production steps.
        chains, steps, thermalize: parallel chains, production steps and discarded steps.
        seconds: wall time of the whole run (thermalisation included).
        tau_int: observable name → Γ-method ``τ_int`` in steps (chains as replicas).
    """

    sampler: str
    acceptance: float
    chains: int
    steps: int
    thermalize: int
    seconds: float
    tau_int: dict[str, float]

    @property
    def seconds_per_step(self) -> float:
        """Wall time of one step of one chain."""
        return self.seconds / (self.chains * (self.steps + self.thermalize))

    def cost_per_independent_sample(self, observable: str) -> float:
        """``seconds_per_step × 2 τ_int`` of ``observable``.

        Raises:
            KeyError: for an observable whose ``τ_int`` was not measured.
        """
        if observable not in self.tau_int:
            have = sorted(self.tau_int)
            raise KeyError(f"{self.sampler}: no τ_int for {observable!r}; have {have}")
        return self.seconds_per_step * 2 * self.tau_int[observable]


def sampler_costs(
    chains: Mapping[str, Chain],
    seconds: Mapping[str, float],
    thermalize: int | Mapping[str, int],
    observables: Sequence[str] = ("Q", "condensate"),
) -> list[SamplerCost]:
    """Every chain's :class:`SamplerCost` for ``observables``.

    Args:
        chains: sampler name → :class:`~lqft_lab.samplers.Chain` (production steps only,
            as :func:`~lqft_lab.samplers.run_chain` returns them).
        seconds: sampler name → wall time of its run, thermalisation included.
        thermalize: steps each chain discarded before production: one number for all, or
            sampler name → steps.
        observables: names every chain measured.

    Raises:
        TypeError, ValueError: for chains that are not chains, a missing or negative time,
            a negative ``thermalize``, or an observable a chain did not measure.
    """
    _checks.mapping("chains", chains, of=Chain)
    _checks.mapping("seconds", seconds)
    if isinstance(thermalize, Mapping):
        discarded = {
            name: checks.integer(f"thermalize[{name!r}]", thermalize.get(name), low=0)
            for name in chains
        }
    else:
        discarded = dict.fromkeys(chains, checks.integer("thermalize", thermalize, low=0))
    if isinstance(observables, str) or not observables:
        raise checks.ArgumentKindError(
            f"observables must be a non-empty sequence of names, got {observables!r}"
        )
    costs = []
    for name, chain in chains.items():
        if name not in seconds:
            raise ValueError(f"seconds has no wall time for the sampler {name!r}")
        wall = checks.real(f"seconds[{name!r}]", seconds[name], low=0)
        missing = [o for o in observables if o not in chain.observables]
        if missing:
            raise ValueError(f"the {name} chain did not measure {missing}")
        steps, n_chains = chain.accepted.shape
        tau = {}
        for o in observables:  # Γ-method τ_int in measurements, ``every`` steps apart
            data = chain.observables[o].detach().double().cpu().numpy()
            tau[o] = gamma_method(data, warn=False).tau_int * chain.every  # in steps
        steps *= chain.every
        costs.append(
            SamplerCost(name, chain.acceptance, n_chains, steps, discarded[name], wall, tau)
        )
    return costs


def cost_table(costs: Sequence[SamplerCost], baseline: str | None = None) -> str:
    """A Markdown table of :func:`sampler_costs`' rows: acceptance, chains × steps, ms per
    chain-step, ``τ_int`` and seconds per independent sample of each observable, and, with
    a ``baseline`` sampler, each cost relative to the baseline's (``< 1``: cheaper).

    Raises:
        TypeError: for rows that are not :class:`SamplerCost`.
        ValueError: for a ``baseline`` that is not among the rows.
    """
    for row in costs:
        _checks.instance("costs[i]", row, SamplerCost)
    if not costs:
        raise ValueError("cost_table needs at least one row")
    names = list(costs[0].tau_int)
    by_name = {row.sampler: row for row in costs}
    if baseline is not None and baseline not in by_name:
        raise ValueError(f"baseline {baseline!r} is not among the samplers {sorted(by_name)}")
    head = "| sampler | acceptance | chains × steps | ms per step |"
    rule = "|---|---|---|---|"
    for o in names:
        head += f" τ_int({o}) | s per independent {o} |"
        rule += "---|---|"
    lines = [head, rule]
    for row in costs:
        line = (
            f"| {row.sampler} | {row.acceptance:.3f} | {row.chains} × {row.steps} | "
            f"{1e3 * row.seconds_per_step:.1f} |"
        )
        for o in names:
            cost = row.cost_per_independent_sample(o)
            line += f" {row.tau_int[o]:.1f} | {cost:.3g}"
            if baseline is not None:
                line += f" ({cost / by_name[baseline].cost_per_independent_sample(o):.2g}×)"
            line += " |"
        lines.append(line)
    return "\n".join(lines)
