"""Explore notebook 02: train a small gauge-equivariant flow and watch its topology live.

:class:`U1FlowExplorer` builds a U(1) flow (:func:`~lqft_lab.flows.build_u1_flow`) for the
chosen ``β``, ``L``, kernel and depth, trains it by the reverse KL
(:class:`~lqft_lab.train.Trainer`, cosine learning rate) in chunks, and after every chunk
measures it on fresh samples: the fresh-sample ``KL(q‖p)`` (the loss plus the exact
``log Z``), ESS and independence-Metropolis acceptance
(:func:`~lqft_lab.train.evaluate`), and the charge of its proposals against the exact
``P(Q)`` (:func:`~lqft_lab.studies.u1.charge_distribution`, which also reweights the
proposals to ``P(Q)``). The state it reports is plain data:

``{"beta", "L", "n_steps", "step": [...], "kl": [...], "kl_err": [...], "ess": [...],
"acceptance": [...], "charges", "raw", "reweighted", "reweighted_err", "exact", "kl_Q",
"n_fresh", "detail"}``, the lists one entry per chunk and the histogram that of the last.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import checks, exact
from ..actions import U1WilsonAction
from ..flows import build_u1_flow
from ..studies.u1 import charge_distribution
from ..train import TrainConfig, Trainer, evaluate
from .explore import Explorer, Field

__all__ = ["U1FlowExplorer"]

#: the circle maps a layer can use (:class:`~lqft_lab.flows.U1FlowConfig`'s ``kernel``)
KERNELS = ("ncp", "spline")


class U1FlowExplorer(Explorer):
    """Train a small U(1) flow; watch KL, ESS, acceptance and the charge histogram.

    Knobs: ``beta`` (≥ 0), ``L`` (a multiple of 4: the stripe masks have period 4),
    ``kernel`` (``"ncp"`` or ``"spline"``), ``n_layers`` (≥ 1) and ``n_steps``. The defaults
    (L = 8, β = 2, 8 layers, 100 steps) train and measure in about 15 s on a CPU core.

    Args:
        hidden: conv hidden channels of each conditioner.
        batch_size, lr: training batch and starting learning rate (cosine decay).
        n_chunks: measurements during a run (the live curve's points).
        n_fresh: fresh samples per measurement (≥ 4096 for a quoted ESS, see DESIGN).
        seed: seeds the weights, the training batches and the measurements.
        **kwargs: passed to :class:`~lqft_lab.widgets.explore.Explorer` (``headless``,
            starting knob values).

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument: ``hidden``
            not positive channel counts, ``batch_size`` or ``n_chunks`` < 1, ``n_fresh`` < 2,
            ``lr`` not positive, a seed outside ``[0, 2**62]``.
    """

    title = "Train a U(1) flow"
    fields = {
        "beta": Field("β", float, 2.0, low=0.0, high=20.0),
        "L": Field("L (multiple of 4)", int, 8, low=4, high=32),
        "kernel": Field("kernel", str, "ncp", choices=KERNELS),
        "n_layers": Field("coupling layers", int, 8, low=1, high=48),
        "n_steps": Field("training steps", int, 100, low=1, high=20_000),
    }
    figsize = (11.0, 3.4)

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (8, 8),
        batch_size: int = 64,
        lr: float = 3e-3,
        n_chunks: int = 5,
        n_fresh: int = 4096,
        seed: int = 0,
        **kwargs,
    ):
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)) or not hidden:
            raise checks.ArgumentKindError(
                f"hidden must be a tuple of channel counts such as (8, 8), got {hidden!r:.80}"
            )
        self.hidden = tuple(checks.integer("hidden", h, low=1) for h in hidden)
        self.batch_size = checks.integer("batch_size", batch_size, low=1)
        self.lr = checks.positive("lr", lr)
        self.n_chunks = checks.integer("n_chunks", n_chunks, low=1)
        self.n_fresh = checks.integer("n_fresh", n_fresh, low=2)
        self.seed = checks.integer("seed", seed, low=0, high=2**62)
        super().__init__(**kwargs)

    def check(self, params: dict) -> dict:
        """β ≥ 0, L a multiple of 4, at least one layer, a known kernel (each a sentence)."""
        if params["beta"] < 0:
            raise ValueError(f"beta must be >= 0 (the Wilson coupling), got {params['beta']}")
        L = params["L"]
        if L % 4:
            raise ValueError(
                f"L must be a multiple of 4 (the flow's stripe masks have period 4), got {L}"
            )
        if params["n_layers"] < 1:
            raise ValueError(f"n_layers must be at least 1, got {params['n_layers']}")
        if params["kernel"] not in KERNELS:
            raise ValueError(
                f"kernel must be one of {', '.join(KERNELS)}, got {params['kernel']!r}"
            )
        return params

    def work(self, params, report, stopped) -> None:
        """Train in ``n_chunks`` chunks; after each, measure on fresh samples and report."""
        beta, L, n_steps = params["beta"], params["L"], params["n_steps"]
        action = U1WilsonAction(beta)
        model = build_u1_flow(
            L,
            n_layers=params["n_layers"],
            kernel=params["kernel"],
            hidden=self.hidden,
            seed=self.seed,
        )
        config = TrainConfig(
            n_steps=n_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            log_every=max(1, min(10, n_steps // self.n_chunks)),
        )
        trainer = Trainer(model, action, config)
        trainer.add_callback(lambda t, metrics: t.stop() if stopped() else None)  # Stop
        # the flow's log q is a density in dθ; u1_log_z is in the Haar measure dθ/2π per link
        log_z = exact.u1_log_z(beta, L) + model.prior.n_links * math.log(2 * math.pi)
        generator = torch.Generator().manual_seed(self.seed + 7)
        curve = {"step": [], "kl": [], "kl_err": [], "ess": [], "acceptance": []}
        ends = sorted({round(n_steps * (i + 1) / self.n_chunks) for i in range(self.n_chunks)})
        for end in [0, *ends]:
            if end > trainer.step:
                trainer.train(end - trainer.step)
            if stopped():
                return
            fresh = evaluate(model, action, self.n_fresh, generator=generator)
            charge = charge_distribution(model, action, self.n_fresh, generator=generator)
            curve["step"].append(trainer.step)
            curve["kl"].append(fresh["loss"] + log_z)
            curve["kl_err"].append(fresh["loss_err"])
            curve["ess"].append(fresh["ess"])
            curve["acceptance"].append(fresh["acceptance"])
            report(
                {
                    "beta": beta,
                    "L": L,
                    "n_steps": n_steps,
                    **{k: list(v) for k, v in curve.items()},
                    "charges": charge.charges.copy(),
                    "raw": charge.raw.copy(),
                    "reweighted": charge.reweighted.copy(),
                    "reweighted_err": charge.reweighted_err.copy(),
                    "exact": charge.exact.copy(),
                    "kl_Q": charge.kl_Q,
                    "n_fresh": self.n_fresh,
                    "detail": f"step {trainer.step} / {n_steps}",
                }
            )

    def draw(self, fig, state) -> None:
        """KL(q‖p) per configuration; ESS and acceptance; the proposals' charge vs exact."""
        ax_kl, ax_q, ax_hist = fig.subplots(1, 3)
        steps = np.asarray(state["step"])
        ax_kl.errorbar(steps, state["kl"], state["kl_err"], fmt="o-", ms=3, color="C0")
        ax_kl.set(xlabel="training step", ylabel=r"$\mathrm{KL}(q\,\|\,p)$ (nats)")
        ax_kl.set_ylim(bottom=0)
        ax_q.plot(steps, state["acceptance"], "o-", ms=3, color="C1", label="MH acceptance")
        ax_q.plot(steps, state["ess"], "s-", ms=3, color="C2", label="ESS")
        ax_q.set(
            xlabel="training step",
            yscale="log",
            ylim=(1e-4, 1),
            title=f"{state['n_fresh']} fresh samples",
        )
        ax_q.legend(fontsize="small")
        charges = np.asarray(state["charges"])
        ax_hist.bar(charges, state["exact"], color="0.8", label="exact $P(Q)$")
        ax_hist.plot(charges, state["raw"], "o", color="C3", ms=4, label="proposals $q(Q)$")
        ax_hist.errorbar(
            charges,
            state["reweighted"],
            state["reweighted_err"],
            fmt="x",
            color="C0",
            capsize=2,
            label="reweighted",
        )
        shown = max(3, int(np.abs(charges[np.asarray(state["raw"]) > 0]).max(initial=0)))
        ax_hist.set(
            xlabel="$Q$",
            xlim=(-shown - 0.5, shown + 0.5),
            title=f"L = {state['L']}, β = {state['beta']:g}",
        )
        ax_hist.legend(fontsize="small")
