"""Cabibbo–Marinari heatbath and overrelaxation for 2D SU(N) links, parallel over links and chains.

A step of :class:`SUNHeatbath` is one heatbath sweep over all links followed by
``n_overrelax`` overrelaxation sweeps. Both update one link at a time against its staple sum
``A`` (:func:`lqft_lab.actions.sun_staples`): the part of the Wilson action that depends on
the link ``U`` is ``-(β/N) Re tr(U A)``, so its exact conditional density is
``∝ exp[(β/N) Re tr(U A)]`` with respect to Haar measure.

SU(2) subgroups (Cabibbo–Marinari). For each pair ``i < j`` of colours the link is multiplied
from the left, ``U ← R U``, by an SU(2) matrix ``R = [[α, β], [-β*, α*]]`` embedded in rows and
columns ``(i, j)``. With ``W = U A`` only the ``(i, j)`` block ``w`` of ``W`` sees ``R``, and
``Re tr(r w) = Re tr(r v)`` for the quaternion part ``v = [[c, d], [-d*, c*]]``,
``c = (w_ii + w_jj*)/2``, ``d = (w_ij - w_ji*)/2``. Writing ``v = k V`` with
``k = √(|c|² + |d|²)`` and ``V`` in SU(2), the conditional of ``s = R V`` is
``∝ exp[(2βk/N) a₀(s)]`` with ``a₀ = ½ tr s``, which in Haar measure on SU(2) (the 3-sphere
``a₀² + |a|² = 1``) is ``∝ √(1 - a₀²) exp(κ a₀) da₀ dΩ(â)``, ``κ = 2βk/N``
(:func:`sample_su2_heatbath`). Then ``R = s V†``. For ``N = 2`` the one subgroup is the whole
group, so the update is an exact heatbath; for ``N = 3`` the three subgroup updates together
are the standard pseudo-heatbath. Each subgroup update samples the exact conditional of ``R``
(left invariance of Haar measure), so each leaves ``exp(-S)`` invariant.

Overrelaxation: ``R = (V†)²`` maps ``s = V`` to ``s = V†`` (``Re tr`` unchanged, so ``S`` is
exactly unchanged), preserves Haar measure, and is its own inverse (after it the block's
``V`` is ``V†``); a sweep is undone by the sweep in reverse order of groups and subgroups.

Link groups: the four :func:`~lqft_lab.samplers.link_groups` of the U(1) heatbath (links of one
direction and one parity of the other coordinate share no plaquette, so none is in another's
staple) are updated at once, each indexed as a strided slice of the links (every other
``x_{1-mu}``, no masks); even ``L0`` and ``L1`` are required.

Rejection sampling of ``a₀`` and the host, as in :mod:`lqft_lab.samplers.heatbath`: a
subgroup's draws are one round of ``C`` i.i.d. candidates for every link of the group at
once, each link taking its first accepted one (each is accepted with probability >= 0.7, so a
link has none with probability <= 0.3^C). On a CPU (``C = 4`` for up to 1024 links, else 2)
further rounds of 16, over the links left (compacted with ``nonzero``), go on until every
link has a draw: an exact heatbath. Elsewhere (``C = 16``, at most ``0.3¹⁶ ≈ 4e-9`` of the
links) those links keep ``R = 1``, and a sweep never synchronises with the host. The subgroup
update is then the heatbath with probability ``1 - P(κ)`` and the identity with probability
``P(κ) <= 0.3^C``; ``κ = 2βk/N`` is the same for every ``R U`` (``|r v| = |v|`` for ``r`` in
SU(2)), so both kernels and their mixture satisfy detailed balance with respect to
``exp(-S)`` on the orbit: the chain stays exact.

Re-projection, in complex64 only. Links are multiplied by SU(2) rotations built from
normalised quaternions, but their rounding has a slight bias (measured: ``|α|² + |β|² - 1``
averages ``+0.1 ulp`` for heatbath and ``-0.1 ulp`` for overrelaxation rotations), so
``|U U† - 1|`` grows linearly with the number of updates.
Measured for SU(3) with one overrelaxation sweep per step: ``~1e-16`` per step in complex128
(``1e-12`` after 10⁴ steps: harmless, so nothing is done), but ``~1e-8`` on average and
``5e-8`` at most per step in complex64 (``3e-5`` after 600 steps). So in complex64 every
step ends with :func:`lqft_lab.groups.sun.project_sun` (an SVD per link, about a third of the cost
of a step on a CPU), which resets the deviation to ``~1e-6``. On a GPU that SVD is the one
host synchronisation of a complex64 step (``torch.linalg.svd`` checks its convergence
flags on the host); complex128 steps have none.

References:
    N. Cabibbo, E. Marinari, Phys. Lett. B 119 (1982) 387 (SU(2) subgroups);
    M. Creutz, Phys. Rev. D 21 (1980) 2308 (SU(2) heatbath);
    A. D. Kennedy, B. J. Pendleton, Phys. Lett. B 156 (1985) 393 (SU(2) heatbath at large κ);
    F. R. Brown, T. J. Woch, Phys. Rev. Lett. 58 (1987) 2394; M. Creutz, Phys. Rev. D 36
    (1987) 515 (overrelaxation); C. Gattringer, C. B. Lang, "Quantum Chromodynamics on the
    Lattice" (Springer 2010), sec. 4.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import torch

from .. import checks
from ..actions.sun import SUNWilsonAction, check_sun_links, sun_staples
from ..groups.sun import check_special_unitary, project_sun
from . import heatbath
from .base import FieldState
from .heatbath import _check_kappa, _even_extents, _group_sites

__all__ = [
    "sample_su2_heatbath",
    "SUNHeatbathState",
    "SUNHeatbathInfo",
    "SUNHeatbath",
]

SUNHeatbathState = FieldState  # (x, S): links (B, 2, L0, L1, N, N) and their actions (B,)

_KP_KAPPA = 1.75  # Creutz's proposal below, Kennedy–Pendleton's above: both accept >= 0.7


def _draw_plan(device: torch.device, n: int) -> tuple[int, bool]:
    """:func:`lqft_lab.samplers.heatbath._draw_plan` with this sampler's CPU candidates: small
    groups take 4, so that one round usually does, and larger ones 2, where drawing dominates
    (measured for SU(3) on 16-64 chains)."""
    return heatbath._draw_plan(device, n, cpu=(4, 2))


@dataclass(frozen=True)
class SUNHeatbathInfo:
    """What happened in one step.

    Attributes:
        accepted: ``(B,)`` bool, always ``True``: heatbath and overrelaxation never reject.
    """

    accepted: torch.Tensor


def _su2_delta_round(
    k: torch.Tensor,
    one_minus_e: torch.Tensor,
    candidates: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One rejection round for every element of ``k`` ``(n,)``: ``(δ, done)``, each ``(n,)``,
    ``δ`` the first accepted of ``candidates`` i.i.d. proposals where ``done``."""
    u = torch.rand((4, candidates, k.numel()), generator=generator, device=k.device, dtype=k.dtype)
    v = 1 - u  # in (0, 1]: safe in log; each link uses one of the two proposals below
    # Creutz (1980): δ from ∝ e^{-κδ} on [0, 2] by inversion, kept with prob √(δ(2-δ))
    delta_c = -torch.log1p(-v[0] * one_minus_e) / k
    accept_c = u[3] ** 2 <= delta_c * (2 - delta_c)
    # Kennedy–Pendleton (1985): δ ~ Gamma(3/2, 1/κ) ∝ √δ e^{-κδ} as Exp(1) + ½χ²₁ over κ,
    # kept with prob √(1-δ/2)
    delta_kp = -(torch.log(v[0]) + torch.cos(2 * math.pi * u[1]) ** 2 * torch.log(v[2])) / k
    accept_kp = u[3] ** 2 <= 1 - delta_kp / 2
    creutz = k < _KP_KAPPA  # (n,): which proposal each link uses
    delta = torch.where(creutz, delta_c, delta_kp)  # (C, n)
    accept = torch.where(creutz, accept_c, accept_kp)
    # Candidates are i.i.d., so the first accepted one (any picked by the accept pattern alone
    # would do) is an exact draw; max returns the first maximal index.
    done, first = accept.to(torch.uint8).max(dim=0, keepdim=True)  # (1, n) each
    return delta.gather(0, first).squeeze(0).clamp(0, 2), done.squeeze(0).bool()


def _su2_delta(
    kappa: torch.Tensor,
    generator: torch.Generator | None,
    candidates: int,
    complete: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``δ = 1 - a₀`` with ``a₀ ∝ √(1 - a₀²) e^{κ a₀}``, elementwise for finite ``κ >= 0``.

    ``δ`` (not ``a₀``) keeps full relative precision near ``a₀ = 1``, where large ``κ`` puts
    the draws; in ``δ`` the density is ``∝ √(δ(2 - δ)) e^{-κδ}`` on ``[0, 2]``. Returns
    ``(δ, done)`` of ``kappa``'s shape, as ``_von_mises_centred`` of
    :mod:`lqft_lab.samplers.heatbath` does: with ``complete`` further (compacted) rounds,
    one host check each, until ``done`` is all ``True``; without, ``done`` marks the elements
    that have a draw and the host is never asked.
    """
    flat = kappa.reshape(-1)
    k = flat.clamp(min=math.sqrt(torch.finfo(flat.dtype).tiny))  # e^{-κδ} rounds to 1 below
    one_minus_e = -torch.expm1(-2 * k)  # 1 - e^{-2κ}, > 0
    out, done = heatbath._rejection_rounds(
        _su2_delta_round, (k, one_minus_e), candidates, complete, generator, "SU(2) heatbath"
    )
    return out.view(kappa.shape), done.view(kappa.shape)


def _su2_heatbath_pair(
    kappa: torch.Tensor,
    generator: torch.Generator | None,
    candidates: int,
    complete: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draws ``s = [[α, β], [-β*, α*]] ∝ exp(κ ½ tr s)`` as ``(a0, α, β, done)``, shape of
    ``κ``; ``done`` as for :func:`_su2_delta`, the draw is void where it is ``False``."""
    delta, done = _su2_delta(kappa, generator, candidates, complete)
    a0 = 1 - delta
    r = torch.sqrt(delta * (2 - delta))  # |a| = √(1 - a₀²), without cancellation near a₀ = 1
    u = torch.rand((2, *kappa.shape), generator=generator, device=kappa.device, dtype=kappa.dtype)
    cos_t = 1 - 2 * u[0]  # uniform direction on S²: cos θ uniform in (-1, 1]
    sin_t = 2 * torch.sqrt(u[0] * (1 - u[0]))  # √(1 - cos²θ)
    phi = 2 * math.pi * u[1]
    a1, a2, a3 = r * sin_t * torch.cos(phi), r * sin_t * torch.sin(phi), r * cos_t
    # s = a₀ + i a·σ = [[a₀ + i a₃, a₂ + i a₁], [-a₂ + i a₁, a₀ - i a₃]]
    return a0, torch.complex(a0, a3), torch.complex(a2, a1), done


def sample_su2_heatbath(
    kappa: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SU(2) heatbath draws: ``s ∝ exp(κ ½ tr s)`` under Haar measure, elementwise in ``κ``.

    With ``s = a₀ + i a·σ`` (``a₀² + |a|² = 1``), Haar measure is ``∝ √(1 - a₀²) da₀ dΩ(â)``,
    so ``a₀`` has density ``∝ √(1 - a₀²) exp(κ a₀)`` on ``[-1, 1]`` and ``â`` is uniform on the
    sphere. ``a₀`` is drawn by rejection, batched like :func:`sample_von_mises`: Creutz's
    proposal ``∝ e^{κ a₀}`` for ``κ < 1.75`` and Kennedy–Pendleton's ``1 - a₀ ~ Γ(3/2, 1/κ)``
    above, so every candidate is accepted with probability >= 0.7 at any ``κ``. Each round
    offers ``C`` i.i.d. candidates per element still without a draw and keeps the first
    accepted one; the first covers every element with ``C = 16`` on a GPU, which then rarely
    needs a second: besides the input checks, one host synchronisation per call (the check
    for elements left), plus one per further round. (On a CPU ``C`` is 4 or 2, and 16 after
    the first round.)

    Args:
        kappa: ``κ >= 0``, finite, any shape; float32 or float64.
        generator: random source on ``kappa``'s device.

    Returns:
        ``(a0, s)``: ``a0`` of ``kappa``'s shape and dtype, and the SU(2) matrices ``s``
        ``(*kappa.shape, 2, 2)`` (complex64 / complex128) with ``½ tr s = a0``.

    Raises:
        TypeError: if ``kappa`` is not a floating tensor or ``generator`` not a generator.
        ValueError: for negative or non-finite ``κ``, half precision, a generator on another
            device.

    References:
        M. Creutz, Phys. Rev. D 21 (1980) 2308; A. D. Kennedy, B. J. Pendleton, Phys. Lett.
        B 156 (1985) 393.
    """
    _check_kappa(kappa, generator)
    candidates, _ = _draw_plan(kappa.device, kappa.numel())
    a0, alpha, beta, _ = _su2_heatbath_pair(kappa, generator, candidates)
    s = torch.stack(
        [torch.stack([alpha, beta], dim=-1), torch.stack([-beta.conj(), alpha.conj()], dim=-1)],
        dim=-2,
    )  # (..., 2, 2)
    return a0, s


def _quaternion_part(W: torch.Tensor, i: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, d)`` of the SU(2)-proportional part of ``W``'s ``(i, j)`` block (module doc)."""
    c = 0.5 * (W[..., i, i] + W[..., j, j].conj())
    d = 0.5 * (W[..., i, j] - W[..., j, i].conj())
    return c, d


def _normalise(c: torch.Tensor, d: torch.Tensor):
    """``k = √(|c|² + |d|²)`` and ``V = (c, d)/k``; ``V = 1`` where ``k`` is 0 (``κ = 0``)."""
    k = torch.sqrt(c.real**2 + c.imag**2 + d.real**2 + d.imag**2)
    zero = k < torch.finfo(k.dtype).tiny
    k_safe = torch.where(zero, torch.ones_like(k), k)
    c_hat = torch.where(zero, torch.ones_like(c), c / k_safe)
    d_hat = torch.where(zero, torch.zeros_like(d), d / k_safe)
    return k, c_hat, d_hat


def _rotate_rows(M: torch.Tensor, i: int, j: int, alpha, beta) -> torch.Tensor:
    """``M ← R M`` for ``R = [[α, β], [-β*, α*]]`` in rows ``(i, j)``; ``α, β`` are ``(...)``."""
    a, b = alpha.unsqueeze(-1), beta.unsqueeze(-1)  # (..., 1): broadcast over columns
    Mi, Mj = M[..., i, :], M[..., j, :]
    M = M.clone()
    M[..., i, :] = a * Mi + b * Mj
    M[..., j, :] = -b.conj() * Mi + a.conj() * Mj
    return M


class SUNHeatbath:
    """Cabibbo–Marinari heatbath plus overrelaxation for the 2D SU(N) Wilson action.

    One :meth:`step` is one heatbath sweep (:meth:`heatbath_sweep`) followed by
    ``n_overrelax`` overrelaxation sweeps (:meth:`overrelax_sweep`); each sweep updates the
    four :func:`~lqft_lab.samplers.link_groups` in turn and, within each, the ``N(N-1)/2``
    SU(2) subgroups ``(i, j)``, ``i < j``.

    Args:
        action: a :class:`~lqft_lab.actions.SUNWilsonAction`.
        n_overrelax: overrelaxation sweeps per step, an integer ``>= 0``.

    Attributes:
        subgroups: the colour pairs ``(i, j)`` in update order, ``((0, 1),)`` for SU(2) and
            ``((0, 1), (0, 2), (1, 2))`` for SU(3).

    Example:
        >>> sampler = SUNHeatbath(SUNWilsonAction(beta=4.0, N=3), n_overrelax=1)
        >>> U = torch.eye(3, dtype=torch.complex128).expand(16, 2, 8, 8, 3, 3)
        >>> state = sampler.init(U)
        >>> state, info = sampler.step(state, torch.Generator().manual_seed(0))

    Raises:
        TypeError: for an action other than :class:`~lqft_lab.actions.SUNWilsonAction`, a
            non-integer ``n_overrelax``.
        ValueError: for ``n_overrelax < 0``; at :meth:`init` (and in the public sweeps) for
            links that are not complex ``(B, 2, L0, L1, N, N)`` of the action's ``N`` in SU(N)
            (NaN and ``inf`` included), half precision, or odd extents.

    References:
        N. Cabibbo, E. Marinari, Phys. Lett. B 119 (1982) 387; M. Creutz, Phys. Rev. D 21
        (1980) 2308; A. D. Kennedy, B. J. Pendleton, Phys. Lett. B 156 (1985) 393;
        F. R. Brown, T. J. Woch, Phys. Rev. Lett. 58 (1987) 2394.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = SUNHeatbathState

    def __init__(self, action: SUNWilsonAction, n_overrelax: int = 1):
        if not isinstance(action, SUNWilsonAction):
            raise TypeError(
                f"SUNHeatbath samples the 2D SU(N) Wilson action (SUNWilsonAction), "
                f"got {type(action).__name__}"
            )
        self.action = action
        self.n_overrelax = checks.integer("n_overrelax", n_overrelax, low=0)
        self.subgroups = tuple(combinations(range(action.N), 2))  # (i, j), i < j

    def __repr__(self) -> str:
        return f"SUNHeatbath({self.action!r}, n_overrelax={self.n_overrelax})"

    def init(
        self, U: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> SUNHeatbathState:
        """Start every chain at the given links ``(B, 2, L0, L1, N, N)`` (``generator`` unused).

        The links fix the batch and the lattice, so they are required: the identity for a
        cold start, :func:`lqft_lab.groups.sun.haar` for a hot one. They must be in SU(N) to
        ``√ulp``.
        """
        if U is None:
            raise ValueError(
                "SUNHeatbath.init needs starting links of shape (B, 2, L0, L1, N, N), e.g. "
                "haar((B, 2, L, L), N) for a hot start; it cannot draw a first configuration"
            )
        self._check_links(U)
        checks.random_generator("generator", generator, U.device)
        with torch.no_grad():
            U = U.detach()
            return SUNHeatbathState(x=U, S=self.action(U))

    def _check_links(self, U: torch.Tensor) -> None:
        checks.tensor("U", U, complex_only=True, finite=False)  # NaN: check_special_unitary
        N = check_sun_links(U)
        if N != self.action.N:
            raise ValueError(f"the action is for SU({self.action.N}) but the links are {N}x{N}")
        if U.shape[0] == 0:
            raise ValueError(f"U has an empty batch, shape {tuple(U.shape)}")
        L0, L1 = U.shape[2:4]
        if L0 % 2 or L1 % 2:
            raise ValueError(
                f"the SU(N) heatbath needs even extents L0, L1 (links of one direction and "
                f"parity must not share a plaquette), got U with extents {(L0, L1)}"
            )
        check_special_unitary(U)

    def _start(self, x: torch.Tensor) -> SUNHeatbathState:
        """:meth:`init` without its checks, for fields that come from another chain."""
        with torch.no_grad():
            return SUNHeatbathState(x=x.detach(), S=self.action(x.detach()))

    def _sweep(self, U: torch.Tensor, rotation, reverse: bool = False) -> torch.Tensor:
        _even_extents(U.shape[2:4])
        U = U.detach().clone()  # updated in place below; the input stays untouched
        subgroups = self.subgroups[::-1] if reverse else self.subgroups
        for g in (3, 2, 1, 0) if reverse else (0, 1, 2, 3):
            mu, sites = _group_sites(g)
            links = U[:, mu]  # (B, L0, L1, N, N), a view: writing to it updates U
            A = sun_staples(U, mu)[sites]  # (B, l0, l1, N, N), fixed during this group update
            V = links[sites]  # (B, l0, l1, N, N): the group's links
            W = V @ A  # the local action is -(β/N) Re tr W
            for s, (i, j) in enumerate(subgroups):
                alpha, beta = rotation(*_quaternion_part(W, i, j))  # (B, l0, l1) each
                V = _rotate_rows(V, i, j, alpha, beta)  # U ← R U
                if s < len(subgroups) - 1:
                    W = _rotate_rows(W, i, j, alpha, beta)  # W = (R U) A = R W
            links[sites] = V
        return U

    def heatbath_sweep(
        self, U: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw every link's SU(2) subgroup factors from their exact conditionals.

        On a CPU every factor gets a draw; elsewhere the sweep never synchronises with the
        host, and a factor whose 16 candidates were all rejected (probability <= 4e-9) stays
        ``R = 1``, which leaves ``exp(-S)`` exactly invariant as well (module doc).

        Raises:
            TypeError, ValueError: for links :meth:`init` refuses, a bad ``generator``.
        """
        self._check_links(U)
        checks.random_generator("generator", generator, U.device)
        return self._heatbath_sweep(U, generator)

    def _heatbath_sweep(self, U: torch.Tensor, generator: torch.Generator | None):
        two_beta_over_n = 2 * self.action.beta / self.action.N

        def rotation(c, d):
            k, c_hat, d_hat = _normalise(c, d)
            candidates, complete = _draw_plan(k.device, k.numel())
            _, s_alpha, s_beta, done = _su2_heatbath_pair(
                two_beta_over_n * k, generator, candidates, complete
            )
            # R = s V†, V† = [[c*, -d], [d*, c]]: the block's new quaternion part is k s
            alpha = s_alpha * c_hat.conj() + s_beta * d_hat.conj()
            beta = s_beta * c_hat - s_alpha * d_hat
            return torch.where(done, alpha, 1), torch.where(done, beta, 0)  # R = 1 if not done

        with torch.no_grad():
            return self._sweep(U, rotation)

    def overrelax_sweep(self, U: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Reflect every SU(2) subgroup factor, ``R = (V†)²``; ``S`` is exactly unchanged.

        Each subgroup reflection is an involution; a whole sweep is undone by the sweep with
        ``reverse=True`` (groups and subgroups in the opposite order).

        Raises:
            TypeError, ValueError: for links :meth:`init` refuses, a non-bool ``reverse``.
        """
        self._check_links(U)
        if not isinstance(reverse, bool):
            raise checks.ArgumentKindError(f"reverse must be a bool, got {reverse!r:.80}")
        return self._overrelax_sweep(U, reverse)

    def _overrelax_sweep(self, U: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        def rotation(c, d):
            _, c_hat, d_hat = _normalise(c, d)
            # (V†)² with V† = [[c*, -d], [d*, c]]
            return c_hat.conj() ** 2 - (d_hat * d_hat.conj()).real, -2 * c_hat.real * d_hat

        with torch.no_grad():
            return self._sweep(U, rotation, reverse=reverse)

    def step(
        self, state: SUNHeatbathState, generator: torch.Generator | None = None
    ) -> tuple[SUNHeatbathState, SUNHeatbathInfo]:
        """One heatbath sweep, then ``n_overrelax`` overrelaxation sweeps."""
        U = self._heatbath_sweep(state.x, generator)
        for _ in range(self.n_overrelax):
            U = self._overrelax_sweep(U)
        with torch.no_grad():
            if U.dtype == torch.complex64:
                U = project_sun(U)  # the drift of single-precision products (module doc)
            new = SUNHeatbathState(x=U, S=self.action(U))
        accepted = torch.ones(U.shape[0], dtype=torch.bool, device=U.device)
        return new, SUNHeatbathInfo(accepted=accepted)
