"""Gauge-equivariant U(1) flows: stripe masks, the NCP kernel, the coupling layer, the model."""

import dataclasses
import itertools
import math

import pytest
import torch

from lqft_lab.actions.u1 import gauge_transform, plaquette_angles, wrap_angle
from lqft_lab.flows import (
    CircularSplineKernel,
    ConvNet,
    Flow,
    GaugeEquivariantCoupling,
    LineRotationCoupling,
    NCPKernel,
    U1FlowConfig,
    UniformAnglePrior,
    WithContext,
    add_context,
    add_line_rotations,
    add_loops_2x1,
    build_u1_flow,
    stripe_offset,
    u1_masks,
)

L = 4  # 2 * 4 * 4 = 32 link angles: small enough for full Jacobians
TWO_PI = 2 * math.pi


def _randomised(module, scale=0.3, seed=11):
    """Perturb every parameter so the tests do not rest on a near-identity initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _layer(mu, offset, n_mixture=2, rotation=True, size=L, kernel=None):
    kernel = kernel or NCPKernel(n_mixture, rotation)
    net = ConvNet(2, kernel.n_params, (8,), 3, final_tanh=False)
    return GaugeEquivariantCoupling(kernel, net, u1_masks((size, size), mu, offset))


def _links(batch, size=L, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return TWO_PI * torch.rand(batch, 2, size, size, generator=gen, dtype=torch.float64) - math.pi


def _mod2pi_err(a, b):
    return wrap_angle(a - b).abs().max().item()


FLOWS = {
    "layer_mu0": lambda: _layer(0, 1),
    "layer_mu1_one_component": lambda: _layer(1, 2, n_mixture=1, rotation=False),
    "two_layers": lambda: Flow([_layer(0, 0), _layer(1, 3, n_mixture=3)]),
    "full_cycle": lambda: build_u1_flow(L, n_layers=8, hidden=(8,), seed=0).flow,
    "loops_2x1_full_cycle": lambda: (
        build_u1_flow(L, n_layers=8, hidden=(8,), loops_2x1=True, seed=0).flow
    ),
    "line_rotations_full_cycle": lambda: (
        build_u1_flow(L, n_layers=8, hidden=(8,), line_rotations=True, seed=0).flow
    ),
    "spline_layer_mu1": lambda: _layer(1, 0, kernel=CircularSplineKernel(4)),
    "spline_full_cycle": lambda: (
        build_u1_flow(L, n_layers=8, kernel="spline", n_bins=4, hidden=(8,), seed=0).flow
    ),
}

# How far the tests push the weights from their initialisation. A round trip can only be as
# good as ulp / h' per layer, and every later conditioner amplifies that. The spline's slopes
# are ratios of two softmaxes (bin heights over widths), so the same weight noise gives far
# more extreme slopes than the NCP's softplus: 0.3 drives stacked splines to h' ~ e^-12 and
# round trips to 1e-3. 0.1 still moves every layer well away from the identity (|logJ| > 1).
# With the 2×1 loops the first convolution sums four input channels, not two: noise scaled
# by 1/√2 keeps its output spread (at the full 0.3, 16 layers invert only to 1e-8).
SCALE = {"ncp": 0.3, "spline": 0.1, "ncp_loops_2x1": 0.3 / math.sqrt(2)}


@pytest.fixture(params=sorted(FLOWS))
def flow(request):
    torch.manual_seed(0)
    kind = "spline" if request.param.startswith("spline") else "ncp"
    scale = SCALE[kind + ("_loops_2x1" if "loops_2x1" in request.param else "")]
    return _randomised(FLOWS[request.param]().double(), scale=scale)


# --- masks -----------------------------------------------------------------------------------


def _plaquette_links(shape):
    """``{plaquette y: [(mu, x, sign), ...]}`` straight from the definition of θ_P(y)."""
    L0, L1 = shape
    out = {}
    for y0 in range(L0):
        for y1 in range(L1):
            out[(y0, y1)] = [
                (0, (y0, y1), +1),
                (1, ((y0 + 1) % L0, y1), +1),
                (0, (y0, (y1 + 1) % L1), -1),
                (1, (y0, y1), -1),
            ]
    return out


@pytest.mark.parametrize("shape", [(4, 4), (8, 4), (4, 8), (8, 12)])
@pytest.mark.parametrize("mu", [0, 1])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_mask_invariants(shape, mu, offset):
    m = u1_masks(shape, mu, offset)
    assert m.links.shape == (2, *shape) and m.active.shape == shape
    # active, passive and frozen plaquettes partition the lattice
    count = m.active.int() + m.passive.int() + m.frozen.int()
    assert torch.equal(count, torch.ones(shape, dtype=torch.int32))
    assert m.frozen.sum() == m.active.numel() // 2 and m.active.sum() == m.active.numel() // 4
    # only direction-mu links are active; the signs live exactly on the active links
    assert not m.links[1 - mu].any()
    assert torch.equal(m.link_sign != 0, m.links)
    active_links = {(mu, tuple(x)) for x in m.links[mu].nonzero().tolist()}
    for y, members in _plaquette_links(shape).items():
        hits = [(nu, x, sign) for nu, x, sign in members if (nu, x) in active_links]
        assert len(hits) <= 1, "two active links share a plaquette"
        if m.frozen[y]:
            assert not hits, f"frozen plaquette {y} contains an active link"
        elif m.active[y]:
            # the active link of an active plaquette is the link at the same site, and its
            # orientation there is the stored sign
            assert len(hits) == 1
            nu, x, sign = hits[0]
            assert x == y and m.link_sign[nu][x].item() == sign
        else:
            assert len(hits) == 1, f"passive plaquette {y} must contain one active link"
    # each active link sits in exactly one active plaquette (and one passive one)
    for nu, x in active_links:
        holders = [
            y for y, mem in _plaquette_links(shape).items() if (nu, x) in {m_[:2] for m_ in mem}
        ]
        assert len(holders) == 2
        assert sum(bool(m.active[y]) for y in holders) == 1
        assert sum(bool(m.passive[y]) for y in holders) == 1


def test_a_cycle_of_eight_layers_updates_every_link_once():
    for n_layers, expected in [(8, 1), (16, 2)]:
        model = build_u1_flow(8, n_layers=n_layers, seed=0)
        total = sum(layer.link_sign.abs().int() for layer in model.flow.layers)
        assert torch.equal(total, torch.full((2, 8, 8), expected, dtype=torch.int32))
    seven = build_u1_flow(8, n_layers=7, seed=0)
    assert (sum(layer.link_sign.abs().int() for layer in seven.flow.layers) == 0).any()


def test_each_layer_disturbs_only_the_next_layers_active_plaquettes():
    # The default order steps the offset down: a layer's passive plaquettes (which it
    # disturbs) are the active plaquettes of the next layer of the same direction, and no
    # layer disturbs what the previous one just transformed (where the cycle of four offsets
    # wraps around, it disturbs plaquettes transformed three layers before). Stepping up
    # (+1) disturbs the previous layer's work at every layer.
    model = build_u1_flow(8, n_layers=16, seed=0)
    assert [layer.offset for layer in model.flow.layers[::2]] == [0, 3, 2, 1] * 2
    for step, overlaps in [(-1, 0), (1, 7)]:
        masks = [u1_masks((8, 8), mu=0, offset=stripe_offset(2 * k, step)) for k in range(8)]
        pairs = list(zip(masks, masks[1:], strict=False))  # consecutive layers
        assert all(torch.equal(a.passive, b.active) for a, b in pairs) == (step == -1)
        # layers that disturb what the previous layer (same direction) just transformed
        redone = sum(bool((b.passive & a.active).any()) for a, b in pairs)
        assert redone == overlaps
    with pytest.raises(ValueError, match="offset_step"):
        build_u1_flow(8, offset_step=2)


@pytest.mark.parametrize(
    "args, message",
    [
        (((6, 8), 1, 0), "multiple of 4"),  # the stripes run across direction 0
        (((8, 6), 0, 0), "multiple of 4"),
        (((8, 8), 2, 0), "mu"),
        (((8, 8), 0, 4), "offset"),
        (((8, 8, 8), 0, 0), "2D"),
    ],
)
def test_bad_mask_input_is_a_clear_error(args, message):
    with pytest.raises(ValueError, match=message):
        u1_masks(*args)


# --- the kernels ----------------------------------------------------------------------------

KERNELS = {
    "ncp1": lambda: NCPKernel(1, rotation=False),
    "ncp3_rotation": lambda: NCPKernel(3, rotation=True),
    "spline3": lambda: CircularSplineKernel(3, rotation=False),
    "spline8_rotation": lambda: CircularSplineKernel(8, rotation=True),
}


@pytest.fixture(params=sorted(KERNELS))
def kernel(request):
    return KERNELS[request.param]()


def _kernel_params(kernel, n_points, batch=3, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, kernel.n_params, n_points)
    return scale * torch.randn(shape, generator=gen, dtype=torch.float64)


def _away_from_knots(kernel, x, params, distance=1e-4):
    """Where ``x`` is not within ``distance`` of a spline knot (everywhere for smooth kernels).

    A spline is only C¹ at its knots: a central difference across one converges like ``ε``,
    not ``ε²``, so the finite-difference check skips those points.
    """
    if not isinstance(kernel, CircularSplineKernel):
        return torch.ones_like(x, dtype=torch.bool)
    xk = kernel.knots(params)[0]  # (B, K + 1, n)
    return ((x.unsqueeze(1) - xk).abs() > distance).all(dim=1)


def test_ncp_single_projection_is_the_tan_formula():
    kernel = NCPKernel(1, rotation=False)
    x = torch.linspace(-math.pi + 1e-3, math.pi - 1e-3, 101, dtype=torch.float64).expand(3, -1)
    params = _kernel_params(kernel, 101, scale=2.0)
    s = torch.nn.functional.softplus(params[:, 0] + math.log(math.e - 1))
    y, logd = kernel(x, params)
    assert torch.allclose(y, 2 * torch.atan(s * torch.tan(x / 2)), atol=1e-12, rtol=0)
    # d/dx 2 atan(s tan(x/2)) = s sec^2(x/2) / (1 + s^2 tan^2(x/2))
    expected = s / torch.cos(x / 2) ** 2 / (1 + (s * torch.tan(x / 2)) ** 2)
    assert torch.allclose(logd, torch.log(expected), atol=1e-12, rtol=0)


@pytest.mark.parametrize("a", [-8.0, -12.0, 8.0, 40.0])
def test_ncp_is_accurate_in_float32_for_sharp_maps(a):
    # s = softplus(a + log(e - 1)) from ~1e-5 (a = -12) to 40: maps that squeeze or stretch the
    # circle hard, as a U(1) flow at beta = 6 learns. Near x = ±pi the full-angle form of
    # g_s' cancelled in float32 (1 + s^2 rounds to 1) and gave h' = inf; the half-angle form
    # must agree with float64 everywhere, ±pi included. The float64 reference takes the same
    # float32 inputs: with slopes up to 1/s ~ 1e5 the rounding of x alone moves h(x) by 1e-2.
    kernel = NCPKernel(2, rotation=True)
    x = torch.cat([torch.linspace(-math.pi, math.pi, 201), torch.tensor([3.1415925, -3.1415925])])
    x = x.expand(2, -1)
    params = torch.zeros(2, kernel.n_params, x.shape[1])
    params[:, :2] = a
    params[1, 1] = 0.0  # the second map of batch entry 1 is a mild one
    y64, logd64 = kernel(x.double(), params.double())
    y32, logd32 = kernel(x, params)
    assert torch.isfinite(logd32).all() and torch.isfinite(y32).all()
    assert torch.allclose(logd32.double(), logd64, atol=1e-4, rtol=0)
    assert _mod2pi_err(y32.double(), y64) < 1e-4
    x_back, logd_inv = kernel.inverse(y32, params)
    assert torch.isfinite(logd_inv).all() and torch.isfinite(x_back).all()


def test_spline_interpolates_its_knots():
    kernel = CircularSplineKernel(5, rotation=True)
    params = _kernel_params(kernel, 1, scale=1.5)
    xk, yk, d, t = kernel.knots(params)  # (3, 6, 1) each, t (3, 1)
    assert torch.allclose(xk[:, [0, -1]], torch.tensor([-math.pi, math.pi]).double().view(2, 1))
    assert (xk.diff(dim=1) >= kernel.min_size * 0.999).all() and (d >= kernel.min_size).all()
    assert torch.equal(d[:, 0], d[:, -1]), "d_K = d_0: the derivative is continuous through ±π"
    x = xk[:, :-1, 0]  # (3, 5): the knots inside [-π, π)
    y, logd = kernel(x, params[..., 0].unsqueeze(-1).expand(-1, -1, 5))
    assert torch.allclose(y, yk[:, :-1, 0] + t, atol=1e-12, rtol=0)
    assert torch.allclose(logd, torch.log(d[:, :-1, 0]), atol=1e-12, rtol=0)


def test_zero_parameters_give_the_identity(kernel):
    x = torch.linspace(-math.pi, math.pi, 51, dtype=torch.float64)[:-1].expand(2, -1)
    y, logd = kernel(x, torch.zeros(2, kernel.n_params, 50, dtype=torch.float64))
    assert torch.allclose(y, x, atol=1e-14, rtol=0)
    assert torch.allclose(logd, torch.zeros_like(x), atol=1e-14, rtol=0)


def test_kernel_is_a_smooth_bijection_of_the_circle(kernel):
    # one circle map per batch entry (the same parameters along the grid)
    x = torch.linspace(-math.pi, math.pi, 401, dtype=torch.float64).expand(3, -1)
    params = _kernel_params(kernel, 1).expand(-1, -1, 401)
    y, logd = kernel(x, params)
    # degree one: h(π) - h(-π) = 2π, strictly increasing in between
    assert torch.allclose(y[:, -1] - y[:, 0], torch.full((3,), TWO_PI, dtype=torch.float64))
    assert (y.diff(dim=1) > 0).all()
    ends = torch.tensor([-math.pi + 1e-9, math.pi - 1e-9], dtype=torch.float64).expand(3, -1)
    logd_ends = kernel(ends, params[..., :2])[1]  # C¹ on the circle: h' continuous through ±π
    assert torch.allclose(logd_ends[:, 0], logd_ends[:, 1], atol=1e-5, rtol=0)
    # derivative > 0 and equal to central finite differences (error O(eps^2) + roundoff)
    eps = 1e-6
    fd = (kernel(x + eps, params)[0] - kernel(x - eps, params)[0]) / (2 * eps)
    assert (logd.exp() > 0).all()
    smooth = _away_from_knots(kernel, x, params)
    assert smooth.float().mean() > 0.9
    assert torch.allclose(logd.exp()[smooth], fd[smooth], rtol=1e-6, atol=0)
    # the inverse undoes it (x = ±π are one point of the circle) with the opposite log-derivative
    x_back, logd_inv = kernel.inverse(y, params)
    assert _mod2pi_err(x_back, x) < 1e-12
    assert torch.allclose(logd_inv, -logd, atol=1e-10, rtol=0)


def test_kernel_inverse_of_any_angle(kernel):
    # from arbitrary (unwrapped) angles and with extreme parameters (bins or s ~ e^-6):
    # y -> h^-1(y) -> y is well conditioned whatever h' is
    gen = torch.Generator().manual_seed(1)
    y = 20 * torch.rand(3, 401, dtype=torch.float64, generator=gen) - 10
    params = _kernel_params(kernel, 401, scale=3.0)
    x, logd_inv = kernel.inverse(y, params)
    assert (x.abs() <= math.pi + 1e-12).all()
    y_back, logd = kernel(x, params)
    assert _mod2pi_err(y_back, y) < 1e-11
    assert torch.allclose(logd, -logd_inv, atol=1e-8, rtol=0)


def test_kernel_inverse_gradient_matches_finite_differences(kernel):
    # log_prob is trained through the inverse: for the NCP it is a bisection plus one Newton
    # step with the parameters attached, whose gradient is that of the implicit function.
    params = _kernel_params(kernel, 5, batch=1).requires_grad_(True)
    y = torch.linspace(-3.0, 3.0, 5, dtype=torch.float64).unsqueeze(0)
    x, logd_inv = kernel.inverse(y, params)
    (x.sum() + logd_inv.sum()).backward()
    eps = 1e-6
    fd = torch.zeros_like(params)
    with torch.no_grad():
        for idx in itertools.product(*map(range, params.shape)):
            up, down = params.clone(), params.clone()
            up[idx] += eps
            down[idx] -= eps
            fd[idx] = sum(t.sum() for t in kernel.inverse(y, up)) - sum(
                t.sum() for t in kernel.inverse(y, down)
            )
    assert torch.allclose(params.grad, fd / (2 * eps), atol=1e-7, rtol=0)


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="n_mixture"):
        NCPKernel(0)
    with pytest.raises(ValueError, match="n_bins"):
        CircularSplineKernel(0)
    with pytest.raises(ValueError, match="min_size"):
        CircularSplineKernel(8, min_size=1.0)
    assert NCPKernel(1, rotation=False).n_params == 1
    assert NCPKernel(3, rotation=True).n_params == 7
    assert CircularSplineKernel(4, rotation=True).n_params == 13


# --- the coupling layer and the flow contract ------------------------------------------------


def test_round_trip_float64(flow):
    z = _links(5)
    x, logJ = flow(z)
    z_back, logJ_inv = flow.reverse(x)
    assert x.shape == z.shape and logJ.shape == (5,)
    assert _mod2pi_err(z_back, z) < 1e-10
    assert torch.allclose(logJ + logJ_inv, torch.zeros(5, dtype=torch.float64), atol=1e-10)
    assert _mod2pi_err(x, z) > 1e-2, "the flow must actually change the links"
    assert logJ.abs().min() > 1e-3


def test_logJ_matches_autograd_jacobian(flow):
    z = _links(2, seed=1)
    _, logJ = flow(z)
    n = z[0].numel()
    for b in range(z.shape[0]):
        jac = torch.autograd.functional.jacobian(
            lambda v: flow(v.view(1, 2, L, L))[0].flatten(), z[b]
        )
        sign, logabsdet = torch.linalg.slogdet(jac.reshape(n, n))
        assert sign != 0
        assert math.isclose(logabsdet.item(), logJ[b].item(), rel_tol=0, abs_tol=1e-10)


def test_gradients_reach_every_parameter(flow):
    x, logJ = flow(_links(4, seed=2))
    (torch.cos(x).sum() + logJ.sum()).backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name} has zero gradient"


def test_logJ_follows_input_dtype(flow):
    _, logJ = flow(_links(2))
    assert logJ.dtype == torch.float64
    x32, logJ32 = flow.float()(_links(2).float())
    assert x32.dtype == logJ32.dtype == torch.float32


@pytest.mark.parametrize("mu, offset", [(0, 2), (1, 1)])
def test_layer_sets_the_active_plaquettes_and_touches_nothing_else(mu, offset):
    layer = _randomised(_layer(mu, offset).double())
    masks = u1_masks((L, L), mu, offset)
    z = _links(3, seed=4)
    x, logJ = layer(z)
    p_z, p_x = plaquette_angles(z), plaquette_angles(x)
    # the conditioner sees (cos P, sin P) of the frozen plaquettes only
    features = torch.stack([torch.cos(p_z), torch.sin(p_z)], dim=1) * masks.frozen
    params = layer.conditioner(features)
    act = masks.active
    p_new, log_dp = layer.kernel(wrap_angle(p_z[:, act]), params[:, :, act])
    assert _mod2pi_err(p_x[:, act], p_new) < 1e-12
    assert torch.allclose(logJ, log_dp.sum(dim=1), atol=1e-12)
    assert torch.equal(p_x[:, masks.frozen], p_z[:, masks.frozen])
    assert _mod2pi_err(p_x[:, masks.passive], p_z[:, masks.passive]) > 1e-3
    assert torch.equal(x[:, ~masks.links], z[:, ~masks.links])


@pytest.mark.parametrize("mu, offset", [(0, 1), (1, 2)])
def test_loop_features_are_the_active_passive_rectangle_and_the_layer_keeps_them(mu, offset):
    kernel = NCPKernel(2)
    net = ConvNet(4, kernel.n_params, (8,), 3, final_tanh=False)
    masks = u1_masks((L, 8), mu, offset)
    layer = _randomised(GaugeEquivariantCoupling(kernel, net, masks, loops_2x1=True).double())
    z = _links(3, seed=12)
    z = torch.cat([z, _links(3, seed=13)], dim=-1)  # a (4, 8) lattice: L0 != L1
    p_z = plaquette_angles(z)
    features = layer.features(p_z)
    assert features.shape == (3, 4, L, 8)
    # the passive plaquette is the active one's neighbour at -ν̂, ν = 1 - mu
    below = torch.roll(masks.active, shifts=-1, dims=1 - mu)
    assert torch.equal(below, masks.passive)
    # at these offsets each passive stripe lists its sites in the order of the active one
    # above it (an active stripe at offset 0 would pair with the passive one at L - 1)
    loop = p_z[:, masks.active] + p_z[:, masks.passive]
    assert torch.allclose(features[:, 2][:, masks.active], torch.cos(loop), atol=1e-12)
    assert torch.allclose(features[:, 3][:, masks.active], torch.sin(loop), atol=1e-12)
    assert torch.equal(
        features[:, 2:][:, :, ~masks.active], torch.zeros_like(features[:, 2:][:, :, ~masks.active])
    )
    assert torch.equal(features[:, :2], torch.stack([p_z.cos(), p_z.sin()], 1) * masks.frozen)
    # the layer moves the active plaquettes but keeps every loop the conditioner saw
    x, _ = layer(z)
    p_x = plaquette_angles(x)
    assert _mod2pi_err(p_x[:, masks.active], p_z[:, masks.active]) > 1e-2
    assert torch.allclose(layer.features(p_x), features, atol=1e-12)
    # and the loops matter: without them the same weights give another map
    plain = layer.features
    layer.features = lambda plaq: torch.cat([plain(plaq)[:, :2], 0 * plain(plaq)[:, 2:]], 1)
    assert _mod2pi_err(layer(z)[0], x) > 1e-3


@pytest.mark.parametrize("kernel_name", ["ncp", "spline", "ncp_loops_2x1", "ncp_line_rotations"])
def test_gauge_equivariance(kernel_name):
    # flow(gauge(θ)) = gauge(flow(θ)) mod 2π and logJ is gauge invariant, both ways
    loops = kernel_name.endswith("loops_2x1")
    rotations = kernel_name.endswith("line_rotations")
    model = build_u1_flow(
        8,
        n_layers=8 if rotations else 16,
        kernel=kernel_name.split("_")[0],
        n_bins=4,
        hidden=(8,),
        loops_2x1=loops,
        line_rotations=rotations,
        seed=3,
    )
    model = _randomised(model, scale=SCALE[kernel_name.removesuffix("_line_rotations")]).double()
    z = _links(3, size=8, seed=5)
    gen = torch.Generator().manual_seed(6)
    alpha = TWO_PI * torch.rand(3, 8, 8, generator=gen, dtype=torch.float64)
    z_g = gauge_transform(z, alpha)
    assert _mod2pi_err(z_g, z) > 1.0, "the gauge transformation must be non-trivial"
    # A line rotation reads the phase of a row's mean phasor A, which amplifies rounding by
    # 1/|A|: on these uniform links some rows have |A| ~ 5e-3, and every randomised layer
    # after it compounds that (16 layers with 8 rotations: 7e-9 forward, 4e-6 back). One
    # cycle with its 4 rotations keeps it at 3e-12 and 2e-11; a map that is not equivariant
    # is off by O(1).
    tol = 1e-9 if rotations else 1e-10
    x, logJ = model.flow(z)
    x_g, logJ_g = model.flow(z_g)
    assert _mod2pi_err(x_g, gauge_transform(x, alpha)) < tol
    assert torch.allclose(logJ_g, logJ, atol=tol, rtol=0)
    assert _mod2pi_err(x, z) > 1e-2
    back, logJ_inv = model.flow.reverse(x)
    back_g, logJ_inv_g = model.flow.reverse(gauge_transform(x, alpha))
    assert _mod2pi_err(back_g, gauge_transform(back, alpha)) < tol
    assert torch.allclose(logJ_inv_g, logJ_inv, atol=tol, rtol=0)


@pytest.mark.parametrize("kernel_name", ["ncp", "spline"])
def test_log_prob_gradient_matches_finite_differences(kernel_name):
    # Training by forward KL differentiates log_prob, i.e. the inverse kernels.
    model = build_u1_flow(L, n_layers=4, kernel=kernel_name, n_bins=4, hidden=(4,), seed=7)
    model = _randomised(model, scale=SCALE[kernel_name]).double()
    x = _links(4, seed=8)
    model.log_prob(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    bias = model.flow.layers[2].conditioner[-1].bias  # the last conv's bias: the kernel's inputs
    eps = 1e-6
    with torch.no_grad():
        for k in range(bias.numel()):
            bias[k] += eps
            up = model.log_prob(x).sum()
            bias[k] -= 2 * eps
            down = model.log_prob(x).sum()
            bias[k] += eps
            assert math.isclose(bias.grad[k].item(), (up - down).item() / (2 * eps), abs_tol=1e-6)


# --- prior and model -------------------------------------------------------------------------


def test_uniform_angle_prior():
    prior = UniformAnglePrior((4, 8)).double()
    assert prior.lattice_shape == (2, 4, 8) and prior.lattice == (4, 8)
    z = prior.sample(4000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 2, 4, 8) and z.dtype == torch.float64
    assert z.min() >= -math.pi and z.max() < math.pi
    # uniform on [-π, π): mean 0 and variance π²/3 within 5 standard errors
    n = z.numel()
    assert abs(z.mean().item()) < 5 * math.pi / math.sqrt(3 * n)
    assert abs(z.var().item() - math.pi**2 / 3) < 5 * math.pi**2 * math.sqrt(4 / 45 / n)
    assert torch.allclose(prior.log_prob(z), torch.full((4000,), -64 * math.log(TWO_PI)).double())
    assert prior.log_prob(z).dtype == torch.float64


@pytest.mark.parametrize("kernel_name", ["ncp", "spline"])
def test_model_sample_and_log_prob_agree(kernel_name):
    # The deeper (8, 8) conditioner amplifies weight noise more (see SCALE): two thirds of it
    # keeps the NCP's s_k within about [0.1, 4].
    model = build_u1_flow(L, n_layers=8, kernel=kernel_name, seed=0)
    model = _randomised(model, scale=SCALE[kernel_name] * 2 / 3).double()
    x, logq = model.sample(16, generator=torch.Generator().manual_seed(3))
    assert x.shape == (16, 2, L, L) and logq.shape == (16,)
    assert torch.allclose(model.log_prob(x), logq, atol=1e-10, rtol=0)
    # a gauge copy of a sample has the same density
    alpha = torch.rand(16, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(model.log_prob(gauge_transform(x, 6 * alpha)), logq, atol=1e-10)


@pytest.mark.parametrize("kernel_name", ["ncp", "spline"])
def test_model_density_normalised_on_a_tiny_lattice(kernel_name):
    # q must integrate to one over the torus: E_{z~uniform}[q(z)/r(z)] = 1, by importance
    # sampling from the prior, within 4 standard errors.
    model = build_u1_flow(L, n_layers=8, kernel=kernel_name, n_bins=4, hidden=(4,), seed=1)
    model = _randomised(model, scale=0.2 if kernel_name == "ncp" else 0.1).double()
    z = model.prior.sample(4000, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ratio = torch.exp(model.log_prob(z) - model.prior.log_prob(z))
    mean, err = ratio.mean().item(), ratio.std().item() / math.sqrt(len(ratio))
    assert ratio.std() > 0.5, "the test needs a model far from the prior"
    assert abs(mean - 1) < 4 * err, (mean, err)


def test_same_seed_gives_identical_models_and_config():
    a, b = build_u1_flow(L, n_layers=2, seed=5), build_u1_flow(L, n_layers=2, seed=5)
    xa, _ = a.sample(4, generator=torch.Generator().manual_seed(0))
    xb, _ = b.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(xa, xb)
    assert a.config == U1FlowConfig(L=L, n_layers=2) and a.lattice_shape == (2, L, L)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.config.L = 8
    c = build_u1_flow(config=a.config, n_mixture=3)
    assert c.config.L == L and c.flow.layers[0].kernel.n_mixture == 3
    d = build_u1_flow(config=a.config, kernel="spline", n_bins=5)
    assert isinstance(d.flow.layers[1].kernel, CircularSplineKernel)
    assert d.flow.layers[1].kernel.n_bins == 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"L": 7}, "multiple of 4"),
        ({"L": 6}, "multiple of 4"),
        ({"L": 1}, ">= 2"),
        ({"n_layers": 0}, "n_layers"),
        ({"n_mixture": 0}, "n_mixture"),
        ({"n_bins": 0}, "n_bins"),
        ({"kernel": "affine"}, "kernel must be one of"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"kernel_size": 2}, "odd"),
    ],
)
def test_bad_architecture_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_u1_flow(**kwargs)


def test_wrong_input_is_a_clear_error():
    model = build_u1_flow(L, n_layers=2, seed=0)
    layer = model.flow.layers[0]
    with pytest.raises(ValueError, match="do not fit"):
        layer(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="does not match"):
        model.log_prob(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 2, L0, L1\)"):
        layer(torch.zeros(2, 3, L, L))
    wrong = GaugeEquivariantCoupling(NCPKernel(2), ConvNet(2, 3), u1_masks((L, L), 0, 0))
    with pytest.raises(ValueError, match="conditioner"):
        wrong(torch.zeros(2, 2, L, L))


def test_add_loops_2x1_keeps_the_map_and_opens_the_loop_channels():
    plain = _randomised(build_u1_flow(8, n_layers=8, hidden=(8,), seed=4)).double()
    wider = add_loops_2x1(plain)
    assert wider.config == dataclasses.replace(plain.config, loops_2x1=True)
    assert next(wider.parameters()).dtype == torch.float64
    z = _links(3, size=8, seed=14)
    x, logJ = plain.flow(z)
    x2, logJ2 = wider.flow(z)
    assert _mod2pi_err(x2, x) < 1e-12 and torch.allclose(logJ2, logJ, atol=1e-12, rtol=0)
    # the loop channels start at zero but train: they receive gradients
    logJ2.sum().backward()
    first = wider.flow.layers[0].conditioner[0].weight
    assert first.shape[1] == 4 and first.grad[:, 2:].abs().sum() > 0
    with pytest.raises(ValueError, match="already"):
        add_loops_2x1(wider)
    with pytest.raises(ValueError, match="build_u1_flow"):
        add_loops_2x1(torch.nn.Linear(2, 2))


# --- line rotations --------------------------------------------------------------------------


def _line_rotation(shape, mu, parity, hidden=(8,), kernel=None):
    kernel = kernel or NCPKernel(3)
    net = ConvNet(6, kernel.n_params, hidden, 3, final_tanh=False, dim=1)
    return LineRotationCoupling(kernel, net, shape, mu, parity)


def _row_phasors(theta, mu):
    """``A(y) = mean_{x_mu} e^{iθ_P(x)}`` and ``R(y) = Σ_{x_mu} θ_P(x)`` at ``x_nu = y``."""
    plaq = plaquette_angles(theta)
    return torch.exp(1j * plaq).mean(dim=1 + mu), plaq.sum(dim=1 + mu)


@pytest.mark.parametrize("mu, parity", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_line_rotation_maps_the_row_phase_and_turns_whole_lines(mu, parity):
    shape = (4, 8) if mu == 0 else (8, 4)  # 4 links per line, 8 lines
    layer = _randomised(_line_rotation(shape, mu, parity).double())
    z = TWO_PI * torch.rand(3, 2, *shape, generator=torch.Generator().manual_seed(21)).double()
    x, logJ = layer(z)
    A_z, R_z = _row_phasors(z, mu)
    A_x, R_x = _row_phasors(x, mu)
    moved, kept = torch.arange(parity, 8, 2), torch.arange(1 - parity, 8, 2)
    below = (moved - 1) % 8
    sigma = 1 if mu == 0 else -1
    # the conditioner's inputs, straight from the definitions
    T = R_z[:, moved] + R_z[:, below]
    S = A_z[:, moved].angle() + A_z[:, below].angle()
    features = torch.stack(
        [T.cos(), T.sin(), S.cos(), S.sin(), A_z[:, moved].abs(), A_z[:, below].abs()], dim=1
    )
    h, log_dh = layer.kernel(sigma * A_z[:, moved].angle(), layer.conditioner(features))
    # the row above each moved line turns to h, the row below turns the other way
    assert _mod2pi_err(sigma * A_x[:, moved].angle(), h) < 1e-12
    assert _mod2pi_err(A_x[:, moved].angle(), A_z[:, moved].angle()) > 1e-2
    assert _mod2pi_err(A_x[:, moved].angle() + A_x[:, below].angle(), S) < 1e-12
    assert torch.allclose(A_x.abs(), A_z.abs(), atol=1e-12)
    assert _mod2pi_err(R_x[:, moved] + R_x[:, below], T) < 1e-12
    assert torch.allclose(logJ, log_dh.sum(dim=1), atol=1e-12)
    # only links of direction mu on the moved lines change, all by one angle per line
    delta = (x - z)[:, mu].transpose(1, 2) if mu == 0 else (x - z)[:, mu]  # (B, line, link)
    assert torch.equal(x[:, 1 - mu], z[:, 1 - mu])
    assert torch.equal(delta[:, kept], torch.zeros_like(delta[:, kept]))
    spread = delta[:, moved].amax(-1) - delta[:, moved].amin(-1)
    assert spread.max() < 1e-12 and delta[:, moved].abs().max() > 1e-2


def test_line_rotation_starts_as_the_identity_and_trains():
    layer = _line_rotation((L, L), 1, 0).double()
    z = _links(4, seed=22)
    x, logJ = layer(z)
    assert (x - z).abs().max() < 1e-12 and logJ.abs().max() < 1e-12
    # the zeroed last convolution still receives gradients
    _randomised(layer.conditioner[0])
    x, logJ = layer(z)
    (torch.cos(x).sum() + logJ.sum()).backward()
    assert layer.conditioner[-1].weight.grad.abs().sum() > 0


def test_add_line_rotations_keeps_the_map_and_the_plaquette_weights():
    plain = _randomised(build_u1_flow(8, n_layers=12, hidden=(8,), seed=4)).double()
    longer = add_line_rotations(plain)
    assert longer.config == dataclasses.replace(plain.config, line_rotations=True)
    kinds = [type(layer).__name__[0] for layer in longer.flow.layers]
    # after the cycle of 8 and after the incomplete last cycle of 4
    assert "".join(kinds) == "G" * 8 + "L" * 4 + "G" * 4 + "L" * 4
    assert next(longer.parameters()).dtype == torch.float64
    z = _links(3, size=8, seed=24)
    x, logJ = plain.flow(z)
    x2, logJ2 = longer.flow(z)
    assert _mod2pi_err(x2, x) < 1e-12 and torch.allclose(logJ2, logJ, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="already"):
        add_line_rotations(longer)
    with pytest.raises(ValueError, match="build_u1_flow"):
        add_line_rotations(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "args, message",
    [
        (((5, 4), 1, 0), "L0 must be even"),
        (((4, 5), 0, 0), "L1 must be even"),
        (((4, 4), 2, 0), "mu must be 0 or 1"),
        (((4, 4), 0, 2), "parity must be 0 or 1"),
        (((4, 4, 4), 0, 0), "2D"),
    ],
)
def test_bad_line_rotation_input_is_a_clear_error(args, message):
    with pytest.raises(ValueError, match=message):
        _line_rotation(*args)


def test_line_rotation_wrong_input_is_a_clear_error():
    layer = _line_rotation((L, L), 0, 0)
    with pytest.raises(ValueError, match="do not fit"):
        layer(torch.zeros(2, 2, 8, 8))
    wrong = LineRotationCoupling(NCPKernel(2), ConvNet(6, 3, dim=1), (L, L), 0, 0)
    with pytest.raises(ValueError, match="conditioner"):
        wrong(torch.zeros(2, 2, L, L))


# --- a context: conditioners that know where they are ------------------------------------------


def _defect_context(size=8, d=3):
    context = torch.zeros(1, size, size, dtype=torch.float64)
    context[0, 0, :d] = 1.0
    return context


def test_add_context_keeps_the_map_then_breaks_translations_but_not_gauge_symmetry():
    plain = _randomised(build_u1_flow(8, n_layers=8, hidden=(8,), seed=4)).double()
    model = add_context(plain, _defect_context())
    z = _links(3, size=8, seed=15)
    x, logJ = plain.flow(z)
    x2, logJ2 = model.flow(z)
    assert _mod2pi_err(x2, x) < 1e-12 and torch.allclose(logJ2, logJ, atol=1e-12, rtol=0)
    # the context channel starts at zero weight but trains
    logJ2.sum().backward()
    first = model.flow.layers[0].conditioner.net[0].weight
    assert first.shape[1] == 3 and first.grad[:, 2:].abs().sum() > 0
    model.zero_grad()
    with torch.no_grad():
        for layer in model.flow.layers:
            layer.conditioner.net[0].weight[:, 2:].normal_(0, 0.3)
    x, logJ = model.flow(z)
    # gauge equivariance and invertibility hold with the context
    gen = torch.Generator().manual_seed(16)
    alpha = TWO_PI * torch.rand(3, 8, 8, generator=gen, dtype=torch.float64)
    x_g, logJ_g = model.flow(gauge_transform(z, alpha))
    assert _mod2pi_err(x_g, gauge_transform(x, alpha)) < 1e-10
    assert torch.allclose(logJ_g, logJ, atol=1e-10, rtol=0)
    back, logJ_inv = model.flow.reverse(x)
    assert _mod2pi_err(back, z) < 1e-10 and torch.allclose(logJ + logJ_inv, 0 * logJ, atol=1e-10)
    # translations by a full mask period commute with the plain flow, not with this one
    shifted = torch.roll(z, shifts=(4, 4), dims=(2, 3))
    x_plain = plain.flow(z)[0]
    assert _mod2pi_err(plain.flow(shifted)[0], torch.roll(x_plain, (4, 4), (2, 3))) < 1e-10
    assert _mod2pi_err(model.flow(shifted)[0], torch.roll(x, (4, 4), (2, 3))) > 1e-3


def test_add_context_logJ_matches_autograd_jacobian():
    model = add_context(_randomised(build_u1_flow(L, n_layers=8, hidden=(4,), seed=5)).double(),
                        _defect_context(L, 2))  # fmt: skip
    with torch.no_grad():
        for layer in model.flow.layers:
            layer.conditioner.net[0].weight[:, 2:].normal_(0, 0.3)
    z = _links(1, seed=17)
    _, logJ = model.flow(z)
    n = z[0].numel()
    jac = torch.autograd.functional.jacobian(
        lambda v: model.flow(v.view(1, 2, L, L))[0].flatten(), z[0]
    )
    assert math.isclose(torch.linalg.slogdet(jac.reshape(n, n))[1].item(), logJ.item(),
                        rel_tol=0, abs_tol=1e-10)  # fmt: skip


def test_bad_context_is_a_clear_error():
    model = build_u1_flow(8, n_layers=2, hidden=(4,), seed=0)
    with pytest.raises(ValueError, match=r"context must be \(C, 8, 8\)"):
        add_context(model, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="context"):
        add_context(model, torch.zeros(8, 8))
    with pytest.raises(TypeError, match="context"):
        add_context(model, [[0.0]])
    with pytest.raises(ValueError, match="already"):
        add_context(add_context(model, torch.zeros(1, 8, 8)), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="build_u1_flow"):
        add_context(torch.nn.Linear(2, 2), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="lattice"):
        WithContext(ConvNet(3, 1), torch.zeros(1, 8, 8))(torch.zeros(2, 2, 4, 4))


# --- the NCP inverse's root finder ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_newton", [40, 2])
def test_newton_root_finder_agrees_with_bisection_on_sharp_maps(dtype, max_newton):
    # Mixtures of projections with s from 1e-4 to 1e4 (maps far sharper than trained flows
    # reach): safeguarded Newton lands on bisection's root to a few ulps of π, also when the
    # Newton budget runs out and bisection of the bracket finishes the job (max_newton = 2).
    from lqft_lab.flows.u1.kernels import _bisect, _newton_bisect

    gen = torch.Generator().manual_seed(21)
    kernel = NCPKernel(3, rotation=False)
    n = 4096
    params = torch.randn(n, kernel.n_params, generator=gen, dtype=torch.float64) * 4
    params[:, :3] = torch.empty(n, 3, dtype=torch.float64).uniform_(-9.2, 9.2, generator=gen)
    s, w, _ = kernel._unpack(params.to(dtype))
    target = (2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64) - math.pi).to(dtype)
    f = lambda v: kernel._mixture(v, s, w)  # noqa: E731
    x_newton = _newton_bisect(f, target, max_newton=max_newton)
    x_bisect = _bisect(lambda v: f(v)[0], target)
    # Precision is relative to the slope: where h' is tiny a whole range of x rounds to the
    # same h, where it is large a one-ulp step in x moves h by h' ulps.
    ulp = torch.finfo(dtype).eps * math.pi
    h, dh = f(x_newton)
    assert ((h - target).abs() <= 8 * ulp * (1 + dh)).all()
    assert ((x_newton - x_bisect).abs() <= 8 * ulp * (1 + 1 / dh)).all()
