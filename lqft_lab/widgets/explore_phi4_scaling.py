"""Explore notebook 01b: one sampler on one ensemble E1–E5, its trace and its running τ_int.

:class:`Phi4ScalingExplorer` runs flow-based Metropolis, HMC or local Metropolis (the
samplers of :func:`~lqft_lab.studies.phi4_scaling.run_algorithm`, with its defaults) on a
batch of independent chains of one ensemble of arXiv:1904.12072, in chunks, and after every
chunk analyses everything measured so far with the Γ-method: the figure shows the trace of
the chosen observable per configuration for a few chains, and ``τ_int`` with its error as the
chains grow. A τ_int estimate settles once the chains are many τ_int long; before that the
window of the Γ-method has not converged (open markers) and the estimate is a lower bound.

Contract, on top of :class:`~lqft_lab.widgets.explore.Explorer`'s:

* The chunks together are exactly the chain :func:`run_algorithm` runs with the same
  arguments and seed (same sampler, same generator, ``n_steps // 10`` steps discarded
  first), so the last state's estimate is the one the notebook's study function returns.
  The discarded steps run in chunks as well (states with only ``detail`` and the labels),
  so that Stop acts at once.
* Flow-MH uses the shipped pretrained flow of the ensemble, ``data/models/phi4_<E>.safetensors``
  (the flows notebook 01b loads, all trained to acceptance 0.4), loaded on the CPU once per
  explorer. An ensemble without a shipped flow is refused with a sentence (no flow is
  trained here: that takes minutes, see ``data/README.md``); HMC and local Metropolis need
  none.
* Everything runs on the CPU: the chains are small, and the widget must not compete with the
  notebook for a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..analysis import gamma_method
from ..io import load_checkpoint, pretrained_path
from ..observables import derived_observable, phi4_chain_observables
from ..samplers import run_chain
from ..studies.phi4_scaling import ALGORITHMS, ENSEMBLES, Ensemble, make_sampler
from .explore import Explorer, Field

__all__ = ["Phi4ScalingExplorer", "OBSERVABLES"]

#: observable → (label of the estimate, label of the per-configuration trace)
OBSERVABLES = {
    "chi2": ("χ₂", "V M²"),
    "E": ("E", "nearest-neighbour φφ"),
    "absM": ("⟨|M|⟩", "|M|"),
}
_SAMPLER_NAMES = {"flow": "flow-MH", "hmc": "HMC", "local": "local Metropolis"}
_TRACED_CHAINS = 4  # chains drawn in the trace panel


class Phi4ScalingExplorer(Explorer):
    """Pick an ensemble and a sampler; watch the trace and the running τ_int.

    Knobs: ``ensemble`` (E1–E5), ``sampler`` (``"flow"``, ``"hmc"``, ``"local"``),
    ``observable`` (``"chi2"``, ``"E"``, ``"absM"``), ``n_steps`` (production steps per
    chain, at least 20), ``n_chains`` and ``seed``.

    Each reported state is a dict of plain data: ``steps`` (production steps done at each
    analysis), ``value``, ``error``, ``tau``, ``tau_error`` and ``converged`` (one entry per
    analysis), ``trace`` (``(T, k)`` per-configuration values of the first ``k <= 4``
    chains), ``acceptance`` (mean over the production steps so far), ``ensemble``, ``L``,
    ``sampler``, ``observable`` and ``detail``. While the first ``n_steps // 10`` steps are
    discarded, the states carry only the last five.

    Example:
        >>> Phi4ScalingExplorer(ensemble="E2", sampler="hmc").show()  # doctest: +SKIP
    """

    title = "φ⁴ on the ensembles E1–E5 of arXiv:1904.12072"
    figsize = (10.0, 3.6)
    #: the ensembles offered; a subclass may add its own (tests add a free field)
    ensembles: dict[str, Ensemble] = ENSEMBLES
    fields = {
        "ensemble": Field("ensemble", str, "E1", choices=tuple(ENSEMBLES)),
        "sampler": Field("sampler", str, "flow", choices=ALGORITHMS),
        "observable": Field("observable", str, "chi2", choices=tuple(OBSERVABLES)),
        "n_steps": Field("steps per chain", int, 500, low=1, high=10**6),
        "n_chains": Field("chains", int, 32, low=1, high=4096),
        "seed": Field("seed", int, 0, low=0, high=2**62),
    }
    #: fewest production steps: the Γ-method needs a few samples per chain in every chunk
    min_steps = 20
    #: most steps between two analyses (and two checks of Stop)
    max_chunk = 250

    def __init__(self, **kwargs):
        self._models: dict[str, torch.nn.Module] = {}
        super().__init__(**kwargs)

    def check(self, params: dict) -> dict:
        if params["n_steps"] < self.min_steps:
            raise ValueError(
                f"n_steps must be at least {self.min_steps} production steps per chain for a "
                f"τ_int estimate, got {params['n_steps']}"
            )
        if params["sampler"] == "flow":
            name = params["ensemble"]
            try:
                pretrained_path(f"phi4_{name}")
            except FileNotFoundError:
                raise ValueError(
                    f"ensemble {name} has no shipped flow (data/models/phi4_{name}.safetensors) "
                    "for the flow sampler; choose sampler hmc or local"
                ) from None
        return params

    def flow(self, name: str):
        """The shipped flow of ensemble ``name``, loaded once (the notebook's flows)."""
        if name not in self._models:
            e = self.ensembles[name]
            model, _ = load_checkpoint(pretrained_path(f"phi4_{name}"), action=e.action)
            self._models[name] = model.eval()
        return self._models[name]

    def work(self, params: dict, report: Callable, stopped: Callable[[], bool]) -> None:
        e = self.ensembles[params["ensemble"]]
        alg, obs, n_steps = params["sampler"], params["observable"], params["n_steps"]
        model = self.flow(e.name) if alg == "flow" else None
        sampler = make_sampler(alg, e.action, model, n_chains=params["n_chains"])
        generator = torch.Generator().manual_seed(params["seed"])
        # run_algorithm's start and thermalisation: flow chains start from model draws
        state = None if alg == "flow" else torch.zeros(params["n_chains"], *e.lattice)
        thermalize = n_steps // 10
        # about 25 redraws, each chunk short enough for Stop to act within seconds
        chunk = min(max(self.min_steps // 2, n_steps // 25), self.max_chunk)
        keys, f = derived_observable(obs, e.L**2) if obs in ("chi2", "E") else ((obs,), None)
        observables = phi4_chain_observables(keys)
        series: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        accepted: list[np.ndarray] = []
        history: dict[str, list] = {}
        labels = {"ensemble": e.name, "L": e.L, "sampler": alg, "observable": obs}
        burned = 0  # thermalisation in chunks too, so that Stop acts during it
        while burned < thermalize and not stopped():
            steps = min(chunk, thermalize - burned)
            state, burned = (
                run_chain(sampler, state, steps, generator=generator).final,
                burned + steps,
            )
            report({**labels, "detail": f"thermalising: step {burned} / {thermalize}"})
        done = 0
        while done < n_steps and not stopped():
            steps = min(chunk, n_steps - done)
            chain = run_chain(sampler, state, steps, generator=generator, observables=observables)
            state, done = chain.final, done + steps
            for k in keys:
                series[k].append(chain.observables[k].double().numpy())  # (steps, B)
            accepted.append(chain.accepted.double().numpy())
            data = np.stack([np.concatenate(series[k]) for k in keys], axis=-1)  # (T, B, K)
            g = gamma_method(data if f else data[..., 0], f=f, warn=False)
            row = {
                "steps": done, "value": g.value, "error": g.error, "tau": g.tau_int,
                "tau_error": g.tau_int_error, "converged": g.window_converged,
            }  # fmt: skip
            for key, value in row.items():
                history.setdefault(key, []).append(value)
            report(
                {
                    **{k: np.array(v) for k, v in history.items()},
                    "trace": _trace(obs, data[:, :_TRACED_CHAINS], e.L**2),
                    "acceptance": float(np.concatenate(accepted).mean()),
                    "detail": f"step {done} / {n_steps}",
                    **labels,
                }
            )

    def draw(self, fig, state: dict) -> None:
        if "steps" not in state:  # still thermalising: nothing measured yet
            fig.text(0.5, 0.5, state["detail"], ha="center", va="center")
            return
        est_label, trace_label = OBSERVABLES[state["observable"]]
        ax_trace, ax_tau = fig.subplots(1, 2)
        trace = state["trace"]
        ax_trace.plot(np.arange(1, len(trace) + 1), trace, lw=0.6)
        value, error = state["value"][-1], state["error"][-1]
        ax_trace.set(
            xlabel="production step",
            ylabel=f"{trace_label} per configuration",
            title=f"{len(trace[0])} of the chains; {est_label} = {value:.4g} ± {error:.2g}",
        )
        steps, tau, dtau = state["steps"], state["tau"], state["tau_error"]
        ax_tau.fill_between(steps, tau - dtau, tau + dtau, alpha=0.3, color="C0")
        ax_tau.plot(steps, tau, "-", color="C0", lw=1)
        ok = state["converged"]
        if ok.any():
            ax_tau.plot(steps[ok], tau[ok], "o", color="C0", ms=4, label="window converged")
        if not ok.all():
            ax_tau.plot(
                steps[~ok], tau[~ok], "o", mfc="none", color="C0", ms=4,
                label="window not converged: a lower bound",
            )  # fmt: skip
        name = _SAMPLER_NAMES[state["sampler"]]
        ax_tau.set(
            xlabel="production steps so far",
            ylabel=r"$\tau_\mathrm{int}$ (steps)",
            title=f"{name} on {state['ensemble']} (L = {state['L']}), "
            f"acceptance {state['acceptance']:.2f}\nτ_int = {tau[-1]:.2f} ± {dtau[-1]:.2f}",
        )
        ax_tau.set_ylim(bottom=0)
        ax_tau.legend(fontsize=7, loc="lower right")


def _trace(observable: str, data: np.ndarray, volume: int) -> np.ndarray:
    """Per-configuration values ``(T, k)`` of ``observable`` from primaries ``(T, k, K)``.

    χ₂'s per-configuration value is ``V M²`` (its mean minus ``V⟨M⟩²`` is χ₂), E's the
    nearest-neighbour product, ``|M|``'s itself.
    """
    if observable == "chi2":
        return volume * data[..., 1]  # primaries (M, M2)
    if observable == "E":
        return data[..., 1]  # primaries (M, nn)
    return data[..., 0]
