"""What one proposal costs as the lattice grows (notebook 04, part 2).

Part 1's flow-MH pays a dense determinant per proposal: ``slogdet`` of the even/odd Schur
complement, a ``V × V`` complex matrix (half of ``D``'s ``2V × 2V``), ``O(V³)``
operations. The joint sampler of part 2 pays one CG solve of ``D†D`` per
proposal instead, ``O(V)`` per iteration times an iteration count set by the smallest
eigenvalue of ``D†D`` (it grows toward ``κ_c``, not with ``V`` at fixed physics). Both pay a
flow pass, ``O(V)``. Pseudofermion HMC pays ``n_md + 1`` solves per trajectory.

:func:`proposal_costs` measures these parts side by side on the same exact pure-gauge
configurations (:func:`~lqft_lab.samplers.sample_u1_exact` at ``β``: representative links,
no trained flow needed) for each lattice size; the flows are untrained ones of the shipped
architectures, since a pass costs the same before and after training. Times are the
fastest of ``repeats`` runs, per configuration. On a CPU at small ``L`` the fixed overhead
of each call dominates; the asymptotic slopes show from ``L = 16`` on, and on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ... import checks
from ...actions import PseudofermionAction, SchwingerAction
from ...flows import PseudofermionFlow, build_u1_flow
from ...samplers import PseudofermionHMC, sample_u1_exact
from .. import _checks

PARTS = ("gauge_flow", "pseudofermion_flow", "cg_solve", "dense_det", "pf_hmc_trajectory")


@dataclass(frozen=True)
class ProposalCost:
    """Seconds per configuration of each part at one lattice size.

    Attributes:
        L: the lattice extent (``V = L²``).
        seconds: part → seconds per configuration, parts as in :data:`PARTS`: a gauge-flow
            draw ``θ ~ q``, a pseudofermion-flow draw ``φ ~ q(· | θ)``, one CG solve of
            ``S_pf``, one dense ``log|det D|``, one pseudofermion-HMC trajectory.
        cg_iterations: mean CG iterations of the solve.
    """

    L: int
    seconds: dict[str, float]
    cg_iterations: float

    @property
    def det_over_cg(self) -> float:
        """The dense determinant's time over the CG solve's."""
        return self.seconds["dense_det"] / self.seconds["cg_solve"]

    @property
    def marginal_proposal(self) -> float:
        """Part 1's flow-MH proposal: a gauge-flow draw and a dense determinant."""
        return self.seconds["gauge_flow"] + self.seconds["dense_det"]

    @property
    def joint_proposal(self) -> float:
        """Part 2's joint proposal: both flows and one CG solve."""
        s = self.seconds
        return s["gauge_flow"] + s["pseudofermion_flow"] + s["cg_solve"]


def _timed(fn, repeats: int, device: torch.device) -> float:
    """The fastest of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def proposal_costs(
    Ls: Sequence[int],
    beta: float,
    kappa: float,
    *,
    batch: int = 4,
    repeats: int = 3,
    even_odd: bool = True,
    n_layers: int = 16,
    hidden: Sequence[int] = (8, 8),
    n_blocks: int = 2,
    step_size: float = 0.0625,
    n_md: int = 16,
    tol: float = 1e-10,
    max_iter: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[ProposalCost]:
    """Time each part of a proposal on ``batch`` exact pure-gauge configurations per ``L``.

    Args:
        Ls: lattice extents, multiples of 4 (the gauge flow's stripes), at most 256.
        beta, kappa: the couplings (:class:`~lqft_lab.actions.PseudofermionAction`).
        batch: configurations per call; times are divided by it.
        repeats: calls per part; the fastest counts (the machine's noise only adds).
        even_odd: even/odd pseudofermions for the solve and the HMC trajectory.
        n_layers, hidden: the gauge flow's architecture (:func:`build_u1_flow`).
        n_blocks: the pseudofermion flow's blocks (:class:`PseudofermionFlow`).
        step_size, n_md: the pseudofermion-HMC trajectory (``n_md`` leapfrog steps).
        tol, max_iter: the CG solves' relative residual and iteration limit
            (:class:`~lqft_lab.actions.PseudofermionAction`); near ``κ_c`` exact pure-gauge
            configurations carry near-zero modes that need more than the default limit.
        seed: seeds the configurations, the flows' weights and every draw.
        device: where everything runs.
        progress: show a progress bar over ``Ls``.

    Returns:
        One :class:`ProposalCost` per ``L``, in the order given.

    Raises:
        TypeError, ValueError: naming the argument.
        CGNotConverged: if a solve fails (e.g. ``κ`` above the critical point).

    Example:
        >>> rows = proposal_costs([4, 8], 2.0, 0.24, repeats=1)
        >>> rows[1].seconds["dense_det"], rows[1].cg_iterations
    """
    if isinstance(Ls, (str, bytes)) or not isinstance(Ls, Sequence) or not Ls:
        raise checks.ArgumentKindError(f"Ls must be a non-empty sequence of extents, got {Ls!r}")
    Ls = [checks.integer("Ls", L, low=4, high=256) for L in Ls]
    if any(L % 4 for L in Ls):
        raise ValueError(f"Ls must be multiples of 4 (the gauge flow's stripes), got {Ls}")
    even_odd = checks.boolean("even_odd", even_odd)
    action = PseudofermionAction(beta, kappa, even_odd=even_odd, tol=tol, max_iter=max_iter)
    batch = checks.integer("batch", batch, low=1)
    repeats = checks.integer("repeats", repeats, low=1)
    n_layers = checks.integer("n_layers", n_layers, low=1)
    n_blocks = checks.integer("n_blocks", n_blocks, low=1)
    n_md = checks.integer("n_md", n_md, low=1)
    step_size = checks.positive("step_size", step_size)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    _checks.flag("progress", progress)
    hmc = PseudofermionHMC(action, step_size=step_size, n_steps=n_md)

    sizes = Ls
    if progress:
        from tqdm.auto import tqdm

        sizes = tqdm(Ls, desc="lattice sizes")
    parts = dict(batch=batch, repeats=repeats, seed=seed, device=device)
    flows = dict(n_layers=n_layers, hidden=tuple(hidden), n_blocks=n_blocks)
    return [_measure(L, action, hmc, flows, **parts) for L in sizes]


def _measure(L, action, hmc, flows, *, batch, repeats, seed, device) -> ProposalCost:
    gen = torch.Generator(device).manual_seed(seed)
    theta = sample_u1_exact(batch, L, action.beta, torch.Generator().manual_seed(seed),
                            dtype=torch.float64).to(device)  # fmt: skip
    gauge = build_u1_flow(L, n_layers=flows["n_layers"], hidden=flows["hidden"], seed=seed)
    gauge = gauge.double().to(device).eval()
    fermion = PseudofermionFlow(
        (L, L), n_blocks=flows["n_blocks"], hidden=flows["hidden"], init_kappa=action.kappa
    ).to(device)
    phi = action.heatbath(theta, gen)
    marginal = SchwingerAction(action.beta, action.kappa)
    state = hmc.init(theta, gen)
    calls = {
        "gauge_flow": lambda: gauge.sample(batch, generator=gen),
        "pseudofermion_flow": lambda: fermion.sample(theta, gen),
        "cg_solve": lambda: action.fermion_action(theta, phi),
        "dense_det": lambda: marginal.log_det(theta),
        "pf_hmc_trajectory": lambda: hmc.step(state, gen),
    }
    seconds, iterations = {}, None
    for name, call in calls.items():
        with torch.no_grad():
            seconds[name] = _timed(call, repeats, device) / batch
        if name == "cg_solve":
            iterations = action.last_iterations.double().mean().item()
    return ProposalCost(L, seconds, iterations)


def proposal_cost_table(rows: Sequence[ProposalCost]) -> str:
    """A markdown table of the rows: milliseconds per configuration of each part, the CG
    iterations, and the ratio of the dense determinant to the CG solve."""
    if not rows or not all(isinstance(r, ProposalCost) for r in rows):
        raise checks.ArgumentKindError("rows must be a non-empty sequence of ProposalCost")
    head = (
        "| L | gauge flow | pseudofermion flow | CG solve (iterations) | dense det "
        "| PF-HMC trajectory | det / CG |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        ms = {k: 1e3 * v for k, v in r.seconds.items()}
        lines.append(
            f"| {r.L} | {ms['gauge_flow']:.2f} ms | {ms['pseudofermion_flow']:.2f} ms "
            f"| {ms['cg_solve']:.2f} ms ({r.cg_iterations:.0f}) | {ms['dense_det']:.2f} ms "
            f"| {ms['pf_hmc_trajectory']:.1f} ms | {r.det_over_cg:.2g} |"
        )
    return "\n".join(lines)


def plot_proposal_costs(rows: Sequence[ProposalCost], ax=None):
    """Seconds per configuration against ``V`` (log-log): part 1's marginal proposal (flow
    and dense determinant), part 2's joint proposal (two flows and a CG solve), a
    pseudofermion-HMC trajectory, and the dense determinant and the solve on their own,
    with ``V³`` and ``V`` guides through the largest lattice's points.

    Args:
        rows: the :class:`ProposalCost` rows of :func:`proposal_costs`.
        ax: axes to draw on (``None``: a new figure).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    if not rows or not all(isinstance(r, ProposalCost) for r in rows):
        raise checks.ArgumentKindError("rows must be a non-empty sequence of ProposalCost")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    V = [r.L**2 for r in rows]
    curves = {
        "part 1 proposal: gauge flow + dense det": ([r.marginal_proposal for r in rows], "o-"),
        "part 2 proposal: both flows + CG solve": ([r.joint_proposal for r in rows], "s-"),
        "pseudofermion HMC trajectory": ([r.seconds["pf_hmc_trajectory"] for r in rows], "^-"),
        "dense det alone": ([r.seconds["dense_det"] for r in rows], "o:"),
        "CG solve alone": ([r.seconds["cg_solve"] for r in rows], "s:"),
    }
    for label, (values, style) in curves.items():
        ax.loglog(V, values, style, label=label, ms=5)
    if len(rows) > 1:  # slope guides through the largest lattice, over the last few sizes
        tail = V[-3:]
        for power, (values, _) in ((3, curves["dense det alone"]), (1, curves["CG solve alone"])):
            guide = [values[-1] * (v / V[-1]) ** power for v in tail]
            ax.loglog(tail, guide, color="0.6", lw=0.8, ls="--", zorder=0)
            ax.text(tail[0], guide[0], "∝ V³ " if power == 3 else "∝ V ", fontsize=8,
                    color="0.4", ha="right", va="center")  # fmt: skip
    ax.set(xlabel="lattice volume V", ylabel="seconds per configuration")
    ax.legend(fontsize=7)
    return ax
