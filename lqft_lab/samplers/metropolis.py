"""Local Metropolis updates of scalar fields, checkerboard-parallel over sites and chains.

A sweep updates every even site at once, then every odd site. On a checkerboard the
neighbours of a site all have the other parity, so during a half-sweep they are fixed and
each site's update is an ordinary single-site Metropolis step with the exact action change
``ΔS = s(φ'_x) - s(φ_x)`` from the action's ``local_action``. Each half-sweep satisfies
detailed balance on its own, so the sweep leaves ``exp(-S)`` invariant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks
from ..lattice import check_field, checkerboard
from .base import FieldState, _accept, initial_action

__all__ = ["LocalMetropolisState", "LocalMetropolisInfo", "LocalMetropolis"]


LocalMetropolisState = FieldState  # (x, S): fields and their actions


@dataclass(frozen=True)
class LocalMetropolisInfo:
    """What happened in one sweep.

    Attributes:
        accepted: fraction of accepted single-site proposals per chain, ``(B,)`` float
            (the sweep-level analogue of HMC's accepted flag).
    """

    accepted: torch.Tensor


class LocalMetropolis:
    """Checkerboard local Metropolis with uniform proposals ``φ'_x = φ_x + δ U(-1, 1)``.

    Args:
        action: an action with ``neighbour_sum(x)`` and elementwise
            ``local_action(x, nbr_sum, dim)`` (e.g. :class:`~lqft_lab.actions.Phi4Action`).
        delta: proposal half-width ``δ > 0``.
        n_hits: Metropolis hits per site per half-sweep (the neighbour sum is reused, as the
            neighbours do not change during a half-sweep).

    Example:
        >>> sampler = LocalMetropolis(Phi4Action(m2=1.0, lam=0.0), delta=1.5)
        >>> state = sampler.init(torch.zeros(16, 8, 8))
        >>> state, info = sampler.step(state)

    Raises:
        TypeError: for a non-number ``delta`` or a non-integer ``n_hits``.
        ValueError: for an action without ``local_action`` and ``neighbour_sum``,
            ``delta <= 0`` or not finite, ``n_hits < 1``; at :meth:`init` for odd lattice
            extents (no consistent checkerboard), fields that are not finite float32/float64
            ``(B, *lattice)``, or whose action the action refuses or finds non-finite.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = LocalMetropolisState

    def __init__(self, action, delta: float = 1.0, n_hits: int = 1):
        if not (
            callable(action)
            and hasattr(action, "local_action")
            and hasattr(action, "neighbour_sum")
        ):
            raise ValueError(
                f"local Metropolis needs an action with local_action and neighbour_sum, "
                f"got {type(action).__name__}"
            )
        self.action = action
        self.delta = checks.positive("delta", delta)
        self.n_hits = checks.integer("n_hits", n_hits, low=1)
        self._mask_cache: dict = {}

    def __repr__(self) -> str:
        return f"LocalMetropolis({self.action!r}, delta={self.delta}, n_hits={self.n_hits})"

    def _masks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(x.shape[1:]), x.device)
        if key not in self._mask_cache:
            # checkerboard raises the user-facing ValueError for odd extents
            self._mask_cache[key] = tuple(
                checkerboard(key[0], parity, device=x.device, dtype=torch.bool) for parity in (0, 1)
            )
        return self._mask_cache[key]

    def init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> LocalMetropolisState:
        """Start every chain at the given fields ``(B, *lattice)`` (``generator`` is unused).

        Raises:
            TypeError: if ``x`` is not a tensor.
            ValueError: for fields that are not float32/float64 ``(B, *lattice)``, hold NaN
                or ``inf``, have odd extents, are refused by the action or have a non-finite
                action.
        """
        check_field(x, name="x", finite=True)
        checks.random_generator("generator", generator, x.device)
        try:
            self._masks(x)
        except ValueError as err:  # odd extents: say which argument has them
            raise ValueError(f"x of shape {tuple(x.shape)}: {err}") from None
        x = x.detach()
        return LocalMetropolisState(x=x, S=initial_action(self.action, x, "x"))

    def _start(self, x: torch.Tensor) -> LocalMetropolisState:
        """:meth:`init` without its checks, for fields that come from another chain."""
        with torch.no_grad():
            return LocalMetropolisState(x=x.detach(), S=self.action(x.detach()))

    def step(
        self, state: LocalMetropolisState, generator: torch.Generator | None = None
    ) -> tuple[LocalMetropolisState, LocalMetropolisInfo]:
        """One sweep: all even sites in parallel, then all odd sites."""
        phi = state.x
        dim = phi.dim() - 1
        n_accepted = phi.new_zeros(phi.shape[0])
        with torch.no_grad():
            for mask in self._masks(phi):
                nbr = self.action.neighbour_sum(phi)  # fixed during this half-sweep
                for _ in range(self.n_hits):
                    u = torch.rand(
                        phi.shape, generator=generator, device=phi.device, dtype=phi.dtype
                    )
                    proposal = phi + self.delta * (2 * u - 1)  # symmetric: no log correction
                    dS = self.action.local_action(proposal, nbr, dim) - self.action.local_action(
                        phi, nbr, dim
                    )
                    accepted = _accept(-dS, generator) & mask
                    phi = torch.where(accepted, proposal, phi)
                    n_accepted = n_accepted + accepted.flatten(1).sum(dim=1)
            new = LocalMetropolisState(x=phi, S=self.action(phi))
        fraction = n_accepted / (self.n_hits * phi[0].numel())
        return new, LocalMetropolisInfo(accepted=fraction)
