"""The linearised flow between neighbouring couplings: gradients of small Wilson loops.

A map ``U → U + ε v(U)`` carries ``p_β ∝ e^{βE}`` to ``p_{β+ε}`` to first order when ``v``
solves ``∇·(v p_β) = -(E - ⟨E⟩) p_β``; any other ``v`` still gives an exact estimator of
``d⟨O⟩/dβ`` through the Stein identity (:func:`lqft_lab.analysis.stein_derivative`), only a
noisier one. This module supplies a cheap family of ``v`` with everything that estimator
needs in closed form:

    v = Σ_k c_k ∇S̃_k,     S̃_k = Σ_x Σ_{loops W of shape k at x} cos(m_k θ_W(x)),

over rectangular loops (``1×1``, ``1×2`` with ``2×1``, ``2×2``, …; both orientations of a
rectangle share one coefficient, so ``v`` keeps the lattice's rotation symmetry) and
harmonics ``m_k``. Every ``S̃_k`` is gauge invariant, so ``v`` is gauge covariant. Each link
of a loop that does not wrap the torus enters ``θ_W`` once, with ``∂θ_W/∂θ_l = ±1``, so

    ∇·∇S̃_k = Σ_l ∂²S̃_k/∂θ_l² = -m_k² · perimeter_k · S̃_k     (perimeter 2(R + T)),

and the divergence of ``v`` costs nothing. The coefficients ``c_k`` are learned: the
estimator is linear in them and its variance quadratic, so minimising the variance on
training draws is a least-squares problem (:meth:`LoopField.fit`), solved exactly; the
estimate is then made on fresh draws.

References:
    M. Lüscher, arXiv:0907.5491 (trivializing maps as gradient flows of Wilson loops);
    S. Bacchio et al., arXiv:2212.08469 (learned gradient-flow coefficients);
    R. Abbott et al., arXiv:2401.10874 (correlated ensembles, Feynman–Hellmann).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ... import checks
from ...actions.u1 import U1WilsonAction, check_links
from ...observables.gauge import wilson_loop_angles

__all__ = ["LoopField", "SteinFeatures"]


@dataclass(frozen=True)
class SteinFeatures:
    """What the Stein estimator needs of each configuration, per loop term ``k``.

    Attributes:
        energy: ``E = Σ_P cos θ_P``, ``(B,)``.
        grad_energy: ``∇E·∇S̃_k``, ``(B, K)``.
        laplacian: ``∇·∇S̃_k``, ``(B, K)`` (closed form).
        beta: the coupling the draws were made at.
        volume: the number of plaquettes ``V``.
    """

    energy: torch.Tensor
    grad_energy: torch.Tensor
    laplacian: torch.Tensor
    beta: float
    volume: int

    def controls(self) -> torch.Tensor:
        """``Y_k = β ∇E·∇S̃_k + ∇·∇S̃_k``, ``(B, K)``: ``R = E + Y·c``."""
        return self.beta * self.grad_energy + self.laplacian

    def residual(self, coefficients) -> torch.Tensor:
        """``R = E + β ∇E·v + ∇·v`` for ``v = Σ_k c_k ∇S̃_k``, ``(B,)``."""
        return self.energy + self.controls() @ _coefficients(coefficients, self.grad_energy)

    def plaquette_gradient(self, coefficients) -> torch.Tensor:
        """``∇O·v`` for ``O = ⟨cos θ_P⟩ = E/V``, ``(B,)``; ``V`` is read from the draws."""
        c = _coefficients(coefficients, self.grad_energy)
        return self.grad_energy @ c / self.volume


def _check_coefficients(coefficients, n_terms: int) -> np.ndarray:
    c = np.asarray(coefficients, dtype=float)
    if c.shape != (n_terms,):
        raise ValueError(f"coefficients must have shape ({n_terms},), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("coefficients must be finite")
    return c


def _coefficients(coefficients, like: torch.Tensor) -> torch.Tensor:
    c = _check_coefficients(coefficients, like.shape[-1])
    return torch.as_tensor(c, dtype=like.dtype, device=like.device)


class LoopField:
    """``v = Σ_k c_k ∇S̃_k`` over rectangular Wilson loops and harmonics (module docstring).

    Args:
        loops: rectangle shapes ``(R, T)``; ``(R, T)`` and ``(T, R)`` are one term.
            Default: ``1×1``, ``1×2``, ``2×2``.
        harmonics: the ``m`` of ``cos(m θ_W)``; default ``(1, 2)``.

    Raises:
        TypeError, ValueError: for shapes or harmonics that are not positive integers, or
            repeated terms.

    Example:
        >>> field = LoopField()
        >>> field.n_terms
        6
    """

    def __init__(
        self,
        loops: Sequence[tuple[int, int]] = ((1, 1), (1, 2), (2, 2)),
        harmonics: Sequence[int] = (1, 2),
    ):
        shapes = []
        for shape in loops:
            if not isinstance(shape, Sequence) or len(shape) != 2:
                raise ValueError(f"every loop must be a pair (R, T), got {shape!r}")
            R, T = (checks.integer("loop extent", v, low=1) for v in shape)
            shapes.append((min(R, T), max(R, T)))
        harmonics = [checks.integer("harmonic", m, low=1) for m in harmonics]
        if not shapes or not harmonics:
            raise ValueError("LoopField needs at least one loop and one harmonic")
        self.terms = [(R, T, m) for R, T in shapes for m in harmonics]
        if len(set(self.terms)) != len(self.terms):
            raise ValueError(f"repeated loop terms in {self.terms}")
        self.max_extent = max(T for _, T, _ in self.terms)

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    def check_coefficients(self, coefficients) -> np.ndarray:
        """``coefficients`` as a float64 array ``(K,)``; ``ValueError`` for another shape or
        a value that is not finite."""
        return _check_coefficients(coefficients, self.n_terms)

    def names(self) -> list[str]:
        """``"cos(m θ) R×T"`` per term, for tables."""
        return [f"cos({m}θ) {R}×{T}" if m > 1 else f"cos θ {R}×{T}" for R, T, m in self.terms]

    def _check(self, theta: torch.Tensor) -> None:
        check_links(theta)
        if min(theta.shape[2:]) <= self.max_extent:
            raise ValueError(
                f"loops up to {self.max_extent} links long need a lattice of at least "
                f"{self.max_extent + 1} (a loop that wraps the torus has no closed-form "
                f"divergence), got {tuple(theta.shape[2:])}"
            )

    def potentials(self, theta: torch.Tensor) -> torch.Tensor:
        """``S̃_k(θ)``, ``(B, K)``."""
        self._check(theta)
        out = []
        for R, T, m in self.terms:
            shapes = {(R, T), (T, R)}
            out.append(
                sum(
                    torch.cos(m * wilson_loop_angles(theta, r, t)).flatten(1).sum(1)
                    for r, t in shapes
                )
            )
        return torch.stack(out, dim=1)

    def perimeters(self) -> torch.Tensor:
        """``m_k² · 2(R + T)``: ``∇·∇S̃_k = -perimeters_k · S̃_k``."""
        return torch.tensor([m * m * 2.0 * (R + T) for R, T, m in self.terms])

    def gradients(self, theta: torch.Tensor) -> torch.Tensor:
        """``∇S̃_k``, ``(B, K, 2, L0, L1)`` (autograd; for tests and pictures). Differentiable
        in turn when ``theta`` requires grad."""
        self._check(theta)
        track = theta.requires_grad
        x = theta if track else theta.detach().requires_grad_(True)
        with torch.enable_grad():
            s = self.potentials(x)
            grads = [
                torch.autograd.grad(s[:, k].sum(), x, retain_graph=True, create_graph=track)[0]
                for k in range(self.n_terms)
            ]
        return torch.stack(grads, dim=1)

    def __call__(self, theta: torch.Tensor, coefficients) -> torch.Tensor:
        """``v(θ) = Σ_k c_k ∇S̃_k(θ)``, ``(B, 2, L0, L1)``."""
        grads = self.gradients(theta)
        c = _coefficients(coefficients, grads.new_zeros(self.n_terms))
        return torch.einsum("bk...,k->b...", grads, c)

    def divergence(self, theta: torch.Tensor, coefficients) -> torch.Tensor:
        """``∇·v`` in closed form, ``(B,)``."""
        s = self.potentials(theta)
        c = _coefficients(coefficients, s)
        return -(s * self.perimeters().to(s)) @ c

    def features(self, theta: torch.Tensor, beta: float, chunk: int = 512) -> SteinFeatures:
        """The per-configuration numbers of the Stein estimator (:class:`SteinFeatures`).

        Args:
            theta: draws at ``beta``, ``(B, 2, L0, L1)``.
            beta: their coupling.
            chunk: configurations per pass (memory).
        """
        self._check(theta)
        beta = checks.real("beta", beta, low=0)
        chunk = checks.integer("chunk", chunk, low=1)
        energy, grad_energy, laplacian = [], [], []
        perimeters = self.perimeters().to(theta)
        unit = U1WilsonAction(1.0)  # S = -E, so its force -∂S/∂θ is ∇E (analytic)
        for part in theta.detach().split(chunk):
            grad_e = unit.force(part)
            # ∇S̃_k·∇E for every k in two backward passes, whatever K: the vector-Jacobian
            # product Σ_k w_k ∇S̃_k is linear in w, so its derivative in w along ∇E is the
            # Jacobian-vector product (the double-backward trick)
            x = part.clone().requires_grad_(True)
            with torch.enable_grad():
                s = self.potentials(x)
                w = torch.zeros_like(s, requires_grad=True)
                (vjp,) = torch.autograd.grad(s, x, grad_outputs=w, create_graph=True)
                (dots,) = torch.autograd.grad((vjp * grad_e).sum(), w)
            s = s.detach()
            energy.append(-unit(part))
            grad_energy.append(dots)
            laplacian.append(-s * perimeters)
        return SteinFeatures(
            torch.cat(energy),
            torch.cat(grad_energy),
            torch.cat(laplacian),
            beta,
            theta.shape[2] * theta.shape[3],
        )

    def fit(self, observable, features: SteinFeatures, gradient=None, ridge: float = 1e-10):
        """Coefficients that minimise the Stein estimator's variance on these draws.

        The estimator's per-configuration linearisation is ``a + b·c`` with
        ``a = (O - Ō)(E - Ē)`` and ``b_k = X_k + (O - Ō)(Y_k - Ȳ_k)``, ``Y_k = β∇E·∇S̃_k +
        ∇·∇S̃_k`` and ``X_k = ∇O·∇S̃_k``; its variance is least at
        ``c = -Cov(b)⁻¹ Cov(b, a)`` (a ridge of ``ridge · tr Cov(b)/K`` keeps it stable).
        Fit on training draws, estimate on fresh ones: on the same draws the variance is
        biased low.

        Args:
            observable: ``O`` per configuration, ``(B,)``.
            features: :meth:`features` of the same draws.
            gradient: ``X``, ``(B, K)``: ``∇O·∇S̃_k`` per term; ``None`` for an ``O``
                that is locally constant (the topological charge), or use
                ``"plaquette"`` for ``O = E/V``.
            ridge: relative Tikhonov regularisation ``>= 0``.

        Returns:
            The coefficients, a float64 numpy array ``(K,)``; zeros (``v = 0``, the plain
            covariance) when ``b`` does not fluctuate on these draws.
        """
        o = torch.as_tensor(observable).detach().to(torch.float64).cpu()
        y = features.controls().double().cpu()
        if o.shape != features.energy.shape:
            raise ValueError(
                f"observable must have shape {tuple(features.energy.shape)}, got {tuple(o.shape)}"
            )
        if gradient is None:
            x = torch.zeros_like(y)
        elif isinstance(gradient, str):
            checks.choice("gradient", gradient, ("plaquette",))
            x = features.grad_energy.double().cpu() / features.volume
        else:
            x = torch.as_tensor(gradient).detach().double().cpu()
            if x.shape != y.shape:
                raise ValueError(f"gradient must have shape {tuple(y.shape)}, got {tuple(x.shape)}")
        ridge = checks.real("ridge", ridge, low=0)
        oc = o - o.mean()
        ec = features.energy.double().cpu() - features.energy.double().mean().cpu()
        a = oc * ec
        b = x + oc[:, None] * (y - y.mean(0))
        a, b = a - a.mean(), b - b.mean(0)
        cov_b = b.T @ b / len(a)
        cov_ba = b.T @ a / len(a)
        if not torch.trace(cov_b) > 0:  # nothing to fit (e.g. χ_t with Q = 0 on every draw)
            return np.zeros(self.n_terms)
        cov_b += ridge * torch.trace(cov_b) / self.n_terms * torch.eye(self.n_terms, dtype=b.dtype)
        return (-torch.linalg.solve(cov_b, cov_ba)).numpy()
