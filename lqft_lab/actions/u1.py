"""Two-dimensional U(1) lattice gauge theory: link angles, plaquettes, Wilson action, gauge maps.

Conventions (see DESIGN.md). A configuration is a batch of link angles ``theta`` of shape
``(B, 2, L0, L1)``: ``theta[b, mu, x0, x1]`` is the angle of the link ``U_mu(x) = e^{iθ_mu(x)}``
from site ``x`` to ``x + mû``, with ``mu = 0, 1`` and periodic boundaries. Neighbours follow
:func:`lqft_lab.lattice.shift`: ``shift(f, mu)[x] == f[x + mû]``. Angles are never wrapped
on input or output; every function here is ``2π``-periodic in each link angle.

The plaquette angle at ``x`` is the (unwrapped) sum of link angles around the elementary
square spanned by directions 0 and 1,

    θ_P(x) = θ_0(x) + θ_1(x + 0̂) - θ_0(x + 1̂) - θ_1(x),

and the Wilson action is ``S(θ) = -β Σ_x cos θ_P(x)`` (no constant, so ``S = 0`` is not the
minimum; the minimum is ``-β V`` at ``θ_P = 0``). Every action here returns ``(B,)`` and its
``force`` is ``F = -dS/dθ`` with the shape of ``theta``, as for every action in
:mod:`lqft_lab.actions`.

A gauge transformation with site angles ``α(x)`` maps
``θ_mu(x) → α(x) + θ_mu(x) - α(x + mû)``; plaquette angles, hence the action, the plaquette,
Wilson loops and the topological charge, are invariant.

References:
    G. Kanwar et al., "Equivariant flow-based sampling for lattice gauge theory",
    arXiv:2003.06413, Phys. Rev. Lett. 125 (2020) 121601;
    M. S. Albergo et al., "Introduction to Normalizing Flows for Lattice Field Theory",
    arXiv:2101.08176, sec. on U(1) gauge theory.
"""

from __future__ import annotations

import math

import torch

from .. import checks
from ..lattice import shift
from .base import autograd_force, check_lattice_field

__all__ = [
    "check_links",
    "plaquette_angles",
    "wrap_angle",
    "gauge_transform",
    "random_gauge_transform",
    "U1WilsonAction",
    "U1DefectAction",
]


def check_links(theta: torch.Tensor, name: str = "theta", *, finite: bool = False) -> None:
    """Check that ``theta`` is a batch of 2D U(1) link angles ``(B, 2, L0, L1)``.

    Args:
        theta: the links.
        name: the argument's name, for the messages.
        finite: also refuse NaN and ``±inf`` (one device sync: for a sampler's ``init``,
            not for every step).

    Raises:
        TypeError: if ``theta`` is not a tensor.
        ValueError: if it is not float32/float64 (half precision refused), not
            4-dimensional, has a direction axis other than 2, an empty batch, lattice
            extents below 2, or (with ``finite``) non-finite entries.
    """
    check_lattice_field(theta, name)
    if theta.dim() != 4 or theta.shape[1] != 2:
        raise ValueError(
            f"{name} must hold 2D U(1) link angles of shape (B, 2, L0, L1), "
            f"got {tuple(theta.shape)}"
        )
    if finite:
        checks.finite_tensor(name, theta)


def wrap_angle(phi: torch.Tensor) -> torch.Tensor:
    """Map angles into ``[-π, π)``, elementwise: ``φ - 2π floor((φ + π) / 2π)``.

    Args:
        phi: a real float32/float64 tensor of any shape.

    Returns:
        The wrapped angles, same shape and dtype. NaN and ``±inf`` have no angle and come
        out as NaN: the values are not checked here (flows and samplers call this every
        step; see :mod:`lqft_lab.actions`).

    Raises:
        TypeError: if ``phi`` is not a tensor.
        ValueError: if it is not float32/float64 (half precision refused).
    """
    checks.tensor("phi", phi, finite=False)
    return torch.remainder(phi + math.pi, 2 * math.pi) - math.pi


def check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    """Refuse a ``generator`` that is neither ``None`` nor a ``torch.Generator`` on ``device``'s
    type (torch would fail deep inside ``torch.rand``)."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != torch.device(device).type:
        raise ValueError(
            f"generator is on {generator.device} but the links are on {device}; create it "
            f"with torch.Generator(device={str(device)!r})"
        )


def _plaquette_angles(theta: torch.Tensor) -> torch.Tensor:
    t0, t1 = theta[:, 0], theta[:, 1]  # (B, L0, L1) each
    return t0 + shift(t1, 0) - shift(t0, 1) - t1


def plaquette_angles(theta: torch.Tensor) -> torch.Tensor:
    """Unwrapped plaquette angles ``θ_P(x) = θ_0(x) + θ_1(x+0̂) - θ_0(x+1̂) - θ_1(x)``.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.

    Returns:
        ``(B, L0, L1)``, the plaquette whose lower-left corner is ``x``. Not wrapped: the
        values lie in ``(-4π, 4π)`` for links in ``[-π, π)``.

    Raises:
        TypeError, ValueError: for links that :func:`check_links` refuses.
    """
    check_links(theta)
    return _plaquette_angles(theta)


def gauge_transform(theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Apply the gauge transformation ``θ_mu(x) → α(x) + θ_mu(x) - α(x + mû)``.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        alpha: site angles ``(B, L0, L1)``, or ``(L0, L1)`` for one transformation applied to
            the whole batch; same dtype and device as ``theta``.

    Returns:
        Transformed link angles ``(B, 2, L0, L1)`` (not wrapped).

    Raises:
        TypeError: if ``theta`` or ``alpha`` is not a tensor.
        ValueError: for links that :func:`check_links` refuses, or an ``alpha`` that is not
            float32/float64, is on another device than ``theta`` or does not match its
            lattice.
    """
    check_links(theta)
    checks.tensor("alpha", alpha, device=theta.device, finite=False)
    lattice = tuple(theta.shape[2:])
    if tuple(alpha.shape) == lattice:
        alpha = alpha.unsqueeze(0)  # (1, L0, L1)
    batches = (1, theta.shape[0])
    if alpha.dim() != 3 or tuple(alpha.shape[1:]) != lattice or alpha.shape[0] not in batches:
        raise ValueError(
            f"alpha must have shape (B, L0, L1) = {(theta.shape[0], *lattice)} or (L0, L1), "
            f"got {tuple(alpha.shape)}"
        )
    # (B, 2, L0, L1): α(x) - α(x + mû) for mu = 0, 1
    delta = torch.stack([alpha - shift(alpha, 0), alpha - shift(alpha, 1)], dim=1)
    return theta + delta


def random_gauge_transform(
    theta: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gauge-transform every configuration with independent uniform ``α(x) ∈ [-π, π)``.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        generator: random source (on ``theta``'s device); ``None`` uses torch's default.

    Returns:
        Transformed link angles, same shape, dtype and device as ``theta``.

    Raises:
        TypeError: for links that are not a tensor, a ``generator`` that is not a
            ``torch.Generator``.
        ValueError: for links that :func:`check_links` refuses, a generator on another
            device type than ``theta``.
    """
    check_links(theta)
    check_generator(generator, theta.device)
    B, _, L0, L1 = theta.shape
    u = torch.rand((B, L0, L1), generator=generator, device=theta.device, dtype=theta.dtype)
    return gauge_transform(theta, 2 * math.pi * u - math.pi)


class U1WilsonAction:
    """Wilson gauge action ``S(θ) = -β Σ_x cos θ_P(x)`` for 2D U(1) link angles.

    Args:
        beta: inverse coupling ``β >= 0`` (finite).

    Raises:
        TypeError: if ``beta`` is not a real number.
        ValueError: if it is negative or not finite.

    ``action(theta)`` and :meth:`force` take links that :func:`check_links` accepts (the
    values are not checked, see :mod:`lqft_lab.actions`).

    The exact finite-volume partition function, plaquette and topological susceptibility
    of this action are in :mod:`lqft_lab.exact` (``u1_log_z``, ``u1_plaquette``,
    ``u1_topological_susceptibility``).

    Example:
        >>> action = U1WilsonAction(beta=2.0)
        >>> action(torch.zeros(3, 2, 8, 8))   # cold start: S = -β V
        tensor([-128., -128., -128.])

    References:
        K. G. Wilson, Phys. Rev. D 10 (1974) 2445;
        G. Kanwar et al., arXiv:2003.06413, eq. (1).
    """

    def __init__(self, beta: float):
        self.beta = checks.real("beta", beta, low=0)

    def __repr__(self) -> str:
        return f"U1WilsonAction(beta={self.beta})"

    def params(self) -> dict[str, float]:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"beta": self.beta}

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        check_links(theta)
        return -self.beta * torch.cos(_plaquette_angles(theta)).flatten(1).sum(dim=1)

    def force(self, theta: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dθ``, analytic, shape ``(B, 2, L0, L1)``.

        ``θ_0(x)`` enters ``θ_P(x)`` with ``+`` and ``θ_P(x - 1̂)`` with ``-``; ``θ_1(x)``
        enters ``θ_P(x - 0̂)`` with ``+`` and ``θ_P(x)`` with ``-``. With
        ``dS/dθ_P = β sin θ_P`` this gives

            F_0(x) = -β [sin θ_P(x) - sin θ_P(x - 1̂)],
            F_1(x) = -β [sin θ_P(x - 0̂) - sin θ_P(x)].

        Checked against :meth:`autograd_force` in the tests.
        """
        check_links(theta)
        s = torch.sin(_plaquette_angles(theta))  # (B, L0, L1)
        f0 = -self.beta * (s - shift(s, 1, -1))
        f1 = -self.beta * (shift(s, 0, -1) - s)
        return torch.stack([f0, f1], dim=1)  # (B, 2, L0, L1)

    def autograd_force(self, theta: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dθ`` by automatic differentiation (the reference for :meth:`force`)."""
        return autograd_force(self, theta)


class U1DefectAction:
    """Wilson action with a defect line: ``S(θ) = -β Σ_x w(x) cos θ_P(x)`` with ``w = c`` on
    the ``d`` plaquettes at ``x_0 = 0``, ``x_1 = 0, …, d - 1`` and ``w = 1`` elsewhere.

    The rungs of parallel tempering on boundary conditions (Hasenbusch, arXiv:1706.04443;
    Bonanno, Bonati, D'Elia, arXiv:2012.14000): ``c = 1`` is :class:`U1WilsonAction`,
    ``c = 0`` opens the torus along the defect so that the topological charge can change
    there. Exact references: :func:`~lqft_lab.exact.u1.u1_defect_references`.

    Args:
        beta: inverse coupling ``β >= 0`` (finite).
        c: the defect's relative coupling, ``0 <= c <= 1``.
        d: defect plaquettes, an integer ``>= 0`` (at most ``L1`` of the links it meets).

    Raises:
        TypeError, ValueError: naming the argument; at call time, a lattice with
            ``L1 < d``.
    """

    def __init__(self, beta: float, c: float, d: int):
        self.beta = checks.real("beta", beta, low=0)
        self.c = checks.real("c", c, low=0, high=1)
        self.d = checks.integer("d", d, low=0)

    def __repr__(self) -> str:
        return f"U1DefectAction(beta={self.beta}, c={self.c}, d={self.d})"

    def params(self) -> dict[str, float]:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"beta": self.beta, "c": self.c, "d": self.d}

    def plaquette_weights(
        self, L0: int, L1: int, device=None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """``w(x)``, ``(L0, L1)``: ``c`` on the defect, 1 elsewhere."""
        if self.d > L1:
            raise ValueError(f"the defect of d = {self.d} plaquettes does not fit L1 = {L1}")
        w = torch.ones(L0, L1, device=device, dtype=dtype)
        w[0, : self.d] = self.c
        return w

    def _weighted(self, theta: torch.Tensor, fn) -> torch.Tensor:
        w = self.plaquette_weights(*theta.shape[2:], device=theta.device, dtype=theta.dtype)
        return w * fn(_plaquette_angles(theta))

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        check_links(theta)
        return -self.beta * self._weighted(theta, torch.cos).flatten(1).sum(dim=1)

    def force(self, theta: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dθ``, analytic: :meth:`U1WilsonAction.force` with ``sin θ_P`` weighted."""
        check_links(theta)
        s = self._weighted(theta, torch.sin)
        f0 = -self.beta * (s - shift(s, 1, -1))
        f1 = -self.beta * (shift(s, 0, -1) - s)
        return torch.stack([f0, f1], dim=1)

    def autograd_force(self, theta: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dθ`` by automatic differentiation (the reference for :meth:`force`)."""
        return autograd_force(self, theta)
