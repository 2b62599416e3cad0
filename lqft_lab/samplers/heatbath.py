"""Heatbath and overrelaxation sweeps for 2D U(1) link angles, parallel over links and chains.

A step of :class:`U1Heatbath` is one heatbath sweep over all links followed by
``n_overrelax`` overrelaxation sweeps. Both update one link at a time against its *staple*:
with the conventions of :mod:`lqft_lab.actions.u1`,

    θ_P(x) = θ_0(x) + θ_1(x+0̂) - θ_0(x+1̂) - θ_1(x),

each link sits in exactly two plaquettes, with ``+`` in one and ``-`` in the other. As
``cos`` is even, both can be written ``cos(θ + a)``:

* ``θ_0(x)`` is ``+`` in ``θ_P(x)`` and ``-`` in ``θ_P(x-1̂)``, so
  ``a = θ_1(x+0̂) - θ_0(x+1̂) - θ_1(x)`` and ``b = θ_1(x-1̂) - θ_0(x-1̂) - θ_1(x+0̂-1̂)``;
* ``θ_1(x)`` is ``+`` in ``θ_P(x-0̂)`` and ``-`` in ``θ_P(x)``, so
  ``a = θ_0(x-0̂) - θ_0(x-0̂+1̂) - θ_1(x-0̂)`` and ``b = θ_0(x+1̂) - θ_0(x) - θ_1(x+0̂)``.

With the staple sum ``e^{ia} + e^{ib} = k e^{-iφ₀}`` the part of ``S`` that depends on the link
is ``-β [cos(θ + a) + cos(θ + b)] = -β k cos(θ - φ₀)``, so the exact conditional distribution
of the link is von Mises, ``p(θ) ∝ exp(κ cos(θ - φ₀))`` with ``κ = β k``.

Links of direction ``mu`` whose coordinate ``x_{1-mu}`` has parity ``p`` never share a
plaquette (a plaquette holds two direction-``mu`` links, at ``x`` and ``x + (1-mu)^``, whose
``x_{1-mu}`` differ by one, also across the periodic boundary when ``L_{1-mu}`` is even), and no
such link is in another one's staple. These four groups (:func:`link_groups`) partition the
``2 L0 L1`` links, and each group is updated at once; even ``L0`` and ``L1`` are required.

Each group update leaves ``exp(-S)`` invariant on its own (heatbath: it samples the exact
conditional; overrelaxation ``θ → 2φ₀ - θ``: a reflection that keeps ``S`` exactly and is its
own inverse, so it is always accepted), hence so does any sequence of them. Overrelaxation
alone is not ergodic (it never changes ``S``); the heatbath sweep makes the step ergodic.
In two dimensions overrelaxation is weak: as ``φ₀ = -(a+b)/2 (mod π)``, the reflection
``θ → -θ - a - b (mod 2π)`` swaps the link's two plaquette angles, so a sweep only permutes the
plaquettes of a configuration (its plaquette and topological charge stay exactly the same;
on a 4×4 lattice two sweeps even restore every plaquette angle).
Updated links are wrapped into ``[-π, π)``; the state follows the sampler contract of
:mod:`lqft_lab.samplers` (``x`` the links, ``S`` their action; ``info.accepted`` all ``True``).

Drawing without asking the host. A group's von Mises draws are one round of ``C`` i.i.d.
Best–Fisher candidates for every link at once, each link taking its first accepted one (each
is accepted with probability >= 0.65, so a link has none with probability <= 0.35^C). ``C``
and what happens to the links without a draw depend on the device:

* on a CPU (``C = 8`` for groups of up to 1024 links, else 4) further rounds of 16 draw for
  them until every link has an accepted candidate: an exact heatbath draw of every link.
  The checks cost nothing there;
* elsewhere (``C = 16``, so at most ``0.35¹⁶ ≈ 5e-8`` of the links) they keep their old angle,
  and a sweep never synchronises with the host. The update of a link is then the heatbath
  with probability ``1 - P(κ)`` and the identity with probability ``P(κ)``, ``P(κ) <= 0.35^C``
  the chance that all ``C`` candidates are rejected. ``P`` depends on ``κ = βk`` alone, a
  function of the other links, so this mixture of two kernels that each satisfy detailed
  balance with respect to ``exp(-S)`` does too: the chain stays exact.

A group is a strided slice of the links (every other ``x_{1-mu}``), read and written without
index tensors or masks.

References:
    M. Creutz, Phys. Rev. D 21 (1980) 2308 (heatbath for lattice gauge theory);
    S. L. Adler, Phys. Rev. D 23 (1981) 2901; M. Creutz, Phys. Rev. D 36 (1987) 515;
    F. R. Brown, T. J. Woch, Phys. Rev. Lett. 58 (1987) 2394 (overrelaxation);
    D. J. Best, N. I. Fisher, Appl. Statist. 28 (1979) 152 (von Mises sampling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import checks
from ..actions.u1 import U1DefectAction, U1WilsonAction, check_links, wrap_angle
from ..lattice import lattice_shape, shift
from .base import FieldState

__all__ = [
    "sample_von_mises",
    "u1_staples",
    "link_groups",
    "U1HeatbathState",
    "U1HeatbathInfo",
    "U1Heatbath",
]

U1HeatbathState = FieldState  # (x, S): link angles (B, 2, L0, L1) and their actions (B,)

# i.i.d. proposals per element and round. Each is accepted with probability >= 0.65 at every
# κ (Best & Fisher), so a round of C leaves <= 0.35^C of the elements without a draw.
_CANDIDATES = 16  # a GPU's one round (<= 5e-8 left, module doc); every round after the first
_MAX_ROUNDS = 1000


def _draw_plan(device: torch.device, n: int, cpu: tuple[int, int] = (8, 4)) -> tuple[int, bool]:
    """``(C, complete)`` for ``n`` draws on ``device``: the first round's candidates, and
    whether further rounds go on until every element has an accepted one (module doc).

    On a CPU groups of up to 1024 elements take ``cpu[0]`` candidates and larger ones
    ``cpu[1]``. For the von Mises draws a further round costs about as much as 6000 more
    candidates in the first (measured: 16-64 chains, L = 8-16), hence 8 and 4.
    """
    if device.type != "cpu":
        return _CANDIDATES, False
    return (cpu[0] if n <= 1024 else cpu[1]), True


def _rejection_rounds(
    draw_round: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    params: Sequence[torch.Tensor],
    candidates: int,
    complete: bool,
    generator: torch.Generator | None,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched rejection sampling, one draw per element of the 1D ``params``.

    ``draw_round(*params, C, generator) -> (out, done)`` proposes ``C`` i.i.d. candidates for
    every element and keeps the first accepted one where ``done``. The first round has
    ``candidates``; with ``complete`` further rounds of :data:`_CANDIDATES` go over the
    elements left (compacted, one host check per round) until ``done`` is all ``True``;
    without, the host is never asked and ``done`` marks the elements that have a draw.
    """
    out, done = draw_round(*params, candidates, generator)
    if complete:
        for _ in range(_MAX_ROUNDS):
            if bool(done.all()):  # a host synchronisation on a GPU
                break
            left = torch.nonzero(~done).squeeze(1)
            out[left], done[left] = draw_round(*(p[left] for p in params), _CANDIDATES, generator)
        else:
            raise RuntimeError(f"{what} sampling did not converge; is every κ finite?")
    return out, done


@dataclass(frozen=True)
class U1HeatbathInfo:
    """What happened in one step.

    Attributes:
        accepted: ``(B,)`` bool, always ``True``: heatbath and overrelaxation never reject.
    """

    accepted: torch.Tensor


def _von_mises_round(
    k: torch.Tensor,
    r_minus_1: torch.Tensor,
    q: torch.Tensor,
    candidates: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One round of Best & Fisher for every element of ``k`` ``(n,)``: ``(θ, done)``, each
    ``(n,)``, ``θ`` the first accepted of ``candidates`` i.i.d. proposals where ``done``."""
    u = torch.rand((2, candidates, k.numel()), generator=generator, device=k.device, dtype=k.dtype)
    # Best & Fisher's z = cos(π U1) with h = πU1/2; the sign U3 rides on the sign of h
    h = math.pi * (u[0] - 0.5)  # (C, n), ∈ [-π/2, π/2)
    sin_h, cos_h = torch.sin(h), torch.cos(h)
    one_minus_z, one_plus_z = 2 * sin_h**2, 2 * cos_h**2
    one_minus_f = r_minus_1 * one_minus_z / (r_minus_1 + one_plus_z)  # f = (1+rz)/(r+z)
    c = k * (r_minus_1 + one_minus_f)  # c = κ(r - f), step 3
    accept = (c * (2 - c) > u[1]) | (torch.log(c / u[1]) + 1 - c >= 0)  # steps 4 and 5
    # Candidates are i.i.d., so the first accepted one (any picked by the accept pattern alone
    # would do) is an exact draw. max returns the first maximal index; argmax over dim 0 is
    # ten times slower on a CPU.
    done, first = accept.to(torch.uint8).max(dim=0, keepdim=True)  # (1, n) each
    sin_h, cos_h = sin_h.gather(0, first).squeeze(0), cos_h.gather(0, first).squeeze(0)
    return 2 * torch.atan2(q * sin_h, cos_h), done.squeeze(0).bool()  # ± arccos f, step 6


def _von_mises_centred(
    kappa: torch.Tensor,
    generator: torch.Generator | None,
    candidates: int,
    complete: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``X ~ VM(0, κ)`` elementwise for finite ``κ >= 0`` (no input checks), in ``[-π, π]``.

    Returns ``(X, done)`` of ``kappa``'s shape. One round of ``candidates`` proposals for every
    element; with ``complete`` further rounds of 16 for the elements left (compacted, one
    host check per round), so ``done`` is all ``True``; without, ``done`` marks the elements
    that have a draw (the others hold a rejected candidate) and the host is never asked.
    """
    flat = kappa.reshape(-1)
    # exp(κ cos θ) rounds to 1 below √tiny: those draws are uniform, and 1/κ cannot overflow
    k = flat.clamp(min=math.sqrt(torch.finfo(flat.dtype).tiny))
    # Wrapped-Cauchy envelope of Best & Fisher, step 0, in forms that neither overflow for
    # large κ nor cancel for small κ: ρ = (τ - √(2τ))/(2κ) = 2κ/(τ + √(2τ)), τ = 1 + √(1+4κ²)
    s = torch.hypot(torch.ones_like(k), 2 * k)
    tau = 1 + s
    root = torch.sqrt(2 * tau)
    rho = 2 * k / (tau + root)
    one_minus_rho = (1 + 1 / (s + 2 * k) + root) / (tau + root)  # τ - 2κ = 1 + 1/(s + 2κ)
    r_minus_1 = one_minus_rho**2 / (2 * rho)  # r = (1 + ρ²)/(2ρ)
    q = one_minus_rho / (1 + rho)  # √((r-1)/(r+1))
    out, done = _rejection_rounds(
        _von_mises_round, (k, r_minus_1, q), candidates, complete, generator, "von Mises"
    )
    return out.view(kappa.shape), done.view(kappa.shape)


def sample_von_mises(
    kappa: torch.Tensor,
    loc: torch.Tensor | float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Exact draws from the von Mises density ``p(θ) ∝ exp(κ cos(θ - loc))`` on ``[-π, π)``.

    Best and Fisher's rejection algorithm with a wrapped-Cauchy envelope, batched: a round
    proposes ``C`` i.i.d. candidates for every element still without a draw and keeps the
    first accepted one (a candidate is accepted with probability >= 0.65 for every ``κ``),
    until all have one. The first round covers every element at once, with ``C = 16`` on a
    GPU, which then rarely needs a second round: besides the input checks, one host
    synchronisation per call (the check for elements left), plus one per further round.
    (On a CPU ``C`` is 8 or 4, and 16 after the first round.)
    ``κ`` below ``√tiny`` of the dtype (``κ = 0`` included) gives uniform draws, exact there
    because ``exp(κ cos θ)`` rounds to 1. Large ``κ``, up to half the dtype's maximum, does
    not overflow, and the envelope parameters are computed without cancellation, so the
    ``1/√κ`` width of the peak is kept as far as ``[-π, π)`` angles resolve it.

    Args:
        kappa: concentrations ``κ >= 0``, finite, any shape; floating point.
        loc: mean directions, a tensor broadcastable to ``kappa`` or a float.
        generator: random source on ``kappa``'s device.

    Returns:
        Angles in ``[-π, π)``, shape, dtype and device of ``kappa``.

    Raises:
        TypeError: if ``kappa`` is not a floating tensor, ``loc`` neither a number nor a
            tensor, ``generator`` not a generator.
        ValueError: for negative or non-finite ``κ``, half precision, a non-finite ``loc`` or
            one that does not broadcast to ``kappa``'s shape, a generator on another device.

    References:
        D. J. Best, N. I. Fisher, "Efficient simulation of the von Mises distribution",
        Appl. Statist. 28 (1979) 152.
    """
    _check_kappa(kappa, generator)
    if isinstance(loc, torch.Tensor):
        checks.tensor("loc", loc, device=kappa.device)
        try:
            fits = torch.broadcast_shapes(loc.shape, kappa.shape) == kappa.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"loc of shape {tuple(loc.shape)} must broadcast to kappa's shape "
                f"{tuple(kappa.shape)}"
            )
    else:
        loc = checks.real("loc", loc)
    candidates, _ = _draw_plan(kappa.device, kappa.numel())
    theta, _ = _von_mises_centred(kappa, generator, candidates)
    return wrap_angle(loc + theta)


def _check_kappa(kappa, generator) -> None:
    """The checks of the concentrations of :func:`sample_von_mises` and
    :func:`~lqft_lab.samplers.sample_su2_heatbath`, and of their generator."""
    if not isinstance(kappa, torch.Tensor) or not kappa.is_floating_point():
        raise TypeError(f"kappa must be a floating-point torch.Tensor, got {kappa!r:.60}")
    checks.tensor("kappa", kappa, finite=False)  # half precision: the one message
    if not bool(torch.isfinite(kappa).all()) or bool((kappa < 0).any()):
        raise ValueError("kappa must be finite and >= 0 everywhere")
    checks.random_generator("generator", generator, kappa.device)


def _staple(
    theta: torch.Tensor, mu: int, sites: tuple = (), weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(k, φ₀)`` of the direction-``mu`` links, each ``(B, L0, L1)`` indexed by ``sites``
    (all sites by default); see the module doc. ``weights`` ``(L0, L1)`` multiply the
    plaquettes' couplings (a defect action's), ``None`` for the plain Wilson action."""
    t0, t1 = theta[:, 0], theta[:, 1]  # (B, L0, L1) each
    if mu == 0:
        d1 = shift(t1, 0) - t1  # θ_1(x+0̂) - θ_1(x)
        a = d1 - shift(t0, 1)  # from θ_P(x), where θ_0(x) enters with +
        b = -shift(d1, 1, -1) - shift(t0, 1, -1)  # from θ_P(x-1̂), where it enters with -
    else:
        d0 = shift(t0, 1) - t0  # θ_0(x+1̂) - θ_0(x)
        a = -shift(d0, 0, -1) - shift(t1, 0, -1)  # from θ_P(x-0̂), where θ_1(x) enters with +
        b = d0 - shift(t1, 0)  # from θ_P(x), where it enters with -
    a, b = a[sites], b[sites]
    if weights is None:
        re, im = torch.cos(a) + torch.cos(b), torch.sin(a) + torch.sin(b)  # k e^{-iφ₀}
    else:  # the plaquettes of a and b: x and x - 1̂ for mu = 0, x - 0̂ and x for mu = 1
        w = weights[None]
        wa = (w if mu == 0 else shift(w, 0, -1))[sites]
        wb = (shift(w, 1, -1) if mu == 0 else w)[sites]
        re = wa * torch.cos(a) + wb * torch.cos(b)
        im = wa * torch.sin(a) + wb * torch.sin(b)
    return torch.hypot(re, im), -torch.atan2(im, re)


def u1_staples(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Staples of every link: ``S(θ) = -β k cos(θ_l - φ₀) + (terms without θ_l)``.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.

    Returns:
        ``(k, phi0)``, each ``(B, 2, L0, L1)``: the staple modulus ``k ∈ [0, 2]`` and the
        staple direction ``φ₀ ∈ [-π, π]`` of each link, from the neighbouring links only.

    Raises:
        TypeError: if ``theta`` is not a tensor.
        ValueError: for ``theta`` that is not finite float32/float64 ``(B, 2, L0, L1)``.
    """
    check_links(theta)
    checks.finite_tensor("theta", theta)
    k0, phi0 = _staple(theta, 0)
    k1, phi1 = _staple(theta, 1)
    return torch.stack([k0, k1], dim=1), torch.stack([phi0, phi1], dim=1)


def _even_extents(shape: Sequence[int], name: str = "theta") -> tuple[int, int]:
    """``(L0, L1)`` of a 2D lattice with even extents, else the ValueError of the heatbaths
    (naming ``name``, the argument whose shape it is)."""
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise checks.ArgumentKindError(
            f"{name} must be a sequence of two even lattice extents (L0, L1), got {shape!r:.80}"
        )
    L0, L1 = lattice_shape(tuple(shape), dim=2, name=name) if len(shape) == 2 else (None, None)
    if L0 is None or L0 % 2 or L1 % 2:
        raise ValueError(
            f"the heatbath needs a 2D lattice with even extents L0, L1 (links of one "
            f"direction and parity must not share a plaquette), got {name} with extents "
            f"{tuple(shape)}"
        )
    return L0, L1


def link_groups(shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """The four groups of links that are updated at once, as masks ``(4, 2, L0, L1)`` bool.

    Group ``g = 2 mu + p`` holds the links of direction ``mu`` whose coordinate ``x_{1-mu}``
    is ``≡ p (mod 2)``. No two links of a group share a plaquette, and every link is in
    exactly one group. (The sweeps index a group as a strided slice of the same links.)

    Args:
        shape: lattice extents ``(L0, L1)``, both even.
        device: where to allocate the masks.

    Raises:
        TypeError: for a ``shape`` that is not a sequence of integers.
        ValueError: for a shape that is not two even extents >= 2, a device that is not here.
    """
    L0, L1 = _even_extents(shape, "shape")
    if device is not None:
        device = checks.torch_device("device", device)
    x0 = torch.arange(L0, device=device).view(L0, 1)  # (L0, 1)
    x1 = torch.arange(L1, device=device).view(1, L1)  # (1, L1)
    groups = torch.zeros(4, 2, L0, L1, dtype=torch.bool, device=device)
    for p in (0, 1):
        groups[p, 0] = (x1 % 2 == p).expand(L0, L1)  # direction 0, parity of x_1
        groups[2 + p, 1] = (x0 % 2 == p).expand(L0, L1)  # direction 1, parity of x_0
    return groups


def _group_sites(g: int) -> tuple[int, tuple[slice, ...]]:
    """Group ``g`` of :func:`link_groups` as ``(mu, sites)``: its direction, and an index that
    picks its sites from any ``(B, L0, L1, ...)`` tensor as a strided view.

    ``links[:, mu][sites]`` is ``(B, L0, L1/2, ...)`` for ``mu = 0`` (every other ``x_1``)
    and ``(B, L0/2, L1, ...)`` for ``mu = 1``; assigning to it writes the group in place.
    """
    mu, p = divmod(g, 2)
    every_other = slice(p, None, 2)  # x_{1-mu} ≡ p (mod 2)
    return mu, (slice(None), slice(None), every_other) if mu == 0 else (slice(None), every_other)


class U1Heatbath:
    """Heatbath plus overrelaxation for the 2D U(1) Wilson action, batched over chains.

    One :meth:`step` is one heatbath sweep (:meth:`heatbath_sweep`) followed by
    ``n_overrelax`` overrelaxation sweeps (:meth:`overrelax_sweep`), each sweep updating the
    four :func:`link_groups` in turn.

    Args:
        action: a :class:`~lqft_lab.actions.U1WilsonAction`, or a
            :class:`~lqft_lab.actions.U1DefectAction` (each plaquette's coupling weights its
            staple: the conditional of a link stays a von Mises distribution).
        n_overrelax: overrelaxation sweeps per step, an integer ``>= 0``.

    Example:
        >>> sampler = U1Heatbath(U1WilsonAction(beta=2.0), n_overrelax=1)
        >>> state = sampler.init(torch.zeros(16, 2, 8, 8, dtype=torch.float64))
        >>> state, info = sampler.step(state, torch.Generator().manual_seed(0))

    Raises:
        TypeError: for an action other than :class:`~lqft_lab.actions.U1WilsonAction`, a
            non-integer ``n_overrelax``.
        ValueError: for ``n_overrelax < 0``; at :meth:`init` (and in the public sweeps) for
            missing links, a shape other than ``(B, 2, L0, L1)``, odd extents, half precision
            or non-finite angles.

    References:
        M. Creutz, Phys. Rev. D 21 (1980) 2308; S. L. Adler, Phys. Rev. D 23 (1981) 2901;
        M. Creutz, Phys. Rev. D 36 (1987) 515; D. J. Best, N. I. Fisher, Appl. Statist. 28
        (1979) 152.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = U1HeatbathState

    def __init__(self, action: U1WilsonAction | U1DefectAction, n_overrelax: int = 1):
        if not isinstance(action, (U1WilsonAction, U1DefectAction)):
            raise TypeError(
                f"U1Heatbath samples the 2D U(1) Wilson action (U1WilsonAction, or "
                f"U1DefectAction with a defect line), got {type(action).__name__}"
            )
        self.action = action
        self.n_overrelax = checks.integer("n_overrelax", n_overrelax, low=0)

    def __repr__(self) -> str:
        return f"U1Heatbath({self.action!r}, n_overrelax={self.n_overrelax})"

    def init(
        self, theta: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> U1HeatbathState:
        """Start every chain at the given links ``(B, 2, L0, L1)`` (``generator`` is unused).

        As for :class:`~lqft_lab.samplers.LocalMetropolis`, the links fix the batch and the
        lattice, so they are required: pass ``torch.zeros(B, 2, L0, L1)`` for a cold start or
        ``2π U(0, 1) - π`` angles for a hot one.
        """
        if theta is None:
            raise ValueError(
                "U1Heatbath.init needs starting link angles of shape (B, 2, L0, L1), e.g. "
                "torch.zeros(B, 2, L, L) for a cold start; it cannot draw a first configuration"
            )
        self._check_links(theta)
        checks.random_generator("generator", generator, theta.device)
        with torch.no_grad():
            return U1HeatbathState(x=theta.detach(), S=self.action(theta.detach()))

    @staticmethod
    def _check_links(theta: torch.Tensor) -> None:
        check_links(theta)
        _even_extents(theta.shape[2:])
        if not bool(torch.isfinite(theta).all()):
            raise ValueError("theta must be finite (the staples of NaN or inf links are undefined)")

    def _start(self, x: torch.Tensor) -> U1HeatbathState:
        """:meth:`init` without its checks, for fields that come from another chain."""
        with torch.no_grad():
            return U1HeatbathState(x=x.detach(), S=self.action(x.detach()))

    def _sweep(self, theta: torch.Tensor, new_angles, reverse: bool = False) -> torch.Tensor:
        _even_extents(theta.shape[2:])
        weights = None
        if isinstance(self.action, U1DefectAction):
            weights = self.action.plaquette_weights(
                *theta.shape[2:], device=theta.device, dtype=theta.dtype
            )
        theta = theta.detach().clone()  # updated in place below; the input stays untouched
        for g in (3, 2, 1, 0) if reverse else (0, 1, 2, 3):
            mu, sites = _group_sites(g)
            k, phi0 = _staple(theta, mu, sites, weights)  # (B, l0, l1), fixed in this update
            links = theta[:, mu]  # (B, L0, L1), a view: writing to it updates theta
            links[sites] = wrap_angle(new_angles(k, phi0, links[sites]))
        return theta

    def heatbath_sweep(
        self, theta: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw every link from its exact conditional ``∝ exp(βk cos(θ - φ₀))`` (Creutz 1980).

        On a CPU every link gets a draw; elsewhere the sweep never synchronises with the host,
        and a link whose 16 candidates were all rejected (probability <= 5e-8) keeps its angle,
        which leaves ``exp(-S)`` exactly invariant as well (module doc).

        Raises:
            TypeError, ValueError: for links :meth:`init` refuses, a bad ``generator``.
        """
        self._check_links(theta)
        checks.random_generator("generator", generator, theta.device)
        return self._heatbath_sweep(theta, generator)

    def _heatbath_sweep(self, theta: torch.Tensor, generator: torch.Generator | None):
        beta = self.action.beta

        def new_angles(k, phi0, old):
            candidates, complete = _draw_plan(k.device, k.numel())
            delta, done = _von_mises_centred(beta * k, generator, candidates, complete)
            return torch.where(done, phi0 + delta, old)

        with torch.no_grad():
            return self._sweep(theta, new_angles)

    def overrelax_sweep(self, theta: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Reflect every link about its staple direction, ``θ → 2φ₀ - θ``; ``S`` is unchanged.

        Each group reflection is an involution; a whole sweep is undone by the sweep with
        ``reverse=True`` (the groups in the opposite order), not by a second forward sweep.

        Raises:
            TypeError, ValueError: for links :meth:`init` refuses, a non-bool ``reverse``.
        """
        self._check_links(theta)
        if not isinstance(reverse, bool):
            raise checks.ArgumentKindError(f"reverse must be a bool, got {reverse!r:.80}")
        return self._overrelax_sweep(theta, reverse)

    def _overrelax_sweep(self, theta: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        with torch.no_grad():
            return self._sweep(theta, lambda k, phi0, old: 2 * phi0 - old, reverse=reverse)

    def step(
        self, state: U1HeatbathState, generator: torch.Generator | None = None
    ) -> tuple[U1HeatbathState, U1HeatbathInfo]:
        """One heatbath sweep, then ``n_overrelax`` overrelaxation sweeps."""
        theta = self._heatbath_sweep(state.x, generator)
        for _ in range(self.n_overrelax):
            theta = self._overrelax_sweep(theta)
        with torch.no_grad():
            new = U1HeatbathState(x=theta, S=self.action(theta))
        accepted = torch.ones(theta.shape[0], dtype=torch.bool, device=theta.device)
        return new, U1HeatbathInfo(accepted=accepted)
