"""Observables of real scalar fields ``(B, *lattice)``: magnetisation, correlators, χ₂, E.

Contract. *Per-configuration* observables take a batch ``(B, *lattice)`` and return one
value per configuration, ``(B,)`` (or ``(B, *lattice)`` for :func:`two_point`), on the
input's device and dtype. *Ensemble* observables (:func:`connected_two_point`,
:func:`chi2`, :func:`ising_energy`) treat the batch as a set of ``N >= 2`` samples of one
distribution and average over it: they estimate expectation values. Field-valued ensemble
results are tensors on the input's device; scalar summaries (:func:`chi2`,
:func:`ising_energy`) are Python floats. Lattices are periodic, of any dimension ``d``;
direction 0 is Euclidean time.

Definitions (arXiv:1904.12072 sec. IV, arXiv:2101.08176), with ``V`` the lattice volume:

    M = (1/V) Σ_x φ_x,
    G_c(x) = (1/V) Σ_y [⟨φ_y φ_{y+x}⟩ - ⟨φ_y⟩⟨φ_{y+x}⟩],
    χ₂ = Σ_x G_c(x) = V (⟨M²⟩ - ⟨M⟩²),
    E = (1/d) Σ_μ G_c(μ̂),
    C(t) = Σ_x⃗ G_c(t, x⃗),   m_eff(t) = arccosh[(C(t-1) + C(t+1)) / (2 C(t))].

Validation. Every function checks the dtype and shape of its fields (``check_field``:
float32/float64, batched, extents ``>= 2``). Per-configuration observables do not check
that the entries are finite: they run inside chains, every step, often on a GPU, where the
check would wait for the device each time; NaN in gives NaN out there, and the estimators
(:func:`connected_two_point`, :func:`chi2`, :func:`ising_energy`, the Γ-method) refuse it.

Error bars. Derived quantities such as χ₂ are nonlinear functions of means, so their errors
need the Γ-method (or jackknife) on *primary* per-configuration series. Use
:func:`phi4_primaries` on a Markov chain, pick the primaries that a derived quantity needs
with :func:`derived_observable`, and hand both to the analysis module::

    prim = phi4_primaries(chain)                      # chain (N, L, L) in Markov order
    keys, f = derived_observable("chi2", volume=L * L)
    data = stack_primaries(prim, keys).cpu().numpy()  # (N, K)
    res = gamma_method(data[:, None, :], f=f)         # data (N, R=1, K); f(means) -> float

The derived functions assume translation invariance, ``⟨φ_y⟩ = ⟨M⟩`` for every ``y``, so
that ``G_c(μ̂) = ⟨nn_μ⟩ - ⟨M⟩²``. On a finite ensemble this differs from the site-resolved
estimator in :func:`ising_energy` by terms of order ``1/N``; both converge to the same value.

References:
    M. S. Albergo, G. Kanwar, P. E. Shanahan, "Flow-based generative models for Markov chain
    Monte Carlo in lattice field theory", arXiv:1904.12072, sec. IV and eq. (21).
    M. S. Albergo et al., "Introduction to Normalizing Flows for Lattice Field Theory",
    arXiv:2101.08176.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from .. import checks
from ..analysis._arrays import as_float_array, check_finite_result
from ..lattice import check_field, shift

__all__ = [
    "PRIMARY_FNS",
    "magnetization",
    "abs_magnetization",
    "two_point",
    "connected_two_point",
    "zero_momentum_correlator",
    "effective_mass",
    "chi2",
    "ising_energy",
    "phi4_primaries",
    "stack_primaries",
    "chi2_from_means",
    "ising_energy_from_means",
    "binder_from_means",
    "DERIVED",
    "derived_observable",
    "timeslice_correlator",
    "timeslice_observables",
    "pole_mass_from_means",
]


def magnetization(phi: torch.Tensor) -> torch.Tensor:
    """Per-configuration magnetisation ``M = (1/V) Σ_x φ_x``, shape ``(B,)``."""
    check_field(phi, name="phi")
    return phi.flatten(1).mean(dim=1)


def abs_magnetization(phi: torch.Tensor) -> torch.Tensor:
    """Per-configuration ``|M|``, shape ``(B,)`` (nonzero even where ``⟨M⟩ = 0`` by Z₂)."""
    return magnetization(phi).abs()


def two_point(phi: torch.Tensor) -> torch.Tensor:
    """Per-configuration translation-averaged product ``(1/V) Σ_y φ_y φ_{y+x}``.

    Computed as a circular autocorrelation by FFT: with ``φ̃(p) = Σ_y φ_y e^{-ipy}``,
    ``Σ_y φ_y φ_{y+x} = (1/V) Σ_p |φ̃(p)|² e^{ipx}``. Symmetric under ``x → -x``.

    Args:
        phi: fields ``(B, *lattice)``, float32 or float64.

    Returns:
        ``(B, *lattice)``, indexed by the separation ``x`` (``[..., 0, 0]`` is ``x = 0``).
    """
    check_field(phi, name="phi")
    dims = tuple(range(1, phi.dim()))
    lattice = phi.shape[1:]
    power = torch.fft.rfftn(phi, dim=dims).abs() ** 2  # (B, ..., L_{d-1}//2 + 1)
    return torch.fft.irfftn(power, s=lattice, dim=dims) / lattice.numel()


def _check_ensemble(phi: torch.Tensor) -> None:
    """An ensemble ``(N, *lattice)``: ``N >= 2`` finite configurations."""
    check_field(phi, name="phi", finite=True)
    if phi.shape[0] < 2:
        raise ValueError(
            f"an ensemble estimate needs at least 2 configurations, got {phi.shape[0]} in phi"
        )


def _check_estimate(value, dtype: torch.dtype):
    """Refuse an estimate that overflowed although ``phi`` was finite."""
    finite = bool(torch.isfinite(value).all()) if torch.is_tensor(value) else np.isfinite(value)
    if not finite:
        hint = "; use float64" if dtype == torch.float32 else ""
        raise ValueError(
            f"phi is too large for {dtype}: the estimate overflowed to inf or NaN{hint}"
        )
    return value


def connected_two_point(phi: torch.Tensor) -> torch.Tensor:
    """Ensemble estimate of the connected correlator ``G_c(x)``, shape ``(*lattice)``.

    ``G_c(x) = (1/V) Σ_y [⟨φ_y φ_{y+x}⟩ - ⟨φ_y⟩⟨φ_{y+x}⟩]`` with ``⟨·⟩`` the plain average
    over the ``N`` samples (site-resolved means, no translation-invariance assumption).
    The subtracted product of sample means makes the estimator biased by ``O(1/N)``.

    Args:
        phi: an ensemble ``(N, *lattice)`` of samples, ``N >= 2``.

    Raises:
        TypeError: if ``phi`` is not a tensor.
        ValueError: for a wrong dtype or shape, ``N < 2``, NaN/inf entries, or an overflow.

    Example:
        >>> G = connected_two_point(torch.randn(100, 8, 8, dtype=torch.float64))
        >>> G.shape
        torch.Size([8, 8])
    """
    _check_ensemble(phi)
    mean_field = phi.mean(dim=0, keepdim=True)  # (1, *lattice)
    G = two_point(phi).mean(dim=0) - two_point(mean_field)[0]
    return _check_estimate(G, phi.dtype)


def zero_momentum_correlator(G: torch.Tensor, batched: bool = False) -> torch.Tensor:
    """Project a correlator onto zero spatial momentum: ``C(t) = Σ_x⃗ G(t, x⃗)``.

    Time is lattice direction 0. For a one-dimensional lattice ``C = G``.

    Args:
        G: a correlator ``(*lattice)``, or ``(B, *lattice)`` when ``batched``.
        batched: whether the first dimension of ``G`` is a batch.

    Returns:
        ``(L_0,)``, or ``(B, L_0)`` when ``batched``.

    Raises:
        TypeError: if ``G`` is not a tensor or ``batched`` not a bool.
        ValueError: if ``G`` is not float32/float64, holds NaN/inf, or has too few
            dimensions.
    """
    checks.tensor("G", G)
    if not isinstance(batched, bool):
        raise TypeError(f"batched must be a bool, got {batched!r}")
    if G.numel() == 0:
        raise ValueError(f"G is empty, shape {tuple(G.shape)}")
    time_dim = 1 if batched else 0
    if G.dim() < time_dim + 1:
        raise ValueError(f"G has too few dimensions for batched={batched}: {tuple(G.shape)}")
    spatial = tuple(range(time_dim + 1, G.dim()))
    return G.sum(dim=spatial) if spatial else G.clone()


def effective_mass(C: torch.Tensor) -> torch.Tensor:
    """Pole-mass estimator ``m_eff(t) = arccosh[(C(t-1) + C(t+1)) / (2 C(t))]``.

    The correlator is periodic, so ``C(-1) = C(L_0-1)`` and ``C(L_0) = C(0)``; the result
    has the shape of ``C`` and index ``t`` holds ``m_eff(t)`` for ``t = 0, …, L_0 - 1``.
    ``t = 0`` contains the contact term of the source and is not a mass estimate; for the
    free field every ``t = 1, …, L_0 - 1`` gives the pole mass exactly (see
    :func:`lqft_lab.exact.free_field_pole_mass`). Entries whose argument is below 1 (noise,
    or ``C(t) <= 0``) are NaN.

    Args:
        C: zero-momentum correlator ``(..., L_0)``, time along the last axis, ``L_0 >= 3``.

    Raises:
        TypeError: if ``C`` is not a tensor.
        ValueError: if ``C`` is not float32/float64, holds NaN/inf (the NaN of the result
            flags noise only), or has fewer than 3 time slices.

    References:
        arXiv:1904.12072 eq. (21); arXiv:2101.08176.
    """
    checks.tensor("C", C)
    if C.dim() < 1 or C.shape[-1] < 3:
        raise ValueError(f"C needs at least 3 time slices along its last axis, got {C.shape}")
    arg = (torch.roll(C, 1, dims=-1) + torch.roll(C, -1, dims=-1)) / (2 * C)
    nan = torch.full_like(arg, float("nan"))
    return torch.where(arg >= 1, torch.arccosh(arg.clamp(min=1)), nan)


def chi2(phi: torch.Tensor) -> float:
    """Two-point susceptibility ``χ₂ = Σ_x G_c(x) = V (⟨M²⟩ - ⟨M⟩²)`` of an ensemble.

    Args:
        phi: an ensemble ``(N, *lattice)``, ``N >= 2``.

    Returns:
        A Python float (biased by ``O(1/N)`` like :func:`connected_two_point`), accumulated
        in float64.

    Raises:
        TypeError: if ``phi`` is not a tensor.
        ValueError: for a wrong dtype or shape, ``N < 2``, NaN/inf entries, or an overflow.
    """
    _check_ensemble(phi)
    M = magnetization(phi.double())
    volume = phi[0].numel()
    return float(_check_estimate(volume * ((M**2).mean() - M.mean() ** 2), torch.float64))


def ising_energy(phi: torch.Tensor) -> float:
    """Ising energy density ``E = (1/d) Σ_μ G_c(μ̂)`` of an ensemble, as a Python float.

    Uses the site-resolved :func:`connected_two_point`; ``μ̂`` is the unit vector in
    direction ``μ``.

    Args:
        phi: an ensemble ``(N, *lattice)``, ``N >= 2``.

    Raises:
        TypeError: if ``phi`` is not a tensor.
        ValueError: for a wrong dtype or shape, ``N < 2``, NaN/inf entries, or an overflow.
    """
    G = connected_two_point(phi)
    dim = G.dim()
    total = 0.0
    for mu in range(dim):
        index = tuple(1 if nu == mu else 0 for nu in range(dim))
        total += float(G[index])
    return float(_check_estimate(total / dim, phi.dtype))


def phi4_primaries(phi: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-configuration primary series for error analysis, each of shape ``(B,)``.

    Keys: ``"M"`` (magnetisation), ``"M2"`` (``M²``), ``"M4"`` (``M⁴``), ``"absM"``
    (``|M|``), ``"phi2"`` (``(1/V) Σ_x φ_x²``) and ``"nn"`` (nearest-neighbour product
    ``(1/d) Σ_μ (1/V) Σ_x φ_x φ_{x+μ}``). Means of these feed the functions in
    :data:`DERIVED`.

    Args:
        phi: fields ``(B, *lattice)``; for autocorrelated chains keep Markov order.
    """
    check_field(phi, name="phi")
    return {key: fn(phi) for key, fn in PRIMARY_FNS.items()}


def _nearest_neighbour(phi: torch.Tensor) -> torch.Tensor:
    dim = phi.dim() - 1
    return sum(phi * shift(phi, mu) for mu in range(dim)).flatten(1).mean(dim=1) / dim


#: Each primary of :func:`phi4_primaries` on its own, ``(B, *lattice) -> (B,)``, so that a
#: chain measuring several (``run_chain(observables=...)``) computes each once.
PRIMARY_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "M": magnetization,
    "M2": lambda phi: magnetization(phi) ** 2,
    "M4": lambda phi: magnetization(phi) ** 4,
    "absM": abs_magnetization,
    "phi2": lambda phi: phi.pow(2).flatten(1).mean(dim=1),
    "nn": _nearest_neighbour,
}


def stack_primaries(primaries: dict[str, torch.Tensor], keys: Sequence[str]) -> torch.Tensor:
    """Stack the named primary series into ``(N, K)``, columns in the order of ``keys``.

    Args:
        primaries: name → series ``(N,)`` (as :func:`phi4_primaries` returns).
        keys: the names to stack (a single name may be passed as a string).

    Raises:
        TypeError: if ``primaries`` is not a mapping of tensors or ``keys`` not names.
        ValueError: for an unknown key, no keys, or series of different shapes, dtypes or
            devices.
    """
    if not isinstance(primaries, Mapping):
        raise TypeError(f"primaries must be a mapping name -> series, got {type(primaries)}")
    keys = (keys,) if isinstance(keys, str) else keys
    if not isinstance(keys, Iterable) or not all(isinstance(k, str) for k in keys):
        raise TypeError(f"keys must be a sequence of primary names, got {keys!r}")
    keys = tuple(keys)
    if not keys:
        raise ValueError("keys names no primary; pass at least one")
    missing = [k for k in keys if k not in primaries]
    if missing:
        raise ValueError(
            f"keys: unknown primaries {missing}; available: {sorted(map(str, primaries))}"
        )
    columns = [primaries[k] for k in keys]
    for k, c in zip(keys, columns, strict=True):
        checks.tensor(f"primaries[{k!r}]", c, finite=False)
    kinds = {(tuple(c.shape), c.dtype, c.device) for c in columns}
    if len(kinds) != 1:
        raise ValueError(
            f"primaries {list(keys)} must share one shape, dtype and device, got "
            f"{sorted(map(str, kinds))}"
        )
    return torch.stack(columns, dim=-1)  # (N, K)


def _means(means, n: int, what: str) -> np.ndarray:
    """``means`` as a float64 vector of the ``n`` means ``what`` names, checked."""
    m = as_float_array(means, "means")
    if m.shape != (n,):
        raise ValueError(f"means must be the {n} means {what}, got shape {m.shape}")
    return m


def _finite_value(value, name: str = "means") -> float:
    check_finite_result(name, value)
    return float(value)


def chi2_from_means(means, volume: int) -> float:
    """``χ₂ = V (⟨M2⟩ - ⟨M⟩²)`` from the means ``[⟨M⟩, ⟨M2⟩]``.

    Raises:
        TypeError, ValueError: for ``means`` that are not two finite numbers, a ``volume``
            that is not an integer ``>= 1``, or an overflow.
    """
    m = _means(means, 2, "[<M>, <M2>]")
    volume = checks.integer("volume", volume, low=1)
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite_value(volume * (m[1] - m[0] ** 2))


def ising_energy_from_means(means) -> float:
    """``E = ⟨nn⟩ - ⟨M⟩²`` from the means ``[⟨M⟩, ⟨nn⟩]`` (assumes ``⟨φ_y⟩ = ⟨M⟩``).

    Raises:
        TypeError, ValueError: for ``means`` that are not two finite numbers, or an overflow.
    """
    m = _means(means, 2, "[<M>, <nn>]")
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite_value(m[1] - m[0] ** 2)


def binder_from_means(means) -> float:
    """Binder cumulant ``U₄ = 1 - ⟨M4⟩ / (3 ⟨M2⟩²)`` from the means ``[⟨M2⟩, ⟨M4⟩]``.

    Raises:
        TypeError, ValueError: for ``means`` that are not two finite numbers, ``⟨M2⟩ = 0``
            (no cumulant), or an overflow.
    """
    m = _means(means, 2, "[<M2>, <M4>]")
    if m[0] == 0:
        raise ValueError("means: the Binder cumulant needs <M2> = means[0] != 0, got 0")
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        return _finite_value(1 - m[1] / (3 * m[0] ** 2))


#: Derived observables: name -> (primary keys in order, function of their means, needs V).
DERIVED: dict[str, tuple[tuple[str, ...], Callable, bool]] = {
    "chi2": (("M", "M2"), chi2_from_means, True),
    "E": (("M", "nn"), ising_energy_from_means, False),
    "binder": (("M2", "M4"), binder_from_means, False),
}


def derived_observable(
    name: str, volume: int | None = None
) -> tuple[tuple[str, ...], Callable[[np.ndarray], float]]:
    """Primary keys and a function ``f(means) -> value`` for a derived observable.

    ``f`` takes the K-vector of means of ``stack_primaries(prim, keys)``, as the
    Γ-method's ``f`` argument expects; the volume is bound in where needed.

    Args:
        name: one of ``DERIVED`` (``"chi2"``, ``"E"``, ``"binder"``).
        volume: lattice volume ``V``, required for ``"chi2"``.

    Raises:
        ValueError: for an unknown ``name``, or ``"chi2"`` without a ``volume``.
        TypeError: for a ``volume`` that is not an integer (``>= 1``, else ValueError).

    Example:
        >>> keys, f = derived_observable("chi2", volume=64)
        >>> keys
        ('M', 'M2')
    """
    checks.choice("name", name, sorted(DERIVED))
    keys, fn, needs_volume = DERIVED[name]
    if volume is not None:
        volume = checks.integer("volume", volume, low=1)
    if not needs_volume:
        return keys, fn
    if volume is None:
        raise ValueError(f"{name!r} needs the lattice volume: pass volume=V (sites)")
    return keys, lambda means: fn(means, volume)


def timeslice_correlator(phi: torch.Tensor) -> torch.Tensor:
    """Per-configuration zero-momentum correlator ``c(t) = (1/V) Σ_{t₀} s(t₀) s(t₀ + t)``.

    ``s(t) = Σ_x⃗ φ(t, x⃗)`` is the time-slice sum (direction 0 is time), so that
    ``⟨c(t)⟩ - L_x⃗ ⟨M⟩² = C(t)``, the zero-momentum projection of ``G_c`` in the module
    docstring, with ``L_x⃗`` the number of sites in a time slice.

    Args:
        phi: fields ``(B, L_0, *spatial)``.

    Returns:
        ``(B, L_0)``, index ``t = 0, …, L_0 - 1``.
    """
    check_field(phi, name="phi")
    if phi.dim() < 2:
        raise ValueError(f"phi needs a time axis, got shape {tuple(phi.shape)}")
    s = phi.flatten(2).sum(dim=2) if phi.dim() > 2 else phi  # (B, L_0)
    volume = phi[0].numel()
    return torch.stack([(s * s.roll(-t, dims=1)).sum(dim=1) for t in range(s.shape[1])], 1) / volume


def timeslice_observables(L0: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """``{"c0": ..., "c{L0-1}": ...}``: :func:`timeslice_correlator` one time at a time.

    For ``run_chain(observables=...)``, whose observables return ``(B,)``; together with
    ``"M"`` they are the primaries of :func:`pole_mass_from_means`.

    Raises:
        TypeError: if ``L0`` is not an integer.
        ValueError: if ``L0 < 3``.
    """
    L0 = checks.integer("L0", L0, low=3)

    def component(t: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def c_t(phi: torch.Tensor) -> torch.Tensor:
            s = phi.flatten(2).sum(dim=2) if phi.dim() > 2 else phi
            return (s * s.roll(-t, dims=1)).sum(dim=1) / phi[0].numel()

        return c_t

    return {f"c{t}": component(t) for t in range(L0)}


def pole_mass_from_means(means, L0: int, spatial_sites: int, t_range: Sequence[int] | None = None):
    """Pole mass from the means ``[⟨M⟩, ⟨c(0)⟩, …, ⟨c(L0-1)⟩]``: the averaged effective mass.

    ``C(t) = ⟨c(t)⟩ - L_x⃗ ⟨M⟩²`` is symmetrised, ``C(t) → [C(t) + C(L0 - t)]/2``, and the
    effective mass ``arccosh[(C(t-1) + C(t+1)) / (2 C(t))]`` (exact for one state on a
    periodic lattice) is averaged over ``t_range``, the plateau ``m_p = -∂_t log C̃(t)`` of
    arXiv:1904.12072. The default ``1 … L0/2 - 1`` leaves out the midpoint, where
    ``C(t)`` is flattest and the argument's noise most often dips below 1: the Γ-method
    evaluates this function on each replica's means too, so it has to survive short chains.
    NaN where the correlator is too noisy: that NaN is the documented flag :func:`pole_mass`
    reads; input is checked.

    Args:
        means: ``[⟨M⟩, ⟨c(0)⟩, …, ⟨c(L0-1)⟩]``, finite.
        L0: time extent, ``>= 3``.
        spatial_sites: sites per time slice, ``>= 1``.
        t_range: time separations averaged over, integers in ``[1, L0 - 1]``.

    Raises:
        TypeError: for arguments of the wrong kind.
        ValueError: for means of another shape or not finite, ``L0 < 3``,
            ``spatial_sites < 1``, or an empty ``t_range`` or one outside ``[1, L0 - 1]``.
    """
    L0 = checks.integer("L0", L0, low=3)
    spatial_sites = checks.integer("spatial_sites", spatial_sites, low=1)
    ts = _check_time_range(t_range, L0)
    means = as_float_array(means, "means")
    if means.shape != (L0 + 1,):
        raise ValueError(f"expected {L0 + 1} means [M, c(0..{L0 - 1})], got shape {means.shape}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        C = means[1:] - spatial_sites * means[0] ** 2
        C = 0.5 * (C + np.roll(C[::-1], 1))  # C(t) and C(L0 - t)
        arg = (C[ts - 1] + C[(ts + 1) % L0]) / (2 * C[ts])
    if np.any(~np.isfinite(arg)) or np.any(arg < 1):
        return float("nan")
    return float(np.mean(np.arccosh(arg)))


def _check_time_range(t_range, L0: int) -> np.ndarray:
    """The plateau's time separations: default ``1 … L0/2 - 1``, else integers in
    ``[1, L0 - 1]``, as an int array."""
    if t_range is None:
        return np.arange(1, max(2, L0 // 2))
    if isinstance(t_range, (str, bytes)) or not isinstance(t_range, Iterable):
        raise TypeError(f"t_range must be a sequence of time separations, got {t_range!r}")
    ts = [checks.integer("t_range", t, low=1, high=L0 - 1) for t in t_range]
    if not ts:
        raise ValueError("t_range is empty; give at least one time separation")
    return np.asarray(ts, dtype=np.int64)
