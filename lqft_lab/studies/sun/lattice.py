"""The 2D SU(N) Wilson theory: lattice flows, and flow-MH, HMC and heatbath chains side by side.

Every run is compared with the exact plaquette of the character expansion
(:func:`~lqft_lab.exact.sun.sun_plaquette`), with Γ-method errors and ``τ_int`` in steps
(chains as replicas). Links are ``(B, 2, L, L, N, N)`` complex.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from ... import checks
from ...actions import SUNWilsonAction, sun_gauge_transform
from ...analysis import GammaResult, gamma_method
from ...exact import sun as exact_sun
from ...flows import build_sun_flow
from ...groups.sun import haar
from ...io import load_checkpoint, pretrained_path
from ...observables import sun_mean_plaquette, sun_wilson_loop
from ...samplers import SUNHMC, FlowMetropolis, SUNHeatbath, run_chain
from ...train import train_and_evaluate
from .. import _checks
from .single import _check_training, markdown_table
from .sizes import NotebookSizes

__all__ = [
    "ALGORITHMS",
    "HMC_SETTINGS",
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

ALGORITHMS = ("flow", "hmc", "heatbath")

# Unit-length Omelyan trajectories: acceptance 0.92 for SU(3) at β = 4 on 8×8.
HMC_SETTINGS = dict(step_size=0.5, n_steps=2, integrator="omelyan")


def train_sun_flow(
    L: int,
    N: int,
    beta: float,
    n_steps: int,
    *,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 64,
    n_eval: int = 4096,
    model=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
):
    """Train a gauge-equivariant SU(N) flow on the ``L × L`` lattice; measure it afresh.

    Returns:
        ``(model, trainer, metrics)``, ``metrics`` from :func:`~lqft_lab.train.evaluate`.

    Raises:
        TypeError, ValueError: naming the argument, before anything is built: ``L`` not an
            even integer >= 2 (or not ``model``'s), ``N`` < 2, ``beta`` not finite and >= 0,
            ``n_steps`` or ``batch_size`` < 1, ``n_eval`` < 2, ``lr`` not positive, a bad
            seed, device or flag.
    """
    L = _lattice_extent(L)
    N = checks.integer("N", N, low=2)
    beta = checks.real("beta", beta, low=0)
    _check_training(n_steps, seed, lr, batch_size, n_eval, device, progress)
    if model is not None:
        lattice = tuple(getattr(model, "lattice_shape", ()))
        if lattice[:3] != (2, L, L):
            raise ValueError(f"model samples links of shape {lattice}, not (2, {L}, {L}, N, N)")
    action = SUNWilsonAction(beta, N)
    if model is None:
        model = build_sun_flow(L, N, seed=seed)
    return train_and_evaluate(
        model,
        action,
        n_steps,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        n_eval=n_eval,
        device=device,
        progress=progress,
    )


@dataclass(frozen=True)
class LatticeFlow:
    """A gauge-equivariant lattice flow and where it came from.

    Attributes:
        model: the flow (float32, eval mode, on the requested device).
        N, name: the group and the name ``suN_L{L}_b{β}`` of the shipped file.
        pretrained: whether it was loaded from ``data/models`` (else trained here).
        steps: its training steps.
        metrics: ``{"ess", "acceptance", "n"}`` on fresh samples (when saved, if loaded).
    """

    model: torch.nn.Module
    N: int
    name: str
    pretrained: bool
    steps: int
    metrics: dict

    def __post_init__(self):
        checks.integer("N", self.N, low=2)
        _checks.flag("pretrained", self.pretrained)
        checks.integer("steps", self.steps, low=0)
        _checks.mapping("metrics", self.metrics, empty=True)

    @property
    def summary(self) -> str:
        """One sentence on the flow's origin and quality."""
        q = self.metrics
        if self.pretrained:
            return (
                f"SU({self.N}): pretrained {self.name}, {self.steps} steps; acceptance "
                f"{q['acceptance']:.3f} on {q['n']} fresh samples when saved"
            )
        return (
            f"SU({self.N}): trained {self.steps} steps; ESS {q['ess']:.3f}, "
            f"acceptance {q['acceptance']:.3f}"
        )


def _lattice_extent(L) -> int:
    L = checks.integer("L", L, low=2)
    if L % 2:
        raise ValueError(f"L must be even (the flows' checkerboard masks), got {L}")
    return L


def lattice_flows(
    groups,
    L: int,
    beta: float,
    *,
    pretrained: bool = True,
    sizes: NotebookSizes | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[int, LatticeFlow]:
    """Load the shipped lattice flow for each ``N`` in ``groups``, or train one.

    With ``pretrained`` the file ``data/models/suN_L{L}_b{β}.safetensors`` is loaded
    (``FileNotFoundError`` names the shipped ones); otherwise a flow of
    ``sizes.lattice_layers`` couplings is trained by :func:`train_sun_flow` for
    ``sizes.lattice_train`` steps (``sizes`` defaults to full mode's).

    Raises:
        TypeError, ValueError: naming the argument, before anything is loaded or trained:
            ``groups`` not integers >= 2, ``L`` not even, ``beta`` not finite and >= 0,
            ``sizes`` not a :class:`NotebookSizes`, a bad seed, device or flag.
        FileNotFoundError: with ``pretrained``, when no flow is shipped for some ``N``.
    """
    groups = _checks.integers("groups", groups, low=2)
    L = _lattice_extent(L)
    beta = checks.real("beta", beta, low=0)
    _checks.flag("pretrained", pretrained)
    if sizes is not None:
        _checks.instance("sizes", sizes, NotebookSizes)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    _checks.flag("progress", progress)
    sizes = sizes or NotebookSizes()
    out = {}
    for N in groups:
        name = f"su{N}_L{L}_b{beta:g}"
        if pretrained:
            model, meta = load_checkpoint(pretrained_path(name), device=device)
            out[N] = LatticeFlow(model, N, name, True, meta["steps"], meta["metrics"])
            continue
        model = build_sun_flow(L, N, n_layers=sizes.lattice_layers, seed=seed)
        model, trainer, metrics = train_sun_flow(
            L,
            N,
            beta,
            sizes.lattice_train,
            model=model,
            seed=seed,
            lr=sizes.lattice_lr,
            batch_size=sizes.lattice_batch,
            device=device,
            progress=progress,
        )
        out[N] = LatticeFlow(model, N, name, False, trainer.step, metrics)
    return out


@torch.no_grad()
def lattice_equivariance(model, *, n_samples: int = 2, seed: int = 0) -> dict:
    """Gauge equivariance of a lattice flow, on a float64 copy on the CPU.

    Returns:
        ``{"equivariance": max |f(g·U) − g·f(U)|, "logJ": max |logJ(g·U) − logJ(U)|}`` for
        prior draws ``U`` and a Haar-random gauge transformation ``g`` (round-off size).

    Raises:
        TypeError, ValueError: for a ``model`` that is not a lattice flow (``prior`` and
            ``flow``), ``n_samples`` < 1 or a bad seed.
    """
    if not (hasattr(model, "prior") and hasattr(model, "flow")):
        raise checks.ArgumentKindError(
            f"model must be a lattice flow (build_sun_flow), got {type(model).__name__}"
        )
    n_samples = checks.integer("n_samples", n_samples, low=1)
    seed = _checks.seed("seed", seed)
    m64 = copy.deepcopy(model).double().cpu()
    z = m64.prior.sample(n_samples, generator=torch.Generator().manual_seed(seed))
    N, L = z.shape[-1], z.shape[-4:-2]  # z: (B, 2, L0, L1, N, N)
    omega = haar((n_samples, *L), N, generator=torch.Generator().manual_seed(seed + 4))
    x, logJ = m64.flow(z)
    x_g, logJ_g = m64.flow(sun_gauge_transform(z, omega))
    return {
        "equivariance": (x_g - sun_gauge_transform(x, omega)).abs().max().item(),
        "logJ": (logJ_g - logJ).abs().max().item(),
    }


def lattice_exact_table(groups, beta: float, L: int) -> str:
    """Markdown table of the exact plaquette (``L × L`` and infinite volume) and ``W(2, 2)``.

    Raises:
        TypeError, ValueError: for ``groups`` not integers >= 2, ``beta`` not finite and
            >= 0, ``L`` not an integer >= 1.
    """
    groups = _checks.integers("groups", groups, low=2)
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=1)
    rows = [
        [
            f"SU({N})",
            f"{beta:g}",
            f"{exact_sun.sun_plaquette(N, beta, L):.6f}",
            f"{exact_sun.sun_plaquette_infinite_volume(N, beta):.6f}",
            f"{exact_sun.sun_wilson_loop_infinite_volume(N, beta, 4):.6f}",
        ]
        for N in groups
    ]
    header = ["group", "β", f"exact plaquette (L = {L})", "infinite volume"]
    return markdown_table([*header, "W(2,2), infinite volume"], rows)


def sun_observables() -> dict:
    """Chain observables ``{"plaq": (1/N) Re tr U_P, "W22": 2×2 Wilson loop}``, each ``(B,)``.

    Takes no argument: nothing to refuse.
    """
    return {"plaq": sun_mean_plaquette, "W22": lambda U: sun_wilson_loop(U, 2, 2)}


@dataclass(frozen=True)
class SUNRun:
    """One algorithm's chains on the 2D SU(N) lattice, analysed with the Γ-method.

    Attributes:
        algorithm: ``"flow"``, ``"hmc"`` or ``"heatbath"``; one step is one proposal per
            chain, one unit-length trajectory, or one heatbath + overrelaxation sweep.
        N, beta, L: the theory.
        plaq, W22: :class:`~lqft_lab.analysis.GammaResult` of the mean plaquette and the
            2×2 Wilson loop (chains as replicas; ``tau_int`` in steps).
        plaq_exact: the exact finite-volume plaquette (character expansion).
        acceptance: mean acceptance (1 for the heatbath).
        n_steps, n_chains: production steps and chains.
        thermalize: steps run before the production steps.
        seconds: wall time of the run (thermalisation and measurements included).
    """

    algorithm: str
    N: int
    beta: float
    L: int
    plaq: GammaResult
    W22: GammaResult
    plaq_exact: float
    acceptance: float
    n_steps: int
    n_chains: int
    thermalize: int
    seconds: float

    def __post_init__(self):
        checks.choice("algorithm", self.algorithm, ALGORITHMS)
        checks.integer("N", self.N, low=2)
        checks.integer("n_steps", self.n_steps, low=1)
        checks.integer("n_chains", self.n_chains, low=1)
        checks.integer("thermalize", self.thermalize, low=0)

    @property
    def seconds_per_step(self) -> float:
        """Wall time of one step of all chains (measurements included)."""
        return self.seconds / (self.n_steps + self.thermalize)

    @property
    def plaq_pull(self) -> float:
        """``(estimate - exact) / σ`` of the plaquette."""
        return (self.plaq.value - self.plaq_exact) / self.plaq.error


def run_sun_algorithm(
    algorithm: str,
    N: int,
    beta: float,
    L: int,
    n_steps: int,
    n_chains: int,
    *,
    model=None,
    thermalize: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    prefetch: int = 1,
    progress: bool = False,
) -> SUNRun:
    """Run ``n_chains`` chains of one algorithm; analyse the plaquette and ``W(2, 2)``.

    HMC and the heatbath start from Haar-random (hot) links and thermalise for
    ``thermalize`` steps (default 10% of ``n_steps``, at least 20); the flow starts from its
    own draws (10 steps). ``prefetch`` draws the flow's proposals of that many steps in one
    pass (:class:`~lqft_lab.samplers.FlowMetropolis`): the same chain law, faster on a GPU.

    Raises:
        TypeError, ValueError: naming the argument: an unknown algorithm, a missing model,
            ``N`` < 2, ``beta`` not finite and >= 0, ``L`` < 2, ``n_steps`` < 2,
            ``n_chains`` or ``prefetch`` < 1, a negative ``thermalize``, a bad seed or device.
    """
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    N = checks.integer("N", N, low=2)
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=2)
    n_steps = checks.integer("n_steps", n_steps, low=2)
    n_chains = checks.integer("n_chains", n_chains, low=1)
    if thermalize is not None:
        thermalize = checks.integer("thermalize", thermalize, low=0)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    prefetch = checks.integer("prefetch", prefetch, low=1)
    _checks.flag("progress", progress)
    action = SUNWilsonAction(beta, N)
    generator = torch.Generator(device=device).manual_seed(seed)
    if algorithm == "flow":
        if model is None:
            raise ValueError("the flow algorithm needs a trained model")
        sampler, x0 = FlowMetropolis(model, action, batch_size=n_chains, prefetch=prefetch), None
        thermalize = 10 if thermalize is None else thermalize
    else:
        dtype = torch.complex128
        x0 = haar((n_chains, 2, L, L), N, dtype=dtype, device=device, generator=generator)
        if algorithm == "hmc":
            sampler = SUNHMC(action, **HMC_SETTINGS)
        else:
            sampler = SUNHeatbath(action, n_overrelax=1)
        thermalize = max(20, n_steps // 10) if thermalize is None else thermalize
    t0 = time.perf_counter()
    chain = run_chain(
        sampler, x0, n_steps, generator, sun_observables(), thermalize=thermalize, progress=progress
    )
    seconds = time.perf_counter() - t0
    series = {k: v.double().cpu().numpy() for k, v in chain.observables.items()}  # (T, B)
    return SUNRun(
        algorithm=algorithm,
        N=N,
        beta=float(beta),
        L=L,
        plaq=gamma_method(series["plaq"], warn=False),
        W22=gamma_method(series["W22"], warn=False),
        plaq_exact=exact_sun.sun_plaquette(N, beta, L),
        acceptance=chain.acceptance,
        n_steps=n_steps,
        n_chains=n_chains,
        thermalize=thermalize,
        seconds=seconds,
    )


def run_sun_study(
    groups,
    beta: float,
    L: int,
    models: dict,
    *,
    flow: tuple[int, int],
    hmc: tuple[int, int],
    heatbath: tuple[int, int],
    prefetch: int = 1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[tuple[str, int], SUNRun]:
    """Flow-MH, HMC and heatbath chains for each ``N`` in ``groups``: notebook 03's table.

    Args:
        models: ``{N: flow}`` for the flow chains.
        flow, hmc, heatbath: ``(chains, production steps)`` of each algorithm.
        seed: HMC and heatbath chains use ``seed``, the flow chains ``seed + 1``.

    Returns:
        ``{(algorithm, N): SUNRun}``, for each ``N`` in the order flow, hmc, heatbath.

    Raises:
        TypeError, ValueError: naming the argument, before any chain runs: ``groups`` not
            integers >= 2, ``models`` lacking a flow for one of them, ``flow``/``hmc``/
            ``heatbath`` not ``(chains >= 1, steps >= 2)``, and what
            :func:`run_sun_algorithm` refuses.
    """
    groups = _checks.integers("groups", groups, low=2)
    _checks.mapping("models", models)
    missing = [N for N in groups if N not in models]
    if missing:
        raise ValueError(f"models lacks a flow for N = {missing}")
    flow = _checks.chains_and_steps("flow", flow)
    hmc = _checks.chains_and_steps("hmc", hmc)
    heatbath = _checks.chains_and_steps("heatbath", heatbath)
    beta = checks.real("beta", beta, low=0)
    L = _lattice_extent(L)
    prefetch = checks.integer("prefetch", prefetch, low=1)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    _checks.flag("progress", progress)
    sizes = {"hmc": hmc, "heatbath": heatbath}
    study = {}
    for N in groups:
        chains, steps = flow
        study["flow", N] = run_sun_algorithm(
            "flow",
            N,
            beta,
            L,
            steps,
            chains,
            model=models[N],
            seed=seed + 1,
            device=device,
            prefetch=prefetch,
            progress=progress,
        )
        for algorithm in ("hmc", "heatbath"):
            chains, steps = sizes[algorithm]
            study[algorithm, N] = run_sun_algorithm(
                algorithm, N, beta, L, steps, chains, seed=seed, device=device, progress=progress
            )
    return study


def sun_study_table(study: dict) -> str:
    """Markdown table of :func:`run_sun_study`'s runs: plaquette, τ_int, acceptance, cost.

    Raises:
        TypeError: unless ``study`` is a dict of :class:`SUNRun`.
    """
    _checks.mapping("study", study, SUNRun, empty=True)
    rows = [
        [
            f"SU({N})",
            alg,
            f"{r.plaq.value:.5f}({r.plaq.error:.5f})",
            f"{r.plaq_exact:.5f}",
            f"{r.plaq_pull:+.1f}σ",
            f"{r.plaq.tau_int:.2f} ± {r.plaq.tau_int_error:.2f}",
            f"{r.W22.tau_int:.2f} ± {r.W22.tau_int_error:.2f}",
            f"{r.acceptance:.3f}",
            f"{1e3 * r.seconds_per_step:.1f}",
        ]
        for (alg, N), r in study.items()
    ]
    header = ["group", "algorithm", "plaquette", "exact", "pull", "τ_int(plaq)", "τ_int(W(2,2))"]
    return markdown_table([*header, "acceptance", "ms / step"], rows)
