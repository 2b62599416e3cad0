"""Contract suite for every flow layer and model: one set of properties, every implementation."""

import math

import pytest
import torch

from lqft_lab import exact
from lqft_lab.actions import Phi4Action
from lqft_lab.flows import (
    AffineCoupling,
    ConvNet,
    Flow,
    PeriodicConv2d,
    SpectralNormalPrior,
    build_real_nvp,
    momentum_features,
    periodic_pad,
    transfer_real_nvp,
)
from lqft_lab.lattice import checkerboard
from lqft_lab.train import TrainConfig, Trainer, evaluate

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


@pytest.mark.parametrize("spectral_prior", [False, True])
def test_model_density_normalised_on_a_tiny_lattice(spectral_prior):
    # q must integrate to one: E_{x~N(0,s^2)}[q(x)/N(x)] = 1 by importance sampling, checked
    # within 4 standard errors. The spectral prior is randomised so it is not N(0, 1).
    torch.manual_seed(0)
    model = build_real_nvp(L=2, n_layers=2, hidden=(4,), spectral_prior=spectral_prior, seed=0)
    model = model.double()
    if spectral_prior:
        _randomised(model.prior)
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


class _FreeSpectrum(torch.nn.Module):
    """The exact free-field log-scales ``a = -log(2(p̂² + m²))/2`` from the prior's features."""

    def __init__(self, m2: float, d: int = 2):
        super().__init__()
        self.m2, self.d = m2, d

    def forward(self, features):
        p2 = 4 * self.d * features[..., :1]
        return -0.5 * torch.log(2 * (p2 + self.m2))


def test_momentum_features_are_the_lattice_laplacian_and_its_quartic_invariant():
    f = momentum_features((6, 4)).double()
    assert f.shape == (6, 4, 2) and f.min() >= 0 and f.max() <= 1
    p2 = torch.from_numpy(exact.lattice_momentum_squared((6, 4)))
    assert torch.allclose(8 * f[..., 0], p2, atol=1e-6)
    # even in k and symmetric under the exchange of equal axes
    assert torch.equal(f, f[(-torch.arange(6)) % 6][:, (-torch.arange(4)) % 4])
    g = momentum_features((6, 6))
    assert torch.equal(g, g.transpose(0, 1))


def test_spectral_prior_with_the_free_spectrum_is_the_free_field():
    # exp(-S) / Z exactly: log r(x) + S(x) = -log Z for every x, in float64, with the exact
    # finite-volume log Z; and its samples have the exact <phi^2> (within 4 standard errors).
    m2, shape = 0.5, (6, 4)
    prior = SpectralNormalPrior(shape, _FreeSpectrum(m2)).double()
    x = prior.sample(20_000, generator=torch.Generator().manual_seed(0))
    log_z = exact.free_field_log_z(shape, m2)
    with torch.no_grad():
        residual = prior.log_prob(x[:8]) + Phi4Action(m2, 0.0)(x[:8]) + log_z
    assert residual.abs().max() < 1e-10, residual
    phi2 = x.pow(2).mean(dim=(1, 2))
    mean, err = phi2.mean().item(), phi2.std().item() / math.sqrt(len(phi2))
    assert abs(mean - exact.free_field_phi2(shape, m2)) < 4 * err, (mean, err)


def test_spectral_prior_log_prob_is_its_samples_gaussian_density():
    # A randomised spectrum: the prior maps white noise linearly, z = M eps, so its density is
    # N(0, M M^T); M is read off by mapping the unit vectors.
    prior = _randomised(SpectralNormalPrior((4, 6))).double()
    n = 24
    with torch.no_grad():
        M = prior._scale(torch.eye(n, dtype=torch.float64).view(n, 4, 6), prior.log_scale())
        M = M.view(n, n).T
        reference = torch.distributions.MultivariateNormal(torch.zeros(n, dtype=M.dtype), M @ M.T)
        z = prior.sample(5, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(prior.log_prob(z), reference.log_prob(z.view(5, n)), atol=1e-9)
        assert not torch.allclose(M @ M.T, torch.eye(n, dtype=M.dtype), atol=0.1)  # not white


def test_model_with_a_spectral_prior_scores_its_samples_and_trains_its_prior():
    model = _randomised(build_real_nvp(L=4, n_layers=4, spectral_prior=True, seed=0)).double()
    x, logq = model.sample(16, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(model.log_prob(x), logq, atol=1e-10)
    # (its normalisation: test_model_density_normalised_on_a_tiny_lattice[True])
    loss = -model.sample(8, generator=torch.Generator().manual_seed(5))[1].mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())


def test_training_the_spectral_prior_alone_learns_the_free_field():
    # Couplings held at the identity: the prior must carry the free field by itself. Its
    # reverse KL per site (exact log Z) must fall 1000-fold from the white-noise start (3.0 ->
    # 0.0014 here) and the ESS on fresh samples pass 0.8 (0.87 here). What is left is the
    # small network's fit of the log-spectrum, not the form: with the exact spectrum the
    # prior is the free field itself (the test above).
    m2, L = 0.5, 6
    action = Phi4Action(m2, 0.0)
    model = build_real_nvp(L=L, n_layers=2, hidden=(4,), spectral_prior=True, seed=0)
    with torch.no_grad():
        for p in model.flow.parameters():  # zero nets: s = t = 0, each coupling the identity
            p.zero_().requires_grad_(False)

    log_z = exact.free_field_log_z((L, L), m2)

    def kl_per_site():
        q = evaluate(model, action, 4096, generator=torch.Generator().manual_seed(9))
        return (q["loss"] + log_z) / L**2, q

    before, _ = kl_per_site()
    Trainer(model, action, TrainConfig(n_steps=400, batch_size=64, lr=3e-2, seed=0)).train()
    after, q = kl_per_site()
    assert after < before / 1000, (before, after)
    assert q["ess"] > 0.8, q


def test_transfer_adds_or_keeps_a_spectral_prior_but_never_drops_one():
    plain = _randomised(build_real_nvp(L=4, n_layers=2, seed=0))
    added = transfer_real_nvp(plain, 8, spectral_prior=True)
    assert isinstance(added.prior, SpectralNormalPrior) and added.config.spectral_prior
    # untrained, the new prior is N(0, 1): the copy samples what the plain flow does at L = 8
    x_plain, logq_plain = transfer_real_nvp(plain, 8).sample(
        4, generator=torch.Generator().manual_seed(2)
    )
    x_added, logq_added = added.sample(4, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(x_added, x_plain, atol=1e-5)
    assert torch.allclose(logq_added, logq_plain, atol=1e-3)
    trained = _randomised(added)
    moved = transfer_real_nvp(trained, 6)
    assert moved.prior.features.shape == (6, 6, 2)
    for (name, p), (_, p_moved) in zip(
        trained.named_parameters(), moved.named_parameters(), strict=True
    ):
        assert torch.equal(p, p_moved), name
    with pytest.raises(ValueError, match="drop"):
        transfer_real_nvp(trained, 6, spectral_prior=False)
