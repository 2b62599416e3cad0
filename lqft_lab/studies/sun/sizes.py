"""Notebook 03's statistics per mode: full mode's are the defaults, fast mode overrides them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import checks
from .. import _checks

__all__ = ["NotebookSizes", "notebook_sizes"]


@dataclass(frozen=True)
class NotebookSizes:
    """Statistics of notebook 03; the defaults are its full-mode run.

    Attributes:
        single_steps, single_batch: reverse-KL steps and batch per single-matrix target.
        ess_samples: fresh samples behind each single-matrix ESS and reweighted trace.
        lattice_train, lattice_layers, lattice_lr, lattice_batch: training of the lattice
            flows, used only when the notebook does not load the shipped ones.
        flow, hmc, heatbath: ``(chains, production steps)`` per algorithm; one step is one
            flow proposal per chain, one unit HMC trajectory, or one heatbath +
            overrelaxation sweep.
        groups: the lattice study's ``N``.
        prefetch: flow chains draw this many steps' proposals per pass of the flow (the same
            chain law; it keeps a GPU busy).
    """

    single_steps: int = 2000
    single_batch: int = 1024
    ess_samples: int = 65536
    lattice_train: int = 3000
    lattice_layers: int = 32
    lattice_lr: float = 3e-3
    lattice_batch: int = 256
    flow: tuple[int, int] = (128, 400)
    hmc: tuple[int, int] = (64, 1000)
    heatbath: tuple[int, int] = (64, 1000)
    groups: tuple[int, ...] = field(default=(2, 3))
    prefetch: int = 8

    def __post_init__(self):
        """Refuse sizes no run could use (each ``TypeError``/``ValueError`` names the field)."""
        for name in ("single_steps", "lattice_train"):
            checks.integer(name, getattr(self, name), low=0)
        for name in ("single_batch", "ess_samples", "lattice_batch"):
            checks.integer(name, getattr(self, name), low=2)
        checks.integer("lattice_layers", self.lattice_layers, low=1)
        checks.positive("lattice_lr", self.lattice_lr)
        for name in ("flow", "hmc", "heatbath"):
            _checks.chains_and_steps(name, getattr(self, name))
        _checks.integers("groups", self.groups, low=2)
        checks.integer("prefetch", self.prefetch, low=1)


# Fast mode: minutes on a CPU. Its lattice training (with use_pretrained = False) is a
# demonstration only; data/README.md says how the shipped lattice flows were trained.
_FAST = NotebookSizes(
    single_steps=300,
    single_batch=256,
    ess_samples=8192,
    lattice_train=300,
    lattice_layers=16,
    lattice_batch=64,
    flow=(64, 160),
    hmc=(16, 300),
    heatbath=(16, 300),
    prefetch=1,
)


def notebook_sizes(mode: str) -> NotebookSizes:
    """Notebook 03's statistics for ``mode``: ``"fast"`` (CPU minutes) or ``"full"``.

    Raises:
        ValueError: for any other mode.
    """
    sizes = {"fast": _FAST, "full": NotebookSizes()}
    if not isinstance(mode, str) or mode not in sizes:
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}")
    return sizes[mode]
