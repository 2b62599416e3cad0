"""Contract suite for every flow layer and model: one set of properties, every implementation."""

import math

import pytest
import torch

from lqft_lab.flows import (
    AffineCoupling,
    ConvNet,
    Flow,
    PeriodicConv2d,
    build_real_nvp,
    periodic_pad,
    transfer_real_nvp,
)
from lqft_lab.lattice import checkerboard

L = 4


def _affine_layer():
    return AffineCoupling(ConvNet(1, 2, (8, 8), 3, final_tanh=True), checkerboard((L, L), 0))


def _affine_no_tanh():
    # Without the final tanh the scale is unbounded: the exp(s) path is exercised fully.
    return AffineCoupling(ConvNet(1, 2, (4,), 3, final_tanh=False), checkerboard((L, L), 1))


def _flow_stack():
    return build_real_nvp(L=L, n_layers=4, hidden=(8, 8), seed=1).flow


# Every layer or stack with forward(z) -> (x, logJ) and reverse(x) -> (z, logJ_inv).
FLOWS = {"affine": _affine_layer, "affine_no_tanh": _affine_no_tanh, "real_nvp_stack": _flow_stack}


def _randomised(flow):
    """Perturb every parameter so the tests do not rest on a near-identity initialisation."""
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


@pytest.fixture(params=sorted(FLOWS))
def flow(request):
    torch.manual_seed(0)
    return _randomised(FLOWS[request.param]().double())


def test_round_trip_float64(flow):
    z = torch.randn(5, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, logJ = flow(z)
    z_back, logJ_inv = flow.reverse(x)
    assert x.shape == z.shape and logJ.shape == (5,)
    assert torch.allclose(z_back, z, atol=1e-12, rtol=0)
    assert torch.allclose(logJ + logJ_inv, torch.zeros(5, dtype=torch.float64), atol=1e-12)
    assert not torch.allclose(x, z), "the flow must actually change the field"


def test_logJ_matches_autograd_jacobian(flow):
    z = torch.randn(3, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, logJ = flow(z)
    for b in range(z.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, L, L))[0].flatten(), z[b])
        sign, logabsdet = torch.linalg.slogdet(jac.reshape(L * L, L * L))
        assert sign != 0
        assert math.isclose(logabsdet.item(), logJ[b].item(), rel_tol=0, abs_tol=1e-10)


def test_gradients_reach_every_parameter(flow):
    z = torch.randn(4, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x, logJ = flow(z)
    (x.pow(2).sum() + logJ.sum()).backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name} has zero gradient"


def test_logJ_follows_input_dtype_and_device(flow):
    z = torch.randn(2, L, L, dtype=torch.float64)
    _, logJ = flow(z)
    assert logJ.dtype == z.dtype and logJ.device == z.device


def test_even_translations_commute_with_the_flow():
    # Circular convolutions and checkerboard masks make the flow equivariant under shifts
    # that preserve the checkerboard parity.
    flow = _randomised(_flow_stack().double())
    z = torch.randn(3, L, L, dtype=torch.float64)
    shifted = torch.roll(z, shifts=(2, 1), dims=(1, 2))  # total shift 3 is odd: parity flips
    even = torch.roll(z, shifts=(1, 1), dims=(1, 2))
    x, logJ = flow(z)
    x_even, logJ_even = flow(even)
    assert torch.allclose(x_even, torch.roll(x, shifts=(1, 1), dims=(1, 2)), atol=1e-12)
    assert torch.allclose(logJ_even, logJ, atol=1e-12)
    x_odd, _ = flow(shifted)
    assert not torch.allclose(x_odd, torch.roll(x, shifts=(2, 1), dims=(1, 2)), atol=1e-6)


def test_model_sample_and_log_prob_agree():
    model = _randomised(build_real_nvp(L=L, n_layers=4, seed=0)).double()
    gen = torch.Generator().manual_seed(3)
    x, logq = model.sample(16, generator=gen)
    assert x.shape == (16, L, L) and logq.shape == (16,)
    assert torch.allclose(model.log_prob(x), logq, atol=1e-10)


def test_model_density_normalised_on_a_tiny_lattice():
    # q must integrate to one: E_{x~N(0,s^2)}[q(x)/N(x)] = 1 by importance sampling, checked
    # within 4 standard errors.
    torch.manual_seed(0)
    model = build_real_nvp(L=2, n_layers=2, hidden=(4,), seed=0).double()
    gen = torch.Generator().manual_seed(4)
    s = 1.5
    y = s * torch.randn(200_000, 2, 2, dtype=torch.float64, generator=gen)
    log_ref = (-0.5 * (y / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).sum((1, 2))
    with torch.no_grad():
        ratio = torch.exp(model.log_prob(y) - log_ref)
    mean, err = ratio.mean().item(), ratio.std().item() / math.sqrt(len(ratio))
    assert abs(mean - 1) < 4 * err, (mean, err)


def test_same_seed_gives_identical_models_and_samples():
    a, b = build_real_nvp(L=L, n_layers=2, seed=5), build_real_nvp(L=L, n_layers=2, seed=5)
    xa, _ = a.sample(4, generator=torch.Generator().manual_seed(0))
    xb, _ = b.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(xa, xb)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"L": 7}, "even"),
        ({"L": 1}, ">= 2"),
        ({"n_layers": 0}, "n_layers"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"kernel_size": 2}, "odd"),
    ],
)
def test_bad_architecture_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_real_nvp(**kwargs)


def test_wrong_field_shape_is_a_clear_error():
    model = build_real_nvp(L=L, n_layers=2)
    with pytest.raises(ValueError, match="does not match"):
        model.log_prob(torch.zeros(2, 6, 6))
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(0)


def test_flow_of_no_layers_is_identity():
    z = torch.randn(2, L, L)
    x, logJ = Flow([])(z)
    assert torch.equal(x, z) and torch.equal(logJ, torch.zeros(2))


def test_periodic_pad_and_conv_match_torch_circular_padding():
    x = torch.randn(3, 2, 6, 4, dtype=torch.float64)
    for pad in (0, 1, 2):
        expected = torch.nn.functional.pad(x, (pad,) * 4, mode="circular") if pad else x
        assert torch.equal(periodic_pad(x, pad), expected)
    torch.manual_seed(0)
    ours = PeriodicConv2d(2, 5, 3).double()
    reference = torch.nn.Conv2d(2, 5, 3, padding=1, padding_mode="circular").double()
    reference.load_state_dict(ours.state_dict())  # same keys: old checkpoints still load
    assert torch.allclose(ours(x), reference(x), atol=1e-12)


def test_transfer_keeps_the_weights_and_the_translation_equivariance():
    model = _randomised(build_real_nvp(L=4, n_layers=4, seed=0)).double()
    big = transfer_real_nvp(model, 8)
    assert big.lattice_shape == (8, 8) and big.config.L == 8 and model.config.L == 4
    for (name, p), (name_big, p_big) in zip(
        model.named_parameters(), big.named_parameters(), strict=True
    ):
        assert name == name_big and torch.equal(p, p_big)
        assert p.data_ptr() != p_big.data_ptr()  # a copy: fine-tuning one leaves the other
    # A field that is periodic with period 4 in both directions, seen on the 8x8 lattice:
    # the transferred flow must act on each 4x4 tile exactly as the original flow does.
    z = torch.randn(2, 4, 4, dtype=torch.float64)
    x_small, logJ_small = model.flow(z)
    x_big, logJ_big = big.flow(z.repeat(1, 2, 2))
    assert torch.allclose(x_big, x_small.repeat(1, 2, 2), atol=1e-12)
    assert torch.allclose(logJ_big, 4 * logJ_small, atol=1e-10)
    # and it is still an exact density: sample and log_prob agree at the new size
    x, logq = big.sample(8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(big.log_prob(x), logq, atol=1e-10)


def test_transfer_bad_input():
    model = build_real_nvp(L=4, n_layers=2, seed=0)
    with pytest.raises(ValueError, match="even"):
        transfer_real_nvp(model, 5)
    with pytest.raises(TypeError, match="build_real_nvp"):
        transfer_real_nvp(model.flow, 8)
