"""Explore notebook 04: the Wilson–Dirac spectrum, det D and det² reweighting, live.

:class:`SchwingerExplorer` draws exact independent pure-gauge configurations at ``β``
(:func:`~lqft_lab.samplers.sample_u1_exact`, float64, ``torch.Generator().manual_seed(seed)``,
``chunk`` configurations at a time) and for each one diagonalises the dense Wilson–Dirac
operator ``D_κ`` (:class:`~lqft_lab.actions.WilsonDirac`, hopping form, antiperiodic in time;
``2V`` eigenvalues from ``torch.linalg.eigvals``). From the spectrum

    log|det D| = Σ_i log|λ_i|,   sign det D = (-1)^{#(real λ_i < 0)} = cos Σ_i arg λ_i,

(γ5-hermiticity pairs the complex eigenvalues with their conjugates, so ``det D`` is real
and only negative real eigenvalues change its sign), and the Nf = 2 weights
``w = (det D)² = exp(2 log|det D|)`` turn the quenched draws into exact-in-expectation
dynamical averages (:func:`~lqft_lab.analysis.reweight`, ESS by
:func:`~lqft_lab.analysis.ess`; as :func:`lqft_lab.exact.schwinger.reweighted_reference`).

It shows (1) the eigenvalues in the complex plane over the free spectrum
(:func:`~lqft_lab.exact.schwinger.free_spectrum`) and the line ``Re λ = 0``; (2) the
histogram of ``log|det D|`` split by sign, with the fraction of negative determinants: one
flavour's sign problem, which appears once a real eigenvalue crosses zero near
``κ_c`` (1/4 free, ≈ 0.277 at β = 2); (3) the running det²-reweighted plaquette with its
error against the exact quenched value (and, at ``L = 2``, the exact Nf = 2 value of
:func:`~lqft_lab.exact.schwinger.schwinger_2x2`), and the ESS of the weights.

The state it reports is plain data: ``{"beta", "kappa", "L", "n_steps", "eigenvalues"
(n, 2V) complex, "free" (2V,), "log_abs_det" (n,), "sign" (n,) ±1, "plaquette" (n,),
"steps", "reweighted", "reweighted_err", "ess" (one entry per chunk), "negative_fraction",
"quenched", "exact_nf2" (None unless L = 2), "free_log_det", "detail"}``.

References:
    M. S. Albergo et al., arXiv:2106.05934 and arXiv:2202.11712 (the Schwinger model with
    Wilson fermions, exceptional configurations near κ_c).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import checks, exact
from ..actions import WilsonDirac
from ..analysis import ess, reweight
from ..exact.schwinger import free_log_det, free_spectrum, schwinger_2x2
from ..observables import plaquette
from ..samplers import sample_u1_exact
from .explore import Explorer, Field

__all__ = ["SchwingerExplorer"]

#: At most this many eigenvalues are drawn in the scatter (the first configurations'):
#: enough to see the spectrum's shape without a slow figure.
MAX_POINTS = 40_000


class SchwingerExplorer(Explorer):
    """Spectrum and determinant of ``D_κ`` on exact pure-gauge draws, and det² reweighting.

    Knobs: ``beta`` (≥ 0), ``kappa`` (``0 <= κ < 1``), ``L`` (even, 2 to 12: dense
    ``(2V)²`` eigenproblems) and ``n_steps`` (the configurations drawn, one per "sampling
    step"). The defaults (β = 2, κ = 0.24, L = 6, 40 configurations) take about a second.

    Args:
        chunk: configurations per chunk (between reports and Stop checks).
        n_bins: bins of the ``log|det D|`` histogram.
        seed: seeds the draws (``torch.Generator().manual_seed(seed)``).
        **kwargs: passed to :class:`~lqft_lab.widgets.explore.Explorer` (``headless``,
            ``period_ms``, starting knob values).

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument: ``chunk``
            or ``n_bins`` < 1, a seed outside ``[0, 2**62]``.
    """

    title = "Schwinger model: the Wilson–Dirac spectrum"
    fields = {
        "beta": Field("β", float, 2.0, low=0.0, high=100.0),
        "kappa": Field("κ", float, 0.24, low=0.0),
        "L": Field("L (even)", int, 6, low=2, high=12),
        "n_steps": Field("sampling steps", int, 40, low=1, high=2000),
    }
    figsize = (12.0, 3.6)

    def __init__(self, *, chunk: int = 8, n_bins: int = 30, seed: int = 0, **kwargs):
        self.chunk = checks.integer("chunk", chunk, low=1)
        self.n_bins = checks.integer("n_bins", n_bins, low=1)
        self.seed = checks.integer("seed", seed, low=0, high=2**62)
        super().__init__(**kwargs)

    def check(self, params: dict) -> dict:
        """``κ < 1`` and ``L`` even (each a sentence naming the knob)."""
        if not params["kappa"] < 1:
            raise ValueError(
                f"kappa must be < 1 (the hopping parameter; κ_c ≈ 0.25 to 0.28), "
                f"got {params['kappa']}"
            )
        if params["L"] % 2:
            raise ValueError(
                f"L must be even (the even/odd split of D needs it), got {params['L']}"
            )
        return params

    def work(self, params, report, stopped) -> None:
        """Draw ``chunk`` configurations at a time, diagonalise ``D``, report the totals."""
        beta, kappa, L, n_steps = params["beta"], params["kappa"], params["L"], params["n_steps"]
        dirac = WilsonDirac(kappa)
        generator = torch.Generator().manual_seed(self.seed)
        fixed = {
            "beta": beta,
            "kappa": kappa,
            "L": L,
            "n_steps": n_steps,
            "free": free_spectrum(L, L, kappa).numpy(),
            "free_log_det": free_log_det(L, L, kappa),
            "quenched": exact.u1_plaquette(beta, L),
            "exact_nf2": schwinger_2x2(beta, kappa).plaquette if L == 2 else None,
        }
        parts = {"eigenvalues": [], "log_abs_det": [], "sign": [], "plaquette": []}
        curve = {"steps": [], "reweighted": [], "reweighted_err": [], "ess": []}
        done = 0
        while done < n_steps and not stopped():
            b = min(self.chunk, n_steps - done)
            theta = sample_u1_exact(b, L, beta, generator, dtype=torch.float64)
            lam = torch.linalg.eigvals(dirac.dense(theta))  # (b, 2V)
            parts["eigenvalues"].append(lam.numpy())
            parts["log_abs_det"].append(lam.abs().log().sum(dim=1).numpy())
            # det D is real: its phase Σ arg λ is 0 or π mod 2π (conjugate pairs cancel)
            phase = torch.angle(lam).sum(dim=1)
            parts["sign"].append(np.where(torch.cos(phase).numpy() < 0, -1, 1))
            parts["plaquette"].append(plaquette(theta).numpy())
            done += b
            data = {k: np.concatenate(v) for k, v in parts.items()}
            log_w = 2 * data["log_abs_det"]  # Nf = 2: w = (det D)²
            value, error = reweight(data["plaquette"], log_w)
            for key, v in zip(curve, (done, value, error, ess(log_w)), strict=True):
                curve[key].append(v)
            negative = float(np.mean(data["sign"] < 0))
            report(
                fixed
                | data
                | {k: list(v) for k, v in curve.items()}
                | {
                    "negative_fraction": negative,
                    "detail": f"step {done} / {n_steps} · ESS {curve['ess'][-1]:.2f} · "
                    f"det<0: {negative:.0%}",
                }
            )

    def draw(self, fig, state) -> None:
        """Spectrum over the free one; the ``log|det D|`` histogram; the reweighted plaquette."""
        ax_spec, ax_det, ax_plaq = fig.subplots(1, 3)
        lam = state["eigenvalues"]
        lam = lam[: max(1, MAX_POINTS // lam.shape[1])].ravel()
        ax_spec.scatter(lam.real, lam.imag, s=2, alpha=0.3, color="C0", lw=0, label="sampled")
        free = state["free"]
        ax_spec.plot(free.real, free.imag, "x", color="k", ms=4, label="free (θ = 0)")
        ax_spec.axvline(0, color="C3", lw=1, ls="--")
        ax_spec.set(
            xlabel=r"Re $\lambda$",
            ylabel=r"Im $\lambda$",
            title=f"spectrum of $D_\\kappa$, κ = {state['kappa']:g}",
        )
        ax_spec.legend(fontsize="small", loc="upper right", markerscale=3)

        log_det, sign = state["log_abs_det"], state["sign"]
        finite = np.isfinite(log_det)
        edges = np.histogram_bin_edges(log_det[finite], bins=self.n_bins)
        ax_det.hist(
            [log_det[finite & (sign > 0)], log_det[finite & (sign < 0)]],
            bins=edges,
            stacked=True,
            color=["C0", "C3"],
            label=["det D > 0", "det D < 0"],
        )
        ax_det.axvline(state["free_log_det"], color="k", ls=":", lw=1, label="free")
        ax_det.set(
            xlabel=r"$\log|\det D|$",
            ylabel="configurations",
            title=f"det D < 0: {state['negative_fraction']:.1%}",
        )
        ax_det.legend(fontsize="small")

        steps = np.asarray(state["steps"])
        label = "Nf = 2 (det² reweighted)"
        ax_plaq.errorbar(
            steps,
            state["reweighted"],
            state["reweighted_err"],
            fmt="o-",
            ms=3,
            color="C0",
            capsize=2,
            label=label,
        )
        ax_plaq.axhline(state["quenched"], color="0.5", ls="--", label="quenched (exact)")
        if state["exact_nf2"] is not None:
            ax_plaq.axhline(state["exact_nf2"], color="k", ls="-", lw=1, label="Nf = 2 (exact)")
        ax_plaq.set(
            xlabel="configurations",
            ylabel=r"$\langle \cos\theta_P \rangle$",
            title=f"L = {state['L']}, β = {state['beta']:g}",
        )
        ax_plaq.legend(fontsize="small")
        ax_ess = ax_plaq.twinx()
        ax_ess.plot(steps, state["ess"], "s:", ms=3, color="C2")
        ax_ess.set_ylabel("ESS of det² weights", color="C2")
        ax_ess.set_ylim(0, 1.05)
