"""Explore φ⁴ flow training by hand: pick m², λ, L, depth and steps, press Train.

:class:`Phi4Explorer` builds a real NVP flow (:func:`~lqft_lab.flows.build_real_nvp`) and a
:class:`~lqft_lab.actions.Phi4Action` from its widgets and trains it in a
:class:`~lqft_lab.widgets.TrainingDashboard`. Invalid values never raise from a button: the
panel shows the sentence of the ``ValueError`` instead. Programmatic use (:meth:`run`,
:meth:`build`) raises that ``ValueError`` as usual, which is what notebooks and tests want.

Headless (:func:`~lqft_lab.widgets.is_headless`) no widget is built; :meth:`run` trains
synchronously and returns the trainer.
"""

from __future__ import annotations

import torch

from .. import checks
from ._compat import widget
from ._headless import DisplayMixin, ensure_panel_extension, is_headless
from .training import TrainingDashboard

__all__ = ["Phi4Explorer"]

#: parameter → (widget label, type)
_FIELDS = {
    "m2": ("m²", float),
    "lam": ("λ", float),
    "L": ("L (even)", int),
    "n_layers": ("coupling layers", int),
    "n_steps": ("training steps", int),
}


#: lower bound of each integer parameter
_INTEGER_LOW = {"L": 2, "n_layers": 1, "n_steps": 1, "batch_size": 1, "log_every": 1, "seed": 0}


def _check_params(p: dict) -> dict:
    """Type and range of every parameter; ``p`` with integral floats made ``int``.

    Raises:
        ValueError: naming the parameter (an ``ArgumentKindError``, also a ``TypeError``,
            for the wrong kind).
    """
    p = dict(p)
    for name in ("m2", "lam", "lr"):
        if isinstance(p[name], bool) or not isinstance(p[name], (int, float)):
            raise ValueError(f"{name} must be a number, got {p[name]!r}")
        p[name] = checks.real(name, p[name])
    if p["lr"] <= 0:
        raise ValueError(f"lr must be > 0, got {p['lr']}")
    for name, low in _INTEGER_LOW.items():
        value = p[name]
        if isinstance(value, float) and value.is_integer():
            value = p[name] = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        checks.integer(name, value, low=low, high=2**62 if name == "seed" else None)
    if p["L"] % 2:
        raise ValueError(f"L must be an even integer >= 2 for a checkerboard mask, got {p['L']}")
    return p


class Phi4Explorer(DisplayMixin):
    """Widgets for φ⁴ couplings and flow size, with Train and Stop.

    Args:
        m2, lam: couplings of :class:`~lqft_lab.actions.Phi4Action` (tutorial convention).
        L: lattice extent (even, for the checkerboard masks).
        n_layers: affine coupling layers of the real NVP flow.
        n_steps: training steps.
        batch_size, lr, log_every, seed: passed to :class:`~lqft_lab.train.TrainConfig`;
            ``seed`` also seeds the flow's initial weights.
        headless: override :func:`~lqft_lab.widgets.is_headless`.

    Attributes:
        message: the last error sentence shown to the user (``""`` when none).
        dashboard: the :class:`TrainingDashboard` of the last run, or ``None``.

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the parameter, for the
            values :meth:`build` refuses, here at construction already.
    """

    def __init__(
        self,
        m2: float = -4.0,
        lam: float = 8.0,
        L: int = 8,
        n_layers: int = 8,
        n_steps: int = 1000,
        *,
        batch_size: int = 64,
        lr: float = 1e-3,
        log_every: int = 10,
        seed: int = 0,
        headless: bool | None = None,
    ):
        self.params = {"m2": m2, "lam": lam, "L": L, "n_layers": n_layers, "n_steps": n_steps}
        self.train_options = {
            "batch_size": batch_size,
            "lr": lr,
            "log_every": log_every,
            "seed": seed,
        }
        if headless is not None and not isinstance(headless, bool):
            raise checks.ArgumentKindError(
                f"headless must be True, False or None, got {headless!r}"
            )
        _check_params({**self.params, **self.train_options})
        self.headless = is_headless() if headless is None else headless
        self.message = ""
        self.dashboard: TrainingDashboard | None = None
        self._handles: list = []
        self._layout = None
        if not self.headless:
            ensure_panel_extension()
            self._build_layout()

    # -- building --------------------------------------------------------------------
    def build(self, **params):
        """Validate ``params`` (over the current ones) and return a fresh, untrained trainer.

        Raises:
            ValueError: with a sentence naming the bad parameter (odd ``L``, ``λ < 0``, ...).
        """
        from ..actions import Phi4Action
        from ..flows import build_real_nvp
        from ..train import TrainConfig, Trainer

        unknown = set(params) - set(_FIELDS) - set(self.train_options)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; use {sorted(_FIELDS)}")
        p = _check_params({**self.params, **self.train_options, **params})
        action = Phi4Action(p["m2"], p["lam"])  # checks λ >= 0 and a bounded action
        config = TrainConfig(
            n_steps=p["n_steps"],
            batch_size=p["batch_size"],
            lr=p["lr"],
            log_every=p["log_every"],
            seed=p["seed"],
        )
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching global RNG
            torch.manual_seed(p["seed"])
            model = build_real_nvp(L=p["L"], n_layers=p["n_layers"])
        self.params = {k: p[k] for k in _FIELDS}
        return Trainer(model, action, config)

    def run(self, **params):
        """Build and train synchronously, whatever the mode; returns the trainer.

        Raises:
            ValueError: for invalid parameters (see :meth:`build`).
        """
        trainer = self.build(**params)
        self.dashboard = TrainingDashboard(trainer, headless=True, title=self._title())
        self.dashboard.start()
        self._refresh_static()
        return trainer

    # -- user actions (never raise) --------------------------------------------------
    def train(self, **params) -> TrainingDashboard | None:
        """Train with the widgets' values (overridden by ``params``); the Train button.

        Returns the new dashboard (training in the background when live, finished when
        headless), or ``None`` with :attr:`message` set when the parameters are invalid.
        """
        if not self.headless:
            params = {**self._widget_values(), **params}
        self.stop()
        try:
            trainer = self.build(**params)
        except Exception as err:  # a sentence for the user, never a traceback
            self._show_message(str(err))
            return None
        self._show_message("")
        self.dashboard = TrainingDashboard(trainer, headless=self.headless, title=self._title())
        if self._layout is not None:
            self._dashboard_area[:] = [self.dashboard.layout]
        try:
            self.dashboard.start()
        except Exception as err:  # headless runs raise here; show them like bad values
            self._show_message(f"training failed: {err}")
        self._refresh_static()
        return self.dashboard

    def stop(self) -> None:
        """Stop the running training, if any (the Stop button)."""
        if self.dashboard is not None and self.dashboard.running:
            self.dashboard.stop()
            self.dashboard.join(timeout=30)

    def _title(self) -> str:
        p = self.params
        return (
            f"φ⁴ m²={p['m2']}, λ={p['lam']}, L={p['L']}, "
            f"{p['n_layers']} layers, {p['n_steps']} steps"
        )

    def _show_message(self, text: str) -> None:
        self.message = text
        if self._layout is not None:
            self._alert.object = text
            self._alert.visible = bool(text)

    # -- widgets ---------------------------------------------------------------------
    def _build_layout(self) -> None:
        import panel as pn

        self._inputs = {}
        for name, (label, kind) in _FIELDS.items():
            cls = pn.widgets.IntInput if kind is int else pn.widgets.FloatInput
            extra = {"step": 2} if name == "L" else {}
            self._inputs[name] = widget(cls, label, value=self.params[name], width=130, **extra)
        train = self._train_button = widget(pn.widgets.Button, "Train", "primary", width=90)
        stop = self._stop_button = widget(pn.widgets.Button, "Stop", "danger", width=90)
        train.on_click(lambda event: self.train())
        stop.on_click(lambda event: self.stop())
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False)
        self._dashboard_area = pn.Column(sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.pane.Markdown("### φ⁴ flow explorer"),
            pn.Row(*self._inputs.values()),
            pn.Row(train, stop),
            self._alert,
            self._dashboard_area,
            sizing_mode="stretch_width",
        )

    def _widget_values(self) -> dict:
        return {name: w.value for name, w in self._inputs.items()} if self._layout else {}

    def figure(self):
        """The last dashboard's static figure, or ``None``."""
        return None if self.dashboard is None else self.dashboard.figure()

    def __repr__(self) -> str:
        state = self.message or (self.dashboard.status if self.dashboard else "idle")
        return f"<Phi4Explorer {self.params} {state}>"
