"""Notebook 06's compositions: every estimator of ``d⟨O⟩/dβ`` on the same exact draws.

- :func:`train_fh_maps` trains the two maps ``f_±`` that carry ``β``'s configurations
  towards ``β ± δ``: notebook 05's T-REX maps (:func:`~.replica_exchange.identity_flow`,
  :func:`~.replica_exchange.train_replica_map`), between neighbouring couplings.
- :func:`fh_estimates` runs the five estimators of :mod:`lqft_lab.analysis.derivatives`
  for ``d⟨cos θ_P⟩/dβ`` and ``dχ_t/dβ`` at one ``(β, L)`` on exact draws
  (:func:`~lqft_lab.samplers.sample_u1_exact`) and keeps them with the exact values of
  :mod:`lqft_lab.exact.u1_derivatives` and what each cost.
- :func:`estimates_table`, :func:`variance_table` and :func:`cost_table` format them.

Each finite-``δ`` estimator (independent ensembles, reweighting, flowed) targets the central
difference quotient ``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ``, known exactly too; the covariance and
Stein estimators target the derivative itself. Pulls are taken against each one's own
target, and the gap between the two targets (``O(δ²)``) is printed beside them.

References:
    R. Abbott et al., arXiv:2401.10874; M. Lüscher, arXiv:0907.5491; S. Bacchio et al.,
    arXiv:2212.08469.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.special import ive

from .. import checks
from ..actions import U1WilsonAction
from ..analysis.derivatives import (
    DerivativeEstimate,
    covariance_derivative,
    flowed_difference,
    independent_difference,
    reweighted_difference,
    stein_derivative,
)
from ..exact.u1 import u1_energy_variance, u1_plaquette, u1_topological_susceptibility
from ..exact.u1_derivatives import u1_plaquette_derivative, u1_susceptibility_derivative
from ..flows.u1 import LoopField
from ..observables import plaquette, topological_charge
from ..samplers import sample_u1_exact
from . import _checks
from .replica_exchange import exact_draw, identity_flow, train_replica_map

__all__ = [
    "CorrelatedSizes",
    "FHMaps",
    "FHResult",
    "OBSERVABLES",
    "train_fh_maps",
    "fh_estimates",
    "estimates_table",
    "variance_table",
    "cost_table",
    "pulls",
    "variance_ratios",
    "variance_series",
    "reweighting_overlap",
    "plaquette_transport",
    "exact_draws",
    "fh_chain_estimates",
    "chain_table",
    "exact_targets",
    "METHODS",
]

#: The two observables, by the name the results use.
OBSERVABLES = ("plaquette", "chi_t")
#: The estimators, in the order the tables list them.
METHODS = ("independent", "covariance", "reweighted", "flowed", "stein")
#: The finite-δ estimators: unbiased for the difference quotient, not the derivative.
FINITE_DELTA = ("independent", "reweighted", "flowed")


def exact_targets(beta: float, L: int, delta: float) -> tuple[dict, dict]:
    """``({observable: d⟨O⟩/dβ}, {observable: [⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ})``, exact."""
    exact = {
        "plaquette": u1_plaquette_derivative(beta, L),
        "chi_t": u1_susceptibility_derivative(beta, L),
    }
    quotient = {
        name: (fn(beta + delta, L) - fn(beta - delta, L)) / (2 * delta)
        for name, fn in (("plaquette", u1_plaquette), ("chi_t", u1_topological_susceptibility))
    }
    return exact, quotient


#: Plaquettes per call of the exact sampler: its rejection rounds hold about 400 bytes per
#: plaquette at once (2 GiB for 4096 draws at L = 32, measured), so larger batches are drawn
#: in pieces and notebook 06 stays within Binder's memory.
DRAW_CHUNK = 2**18


def exact_draws(n: int, L: int, beta: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` independent exact float64 draws at ``β`` on ``L × L``
    (:func:`~lqft_lab.samplers.sample_u1_exact`), made ``DRAW_CHUNK // L²`` at a time from
    the one ``generator``: the same numbers for the same seed, at a bounded peak memory."""
    n = checks.integer("n", n, low=1)
    L = checks.integer("L", L, low=2)
    per_call = max(DRAW_CHUNK // (L * L), 1)
    parts = [
        sample_u1_exact(min(per_call, n - start), L, beta, generator, dtype=torch.float64)
        for start in range(0, n, per_call)
    ]
    return torch.cat(parts)


@dataclass(frozen=True)
class CorrelatedSizes:
    """Notebook 06's sizes per mode; the defaults are full mode's.

    Attributes:
        betas, Ls: the couplings and lattices of the volume study.
        draws: fresh exact draws per ``(β, L)`` that every estimator is evaluated on (the
            independent-ensemble one gets as many, half at each of ``β ± δ``).
        train_draws: draws the Stein coefficients are fitted on (not reused).
        delta: the half-step ``δ`` of the finite differences.
        map_steps, map_layers, map_batch: training of the flowed maps ``f_±``.
        flow_Ls: the lattices where maps are trained (the flowed estimator elsewhere: none).
        chain: ``(chains, sweeps)`` of the heatbath run at ``(β, L = 16)`` whose
            configurations the estimators are applied to as a Markov chain: many short
            chains, since each keeps the topological sector of its exact start.
    """

    betas: tuple[float, ...] = (4.0, 6.0)
    Ls: tuple[int, ...] = (8, 16, 32)
    draws: int = 16384
    train_draws: int = 4096
    delta: float = 0.25
    map_steps: int = 600
    map_layers: int = 8
    map_batch: int = 256
    flow_Ls: tuple[int, ...] = (8, 16, 32)
    chain: tuple[int, int] = (256, 250)

    def __post_init__(self):
        betas = tuple(_checks.reals("betas", self.betas, low=0.0))
        Ls = tuple(_checks.integers("Ls", self.Ls, low=4))
        flow_Ls = self.flow_Ls  # may be empty (tuple or list): no maps
        empty = isinstance(flow_Ls, (tuple, list)) and not flow_Ls
        flow_Ls = () if empty else tuple(_checks.integers("flow_Ls", flow_Ls, low=4))
        for L in (*Ls, *flow_Ls):
            if L % 4:
                raise ValueError(f"every L must be a multiple of 4 (the flows' stripes), got {L}")
        if not set(flow_Ls) <= set(Ls):
            raise ValueError(f"flow_Ls {flow_Ls} must be among Ls {Ls}")
        for name in ("draws", "train_draws"):
            checks.integer(name, getattr(self, name), low=64)
        for name in ("map_steps", "map_layers"):
            checks.integer(name, getattr(self, name), low=1)
        checks.integer("map_batch", self.map_batch, low=2)
        checks.positive("delta", self.delta)
        _checks.chains_and_steps("chain", self.chain, min_steps=8)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "Ls", Ls)
        object.__setattr__(self, "flow_Ls", flow_Ls)

    @classmethod
    def for_mode(cls, mode: str, **changes) -> CorrelatedSizes:
        """``"full"`` (the defaults) or ``"fast"`` (β = 6; L = 8, 16, 32; maps at L = 8, 16:
        a few minutes on a CPU), with ``changes`` applied on top."""
        mode = checks.choice("mode", mode, ("fast", "full"))
        base = cls()
        if mode == "fast":
            base = replace(
                base,
                betas=(6.0,),
                Ls=(8, 16, 32),
                draws=4096,
                train_draws=2048,
                map_steps=150,
                map_batch=64,
                flow_Ls=(8, 16),
                chain=(64, 75),
            )
        unknown = sorted(set(changes) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"CorrelatedSizes has no field {unknown[0]!r}: cannot change it")
        return replace(base, **changes)


@dataclass
class FHMaps:
    """The two maps of the flowed estimator: ``plus`` towards ``β + δ``, ``minus`` towards
    ``β - δ``, with the seconds their training took and each one's training history."""

    beta: float
    delta: float
    L: int
    plus: torch.nn.Module
    minus: torch.nn.Module
    seconds: float
    history: dict = field(default_factory=dict)


def train_fh_maps(
    beta: float,
    delta: float,
    L: int,
    *,
    n_steps: int = 600,
    n_layers: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    device="cpu",
    progress: bool = False,
) -> FHMaps:
    """Train ``f_±``: gauge-equivariant flows from the identity, carrying exact draws at
    ``β`` towards ``β ± δ`` (notebook 05's T-REX maps, :func:`train_replica_map`), float64
    on ``device`` (the draws are made on the CPU and moved there).

    Raises:
        TypeError, ValueError: naming the argument (``β - δ`` must stay ``>= 0``).
    """
    beta = checks.real("beta", beta, low=0)
    delta = checks.positive("delta", delta)
    if beta - delta < 0:
        raise ValueError(f"beta - delta must be >= 0, got beta={beta}, delta={delta}")
    L = checks.integer("L", L, low=4)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    source = U1WilsonAction(beta)
    cpu_draw = exact_draw(source, L)

    def draw(n, generator):
        return cpu_draw(n, generator).to(device)

    maps, history, t0 = {}, {}, time.perf_counter()
    for k, (name, sign) in enumerate((("plus", 1), ("minus", -1))):
        flow = identity_flow(L, n_layers=n_layers, seed=seed + k).to(device)
        history[name] = train_replica_map(
            flow,
            source,
            U1WilsonAction(beta + sign * delta),
            draw,
            n_steps=n_steps,
            batch_size=batch_size,
            lr=3e-3,
            seed=seed + 10 + k,
            progress=progress,
        )
        maps[name] = flow
    return FHMaps(beta, delta, L, maps["plus"], maps["minus"], time.perf_counter() - t0, history)


def _observables(theta: torch.Tensor) -> dict[str, torch.Tensor]:
    volume = theta.shape[2] * theta.shape[3]
    return {
        "plaquette": plaquette(theta),
        "chi_t": topological_charge(theta).round() ** 2 / volume,
    }


@dataclass(frozen=True)
class FHResult:
    """Every estimator of both derivatives at one ``(β, L)``.

    Attributes:
        beta, L, delta, n_draws: the point, the step and the evaluation draws.
        estimates: ``{observable: {method: DerivativeEstimate}}``.
        exact: ``{observable: d⟨O⟩/dβ}``; ``exact_difference``: ``{observable:
            [⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ}``.
        seconds: ``{method: seconds}`` of the work each estimator adds to the draws at
            ``β`` (for ``"independent"``, drawing its two ensembles).
        draw_seconds: seconds to draw the ``n_draws`` configurations at ``β``.
        training_seconds: ``{method: seconds}`` paid once (the maps; the Stein fit).
        coefficients: ``{observable: c_k}`` of the fitted loop field; ``terms``: their names.
    """

    beta: float
    L: int
    delta: float
    n_draws: int
    estimates: dict
    exact: dict
    exact_difference: dict
    seconds: dict
    draw_seconds: float
    training_seconds: dict
    coefficients: dict
    terms: list

    def target(self, observable: str, method: str) -> float:
        """The exact value ``method`` is unbiased for: the difference quotient for the
        finite-``δ`` estimators, the derivative for the others."""
        return (self.exact_difference if method in FINITE_DELTA else self.exact)[observable]

    def pull(self, observable: str, method: str) -> float:
        return self.estimates[observable][method].pull(self.target(observable, method))


def fh_estimates(
    beta: float,
    L: int,
    n_draws: int,
    *,
    delta: float = 0.25,
    train_draws: int = 2048,
    maps: FHMaps | None = None,
    loop_field: LoopField | None = None,
    seed: int = 0,
    methods=None,
) -> FHResult:
    """Every estimator of ``d⟨cos θ_P⟩/dβ`` and ``dχ_t/dβ`` on the same exact draws at ``β``.

    The draws are float64 and independent (:func:`~lqft_lab.samplers.sample_u1_exact`), so
    every error is a plain one (``τ_int = 1/2``) and every pull is honest. Methods:
    ``"independent"`` (``n_draws/2`` fresh draws at each of ``β ± δ``), ``"covariance"``,
    ``"reweighted"``, ``"flowed"`` (only with ``maps``) and ``"stein"`` (the loop field's
    coefficients fitted on ``train_draws`` other draws, per observable).

    Args:
        beta, L: the point; ``L`` a multiple of 4 when ``maps`` are given (their ``L``).
        n_draws: evaluation draws ``>= 64``.
        delta: the half-step of the finite differences, ``0 < δ <= β``.
        train_draws: draws for the Stein fit ``>= 64``.
        maps: :func:`train_fh_maps` at this ``(β, δ, L)``, or ``None`` (no flowed estimate).
        loop_field: the Stein estimator's family (default :class:`LoopField`).
        seed: seeds every draw.
        methods: a subset of the methods to run (default: all that apply).

    Raises:
        TypeError, ValueError: naming the argument; maps made for another point.
    """
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=4)
    n_draws = checks.integer("n_draws", n_draws, low=64)
    train_draws = checks.integer("train_draws", train_draws, low=64)
    delta = checks.positive("delta", delta)
    if beta - delta < 0:
        raise ValueError(f"beta - delta must be >= 0, got beta={beta}, delta={delta}")
    seed = _checks.seed("seed", seed)
    explicit = methods is not None
    methods = tuple(methods) if explicit else METHODS
    for m in methods:
        checks.choice("method", m, METHODS)
    if maps is not None:
        _checks.instance("maps", maps, FHMaps)
        same = maps.L == L and all(
            math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
            for a, b in ((maps.beta, beta), (maps.delta, delta))
        )
        if not same:
            raise ValueError(
                f"maps were trained for (beta, delta, L) = {(maps.beta, maps.delta, maps.L)}, "
                f"not {(beta, delta, L)}"
            )
    elif "flowed" in methods and explicit:
        raise ValueError("the flowed estimator needs maps (train_fh_maps)")
    loop_field = LoopField() if loop_field is None else loop_field
    _checks.instance("loop_field", loop_field, LoopField)

    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    theta = exact_draws(n_draws, L, beta, generator)
    draw_seconds = time.perf_counter() - t0
    obs = _observables(theta)
    energy = -U1WilsonAction(1.0)(theta)
    estimates = {name: {} for name in OBSERVABLES}
    seconds, training, coefficients = {}, {}, {}

    if "independent" in methods:
        t0 = time.perf_counter()
        half = max(n_draws // 2, 64)
        sides = [_observables(exact_draws(half, L, beta + s * delta, generator)) for s in (1, -1)]
        seconds["independent"] = time.perf_counter() - t0
        for name in OBSERVABLES:
            estimates[name]["independent"] = independent_difference(
                sides[0][name], sides[1][name], delta
            )
    for method, fn in (
        ("covariance", lambda o: covariance_derivative(o, energy)),
        ("reweighted", lambda o: reweighted_difference(o, energy, delta)),
    ):
        if method in methods:
            t0 = time.perf_counter()
            for name in OBSERVABLES:
                estimates[name][method] = fn(obs[name])
            seconds[method] = time.perf_counter() - t0
    if "flowed" in methods and maps is not None:
        t0 = time.perf_counter()
        source = U1WilsonAction(beta)
        mapped = {}
        device = next(maps.plus.parameters()).device
        with torch.no_grad():
            for sign, flow in ((1, maps.plus), (-1, maps.minus)):
                target, parts = U1WilsonAction(beta + sign * delta), []
                for piece in theta.split(512):  # bounded activations (memory)
                    piece = piece.to(device)
                    y, log_j = flow.forward(piece)
                    log_w = source(piece) - target(y) + log_j
                    parts.append(({k: v.cpu() for k, v in _observables(y).items()}, log_w.cpu()))
                mapped[sign] = (
                    {name: torch.cat([p[0][name] for p in parts]) for name in OBSERVABLES},
                    torch.cat([p[1] for p in parts]),
                )
        for name in OBSERVABLES:
            estimates[name]["flowed"] = flowed_difference(
                mapped[1][0][name], mapped[1][1], mapped[-1][0][name], mapped[-1][1], delta
            )
        seconds["flowed"] = time.perf_counter() - t0
        training["flowed"] = maps.seconds
    if "stein" in methods:
        t0 = time.perf_counter()
        train = exact_draws(train_draws, L, beta, generator)
        train_obs = _observables(train)
        train_features = loop_field.features(train, beta)
        for name in OBSERVABLES:
            gradient = "plaquette" if name == "plaquette" else None
            coefficients[name] = loop_field.fit(train_obs[name], train_features, gradient)
        training["stein"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        features = loop_field.features(theta, beta)
        for name in OBSERVABLES:
            c = coefficients[name]
            grad_term = (
                features.plaquette_gradient(c)
                if name == "plaquette"
                else torch.zeros_like(obs[name])
            )
            estimates[name]["stein"] = stein_derivative(obs[name], features.residual(c), grad_term)
        seconds["stein"] = time.perf_counter() - t0

    exact, exact_difference = exact_targets(beta, L, delta)
    return FHResult(
        beta,
        L,
        delta,
        n_draws,
        estimates,
        exact,
        exact_difference,
        seconds,
        draw_seconds,
        training,
        coefficients,
        loop_field.names(),
    )


_LABELS = {
    "independent": "independent ensembles at β ± δ",
    "covariance": "Cov(O, E)",
    "reweighted": "reweighting to β ± δ",
    "flowed": "flowed (maps f±)",
    "stein": "linearised flow (Stein)",
}


def _method_label(method: str) -> str:
    return _LABELS.get(method, method)


def estimates_table(result: FHResult, observable: str) -> str:
    """A markdown table: each estimate, its target, pull, variance per configuration, its
    ratio to ``Cov(O, E)``'s, and the ESS."""
    checks.choice("observable", observable, OBSERVABLES)
    rows = result.estimates[observable]
    reference = rows.get("covariance")
    lines = [
        "| estimator | estimate | exact target | pull | variance / config | Cov ÷ this | ESS |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, est in rows.items():
        gain = reference.variance / est.variance if reference and est.variance > 0 else math.nan
        ess_text = "—" if math.isnan(est.ess) else f"{est.ess:.3f}"
        lines.append(
            f"| {_method_label(method)} | {est.value:.6f} ± {est.error:.6f} | "
            f"{result.target(observable, method):.6f} | {result.pull(observable, method):+.2f} | "
            f"{est.variance:.3g} ± {est.variance_error:.2g} | {gain:.2f} | {ess_text} |"
        )
    return "\n".join(lines)


def variance_table(results, observable: str) -> str:
    """Variance per configuration of every estimator against ``(β, L)``, as a ratio to
    ``Cov(O, E)``'s (``> 1``: less noise than the covariance)."""
    checks.choice("observable", observable, OBSERVABLES)
    methods = []
    for r in results:
        methods += [m for m in r.estimates[observable] if m not in methods]
    head = (
        "| β | L | Cov variance | "
        + " | ".join(f"Cov ÷ {_method_label(m)}" for m in methods if m != "covariance")
        + " |"
    )
    lines = [head, "|" + "---|" * (3 + len(methods) - ("covariance" in methods))]
    for r in results:
        rows = r.estimates[observable]
        ref = rows["covariance"]
        cells = []
        for m in methods:
            if m == "covariance":
                continue
            est = rows.get(m)
            if est is None:
                cells.append("—")
                continue
            ratio = ref.variance / est.variance
            err = ratio * math.hypot(
                ref.variance_error / ref.variance, est.variance_error / est.variance
            )
            cells.append(f"{ratio:.2f} ± {err:.2f}")
        lines.append(f"| {r.beta:g} | {r.L} | {ref.variance:.3g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(result: FHResult, observable: str, relative_error: float = 0.01) -> str:
    """Equal-cost comparison: seconds to reach ``relative_error`` of the exact derivative,
    drawing included, training paid once, from the measured variance and seconds per
    configuration of each estimator."""
    checks.choice("observable", observable, OBSERVABLES)
    relative_error = checks.positive("relative_error", relative_error)
    target = abs(result.exact[observable]) * relative_error
    per_draw = result.draw_seconds / result.n_draws
    lines = [
        "| estimator | s per config | training [s] | configs needed | total [s] |",
        "|---|---|---|---|---|",
    ]
    for method, est in result.estimates[observable].items():
        extra = result.seconds.get(method, 0.0) / result.n_draws
        per_config = extra if method == "independent" else per_draw + extra
        needed = est.variance / target**2
        train = result.training_seconds.get(method, 0.0)
        lines.append(
            f"| {_method_label(method)} | {per_config:.2e} | {train:.1f} | "
            f"{needed:.3g} | {train + needed * per_config:.3g} |"
        )
    return "\n".join(lines)


def pulls(result: FHResult) -> dict[str, float]:
    """``{"observable/method": pull}`` against each estimator's own exact target."""
    return {f"{o}/{m}": result.pull(o, m) for o in OBSERVABLES for m in result.estimates[o]}


def variance_ratios(result: FHResult, observable: str) -> dict[str, float]:
    """``{method: Var(Cov) / Var(method)}`` per configuration."""
    rows = result.estimates[observable]
    ref = rows["covariance"].variance
    return {m: ref / e.variance for m, e in rows.items() if e.variance > 0}


def variance_series(results, observable: str, beta: float) -> dict[str, tuple[list, list, list]]:
    """``{method: (Ls, variances, errors)}`` at one ``β``, for a plot against the volume."""
    checks.choice("observable", observable, OBSERVABLES)
    series: dict[str, tuple[list, list, list]] = {}
    for r in results:
        if r.beta != beta:
            continue
        for method, est in r.estimates[observable].items():
            Ls, values, errors = series.setdefault(method, ([], [], []))
            Ls.append(r.L)
            values.append(est.variance)
            errors.append(est.variance_error)
    return series


def reweighting_overlap(beta: float, L: int, deltas, n_draws: int = 4096, seed: int = 0):
    """The overlap problem of reweighting: the ESS of ``w = e^{δ E}`` on exact draws at
    ``β``, per ``δ``, beside ``e^{-δ² Var E}``, its value for a Gaussian ``E`` (exact
    ``Var E``). Returns ``(measured, gaussian)`` lists."""
    from ..analysis import ess

    beta = checks.real("beta", beta, low=0)
    deltas = _checks.reals("deltas", deltas, low=0.0)
    theta = exact_draws(n_draws, L, beta, torch.Generator().manual_seed(seed))
    energy = -U1WilsonAction(1.0)(theta)
    variance = u1_energy_variance(beta, L)
    measured = [ess(d * energy) for d in deltas]
    return measured, [math.exp(-(d**2) * variance) for d in deltas]


def plaquette_transport(beta: float, beta_new: float, phi) -> np.ndarray:
    """The map of one plaquette angle that carries ``e^{β cos φ}`` to ``e^{β' cos φ}``
    (matching the two cumulative distributions), ``φ ∈ [-π, π)``: what a perfect map
    would do to each plaquette if the plaquettes were independent (they are, in 2D, but
    for the one constraint that they sum to ``2πQ``). For pictures; numerical, to about
    ``1e-6``.
    """
    beta = checks.real("beta", beta, low=0)
    beta_new = checks.real("beta_new", beta_new, low=0)
    phi = np.asarray(phi, dtype=float)
    grid = np.linspace(-math.pi, math.pi, 20001)

    def cdf(b):
        density = np.exp(b * (np.cos(grid) - 1)) / (2 * math.pi * ive(0, b))
        steps = (density[1:] + density[:-1]) / 2 * np.diff(grid)
        out = np.concatenate([[0.0], np.cumsum(steps)])
        return out / out[-1]

    return np.interp(np.interp(phi, grid, cdf(beta)), cdf(beta_new), grid)


def fh_chain_estimates(
    beta: float,
    L: int,
    chains: int,
    sweeps: int,
    coefficients,
    *,
    loop_field: LoopField | None = None,
    delta: float = 0.25,
    thermalize: int = 20,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, DerivativeEstimate]:
    """``d⟨cos θ_P⟩/dβ`` on heatbath chains at ``β`` (as a production run would have them):
    ``Cov(O, E)``, reweighting to ``β ± δ`` and the Stein estimator with ``coefficients``
    of ``loop_field`` (fitted beforehand, e.g. on exact draws: :meth:`LoopField.fit`).

    :class:`~lqft_lab.samplers.U1Heatbath` (one overrelaxation sweep per step), each chain
    started from an exact draw (:func:`exact_draws`), ``thermalize`` steps discarded. At
    large ``β`` the heatbath keeps each chain's topological charge for thousands of sweeps;
    exact starts give the chains the right mixture of sectors, where a cold start would
    leave every chain at ``Q = 0`` and bias the derivative by ``O(1/V)``. Each chain is a
    replica of the Γ-method, so every error carries the estimator's own ``τ_int``, and the
    variance per configuration is ``2τ_int`` times the independent one. A frozen sector is
    a fluctuation no window of a short chain can see; the starts sample the sectors, so
    many short chains are better than few long ones here.

    Raises:
        TypeError, ValueError: naming the argument.
    """
    from ..samplers import U1Heatbath, run_chain

    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=4)
    chains, sweeps = _checks.chains_and_steps("chains, sweeps", (chains, sweeps), min_steps=8)
    thermalize = checks.integer("thermalize", thermalize, low=0)
    loop_field = LoopField() if loop_field is None else loop_field
    _checks.instance("loop_field", loop_field, LoopField)
    coefficients = loop_field.check_coefficients(coefficients)
    # one loop-gradient pass per step: R = E + β V (∇O·v) + ∇·v for O = E/V
    # (SteinFeatures.residual), with ∇·v from the potentials alone
    observables = {
        "plaquette": plaquette,
        "energy": lambda theta: -U1WilsonAction(1.0)(theta),
        "grad_term": lambda theta: loop_field.features(theta, beta).plaquette_gradient(
            coefficients
        ),
        "divergence": lambda theta: loop_field.divergence(theta, coefficients),
    }
    generator = torch.Generator().manual_seed(_checks.seed("seed", seed))
    chain = run_chain(
        U1Heatbath(U1WilsonAction(beta)),
        exact_draws(chains, L, beta, generator),
        sweeps,
        generator,
        observables,
        thermalize=thermalize,
        progress=progress,
    )
    obs = chain.observables  # (T, chains) each
    residual = obs["energy"] + beta * L * L * obs["grad_term"] + obs["divergence"]
    return {
        "covariance": covariance_derivative(obs["plaquette"], obs["energy"]),
        "reweighted": reweighted_difference(obs["plaquette"], obs["energy"], delta),
        "stein": stein_derivative(obs["plaquette"], residual, obs["grad_term"]),
    }


def chain_table(estimates: dict, reference: FHResult) -> str:
    """A markdown table of :func:`fh_chain_estimates`: estimate, target (``reference``'s,
    a result at the same ``(β, L, δ)``), pull, ``τ_int`` and the variance per configuration
    (``2τ_int`` included)."""
    _checks.instance("reference", reference, FHResult)
    lines = [
        "| estimator | estimate | exact target | pull | τ_int | variance / config |",
        "|---|---|---|---|---|---|",
    ]
    for method, est in estimates.items():
        target = reference.target("plaquette", method)
        lines.append(
            f"| {_method_label(method)} | {est.value:.6f} ± {est.error:.6f} | {target:.6f} | "
            f"{est.pull(target):+.2f} | {est.tau_int:.2f} | {est.variance:.3g} |"
        )
    return "\n".join(lines)
