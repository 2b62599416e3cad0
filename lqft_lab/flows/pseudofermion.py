"""Gauge-covariant flows for the pseudofermion: a model ``q(φ | θ)`` of the Nf = 2
pseudofermion given U(1) links (Albergo et al., arXiv:2106.05934; Abbott et al.,
arXiv:2207.08945).

The target's conditional is ``φ | θ ~ CN(0, D†D)``, drawn exactly as ``φ = D†χ``; its
density needs ``det D†D``, the cost pseudofermions exist to avoid. A flow ``χ → φ`` built
from layers whose Jacobian determinant is cheap gives a density ``q(φ | θ)`` without it,
and joint samples ``(θ, φ)`` whose weights ``p/q`` need one CG solve each.

Every layer commutes with gauge transformations: ``θ_mu(x) → α(x) + θ_mu(x) - α(x + mû)``
with ``φ(x) → e^{iα(x)} φ(x)`` maps the layer's output the same way. Three kinds:

- :class:`HopLayer` adds to the sites of one parity the parallel-transported fields of
  their four neighbours (the other parity), each through a 2×2 spin matrix whose entries are
  gauge-invariant functions of the links: ``φ(x) += Σ_{±mu} C_{±mu}(x) W_{±mu}(x) φ(x ± mû)``
  with ``W_{+mu}(x) = U_mu(x)`` and ``W_{-mu}(x) = U_mu(x - mû)*``. In the even/odd block
  form it is unit triangular: ``log|det| = 0``, and its inverse subtracts the same sum.
- :class:`SpinScaleLayer` multiplies ``φ(x)`` by a lower-triangular 2×2 matrix with
  diagonal ``e^{s_a + i a_a}``, again gauge invariant; ``log|det| = 2 Σ_x (s_1 + s_2)``
  (a complex-linear map's real Jacobian is the square of its modulus).

- :class:`CovariantCouplingLayer` scales the sites of one parity (gauge-invariant spin
  phases and moduli) and shifts them by transported neighbours, with coefficients from the
  other parity's field through gauge-invariant bilinears ``n_d(x)† n_e(x)``.

The first two are complex-linear in ``φ`` given ``θ``, so a stack of them makes
``q(φ | θ)`` the Gaussian ``CN(0, G G†)`` with ``G`` their product; the couplings add
non-Gaussian corrections. The gauge-invariant inputs are
``cos θ_P`` and ``sin θ_P`` of the plaquette with corner ``x`` and the site's parity,
through a periodic CNN (:class:`~lqft_lab.flows.nets.ConvNet`) whose output starts at zero,
beside learnable constant matrices. The two hop layers of the first block can start at the
hops of ``D†`` (``init_kappa``): ``D† = 1 - κ Σ_mu [(1 + γ_mu) W_{+mu} + (1 - γ_mu) W_{-mu}]``
(hopping form, γ5-hermiticity), so the flow starts at ``D†χ`` up to the ``O(κ²)``
two-hop terms of the even/odd Schur complement.

Conventions: fields ``(B, L0, L1, 2)`` complex128 with float64 links ``(B, 2, L0, L1)``
(complex64 with float32); ``L0``, ``L1`` even (the parity blocks); antiperiodic in time as
:class:`~lqft_lab.actions.wilson_dirac.WilsonDirac` by default. Base density
``log r(χ) = -|χ|² - N log π`` with ``N = 2 L0 L1`` complex components.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .. import checks
from ..actions.u1 import _plaquette_angles, check_links
from ..actions.wilson_dirac import GAMMA, WilsonDirac, check_fermion
from . import _args
from .nets import ConvNet

__all__ = [
    "HopLayer",
    "SpinScaleLayer",
    "CovariantCouplingLayer",
    "PseudofermionFlow",
    "PseudofermionFlowConfig",
    "dirac_dagger_hops",
]

_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def _features(theta: torch.Tensor) -> torch.Tensor:
    """Gauge-invariant inputs ``(B, 3, L0, L1)``: ``cos θ_P``, ``sin θ_P`` and the parity."""
    P = _plaquette_angles(theta)
    L0, L1 = theta.shape[2:]
    parity = WilsonDirac.parity_mask(L0, L1, device=theta.device)[..., 0].to(theta.dtype)
    return torch.stack([P.cos(), P.sin(), parity.expand_as(P)], dim=1)


def _neighbours(U: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """The four parallel-transported neighbours ``(B, 4, L0, L1, 2)`` in the order
    ``+0, -0, +1, -1``: ``U_mu(x) φ(x + mû)`` and ``U_mu(x - mû)* φ(x - mû)``."""
    out = []
    for mu in (0, 1):
        Umu = U[:, mu, :, :, None]
        out.append(Umu * torch.roll(phi, -1, mu + 1))
        out.append(torch.roll(Umu.conj() * phi, 1, mu + 1))
    return torch.stack(out, dim=1)


class _Conditioned(nn.Module):
    """A CNN of the gauge-invariant features, its last convolution zero so that a new layer
    is its constant part alone."""

    def __init__(
        self, out_channels: int, hidden: Sequence[int], kernel_size: int, in_channels: int = 3
    ):
        super().__init__()
        self.net = ConvNet(in_channels, out_channels, hidden, kernel_size, final_tanh=False)
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def conditioner(self, theta: torch.Tensor) -> torch.Tensor:
        return self.net(_features(theta))  # (B, C, L0, L1)


class HopLayer(_Conditioned):
    """``φ(x) += Σ_{±mu} C_{±mu}(x) W_{±mu}(x) φ(x ± mû)`` on the sites of one parity.

    Args:
        parity: ``0`` updates the even sites (``x0 + x1`` even) from the odd ones, ``1`` the
            odd sites from the even ones.
        hidden, kernel_size: the conditioner CNN's widths and kernel.
        coefficients: starting constant matrices ``(4, 2, 2)`` complex for the directions
            ``+0, -0, +1, -1`` (``None``: zeros, the identity layer).
        antiperiodic: the boundary sign of the time links, as in ``WilsonDirac``.

    ``forward(phi, theta) -> (phi', logJ)`` and ``reverse(phi', theta) -> (phi, logJ_inv)``,
    ``logJ = 0``.
    """

    def __init__(
        self,
        parity: int,
        hidden: Sequence[int] = (8, 8),
        kernel_size: int = 3,
        coefficients: torch.Tensor | None = None,
        antiperiodic: bool = True,
    ):
        super().__init__(32, _args.widths("hidden", hidden), kernel_size)
        self.parity = checks.integer("parity", parity, low=0, high=1)
        self.dirac = WilsonDirac(0.0, antiperiodic=checks.boolean("antiperiodic", antiperiodic))
        if coefficients is None:
            coefficients = torch.zeros(4, 2, 2, dtype=torch.complex128)
        else:
            checks.tensor("coefficients", coefficients, allow_complex=True, shape=(4, 2, 2))
        self.constant = nn.Parameter(torch.view_as_real(coefficients.to(torch.complex128)).clone())

    def _matrices(self, theta: torch.Tensor) -> torch.Tensor:
        """``C_d(x)`` as ``(B, L0, L1, 4, 2, 2)`` complex."""
        B, _, L0, L1 = theta.shape
        c = self.conditioner(theta).reshape(B, 4, 2, 2, 2, L0, L1).permute(0, 5, 6, 1, 2, 3, 4)
        c = c + self.constant.to(theta.dtype)
        return torch.view_as_complex(c.contiguous())

    def _shift(self, phi: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        U = self.dirac.links(theta).to(phi.dtype)
        n = _neighbours(U, phi)  # (B, 4, L0, L1, 2)
        C = self._matrices(theta).to(phi.dtype)  # (B, L0, L1, 4, 2, 2)
        out = torch.einsum("bxydst,bdxyt->bxys", C, n)
        even = WilsonDirac.parity_mask(*phi.shape[1:3], device=phi.device)
        mask = even if self.parity == 0 else 1 - even
        return mask.to(phi.real.dtype) * out

    def forward(self, phi, theta):
        return phi + self._shift(phi, theta), phi.real.new_zeros(phi.shape[0])

    def reverse(self, phi, theta):
        return phi - self._shift(phi, theta), phi.real.new_zeros(phi.shape[0])


class SpinScaleLayer(_Conditioned):
    """``φ(x) → A(x) φ(x)``, ``A = [[e^{s_1 + i a_1}, 0], [b, e^{s_2 + i a_2}]]`` per site.

    Args:
        hidden, kernel_size: the conditioner CNN's widths and kernel (six output channels:
            ``s_1, s_2, a_1, a_2, Re b, Im b``), added to six learnable constants.
    """

    def __init__(self, hidden: Sequence[int] = (8, 8), kernel_size: int = 3):
        super().__init__(6, _args.widths("hidden", hidden), kernel_size)
        self.constant = nn.Parameter(torch.zeros(6, dtype=torch.float64))

    def _entries(self, theta: torch.Tensor):
        c = self.conditioner(theta) + self.constant.to(theta.dtype)[None, :, None, None]
        s, a = c[:, 0:2], c[:, 2:4]  # (B, 2, L0, L1)
        diag = torch.polar(s.exp(), a).permute(0, 2, 3, 1)  # (B, L0, L1, 2)
        b = torch.complex(c[:, 4], c[:, 5])  # (B, L0, L1)
        return diag, b, 2 * s.sum(dim=(1, 2, 3))

    def forward(self, phi, theta):
        diag, b, logJ = self._entries(theta)
        diag, b = diag.to(phi.dtype), b.to(phi.dtype)
        up = diag[..., 0] * phi[..., 0]
        down = b * phi[..., 0] + diag[..., 1] * phi[..., 1]
        return torch.stack([up, down], dim=-1), logJ.to(phi.real.dtype)

    def reverse(self, phi, theta):
        diag, b, logJ = self._entries(theta)
        diag, b = diag.to(phi.dtype), b.to(phi.dtype)
        up = phi[..., 0] / diag[..., 0]
        down = (phi[..., 1] - b * up) / diag[..., 1]
        return torch.stack([up, down], dim=-1), -logJ.to(phi.real.dtype)


class CovariantCouplingLayer(_Conditioned):
    """A nonlinear coupling: the sites of one parity are scaled and shifted by functions of
    the other parity's field and of the links.

    ``φ(x) → diag(e^{s_1 + i a_1}, e^{s_2 + i a_2}) φ(x) + Σ_{±mu} C_{±mu}(x) n_{±mu}(x)``
    on the updated sites, where ``n_{±mu}(x)`` are the parallel-transported neighbours
    (of the frozen parity) and ``s, a, C`` come from a CNN of gauge-invariant inputs: the
    plaquette features of :class:`HopLayer` and, at each site, the Gram matrix
    ``g_de = n_d(x)† n_e(x)`` of its four transported neighbours (each ``n_d`` picks up the
    same phase ``e^{iα(x)}``, so the products are invariant), as 16 bounded numbers:
    ``log(1 + g_dd)`` and ``g_de / sqrt((1 + g_dd)(1 + g_ee))`` for ``d < e``. The scales are
    invariant and the shifts covariant, so the layer commutes with gauge transformations;
    the conditioner sees only the frozen sites, so the inverse is explicit and
    ``log|det| = 2 Σ_x (s_1 + s_2)`` over the updated sites. Unlike the other two layers it
    makes ``q(φ | θ)`` non-Gaussian. It starts as the identity (the CNN's last layer is zero).

    Args:
        parity: ``0`` updates the even sites from the odd ones, ``1`` the reverse.
        hidden, kernel_size: the conditioner CNN's widths and kernel.
        antiperiodic: the boundary sign of the time links, as in ``WilsonDirac``.
    """

    def __init__(
        self,
        parity: int,
        hidden: Sequence[int] = (8, 8),
        kernel_size: int = 3,
        antiperiodic: bool = True,
    ):
        super().__init__(36, _args.widths("hidden", hidden), kernel_size, in_channels=19)
        self.parity = checks.integer("parity", parity, low=0, high=1)
        self.dirac = WilsonDirac(0.0, antiperiodic=checks.boolean("antiperiodic", antiperiodic))

    def _active(self, phi: torch.Tensor) -> torch.Tensor:
        """``(L0, L1, 1)`` float: one on the updated sites."""
        even = WilsonDirac.parity_mask(*phi.shape[1:3], device=phi.device).to(phi.real.dtype)
        return even if self.parity == 0 else 1 - even

    def _coefficients(self, phi: torch.Tensor, theta: torch.Tensor):
        """The scales' exponent ``(B, L0, L1, 2)`` complex, the shift ``(B, L0, L1, 2)`` and
        ``log J`` ``(B,)``, all from the frozen sites of ``phi``."""
        active = self._active(phi)
        U = self.dirac.links(theta).to(phi.dtype)
        n = _neighbours(U, (1 - active) * phi)  # (B, 4, L0, L1, 2); zero on frozen sites
        gram = torch.einsum("bdxys,bexys->bdexy", n.conj(), n)  # (B, 4, 4, L0, L1)
        norm = 1 + torch.diagonal(gram, dim1=1, dim2=2).real.permute(0, 3, 1, 2)  # (B, 4, ...)
        iu = torch.triu_indices(4, 4, offset=1, device=phi.device)
        off = gram[:, iu[0], iu[1]] / (norm[:, iu[0]] * norm[:, iu[1]]).sqrt()  # |off| < 1
        B, _, L0, L1 = theta.shape
        invariants = torch.cat([norm.log(), off.real, off.imag], dim=1).to(theta.dtype)
        c = self.net(torch.cat([_features(theta), invariants], dim=1))  # (B, 36, L0, L1)
        mask = active[..., 0]
        s = c[:, 0:2] * mask
        exponent = torch.complex(s, c[:, 2:4] * mask).permute(0, 2, 3, 1).to(phi.dtype)
        C = c[:, 4:].reshape(B, 4, 2, 2, 2, L0, L1).permute(0, 5, 6, 1, 2, 3, 4)
        C = torch.view_as_complex(C.contiguous()).to(phi.dtype)  # (B, L0, L1, 4, 2, 2)
        shift = active * torch.einsum("bxydst,bdxyt->bxys", C, n)
        return exponent, shift, 2 * s.sum(dim=(1, 2, 3)).to(phi.real.dtype)

    def forward(self, phi, theta):
        exponent, shift, logJ = self._coefficients(phi, theta)
        return exponent.exp() * phi + shift, logJ

    def reverse(self, phi, theta):
        exponent, shift, logJ = self._coefficients(phi, theta)
        return (-exponent).exp() * (phi - shift), -logJ


def dirac_dagger_hops(kappa: float) -> torch.Tensor:
    """The hop matrices of ``D†`` for the directions ``+0, -0, +1, -1``: ``-κ(1 + γ_mu)``
    forward and ``-κ(1 - γ_mu)`` backward, ``(4, 2, 2)`` complex128."""
    kappa = checks.real("kappa", kappa, low=0, high=1, high_open=True)
    eye = torch.eye(2, dtype=torch.complex128)
    mats = []
    for mu in (0, 1):
        mats += [-kappa * (eye + GAMMA[mu]), -kappa * (eye - GAMMA[mu])]
    return torch.stack(mats)


@dataclass(frozen=True)
class PseudofermionFlowConfig:
    """The architecture of a :class:`PseudofermionFlow`, as checkpoints record it
    (:mod:`lqft_lab.io`). ``init_kappa`` is an initialisation, not part of it."""

    L0: int
    L1: int
    n_blocks: int = 2
    hidden: tuple[int, ...] = field(default=(8, 8))
    kernel_size: int = 3
    couplings: int = 0
    antiperiodic: bool = True

    def __post_init__(self):
        values = {
            "L0": checks.integer("L0", self.L0, low=2, high=_args.MAX_L),
            "L1": checks.integer("L1", self.L1, low=2, high=_args.MAX_L),
            "n_blocks": checks.integer("n_blocks", self.n_blocks, low=1),
            "hidden": _args.widths("hidden", self.hidden),
            "kernel_size": _args.kernel_size(self.kernel_size, min(self.L0, self.L1)),
            "couplings": checks.integer("couplings", self.couplings, low=0),
            "antiperiodic": checks.boolean("antiperiodic", self.antiperiodic),
        }
        if values["L0"] % 2 or values["L1"] % 2:
            raise ValueError(
                f"lattice_shape must be two even extents (L0, L1), got ({self.L0}, {self.L1})"
            )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


class PseudofermionFlow(nn.Module):
    """``q(φ | θ)``: ``χ ~ CN(0, 1)`` through blocks of ``[SpinScale, Hop(odd ← even),
    Hop(even ← odd)]``, then optional nonlinear pairs ``[Coupling(odd ← even),
    Coupling(even ← odd)]``.

    Args:
        lattice_shape: ``(L0, L1)``, both even.
        n_blocks: blocks of three layers, ``>= 1``.
        hidden, kernel_size: the conditioners' CNNs.
        init_kappa: start the first block's hops at those of ``D†`` at this ``κ``
            (``None``: every layer starts as the identity, ``q = CN(0, 1)``).
        couplings: pairs of :class:`CovariantCouplingLayer` after the linear blocks
            (``0``: ``q(φ | θ)`` is Gaussian). They start as the identity.
        antiperiodic: boundary sign of the time links in the transports.
        dtype: float64 (fields complex128, the default) or float32.

    The architecture is ``flow.config`` (:class:`PseudofermionFlowConfig`), what a checkpoint
    records; :meth:`from_config` rebuilds the flow (with every layer at the identity).

    Example:
        >>> flow = PseudofermionFlow((4, 4), n_blocks=2, init_kappa=0.2)
        >>> theta = torch.zeros(3, 2, 4, 4, dtype=torch.float64)
        >>> phi, logq = flow.sample(theta, torch.Generator().manual_seed(0))
        >>> torch.allclose(flow.log_prob(theta, phi), logq)
        True
    """

    def __init__(
        self,
        lattice_shape: Sequence[int],
        n_blocks: int = 2,
        hidden: Sequence[int] = (8, 8),
        kernel_size: int = 3,
        init_kappa: float | None = None,
        couplings: int = 0,
        antiperiodic: bool = True,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        shape = tuple(_args.widths("lattice_shape", lattice_shape))
        if len(shape) != 2 or any(n % 2 for n in shape):
            raise ValueError(f"lattice_shape must be two even extents (L0, L1), got {shape}")
        self.config = PseudofermionFlowConfig(
            *shape, n_blocks, hidden, kernel_size, couplings, antiperiodic
        )
        self.lattice_shape = shape
        n_blocks, couplings = self.config.n_blocks, self.config.couplings
        if dtype not in _COMPLEX:
            raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        if init_kappa is not None:
            init_kappa = checks.real("init_kappa", init_kappa, low=0, high=1, high_open=True)
        hops = None if init_kappa is None else dirac_dagger_hops(init_kappa)
        layers = []
        for k in range(n_blocks):
            start = hops if k == 0 else None
            layers += [
                SpinScaleLayer(hidden, kernel_size),
                HopLayer(1, hidden, kernel_size, start, antiperiodic),
                HopLayer(0, hidden, kernel_size, start, antiperiodic),
            ]
        for _ in range(couplings):
            layers += [
                CovariantCouplingLayer(1, hidden, kernel_size, antiperiodic),
                CovariantCouplingLayer(0, hidden, kernel_size, antiperiodic),
            ]
        self.layers = nn.ModuleList(layers)
        self.to(dtype)

    @classmethod
    def from_config(cls, config: PseudofermionFlowConfig) -> PseudofermionFlow:
        """The flow of ``config``, float64, every layer the identity (for loading weights)."""
        if not isinstance(config, PseudofermionFlowConfig):
            raise checks.ArgumentKindError(
                f"config must be a PseudofermionFlowConfig, got {type(config).__name__}"
            )
        return cls(
            (config.L0, config.L1),
            n_blocks=config.n_blocks,
            hidden=config.hidden,
            kernel_size=config.kernel_size,
            couplings=config.couplings,
            antiperiodic=config.antiperiodic,
        )

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _check(self, theta: torch.Tensor) -> None:
        check_links(theta)
        if tuple(theta.shape[2:]) != self.lattice_shape or theta.dtype != self.dtype:
            raise ValueError(
                f"theta must be links (B, 2, {self.lattice_shape[0]}, {self.lattice_shape[1]}) "
                f"of {self.dtype}, got {tuple(theta.shape)} {theta.dtype}"
            )
        device = next(self.parameters()).device
        if theta.device.type != device.type:
            raise ValueError(f"theta is on {theta.device}, the flow on {device}")

    def forward(self, chi: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``φ = F_θ(χ)`` and ``log|det ∂φ/∂χ|`` (of the real map), ``(B,)``."""
        self._check(theta)
        check_fermion(chi, theta, "chi")
        logJ = chi.real.new_zeros(chi.shape[0])
        for layer in self.layers:
            chi, dlog = layer(chi, theta)
            logJ = logJ + dlog
        return chi, logJ

    def reverse(self, phi: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``χ = F_θ^{-1}(φ)`` and ``log|det ∂χ/∂φ|``, ``(B,)``."""
        self._check(theta)
        check_fermion(phi, theta, "phi")
        logJ = phi.real.new_zeros(phi.shape[0])
        for layer in reversed(self.layers):
            phi, dlog = layer.reverse(phi, theta)
            logJ = logJ + dlog
        return phi, logJ

    @staticmethod
    def base_log_prob(chi: torch.Tensor) -> torch.Tensor:
        """``log r(χ) = -|χ|² - N log π`` of ``CN(0, 1)``, ``(B,)``."""
        n = chi[0].numel()
        return -(chi.conj() * chi).real.flatten(1).sum(dim=1) - n * math.log(math.pi)

    def sample(
        self, theta: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``φ ~ q(· | θ)`` for each configuration, with ``log q(φ | θ)``, ``(B,)``."""
        self._check(theta)
        B = theta.shape[0]
        ctype = _COMPLEX[theta.dtype]
        chi = torch.randn(
            B, *self.lattice_shape, 2, generator=generator, dtype=ctype, device=theta.device
        )
        phi, logJ = self.forward(chi, theta)
        return phi, self.base_log_prob(chi) - logJ

    def log_prob(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``log q(φ | θ)``, ``(B,)``."""
        chi, logJ_inv = self.reverse(phi, theta)
        return self.base_log_prob(chi) + logJ_inv
