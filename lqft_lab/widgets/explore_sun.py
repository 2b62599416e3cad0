"""Explore notebook 03: train a spectral flow on one SU(N) matrix and watch its eigenphases.

:class:`SpectralFlowExplorer` (an :class:`~lqft_lab.widgets.explore.Explorer`) takes ``N``,
``β`` and the coefficients ``c_k`` of a class-function target

    p(U) ∝ exp[(β/N) Re tr Σ_k c_k U^k]        (Boyda et al., arXiv:2008.05456)

and trains :func:`~lqft_lab.flows.build_single_matrix_flow` on it by reverse KL in chunks.
After each chunk it draws fresh samples and reports the histogram of their eigenphases
(all ``N`` pooled) against the exact Weyl-weighted density of one eigenphase
(:func:`~lqft_lab.exact.sun.single_matrix_eigenphase_histogram`), and the flow's
``KL(q‖p) = E_q[log q + S] + log Z`` (exact ``log Z``) and ESS on those samples: both are
exact figures of merit here, since the normalisation is known.

:func:`eigenphase_density` and :func:`plot_eigenphase_density` draw the same comparison
for any samples (notebook 03 uses them for Haar samples and for its trained flows).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import checks
from ..actions import SingleMatrixAction
from ..exact import sun as exact_sun
from ..flows import build_single_matrix_flow
from ..groups.sun import eigenphases
from ..studies.sun import measure_single_matrix_flow
from ..train import TrainConfig, Trainer
from .explore import Explorer, Field

__all__ = [
    "SpectralFlowExplorer",
    "parse_coeffs",
    "eigenphase_density",
    "plot_eigenphase_density",
    "MAX_N",
    "MAX_COEFFS",
]

#: Largest N: the exact density is a quadrature over N - 1 eigenphases, which for N = 4
#: already takes seconds; N = 5 would take minutes.
MAX_N = 4
#: Coefficients c_1 … c_3, as in Boyda et al.'s targets.
MAX_COEFFS = 3
# The range in which lqft_lab.exact.sun's quadratures are tested (β <= 12, |c_k| <= 2).
_MAX_BETA, _MAX_C = 12.0, 2.0


def parse_coeffs(text: str) -> tuple[float, ...]:
    """``"0.98, -0.63, -0.21"`` → ``(0.98, -0.63, -0.21)``: the coefficients ``c_1, c_2, …``.

    Raises:
        ValueError: naming ``coeffs``, for text that is not 1 to :data:`MAX_COEFFS` finite
            numbers separated by commas, or a ``|c_k|`` above 2.
    """
    parts = str(text).replace(",", " ").split()
    try:
        coeffs = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"coeffs must be numbers separated by commas, like '0.98, -0.63, -0.21'; got {text!r}"
        ) from None
    if not 1 <= len(coeffs) <= MAX_COEFFS:
        raise ValueError(
            f"coeffs must hold 1 to {MAX_COEFFS} numbers c_1, …, c_{MAX_COEFFS} "
            f"(c_k multiplies tr U^k), got {len(coeffs)}: {text!r}"
        )
    if not all(math.isfinite(c) for c in coeffs):
        raise ValueError(f"coeffs must be finite numbers, got {text!r}")
    if max(abs(c) for c in coeffs) > _MAX_C:
        raise ValueError(
            f"coeffs must each lie in [-{_MAX_C:g}, {_MAX_C:g}] (where the exact density is "
            f"tested), got {text!r}"
        )
    return coeffs


def eigenphase_density(
    phases, N: int, beta: float, coeffs, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram density of ``phases`` and the exact density of one eigenphase, per bin.

    Args:
        phases: eigenphases in ``(-π, π]`` (any shape, pooled), or SU(N) matrices
            ``(B, N, N)`` (a tensor) whose eigenphases are taken.
        N, beta, coeffs: the target ``p(U) ∝ exp[(β/N) Re tr Σ_k c_k U^k]``; ``beta = 0``
            is the Haar measure.
        edges: bin edges covering ``[-π, π]``, shape ``(n_bins + 1,)``.

    Returns:
        ``(sampled, exact)``, each ``(n_bins,)``, densities (probability per bin / width).
    """
    if torch.is_tensor(phases) and phases.is_complex():
        phases = eigenphases(phases)
    phases = phases.detach().cpu().numpy() if torch.is_tensor(phases) else np.asarray(phases)
    edges = np.asarray(edges, dtype=np.float64)
    sampled, _ = np.histogram(phases.ravel(), bins=edges, density=True)
    exact = exact_sun.single_matrix_eigenphase_histogram(N, beta, coeffs, edges)
    return sampled, exact / np.diff(edges)


def plot_eigenphase_density(
    ax,
    phases,
    N: int,
    beta: float,
    coeffs,
    edges: np.ndarray,
    *,
    label: str = "flow samples",
    exact_label: str = "exact",
    title: str | None = None,
):
    """Draw :func:`eigenphase_density` into ``ax``: a filled histogram and the exact curve."""
    sampled, exact = eigenphase_density(phases, N, beta, coeffs, edges)
    _draw_density(ax, edges, sampled, exact, label, exact_label)
    if title is not None:
        ax.set_title(title)
    return ax


def _draw_density(ax, edges, sampled, exact, label, exact_label, haar=None):
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.stairs(sampled, edges, fill=True, alpha=0.5, label=label)
    ax.plot(centres, exact, "k-", label=exact_label)
    if haar is not None:
        ax.plot(centres, haar, ls="--", color="0.5", lw=1, label="Haar (the prior)")
    ax.set(xlabel="eigenphase", ylabel="density", ylim=(0, None))
    ax.legend(fontsize=8)


class SpectralFlowExplorer(Explorer):
    """Train a single-matrix spectral flow on a chosen SU(N) target, live.

    Knobs: ``N`` (2 to :data:`MAX_N`), ``beta`` (0 to 12), ``coeffs`` (1 to 3 numbers
    ``c_1, c_2, c_3``, each in ``[-2, 2]``, as text) and ``n_steps``. The defaults are
    Boyda et al.'s target (a) for SU(3); their others are ``0.17, -0.65, 1.22`` and
    ``1, 0, 0``, all at ``β = 9``.

    Args:
        batch_size, lr: training batch and Adam's starting rate (cosine decay), as in
            notebook 03.
        n_eval: fresh samples per measurement (histogram, KL, ESS, reweighted trace).
        chunk: training steps between measurements.
        n_bins: histogram bins on ``[-π, π]``.
        seed: seeds the flow's weights, its training batches and its measurements.
        headless, period_ms, **values: as for :class:`~lqft_lab.widgets.explore.Explorer`.

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument:
            ``batch_size``, ``chunk`` or ``n_bins`` < 1, ``n_eval`` < 2, ``lr`` not
            positive, a seed outside ``[0, 2**62]``.

    The state after each chunk holds ``edges``, ``sampled``, ``exact`` and ``haar``
    densities, the histories ``steps``, ``kl``, ``kl_error``, ``ess``, and the reweighted
    ``trace`` with its ``trace_error`` and exact ``trace_exact`` (``⟨(1/N) Re tr U⟩``).
    """

    title = "SU(N) spectral flow"
    fields = {
        "N": Field("N (SU(N))", int, 3),
        "beta": Field("β", float, 9.0, low=0.0, high=_MAX_BETA),
        "coeffs": Field("c₁, c₂, c₃", str, "0.98, -0.63, -0.21"),
        "n_steps": Field("training steps", int, 150, low=1, high=100_000),
    }
    figsize = (10.0, 3.6)

    def __init__(
        self,
        *,
        batch_size: int = 256,
        lr: float = 1e-2,
        n_eval: int = 4096,
        chunk: int = 25,
        n_bins: int = 40,
        seed: int = 0,
        **kwargs,
    ):
        self.options = dict(
            batch_size=checks.integer("batch_size", batch_size, low=1),
            lr=checks.positive("lr", lr),
            n_eval=checks.integer("n_eval", n_eval, low=2),
            chunk=checks.integer("chunk", chunk, low=1),
            seed=checks.integer("seed", seed, low=0, high=2**62),
        )
        self.n_bins = checks.integer("n_bins", n_bins, low=1)
        super().__init__(**kwargs)

    def check(self, params: dict) -> dict:
        N = params["N"]
        if not 2 <= N <= MAX_N:
            raise ValueError(
                f"N must be 2, 3 or {MAX_N} (the group SU(N); the exact density is a "
                f"quadrature over N - 1 eigenphases), got {N}"
            )
        coeffs = parse_coeffs(params["coeffs"])
        return params | {"coeffs": ", ".join(f"{c:g}" for c in coeffs)}

    def work(self, params, report, stopped) -> None:
        N, beta, n_steps = params["N"], params["beta"], params["n_steps"]
        coeffs = parse_coeffs(params["coeffs"])
        opts = self.options
        action = SingleMatrixAction(beta, coeffs, N)
        edges = np.linspace(-np.pi, np.pi, self.n_bins + 1)
        report({"detail": "computing the exact Weyl-weighted density"})
        exact = exact_sun.single_matrix_eigenphase_histogram(N, beta, coeffs, edges)
        haar = exact_sun.single_matrix_eigenphase_histogram(N, 0.0, (1.0,), edges)
        model = build_single_matrix_flow(N, seed=opts["seed"])
        config = TrainConfig(
            n_steps=n_steps,
            batch_size=opts["batch_size"],
            lr=opts["lr"],
            seed=opts["seed"],
            log_every=max(1, min(opts["chunk"], n_steps)),
        )
        trainer = Trainer(model, action, config)
        generator = torch.Generator().manual_seed(opts["seed"] + 1)
        history = {"steps": [], "kl": [], "kl_error": [], "ess": []}
        while True:
            m = measure_single_matrix_flow(model, action, opts["n_eval"], generator)
            sampled, _ = np.histogram(m.phases, bins=edges, density=True)
            history["steps"].append(trainer.step)
            history["kl"].append(m.kl)
            history["kl_error"].append(m.loss_error)
            history["ess"].append(m.ess)
            report(
                {
                    "N": N,
                    "beta": beta,
                    "coeffs": coeffs,
                    "edges": edges,
                    "sampled": sampled,
                    "exact": exact / np.diff(edges),
                    "haar": haar / np.diff(edges),
                    **{k: list(v) for k, v in history.items()},
                    "trace": m.value,
                    "trace_error": m.error,
                    "trace_exact": m.exact,
                    "detail": f"step {trainer.step} / {n_steps}, ESS {m.ess:.3f}, "
                    f"KL {m.kl:.3f} nats",
                }
            )
            if trainer.step >= n_steps or stopped():
                return
            trainer.train(n_steps=min(opts["chunk"], n_steps - trainer.step))

    def draw(self, fig, state) -> None:
        if "edges" not in state:  # only the exact density is being computed
            fig.add_subplot().text(0.5, 0.5, state["detail"], ha="center", va="center")
            return
        ax_density, ax_train = fig.subplots(1, 2, width_ratios=(3, 2))
        coeffs = ", ".join(f"{c:g}" for c in state["coeffs"])
        step = state["steps"][-1]
        _draw_density(
            ax_density,
            state["edges"],
            state["sampled"],
            state["exact"],
            f"flow after {step} steps",
            "exact (Weyl)",
            haar=state["haar"],
        )
        ax_density.set_title(f"SU({state['N']}), β = {state['beta']:g}, c = ({coeffs})")
        steps = np.asarray(state["steps"])
        kl = np.maximum(np.asarray(state["kl"]), 1e-4)  # estimates can dip below 0 by noise
        ax_train.semilogy(steps, kl, "o-", ms=3, label="KL(q‖p)")
        ax_train.set(xlabel="training step", ylabel="KL (nats)")
        ax_ess = ax_train.twinx()
        ax_ess.plot(steps, state["ess"], "s-", ms=3, color="C1", label="ESS")
        ax_ess.set(ylabel="ESS", ylim=(0, 1.05))
        pull = (state["trace"] - state["trace_exact"]) / state["trace_error"]
        ax_train.set_title(
            f"reweighted ⟨Re tr U⟩/N = {state['trace']:.4f} ± {state['trace_error']:.4f}\n"
            f"exact {state['trace_exact']:.4f} ({pull:+.1f}σ)",
            fontsize="small",
        )
        handles = ax_train.get_legend_handles_labels()[0] + ax_ess.get_legend_handles_labels()[0]
        ax_train.legend(handles=handles, fontsize=8, loc="center right")
