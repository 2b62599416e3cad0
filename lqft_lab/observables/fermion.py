"""Fermion observables of the Schwinger model: chiral condensate, pion correlator, low modes.

Every function takes U(1) link angles ``theta (B, 2, L0, L1)`` and the hopping parameter
``kappa`` of the Wilson–Dirac operator ``D`` (hopping form, antiperiodic in time by default;
conventions in :mod:`lqft_lab.actions.wilson_dirac`) and returns one value per configuration,
so the results feed :func:`~lqft_lab.samplers.run_chain` and the Γ-method like the gauge
observables. All are gauge invariant. With Nf = 2 degenerate flavours every quantity below is
*per flavour* (the two flavours give identical propagators).

Definitions, with ``V = L0 L1`` and ``S = D⁻¹`` the propagator:

- chiral condensate ``Σ = (1/V) Re tr S``, the trace over sites and both spins (``Σ = 2`` at
  ``κ = 0`` where ``D = 1``). γ5-hermiticity makes ``tr S`` real; ``Re`` drops rounding.
  In the mass form ``D_m = D/(2κ)`` the same number is ``(1/V) tr D_m⁻¹ = 2κ Σ``; the usual
  ``⟨ψ̄ψ⟩`` is ``-2κ Σ`` per flavour in those units.
- pion correlator from a point source at the origin,
  ``C_π(t) = Σ_{x1} Σ_{a,b} |S(t, x1; 0, 0)_{ab}|² = Σ_{x1} tr[S(x, 0) S(x, 0)†]``, which is
  ``-tr[γ5 S(x,0) γ5 S(0,x)]`` summed over ``x1`` because ``γ5 S(0, x) γ5 = S(x, 0)†``
  (γ5-hermiticity). Real and positive configuration by configuration; periodic in ``t`` (a
  bilinear), so :func:`lqft_lab.observables.effective_mass` (the cosh form) applies.
- the stochastic condensate: ``(1/V) Re η† S η`` averaged over noise vectors ``η`` with
  ``E[η η†] = 1`` (real Z2 noise ``±1``, or complex Gaussian ``CN(0, 1)``), unbiased for each
  configuration; ``S η`` by conjugate gradient on ``D†D x = D†η``
  (:func:`lqft_lab.actions.cg.conjugate_gradient`, complex128, relative residual ``1e-12``)
  or by a dense LU solve.

Dense methods build ``D`` as a ``(2V, 2V)`` matrix per configuration: meant for ``V`` up to a
few hundred sites (``L <= 16``). Inputs are checked (kind, dtype, shape; ``TypeError`` or
``ValueError`` naming the argument). Unlike the cheap gauge observables these also refuse
non-finite links: the check's device sync is nothing next to a dense inverse, and LAPACK
fed NaN fails with errors that do not say why. A configuration where ``D`` is exactly
singular (a zero mode: e.g. free links with periodic boundary conditions at ``κ = 1/4``) is
refused with a ``ValueError`` naming ``kappa``.

References:
    C. Gattringer, C. B. Lang, "Quantum Chromodynamics on the Lattice", Springer (2010),
    ch. 6 (γ5-hermiticity, meson correlators) and ch. 8 (stochastic estimators);
    S.-J. Dong, K.-F. Liu, hep-lat/9308015 (Z2 noise for ``tr D⁻¹``);
    M. S. Albergo et al., arXiv:2202.11712 (observables of the Schwinger model at κ_c).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .. import checks, linalg
from ..actions.cg import conjugate_gradient
from ..actions.u1 import check_links
from ..actions.wilson_dirac import WilsonDirac
from .gauge import plaquette

__all__ = [
    "chiral_condensate",
    "stochastic_condensate",
    "pion_correlator",
    "lowest_eigenvalues",
    "schwinger_observables",
]

#: CG tolerance of the stochastic solves: far below any noise error.
_CG_TOL = 1e-12


def _dirac(kappa: float, antiperiodic: bool) -> WilsonDirac:
    return WilsonDirac(kappa, antiperiodic=antiperiodic)  # checks kappa and antiperiodic


def _nonsingular(info: torch.Tensor, dirac: WilsonDirac) -> None:
    """Refuse configurations where LAPACK found ``D`` exactly singular (``info > 0``)."""
    if bool((info != 0).any()):
        bad = torch.nonzero(info != 0).flatten().tolist()[:8]
        raise ValueError(
            f"kappa = {dirac.kappa}: D is singular on configurations {bad} of theta (an exact "
            "zero mode), so D⁻¹ does not exist there"
        )


def chiral_condensate(
    theta: torch.Tensor,
    kappa: float,
    *,
    n_noise: int | None = None,
    noise: str = "z2",
    solver: str = "cg",
    generator: torch.Generator | None = None,
    antiperiodic: bool = True,
) -> torch.Tensor:
    """Chiral condensate per flavour, ``Σ = (1/V) Re tr D⁻¹``, shape ``(B,)``.

    Exact (a dense inverse) when ``n_noise`` is ``None``; otherwise the mean of
    :func:`stochastic_condensate` over ``n_noise`` noise vectors.

    Args:
        theta: link angles ``(B, 2, L0, L1)``; float64 recommended.
        kappa: hopping parameter, ``0 <= κ < 1``.
        n_noise: number of noise vectors, ``>= 1``, or ``None`` for the exact trace.
        noise, solver, generator: as for :func:`stochastic_condensate` (ignored when exact).
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Returns:
        ``(B,)`` real, dtype of ``theta``.

    Raises:
        TypeError, ValueError: for links :func:`~lqft_lab.actions.check_links` refuses and
            arguments out of range, naming them.

    Example:
        >>> theta = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
        >>> chiral_condensate(theta, 0.0)
        tensor([2.], dtype=torch.float64)
    """
    check_links(theta, finite=True)
    dirac = _dirac(kappa, antiperiodic)
    if n_noise is not None:
        samples = stochastic_condensate(
            theta, kappa, n_noise, noise=noise, solver=solver, generator=generator,
            antiperiodic=antiperiodic,
        )  # fmt: skip
        return samples.mean(dim=1)
    V = theta.shape[2] * theta.shape[3]
    S, info = linalg.inv_ex(dirac.dense(theta))  # (B, 2V, 2V)
    _nonsingular(info, dirac)
    return S.diagonal(dim1=1, dim2=2).sum(dim=1).real / V


def stochastic_condensate(
    theta: torch.Tensor,
    kappa: float,
    n_noise: int,
    *,
    noise: str = "z2",
    solver: str = "cg",
    generator: torch.Generator | None = None,
    antiperiodic: bool = True,
) -> torch.Tensor:
    """One unbiased estimate of ``Σ = (1/V) Re tr D⁻¹`` per noise vector, ``(B, n_noise)``.

    Each column is ``(1/V) Re η† D⁻¹ η`` for an independent noise vector ``η``; their mean
    estimates ``Σ`` with the error ``std / sqrt(n_noise)`` (the columns are independent
    given the configuration).

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        kappa: hopping parameter, ``0 <= κ < 1``.
        n_noise: noise vectors per configuration, ``>= 1``.
        noise: ``"z2"`` (real ``±1`` entries: no variance from the diagonal of ``D⁻¹``) or
            ``"gaussian"`` (complex ``CN(0, 1)`` entries).
        solver: ``"cg"`` (CG on ``D†D x = D†η``, matrix-free, relative residual ``1e-12``)
            or ``"dense"`` (an LU factorisation of dense ``D``: small lattices).
        generator: random source for the noise, on ``theta``'s device.
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Returns:
        ``(B, n_noise)`` real, dtype of ``theta``.

    Raises:
        TypeError, ValueError: for bad links or arguments, naming them.
        lqft_lab.actions.cg.CGNotConverged: if CG misses its tolerance (a singular ``D``).

    References:
        S.-J. Dong, K.-F. Liu, hep-lat/9308015; C. Gattringer, C. B. Lang (2010), sec. 8.2.
    """
    check_links(theta, finite=True)
    dirac = _dirac(kappa, antiperiodic)
    n_noise = checks.integer("n_noise", n_noise, low=1)
    noise = checks.choice("noise", noise, ("z2", "gaussian"))
    solver = checks.choice("solver", solver, ("cg", "dense"))
    checks.random_generator("generator", generator, theta.device)
    B, _, L0, L1 = theta.shape
    ctype = torch.complex128 if theta.dtype == torch.float64 else torch.complex64
    shape = (B * n_noise, L0, L1, 2)  # noise vectors of configuration b at b·n_noise + j
    if noise == "z2":
        signs = torch.randint(0, 2, shape, generator=generator, device=theta.device)
        eta = (2 * signs - 1).to(ctype)
    else:  # CN(0, 1): variance 1/2 per real component, E|η|² = 1
        eta = torch.randn(shape, generator=generator, device=theta.device, dtype=ctype)
    if solver == "dense":
        LU, pivots, info = linalg.lu_factor_ex(dirac.dense(theta))  # (B, 2V, 2V)
        _nonsingular(info, dirac)
        rhs = eta.reshape(B, n_noise, -1).transpose(1, 2)  # (B, 2V, n_noise)
        x = torch.linalg.lu_solve(LU, pivots, rhs).transpose(1, 2).reshape(shape)
    else:
        U = dirac.links(theta).repeat_interleave(n_noise, dim=0)  # (B n_noise, 2, L0, L1)
        result = conjugate_gradient(
            lambda v: dirac._apply_dagger(U, dirac._apply(U, v)),  # D†D
            dirac._apply_dagger(U, eta),  # D† η
            tol=_CG_TOL,
        )
        x = result.x  # D⁻¹ η
    estimates = (eta.conj() * x).real.flatten(1).sum(dim=1) / (L0 * L1)  # (B n_noise,)
    return estimates.reshape(B, n_noise)


def pion_correlator(
    theta: torch.Tensor, kappa: float, *, antiperiodic: bool = True
) -> torch.Tensor:
    """Pion correlator ``C_π(t) = Σ_{x1} tr[S(x, 0) S(x, 0)†]`` from a point source at the
    origin (both spins), shape ``(B, L0)``; ``S = D⁻¹`` by a dense solve.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        kappa: hopping parameter, ``0 <= κ < 1``.
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Returns:
        ``(B, L0)`` real and positive, dtype of ``theta``; index ``t`` is the time slice.

    Raises:
        TypeError, ValueError: for bad links or arguments, naming them.

    Example:
        >>> theta = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
        >>> pion_correlator(theta, 0.0)   # D = 1: only the contact term, tr 1 = 2
        tensor([[2., 0., 0., 0.]], dtype=torch.float64)
    """
    check_links(theta, finite=True)
    dirac = _dirac(kappa, antiperiodic)
    B, _, L0, L1 = theta.shape
    D = dirac.dense(theta)  # (B, 2V, 2V)
    source = torch.zeros(B, D.shape[1], 2, dtype=D.dtype, device=D.device)
    source[:, 0, 0] = source[:, 1, 1] = 1  # spins 0 and 1 at the site (0, 0)
    G, info = linalg.solve_ex(D, source)  # (B, 2V, 2): S(x, 0)_{a b}
    _nonsingular(info, dirac)
    return G.abs().square().reshape(B, L0, L1 * 4).sum(dim=2)  # (B, L0)


def lowest_eigenvalues(
    theta: torch.Tensor, kappa: float, k: int, *, order: str = "abs", antiperiodic: bool = True
) -> torch.Tensor:
    """The ``k`` eigenvalues of ``D`` nearest zero (``order="abs"``, by ``|λ|``) or with the
    smallest real part (``order="real"``), ascending, ``(B, k)`` complex. The two members
    of a conjugate pair tie in both orders; which comes first is arbitrary.

    γ5-hermiticity closes the spectrum under complex conjugation, so complex eigenvalues come
    in pairs; a real eigenvalue crossing zero as ``κ`` grows is a near-zero mode
    (an exceptional configuration near ``κ_c``), and its sign is that of ``det D``'s flip.
    Dense eigenvalues (``torch.linalg.eigvals``): small lattices.

    Args:
        theta: link angles ``(B, 2, L0, L1)``.
        kappa: hopping parameter, ``0 <= κ < 1``.
        k: how many, ``1 <= k <= 2V``.
        order: ``"abs"`` or ``"real"``.
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Raises:
        TypeError, ValueError: for bad links or arguments, naming them.
    """
    check_links(theta, finite=True)
    dirac = _dirac(kappa, antiperiodic)
    n = 2 * theta.shape[2] * theta.shape[3]
    k = checks.integer("k", k, low=1, high=n)
    order = checks.choice("order", order, ("abs", "real"))
    lam = torch.linalg.eigvals(dirac.dense(theta))  # (B, 2V)
    key = lam.abs() if order == "abs" else lam.real
    index = torch.argsort(key, dim=1)[:, :k]
    return torch.gather(lam, 1, index)


def schwinger_observables(
    kappa: float, times: Iterable[int] = (1,), *, antiperiodic: bool = True
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The standard per-configuration observables of the Schwinger model, for
    :func:`~lqft_lab.samplers.run_chain` and :func:`~lqft_lab.exact.schwinger.reweighted_reference`.

    Returns:
        ``{"plaquette", "condensate", "pion_t" for t in times}``, each a function
        ``theta (B, 2, L0, L1) -> (B,)``; the condensate is exact (dense), per flavour.

    Raises:
        TypeError, ValueError: for a bad ``kappa``, ``antiperiodic`` or ``times`` (integers
            ``>= 0``; each must also be below ``L0`` when the observable is called).
    """
    _dirac(kappa, antiperiodic)  # refuse bad couplings here, not at the first measurement
    if isinstance(times, (str, bytes)) or not isinstance(times, Iterable):
        raise checks.ArgumentKindError(f"times must be a sequence of integers, got {times!r:.80}")
    times = tuple(checks.integer("times", t, low=0) for t in times)

    def condensate(theta: torch.Tensor) -> torch.Tensor:
        return chiral_condensate(theta, kappa, antiperiodic=antiperiodic)

    def pion(t: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def c_t(theta: torch.Tensor) -> torch.Tensor:
            check_links(theta, finite=True)
            if t >= theta.shape[2]:
                raise ValueError(f"times holds t = {t}, beyond L0 = {theta.shape[2]}")
            return pion_correlator(theta, kappa, antiperiodic=antiperiodic)[:, t]

        return c_t

    observables = {"plaquette": plaquette, "condensate": condensate}
    observables.update({f"pion_{t}": pion(t) for t in times})
    return observables
