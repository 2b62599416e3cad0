"""Chain measurements → Γ-method estimates: agreement with phi4_primaries and exact values."""

import numpy as np
import pytest
import torch

from lqft_lab import exact
from lqft_lab.actions import Phi4Action
from lqft_lab.observables import PRIMARIES, estimate, phi4_chain_observables, phi4_primaries


def test_chain_observables_match_their_definitions():
    # Reference formulas written out here, independently of the library's table.
    phi = torch.randn(5, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    M = phi.mean(dim=(1, 2))
    nn = 0.5 * sum(
        (phi * torch.roll(phi, -1, dims=d)).mean(dim=(1, 2)) for d in (1, 2)
    )  # (1/d) sum_mu (1/V) sum_x phi_x phi_{x+mu}
    reference = {
        "M": M,
        "M2": M**2,
        "M4": M**4,
        "absM": M.abs(),
        "phi2": (phi**2).mean(dim=(1, 2)),
        "nn": nn,
    }
    chain_fns = phi4_chain_observables()
    assert set(chain_fns) == set(PRIMARIES) == set(reference)
    primaries = phi4_primaries(phi)
    for key, value in reference.items():
        assert torch.allclose(chain_fns[key](phi), value, atol=1e-12), key
        assert torch.allclose(primaries[key], value, atol=1e-12), key


def _exact_free_samples(shape, m2, n, seed):
    """Independent draws of the free field, phi = (2K)^{-1/2} xi via the action's Hessian."""
    V = int(np.prod(shape))
    action = Phi4Action(m2, 0.0)
    hess = torch.autograd.functional.hessian(
        lambda v: action(v.view(1, *shape))[0], torch.zeros(V, dtype=torch.float64)
    )  # = 2K
    chol = torch.linalg.cholesky(torch.linalg.inv(hess))
    xi = torch.randn(n, V, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return (xi @ chol.T).view(n, *shape)


@pytest.mark.parametrize("layout", ["single", "chains"])
def test_estimates_reproduce_exact_free_field(layout):
    shape, m2 = (4, 4), 0.8
    phi = _exact_free_samples(shape, m2, 40_000, seed=1)
    series = {k: fn(phi) for k, fn in phi4_chain_observables().items()}
    if layout == "chains":  # (T, B): 8 independent chains of 5000
        series = {k: v.view(5000, 8) for k, v in series.items()}
    checks = {
        "chi2": exact.free_field_chi2(shape, m2),
        "phi2": exact.free_field_phi2(shape, m2),
        "E": exact.free_field_ising_energy(shape, m2),
    }
    for name, value in checks.items():
        res = estimate(series, name, volume=16)
        assert abs(res.value - value) < 4 * res.error, (name, res.value, value, res.error)
        # iid samples: tau_int is 1/2 within its error (3 sigma)
        assert abs(res.tau_int - 0.5) < 3 * res.tau_int_error + 1e-12, (name, res.tau_int)


def test_estimate_errors():
    series = {"M": torch.zeros(10), "M2": torch.zeros(12)}
    with pytest.raises(ValueError, match="different shapes"):
        estimate(series, "chi2", volume=4)
    with pytest.raises(ValueError, match="missing"):
        estimate({"M": torch.zeros(10)}, "chi2", volume=4)
    with pytest.raises(ValueError, match="no series"):
        estimate(series, "nonsense")
    with pytest.raises(ValueError, match="volume"):
        estimate({"M": torch.randn(10), "M2": torch.rand(10)}, "chi2")
    with pytest.raises(ValueError, match="unknown primaries"):
        phi4_chain_observables(["M", "Q"])
