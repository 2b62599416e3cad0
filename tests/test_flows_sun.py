"""SU(N) flows: stick-breaking, the interval spline, the spectral kernel, one-matrix and lattice."""

import dataclasses
import math

import pytest
import torch

from lqft_lab.actions.sun import (
    SingleMatrixAction,
    SUNWilsonAction,
    sun_gauge_transform,
    sun_plaquettes,
)
from lqft_lab.flows import (
    ConvNet,
    HaarLinkPrior,
    HaarPrior,
    IntervalSplineKernel,
    SingleMatrixFlowConfig,
    SpectralKernel,
    SUNFlowConfig,
    SUNGaugeEquivariantCoupling,
    build_single_matrix_flow,
    build_sun_flow,
    cube_to_simplex,
    log_stick_jacobian,
    simplex_to_cube,
    sun_plaquette_features,
    u1_masks,
)
from lqft_lab.groups.sun import (
    dagger,
    haar,
    log_vandermonde_sq,
    project_algebra,
    spectral_decomposition,
    unitarity_violation,
)
from lqft_lab.train import TrainConfig, Trainer

L = 4  # 2 * 4 * 4 links: small enough for brute-force Jacobians
TWO_PI = 2 * math.pi

# How far the tests push the weights from their (identity) initialisation. The spline slopes
# are ratios of softmaxes, so noise of 0.15 already gives |logJ| ~ 1 per matrix; much more
# squeezes eigenvalues together, where eigenvectors (and so round trips) lose digits.
SCALE = 0.15


def _randomised(module, scale=SCALE, seed=11):
    """Perturb every parameter so the tests do not rest on the identity initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _haar(shape, N, seed=0):
    return haar(shape, N, dtype=torch.complex128, generator=torch.Generator().manual_seed(seed))


def _kernel(N, context_dim=0, seed=0):
    torch.manual_seed(seed)
    kernel = SpectralKernel(N, context_dim, n_bins=4, hidden=(8,), n_blocks=2)
    return _randomised(kernel.double())


def _context(batch, context_dim, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, context_dim, generator=gen, dtype=torch.float64)


def _su_basis(N):
    """A real basis ``(N² - 1, N, N)`` of su(N) (anti-Hermitian, traceless)."""
    basis = []
    for j in range(N):
        for k in range(j + 1, N):
            for value in (1.0, 1j):
                E = torch.zeros(N, N, dtype=torch.complex128)
                E[j, k], E[k, j] = value, -value.conjugate()
                basis.append(E)
    for j in range(N - 1):
        E = torch.zeros(N, N, dtype=torch.complex128)
        E[j, j], E[j + 1, j + 1] = 1j, -1j
        basis.append(E)
    return torch.stack(basis)


def _algebra_coords(X, basis):
    """Real coordinates of su(N) elements ``X: (n, N, N)`` in ``basis``: ``(n, N² - 1)``."""
    flat = basis.reshape(len(basis), -1)
    A = torch.cat([flat.real, flat.imag], dim=1).T  # (2 N², N² - 1)
    b = torch.cat([X.reshape(len(X), -1).real, X.reshape(len(X), -1).imag], dim=1).T
    return torch.linalg.lstsq(A, b).solution.T


# --- stick-breaking and the interval spline ----------------------------------------------------


@pytest.mark.parametrize("N", [2, 3, 4])
def test_stick_breaking_round_trip_and_jacobian(N):
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(5, N - 1, generator=gen, dtype=torch.float64)
    x = cube_to_simplex(u)
    assert x.shape == (5, N) and (x >= 0).all()
    assert torch.allclose(x.sum(-1), torch.ones(5, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(simplex_to_cube(x), u, atol=1e-13, rtol=0)
    for b in range(5):
        jac = torch.autograd.functional.jacobian(lambda v: cube_to_simplex(v)[:-1], u[b])
        logdet = torch.linalg.slogdet(jac)[1]
        assert math.isclose(logdet.item(), log_stick_jacobian(u[b]).item(), abs_tol=1e-12)


def test_stick_breaking_is_guarded_at_the_boundary():
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [-1e-18, 0.5, 0.5]], dtype=torch.float64)
    u = simplex_to_cube(x)
    assert torch.isfinite(u).all() and (u > 0).all() and (u < 1).all()
    assert torch.isfinite(log_stick_jacobian(u)).all()


def test_interval_spline():
    kernel = IntervalSplineKernel(5)
    gen = torch.Generator().manual_seed(2)
    params = torch.randn(3, 1, kernel.n_params, generator=gen, dtype=torch.float64)
    x = torch.linspace(0, 1, 201, dtype=torch.float64).expand(3, -1)
    y, logd = kernel(x, params)
    assert torch.equal(y[:, 0], torch.zeros(3).double()) and torch.allclose(y[:, -1], x[:, -1])
    assert (y.diff(dim=1) > 0).all()
    eps = 1e-6
    inner = x[:, 1:-1]
    fd = (kernel(inner + eps, params)[0] - kernel(inner - eps, params)[0]) / (2 * eps)
    assert torch.allclose(logd[:, 1:-1].exp(), fd, rtol=1e-4, atol=0)  # up to knots' kinks
    x_back, logd_inv = kernel.inverse(y, params)
    assert torch.allclose(x_back, x, atol=1e-13, rtol=0)
    assert torch.allclose(logd_inv, -logd, atol=1e-10, rtol=0)
    y0, logd0 = kernel(x, torch.zeros(kernel.n_params, dtype=torch.float64))
    assert torch.allclose(y0, x, atol=1e-15) and torch.allclose(logd0, 0 * x, atol=1e-14)
    with pytest.raises(ValueError, match="n_bins"):
        IntervalSplineKernel(0)
    with pytest.raises(ValueError, match="min_size"):
        IntervalSplineKernel(4, min_size=0.3)
    with pytest.raises(ValueError, match="parameters per element"):
        kernel(x, params[..., :-1])


# --- the spectral kernel -----------------------------------------------------------------------


@pytest.mark.parametrize("N", [2, 3])
def test_kernel_zero_parameters_give_the_identity(N):
    kernel = _kernel(N, context_dim=3)
    with torch.no_grad():
        for p in kernel.parameters():
            p.zero_()
    U = _haar(6, N)
    U2, logJ = kernel(U, _context((6,), 3))
    assert torch.allclose(U2, U, atol=1e-13, rtol=0)
    assert torch.allclose(logJ, torch.zeros(6, dtype=torch.float64), atol=1e-13, rtol=0)


@pytest.mark.parametrize("context_dim", [0, 3])
@pytest.mark.parametrize("N", [2, 3])
def test_kernel_conjugation_equivariance(N, context_dim):
    kernel = _kernel(N, context_dim)
    U, omega = _haar(6, N, seed=1), _haar(6, N, seed=2)
    context = _context((6,), context_dim) if context_dim else None
    U2, logJ = kernel(U, context)
    assert (U2 - U).abs().max() > 1e-2 and logJ.abs().max() > 0.1, "the kernel must act"
    U2_conj, logJ_conj = kernel(omega @ U @ dagger(omega), context)
    assert torch.allclose(U2_conj, omega @ U2 @ dagger(omega), atol=1e-10, rtol=0)
    assert torch.allclose(logJ_conj, logJ, atol=1e-10, rtol=0)


@pytest.mark.parametrize("N", [2, 3])
def test_kernel_round_trip(N):
    kernel = _kernel(N, context_dim=2)
    U, context = _haar(8, N, seed=3), _context((8,), 2)
    U2, logJ = kernel(U, context)
    back, logJ_inv = kernel.inverse(U2, context)
    assert torch.allclose(back, U, atol=1e-10, rtol=0)
    assert torch.allclose(logJ + logJ_inv, torch.zeros(8, dtype=torch.float64), atol=1e-10)
    assert unitarity_violation(U2).max() < 1e-12
    theta, _ = spectral_decomposition(U)
    theta2, logJ_phases = kernel.forward_phases(theta, context)
    assert torch.allclose(logJ_phases, logJ, atol=1e-12, rtol=0)
    theta_back, _ = kernel.inverse_phases(theta2, context)
    assert torch.allclose(theta_back, theta, atol=1e-12, rtol=0)


@pytest.mark.parametrize("N", [2, 3])
def test_phase_logJ_matches_autograd_jacobian(N):
    # logJ = log|∂θ'/∂θ| on (θ_1 … θ_{N-1}) (θ_N = -Σ) plus the change of the Weyl weight
    kernel = _kernel(N, context_dim=2)
    theta, _ = spectral_decomposition(_haar(4, N, seed=4))
    context = _context((4,), 2)
    _, logJ = kernel.forward_phases(theta, context)
    for b in range(4):

        def head(v, b=b):
            full = torch.cat([v, -v.sum(-1, keepdim=True)])
            return kernel.forward_phases(full, context[b])[0][:-1]

        jac = torch.autograd.functional.jacobian(head, theta[b, :-1])
        theta2 = kernel.forward_phases(theta[b], context[b])[0]
        expected = torch.linalg.slogdet(jac)[1] + log_vandermonde_sq(theta2)
        expected = expected - log_vandermonde_sq(theta[b])
        assert math.isclose(expected.item(), logJ[b].item(), abs_tol=1e-10)


@pytest.mark.parametrize("N", [2, 3])
def test_matrix_logJ_matches_exp_map_jacobian(N):
    # The density ratio w.r.t. Haar measure is |∂ε'/∂ε| in exponential coordinates
    # U = e^{ε·T} U_0 and U' = e^{ε'·T} U'_0 at ε = 0 (Haar is left-invariant); the derivative
    # runs through the kernel's perturbation-theory gradients (module docstring).
    kernel = _kernel(N, context_dim=0)
    basis = _su_basis(N)
    U0 = _haar(3, N, seed=5)
    U0_new, logJ = kernel(U0)
    for b in range(3):

        def coords(eps, b=b):
            U = torch.linalg.matrix_exp(torch.einsum("a,aij->ij", eps.to(basis.dtype), basis))
            out = kernel((U @ U0[b])[None])[0][0]
            return _algebra_coords(project_algebra(out @ dagger(U0_new[b]))[None], basis)[0]

        jac = torch.autograd.functional.jacobian(coords, torch.zeros(N * N - 1).double())
        assert math.isclose(torch.linalg.slogdet(jac)[1].item(), logJ[b].item(), abs_tol=1e-9)


def test_kernel_bad_input_is_a_clear_error():
    kernel = SpectralKernel(3, context_dim=2)
    with pytest.raises(ValueError, match="context must have shape"):
        kernel(haar(4, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="SU\\(3\\)"):
        kernel(haar(4, 2, dtype=torch.complex64), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="real eigenphases"):
        kernel.forward_phases(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="N must be"):
        SpectralKernel(1)
    with pytest.raises(ValueError, match="hidden"):
        SpectralKernel(3, hidden=(0,))


# --- the one-matrix model ------------------------------------------------------------------------


def _matrix_model(N, seed=0):
    model = build_single_matrix_flow(N, n_bins=4, hidden=(8,), seed=seed).double()
    return _randomised(model)


def test_haar_priors():
    prior = HaarPrior(3)
    z = prior.sample(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, 3, 3) and z.dtype == torch.complex64 and prior.lattice_shape == (3, 3)
    assert prior.log_prob(z).dtype == torch.float32 and torch.equal(
        prior.log_prob(z), 0 * z.real[:, 0, 0]
    )
    z = prior.double().sample(5)
    assert z.dtype == torch.complex128 and unitarity_violation(z).max() < 1e-12
    links = HaarLinkPrior((4, 8), 2).double()
    U = links.sample(3)
    assert U.shape == (3, 2, 4, 8, 2, 2) and links.lattice_shape == (2, 4, 8, 2, 2)
    assert links.lattice == (4, 8) and links.log_prob(U).shape == (3,)
    with pytest.raises(ValueError, match="N must be"):
        HaarPrior(1)
    with pytest.raises(ValueError, match="2D"):
        HaarLinkPrior((4, 4, 4), 2)


@pytest.mark.parametrize("N", [2, 3])
def test_single_matrix_model_density_is_normalised(N):
    # Weyl: ∫ dU q(U) = (1/N!) ∫ dθ_1…dθ_{N-1}/(2π)^{N-1} |Δ(θ)|² q(θ) = 1, by the midpoint
    # rule on the torus (the density is periodic and C⁰ with kinks on the spline knots, so
    # the error falls as the grid spacing squared: below 1e-5 at these sizes).
    model = _matrix_model(N)
    # Offsets 0.25 and 0.6 of a cell keep every grid point off the walls θ_i = θ_j (mod 2π),
    # where log|Δ|² = -inf; the rectangle rule on a periodic integrand takes any offset.
    n = 3000 if N == 2 else 240
    grids = [
        (torch.arange(n, dtype=torch.float64) + offset) * TWO_PI / n - math.pi
        for offset in (0.25, 0.6)[: N - 1]
    ]
    grids = torch.meshgrid(*grids, indexing="ij")
    theta = torch.stack([*grids, -sum(grids)], dim=-1).reshape(-1, N)  # (n^{N-1}, N)
    U = torch.diag_embed(torch.polar(torch.ones_like(theta), theta))
    with torch.no_grad():
        logq = model.log_prob(U)
    assert logq.std() > 0.3, "the test needs a model far from Haar measure"
    integral = torch.exp(logq + log_vandermonde_sq(theta)).mean() / math.factorial(N)
    assert abs(integral.item() - 1) < 1e-4


@pytest.mark.parametrize("N", [2, 3])
def test_single_matrix_model_sample_and_log_prob(N):
    model = _matrix_model(N)
    x, logq = model.sample(64, generator=torch.Generator().manual_seed(3))
    assert x.shape == (64, N, N) and logq.shape == (64,) and logq.dtype == torch.float64
    assert unitarity_violation(x).max() < 1e-12
    assert torch.allclose(model.log_prob(x), logq, atol=1e-10, rtol=0)
    # complex64 samples stay in SU(N) to single precision
    x32, logq32 = model.float().sample(256, generator=torch.Generator().manual_seed(4))
    assert x32.dtype == torch.complex64 and logq32.dtype == torch.float32
    assert unitarity_violation(x32).max() < 1e-5 and torch.isfinite(logq32).all()


@pytest.mark.parametrize("N", [2, 3])
def test_single_matrix_gradients_reach_every_parameter(N):
    model = _matrix_model(N)
    action = SingleMatrixAction(9.0, (0.17, -0.65, 1.22), N)
    x, logq = model.sample(32, generator=torch.Generator().manual_seed(5))
    (logq + action(x)).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name} has zero gradient"


def test_trainer_accepts_single_matrix_models():
    model = build_single_matrix_flow(3, n_bins=4, hidden=(8,), seed=0)
    action = SingleMatrixAction(9.0, (1.0, 0.0, 0.0), 3)
    trainer = Trainer(model, action, TrainConfig(n_steps=4, batch_size=32, log_every=2))
    history = trainer.train()
    assert len(history) == 2 and math.isfinite(history[-1]["loss"]) and trainer.skipped == 0


def test_single_matrix_config():
    a = build_single_matrix_flow(3, seed=5)
    b = build_single_matrix_flow(config=a.config, seed=5)
    assert a.config == SingleMatrixFlowConfig() and a.lattice_shape == (3, 3)
    xa, _ = _randomised(a).sample(4, generator=torch.Generator().manual_seed(0))
    xb, _ = _randomised(b).sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(xa, xb)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.config.N = 2
    c = build_single_matrix_flow(2, config=a.config, n_blocks=3)
    assert c.config.N == 2 and c.flow.kernel.n_blocks == 3
    assert SingleMatrixFlowConfig(**a.config.to_dict()) == a.config
    for kwargs, message in [
        ({"N": 1}, "N must"),
        ({"n_bins": 0}, "n_bins"),
        ({"n_blocks": 0}, "n_blocks"),
        ({"hidden": (4, 0)}, "hidden"),
    ]:
        with pytest.raises(ValueError, match=message):
            build_single_matrix_flow(**kwargs)
    with pytest.raises(ValueError, match="does not match"):
        a.log_prob(haar(2, 2, dtype=torch.complex64))


# --- the lattice flow ----------------------------------------------------------------------------


def _lattice_model(N, n_layers=8, seed=0):
    model = build_sun_flow(
        L, N, n_layers=n_layers, n_bins=4, mlp_hidden=(8,), context_dim=3, hidden=(4,), seed=seed
    )
    return _randomised(model.double(), scale=0.1)


def _layer(N, mu, offset, seed=0):
    torch.manual_seed(seed)
    kernel = SpectralKernel(N, 3, n_bins=4, hidden=(8,))
    net = ConvNet(4, 3, (4,), 3, final_tanh=False)
    layer = SUNGaugeEquivariantCoupling(kernel, net, u1_masks((L, L), mu, offset))
    return _randomised(layer.double(), scale=0.2)


@pytest.mark.parametrize("N", [2, 3])
def test_lattice_flow_round_trip_and_gauge_equivariance(N):
    model = _lattice_model(N)
    U = _haar((3, 2, L, L), N, seed=1)
    omega = _haar((3, L, L), N, seed=2)
    x, logJ = model.flow(U)
    assert x.shape == U.shape and logJ.shape == (3,) and logJ.dtype == torch.float64
    assert (x - U).abs().max() > 1e-2 and logJ.abs().min() > 0.1, "the flow must act"
    assert unitarity_violation(x).max() < 1e-12
    back, logJ_inv = model.flow.reverse(x)
    assert torch.allclose(back, U, atol=1e-10, rtol=0)
    assert torch.allclose(logJ + logJ_inv, torch.zeros(3, dtype=torch.float64), atol=1e-10)
    x_g, logJ_g = model.flow(sun_gauge_transform(U, omega))
    assert torch.allclose(x_g, sun_gauge_transform(x, omega), atol=1e-10, rtol=0)
    assert torch.allclose(logJ_g, logJ, atol=1e-10, rtol=0)
    back_g, logJ_inv_g = model.flow.reverse(sun_gauge_transform(x, omega))
    assert torch.allclose(back_g, sun_gauge_transform(back, omega), atol=1e-10, rtol=0)
    assert torch.allclose(logJ_inv_g, logJ_inv, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mu", [0, 1])
@pytest.mark.parametrize("N", [2, 3])
def test_layer_logJ_matches_exp_map_jacobian(N, mu):
    # Brute force over every updated link at once: perturb U_mu(x) → e^{ε_x·T} U_mu(x) on the
    # active links, read ε'_x off the outputs by the log map (to first order), and compare
    # log|det ∂ε'/∂ε| ((N² - 1) n_active square) with the layer's logJ. The other links do not
    # move, so the full Jacobian is block triangular with this block.
    layer = _layer(N, mu, offset=1)
    basis, active = _su_basis(N), layer.active_index
    U = _haar((1, 2, L, L), N, seed=3)
    x0, logJ = layer(U)

    def coords(eps):  # (n_active, N² - 1) -> (n_active, N² - 1)
        rot = torch.linalg.matrix_exp(torch.einsum("sa,aij->sij", eps.to(basis.dtype), basis))
        link = U[:, mu].flatten(1, 2)
        link = link.index_copy(1, active, rot[None] @ link[:, active])
        links = [U[:, 0], U[:, 1]]
        links[mu] = link.view(1, L, L, N, N)
        y = layer(torch.stack(links, dim=1))[0]
        moved = y[0, mu].flatten(0, 1)[active] @ dagger(x0[0, mu].flatten(0, 1)[active])
        return _algebra_coords(project_algebra(moved), basis)

    n = len(active) * (N * N - 1)
    eps = torch.zeros(len(active), N * N - 1, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(coords, eps).reshape(n, n)
    assert math.isclose(torch.linalg.slogdet(jac)[1].item(), logJ.item(), abs_tol=1e-9)
    assert (x0 - U).abs().max() > 1e-2 and (jac - torch.eye(n)).abs().max() > 1e-2


@pytest.mark.parametrize("mu", [0, 1])
def test_layer_sets_the_active_loops_and_touches_nothing_else(mu):
    N = 3
    layer = _layer(N, mu, offset=2)
    masks = u1_masks((L, L), mu, 2)
    U = _haar((2, 2, L, L), N, seed=4)
    x, logJ = layer(U)
    P, P_new = sun_plaquettes(U), sun_plaquettes(x)
    loop, loop_new = P[:, masks.active], P_new[:, masks.active]
    if mu == 1:  # U_1(x) starts the reversed loop U_P(x)†
        loop, loop_new = dagger(loop), dagger(loop_new)
    context = layer.conditioner(sun_plaquette_features(P) * masks.frozen)
    expected, logJ_sites = layer.kernel(loop, context[:, :, masks.active].transpose(1, 2))
    assert torch.allclose(loop_new, expected, atol=1e-12, rtol=0)
    assert torch.allclose(logJ, logJ_sites.sum(dim=1), atol=1e-12, rtol=0)
    assert torch.equal(x[:, ~masks.links], U[:, ~masks.links])
    assert torch.allclose(P_new[:, masks.frozen], P[:, masks.frozen], atol=1e-13, rtol=0)


@pytest.mark.parametrize("N", [2, 3])
def test_lattice_model_log_prob_and_gauge_invariant_action(N):
    model = _lattice_model(N)
    action = SUNWilsonAction(2.0, N)
    x, logq = model.sample(4, generator=torch.Generator().manual_seed(5))
    assert x.shape == (4, 2, L, L, N, N) and model.lattice_shape == (2, L, L, N, N)
    assert torch.allclose(model.log_prob(x), logq, atol=1e-10, rtol=0)
    omega = _haar((4, L, L), N, seed=6)
    assert torch.allclose(model.log_prob(sun_gauge_transform(x, omega)), logq, atol=1e-10)
    z = model.prior.sample(4, generator=torch.Generator().manual_seed(7))
    x_z, _ = model.flow(z)
    x_gz, _ = model.flow(sun_gauge_transform(z, omega))
    assert torch.allclose(action(x_gz), action(x_z), atol=1e-10, rtol=0)


def test_lattice_gradients_reach_every_parameter_and_match_finite_differences():
    # Layer 1 decomposes loops that layer 0 has moved: its gradient runs through the
    # perturbation-theory derivatives of the eigen-decomposition.
    model = _lattice_model(3, n_layers=2)
    action = SUNWilsonAction(2.0, 3)
    z = model.prior.sample(2, generator=torch.Generator().manual_seed(8))

    def loss():
        x, logJ = model.flow(z)
        return (action(x) - logJ).sum()

    loss().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name} has zero gradient"
    weight = model.flow.layers[0].conditioner[0].weight  # reaches layer 1 only through links
    eps = 1e-6
    with torch.no_grad():
        for k in range(4):
            weight.view(-1)[k] += eps
            up = loss()
            weight.view(-1)[k] -= 2 * eps
            down = loss()
            weight.view(-1)[k] += eps
            fd = (up - down).item() / (2 * eps)
            assert math.isclose(weight.grad.view(-1)[k].item(), fd, rel_tol=1e-5, abs_tol=1e-7)


def test_lattice_model_trains_in_single_precision():
    model = build_sun_flow(L, 2, n_layers=2, mlp_hidden=(8,), hidden=(4,), seed=0)
    action = SUNWilsonAction(2.0, 2)
    trainer = Trainer(model, action, TrainConfig(n_steps=2, batch_size=4, log_every=1))
    trainer.train()
    assert trainer.skipped == 0 and math.isfinite(trainer.history[-1]["loss"])
    x, logq = model.sample(4)
    assert x.dtype == torch.complex64 and logq.dtype == torch.float32
    assert unitarity_violation(x).max() < 1e-5


def test_sun_flow_config_and_errors():
    a = build_sun_flow(8, 3, n_layers=2, seed=5)
    assert a.config == SUNFlowConfig(L=8, N=3, n_layers=2) and a.lattice_shape == (2, 8, 8, 3, 3)
    assert SUNFlowConfig(**a.config.to_dict()) == a.config
    b = build_sun_flow(config=a.config, N=2, context_dim=0)
    assert b.config.L == 8 and b.flow.layers[0].conditioner is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.config.L = 4
    for kwargs, message in [
        ({"L": 6}, "multiple of 4"),
        ({"N": 1}, "N must"),
        ({"n_layers": 0}, "n_layers"),
        ({"context_dim": -1}, "context_dim"),
        ({"hidden": (0,)}, "hidden"),
        ({"kernel_size": 2}, "odd"),
    ]:
        with pytest.raises(ValueError, match=message):
            build_sun_flow(**kwargs)
    layer = a.flow.layers[0]
    with pytest.raises(ValueError, match="do not fit"):
        layer(haar((2, 2, 4, 4), 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="do not fit"):
        layer(haar((2, 2, 8, 8), 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="conditioner is needed"):
        SUNGaugeEquivariantCoupling(SpectralKernel(3, 2), None, u1_masks((8, 8), 0, 0))
    wrong = SUNGaugeEquivariantCoupling(SpectralKernel(3, 2), ConvNet(4, 3), u1_masks((8, 8), 0, 0))
    with pytest.raises(ValueError, match="conditioner returned"):
        wrong(haar((2, 2, 8, 8), 3, dtype=torch.complex64))
