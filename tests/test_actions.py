"""Contract tests for actions: shape, force, symmetries, and errors at the boundary."""

import pytest
import torch

from lqft_lab.actions import Phi4Action, autograd_force
from lqft_lab.lattice import checkerboard, lattice_shape, shift

ACTIONS = {
    "phi4_broken": lambda: Phi4Action(m2=-4.0, lam=8.0),
    "phi4_symmetric": lambda: Phi4Action(m2=0.5, lam=0.3),
    "free": lambda: Phi4Action(m2=1.0, lam=0.0),
}
SHAPES = [(4, 4), (6, 4), (4, 4, 4)]


@pytest.fixture(params=sorted(ACTIONS))
def action(request):
    return ACTIONS[request.param]()


def _field(shape, batch=3, seed=0):
    return torch.randn(
        batch, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_and_dtype(action, shape):
    phi = _field(shape)
    S = action(phi)
    assert S.shape == (3,) and S.dtype == torch.float64


@pytest.mark.parametrize("shape", SHAPES)
def test_force_matches_autograd_and_finite_differences(action, shape):
    phi = _field(shape, batch=2)
    F = action.force(phi)
    assert torch.allclose(F, autograd_force(action, phi), atol=1e-10)
    # central finite difference at a few sites
    eps = 1e-6
    for idx in [(0,) + (0,) * len(shape), (1,) + (1,) * len(shape)]:
        d = torch.zeros_like(phi)
        d[idx] = eps
        fd = -(action(phi + d) - action(phi - d))[idx[0]] / (2 * eps)
        assert abs(fd.item() - F[idx].item()) < 1e-5 * max(1.0, abs(F[idx].item()))


def test_free_action_is_quadratic_form_of_lattice_laplacian():
    # S = phi^T (-Laplacian + m^2) phi in the no-1/2 convention of arXiv:2101.08176.
    m2, shape = 0.7, (4, 6)
    phi = _field(shape)
    lap = sum(shift(phi, mu, 1) + shift(phi, mu, -1) - 2 * phi for mu in range(2))
    expected = (phi * (-lap + m2 * phi)).sum((1, 2))
    assert torch.allclose(Phi4Action(m2, 0.0)(phi), expected, atol=1e-10)


def test_z2_and_translation_symmetry(action):
    phi = _field((6, 4))
    S = action(phi)
    assert torch.allclose(action(-phi), S, atol=1e-10)
    assert torch.allclose(action(torch.roll(phi, (1, 3), dims=(1, 2))), S, atol=1e-10)
    assert torch.allclose(action(phi.flip(1)), S, atol=1e-10)


def test_local_action_gives_exact_single_site_change(action):
    phi = _field((4, 4), batch=1)
    new = phi.clone()
    new[0, 2, 1] += 0.37
    nbr = Phi4Action.neighbour_sum(phi)
    ds_local = (action.local_action(new, nbr, 2) - action.local_action(phi, nbr, 2))[0, 2, 1]
    assert torch.allclose(ds_local, (action(new) - action(phi))[0], atol=1e-10)


@pytest.mark.parametrize(
    "m2, lam, message",
    [
        (-4.0, -1.0, "lam"),
        (float("nan"), 1.0, "m2"),
        (-1.0, 0.0, "unbounded"),
        (1.0, float("inf"), "lam"),
    ],
)
def test_bad_couplings(m2, lam, message):
    with pytest.raises(ValueError, match=message):
        Phi4Action(m2, lam)


def test_bad_fields():
    action = Phi4Action(-4.0, 8.0)
    with pytest.raises(ValueError, match="float"):
        action(torch.zeros(2, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="batched"):
        action(torch.zeros(4))
    with pytest.raises(ValueError, match=">= 2"):
        action(torch.zeros(2, 1, 4))
    with pytest.raises(TypeError, match="Tensor"):
        action([[0.0, 1.0], [1.0, 0.0]])


def test_lattice_helpers_errors_and_masks():
    mask = checkerboard((4, 6), parity=0)
    assert mask.sum() == 12 and mask[0, 0] == 1 and mask[0, 1] == 0
    assert torch.equal(mask + checkerboard((4, 6), parity=1), torch.ones(4, 6))
    with pytest.raises(ValueError, match="even"):
        checkerboard((7, 7))
    with pytest.raises(ValueError, match="parity"):
        checkerboard((4, 4), parity=2)
    with pytest.raises(ValueError, match=">= 2"):
        lattice_shape(1)
    assert lattice_shape(8) == (8, 8) and lattice_shape((4, 6)) == (4, 6)
