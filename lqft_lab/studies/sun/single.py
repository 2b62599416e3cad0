"""One SU(N) matrix: Boyda et al.'s targets, spectral-flow training and what checks it.

A single-matrix target is a class function, ``S(U) = -(β/N) Re tr Σ_k c_k U^k``, with its
exact normalisation, moments and eigenphase density in :mod:`lqft_lab.exact.sun`; a flow's
``logq`` is a density with respect to normalised Haar measure, like the exact results, so the
importance weights ``e^{-S}/q`` need no offset and ``KL(q‖p) = E_q[log q + S] + log Z``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ... import checks
from ...actions import SingleMatrixAction
from ...analysis import ess as _ess
from ...exact import sun as exact_sun
from ...flows import build_single_matrix_flow
from ...groups.sun import dagger, eigenphases, haar
from ...train import train_and_evaluate
from .. import _checks

__all__ = [
    "SINGLE_MATRIX_TARGETS",
    "single_matrix_action",
    "train_single_matrix_flow",
    "train_single_matrix_flows",
    "single_matrix_equivariance",
    "single_matrix_targets_table",
    "SingleMatrixMeasurement",
    "measure_single_matrix_flow",
    "single_matrix_table",
    "markdown_table",
]

# Boyda et al.'s single-matrix densities, p(U) ∝ exp[(β/N) Re tr Σ_k c_k U^k] with β = 9.
SINGLE_MATRIX_TARGETS: dict[str, tuple[float, tuple[float, ...]]] = {
    "a": (9.0, (0.98, -0.63, -0.21)),
    "b": (9.0, (0.17, -0.65, 1.22)),
    "c": (9.0, (1.0, 0.0, 0.0)),
}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table from a header and rows of cell strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def single_matrix_action(name: str, N: int) -> SingleMatrixAction:
    """The action of target ``name`` (a key of :data:`SINGLE_MATRIX_TARGETS`) for SU(N).

    Raises:
        TypeError, ValueError: for an unknown target (named ``target``) or ``N`` not an
            integer >= 2.
    """
    if not isinstance(name, str) or name not in SINGLE_MATRIX_TARGETS:
        raise ValueError(f"target must be one of {sorted(SINGLE_MATRIX_TARGETS)}, got {name!r}")
    N = checks.integer("N", N, low=2)
    beta, coeffs = SINGLE_MATRIX_TARGETS[name]
    return SingleMatrixAction(beta, coeffs, N)


def train_single_matrix_flow(
    N: int,
    target: str,
    n_steps: int,
    *,
    seed: int = 0,
    lr: float = 1e-2,
    batch_size: int = 256,
    n_eval: int = 8192,
    model=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
):
    """Train a spectral flow on one SU(N) matrix by reverse KL; measure it on fresh samples.

    The defaults reach ESS ≈ 0.98 on Boyda et al.'s SU(3) targets in 300 steps (a few CPU
    seconds) and above 0.999 in 2000 steps at batch 1024. SU(2)'s spline parameters are
    bare constants, which need the large learning rate.

    Returns:
        ``(model, trainer, metrics)``, ``metrics`` from :func:`~lqft_lab.train.evaluate`.

    Raises:
        TypeError, ValueError: naming the argument, before anything is built: an unknown
            ``target``, ``N`` < 2, ``n_steps`` or ``batch_size`` < 1, ``n_eval`` < 2, ``lr``
            not positive, a bad seed, device or flag.
    """
    action = single_matrix_action(target, N)
    _check_training(n_steps, seed, lr, batch_size, n_eval, device, progress)
    if model is None:
        model = build_single_matrix_flow(N, seed=seed)
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


def _check_training(n_steps, seed, lr, batch_size, n_eval, device, progress) -> None:
    """The training arguments shared by the SU(N) recipes."""
    checks.integer("n_steps", n_steps, low=1)
    _checks.seed("seed", seed)
    checks.positive("lr", lr)
    checks.integer("batch_size", batch_size, low=1)
    checks.integer("n_eval", n_eval, low=2)
    _checks.device("device", device)
    _checks.flag("progress", progress)


def train_single_matrix_flows(N: int, targets, n_steps: int, **options) -> dict:
    """:func:`train_single_matrix_flow` for each name in ``targets``, in order.

    Returns:
        ``{name: (model, metrics)}``; ``options`` are passed on unchanged.

    Raises:
        TypeError, ValueError: as :func:`train_single_matrix_flow`, for every target before
            the first is trained (an empty ``targets`` trains nothing).
    """
    if isinstance(targets, str):  # one name, not its letters
        targets = [targets]
    try:
        targets = list(targets)
    except TypeError:
        raise checks.ArgumentKindError(
            f"targets must be a list of target names, got {targets!r:.80}"
        ) from None
    allowed = {"seed", "lr", "batch_size", "n_eval", "model", "device", "progress"}
    if set(options) - allowed:
        raise checks.ArgumentKindError(
            f"options {sorted(set(options) - allowed)} are not train_single_matrix_flow's"
        )
    for name in targets:
        single_matrix_action(name, N)
    defaults = {"seed": 0, "lr": 1e-2, "batch_size": 256, "n_eval": 8192, "device": "cpu"}
    opts = defaults | {k: v for k, v in options.items() if k not in ("model",)}
    _check_training(
        n_steps,
        opts["seed"],
        opts["lr"],
        opts["batch_size"],
        opts["n_eval"],
        opts["device"],
        opts.get("progress", False),
    )
    out = {}
    for name in targets:
        model, _, metrics = train_single_matrix_flow(N, name, n_steps, **options)
        out[name] = (model, metrics)
    return out


@torch.no_grad()
def single_matrix_equivariance(N: int = 3, n_samples: int = 256, *, seed: int = 0) -> dict:
    """Check a randomly initialised spectral flow's symmetries in double precision.

    The flow's weights get Gaussian noise (scale 0.3) so that the map is far from the
    identity it starts as; ``U`` and ``Ω`` are Haar-random.

    Returns:
        ``{"equivariance": max |f(ΩUΩ†) − Ω f(U) Ω†|, "logJ": max |logJ(ΩUΩ†) − logJ(U)|,
        "round_trip": max |f⁻¹(f(U)) − U|}``, floats of round-off size (about ``1e-14``).

    Raises:
        TypeError, ValueError: for ``N`` not an integer in ``[2, 8]``, ``n_samples`` < 1,
            or a bad seed.
    """
    N = checks.integer("N", N, low=2, high=8)
    n_samples = checks.integer("n_samples", n_samples, low=1)
    seed = _checks.seed("seed", seed)
    model = build_single_matrix_flow(N, seed=seed).double()
    noise = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(0.3 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    U = haar(n_samples, N, generator=torch.Generator().manual_seed(seed + 2))
    omega = haar(n_samples, N, generator=torch.Generator().manual_seed(seed + 3))
    fU, logJ = model.flow(U)
    fOU, logJ_O = model.flow(omega @ U @ dagger(omega))
    back, _ = model.flow.reverse(fU)
    return {
        "equivariance": (fOU - omega @ fU @ dagger(omega)).abs().max().item(),
        "logJ": (logJ_O - logJ).abs().max().item(),
        "round_trip": (back - U).abs().max().item(),
    }


def single_matrix_targets_table(N: int = 3) -> str:
    """Markdown table of the targets with their exact ``⟨(1/N) Re tr U⟩`` and ``log Z``.

    Raises:
        TypeError, ValueError: for ``N`` not an integer in ``[2, 4]`` (the exact values are
            quadratures over ``N - 1`` eigenphases: ``N = 5`` would take minutes).
    """
    N = checks.integer("N", N, low=2, high=4)
    rows = [
        [
            name,
            f"{b:g}",
            str(c),
            f"{exact_sun.single_matrix_mean_trace(N, b, c):.5f}",
            f"{exact_sun.single_matrix_log_z(N, b, c):.4f}",
        ]
        for name, (b, c) in SINGLE_MATRIX_TARGETS.items()
    ]
    return markdown_table(["target", "β", "c", "exact ⟨(1/N) Re tr U⟩", "log Z"], rows)


@dataclass(frozen=True)
class SingleMatrixMeasurement:
    """A single-matrix flow measured on fresh samples against its target's exact results.

    Attributes:
        N, beta, coeffs: the target, ``S(U) = -(β/N) Re tr Σ_k c_k U^k``.
        value, error: ``⟨(1/N) Re tr U⟩`` reweighted to the target (self-normalised
            importance sampling) and its delta-method error.
        exact: the Weyl-formula value (:func:`~lqft_lab.exact.sun.single_matrix_mean_trace`).
        ess: effective sample size per sample of the importance weights.
        loss, loss_error: ``E_q[log q + S]`` on these samples (the reverse-KL loss) and its
            standard error.
        log_z: the exact ``log Z`` (:func:`~lqft_lab.exact.sun.single_matrix_log_z`).
        n: the number of samples.
        phases: all ``N`` eigenphases of the samples, pooled, ``(n · N,)`` in ``(-π, π]``
            (unweighted: the flow's own eigenphase density).
    """

    N: int
    beta: float
    coeffs: tuple[float, ...]
    value: float
    error: float
    exact: float
    ess: float
    loss: float
    loss_error: float
    log_z: float
    n: int
    phases: np.ndarray

    def __post_init__(self):
        checks.integer("N", self.N, low=2)
        checks.integer("n", self.n, low=1)

    @property
    def pull(self) -> float:
        """``(estimate - exact) / σ`` of ``⟨(1/N) Re tr U⟩``."""
        return (self.value - self.exact) / self.error

    @property
    def kl(self) -> float:
        """``KL(q‖p) = loss + log Z`` in nats: zero for a perfect flow."""
        return self.loss + self.log_z


@torch.no_grad()
def measure_single_matrix_flow(
    model, action: SingleMatrixAction, n_samples: int, generator=None
) -> SingleMatrixMeasurement:
    """Draw ``n_samples`` from ``model`` and measure it against ``action``'s exact results.

    With ``w_i ∝ e^{-S(U_i)}/q(U_i)`` normalised to one, ``⟨(1/N) Re tr U⟩`` is estimated by
    ``Σ w_i t_i`` with error ``sqrt(Σ w_i² (t_i - estimate)²)`` (delta method for the ratio
    estimator); it is unbiased as ``n_samples`` grows for any flow that covers the target.

    Raises:
        TypeError, ValueError: for an ``action`` that is not a
            :class:`~lqft_lab.actions.SingleMatrixAction`, a ``model`` without ``sample``,
            ``n_samples`` not an integer >= 2, a bad ``generator``, or non-finite
            log-weights (the flow cannot be measured then).
    """
    _checks.instance("action", action, SingleMatrixAction)
    if not hasattr(model, "sample"):
        raise checks.ArgumentKindError(f"model must be a flow, got {type(model).__name__}")
    n_samples = checks.integer("n_samples", n_samples, low=2)
    _checks.generator("generator", generator)
    N, beta, coeffs = action.N, action.beta, action.coeffs
    U, logq = model.sample(n_samples, generator=generator)
    logw = (-action(U) - logq).double()
    if not bool(torch.isfinite(logw).all()):
        raise ValueError("model produced a non-finite log-weight; it cannot be measured")
    w = torch.exp(logw - logw.max())
    w = w / w.sum()
    tr = torch.diagonal(U, dim1=-2, dim2=-1).sum(-1).real.double() / N
    value = float((w * tr).sum())
    return SingleMatrixMeasurement(
        N=N,
        beta=beta,
        coeffs=coeffs,
        value=value,
        error=float(torch.sqrt((w**2 * (tr - value) ** 2).sum())),
        exact=exact_sun.single_matrix_mean_trace(N, beta, coeffs),
        ess=_ess(logw.cpu()),
        loss=float(-logw.mean()),
        loss_error=float(logw.std() / n_samples**0.5),
        log_z=exact_sun.single_matrix_log_z(N, beta, coeffs),
        n=n_samples,
        phases=eigenphases(U).flatten().cpu().numpy(),
    )


def single_matrix_table(quality: dict, measured: dict) -> str:
    """Markdown table: fresh-sample ESS and acceptance, reweighted trace against exact.

    Args:
        quality: ``{target: metrics}`` from :func:`~lqft_lab.train.evaluate`.
        measured: ``{target: SingleMatrixMeasurement}``.

    Raises:
        TypeError, ValueError: for arguments of other kinds, or a measured target that
            ``quality`` lacks.
    """
    _checks.mapping("quality", quality, dict, empty=True)
    _checks.mapping("measured", measured, SingleMatrixMeasurement, empty=True)
    missing = [name for name in measured if name not in quality]
    if missing:
        raise ValueError(f"quality lacks the metrics of {missing}")
    rows = [
        [
            name,
            f"{quality[name]['ess']:.3f}",
            f"{quality[name]['acceptance']:.3f}",
            f"{m.value:.4f} ± {m.error:.4f}",
            f"{m.exact:.4f}",
            f"{m.pull:+.1f}σ",
        ]
        for name, m in measured.items()
    ]
    header = ["target", "ESS (fresh)", "MH acceptance", "⟨(1/N) Re tr U⟩ reweighted", "exact"]
    return markdown_table([*header, "pull"], rows)
