"""Boundary tests of the flows, the SU(N) toolkit and checkpoints: bad input is refused
where it enters, naming the argument; valid edge cases give finite, correct results.

Plus one regression test per case of issue 25 in this area (``test_issue25_*``).
"""

from __future__ import annotations

import json
import math
import time

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given
from safetensors.torch import save_file

from lqft_lab import flows, io
from lqft_lab.actions import Phi4Action
from lqft_lab.flows import (
    AffineCoupling,
    CircularSplineKernel,
    ConvNet,
    Flow,
    FlowModel,
    GaugeEquivariantCoupling,
    HaarLinkPrior,
    HaarPrior,
    IntervalSplineKernel,
    LineRotationCoupling,
    NCPKernel,
    NormalPrior,
    PeriodicConv1d,
    PeriodicConv2d,
    RealNVPConfig,
    SingleMatrixFlow,
    SingleMatrixFlowConfig,
    SpectralKernel,
    SpectralNormalPrior,
    SUNFlowConfig,
    SUNGaugeEquivariantCoupling,
    U1FlowConfig,
    U1Masks,
    UniformAnglePrior,
    WithContext,
    add_context,
    add_line_rotations,
    add_loops_2x1,
    build_real_nvp,
    build_single_matrix_flow,
    build_sun_flow,
    build_u1_flow,
    cube_to_simplex,
    log_stick_jacobian,
    momentum_features,
    periodic_pad,
    simplex_to_cube,
    stripe_offset,
    sun_plaquette_features,
    transfer_real_nvp,
    u1_masks,
)
from lqft_lab.groups import sun as gsun
from lqft_lab.io import load_checkpoint, pretrained_path, read_metadata, save_checkpoint

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_fields,
    bad_integers,
    bad_reals,
    expect_error_naming,
    not_integers,
    poisoned,
    refuses,
)

COVERED = {
    *(f"lqft_lab.flows.{name}" for name in flows.__all__),
    *(f"lqft_lab.groups.sun.{name}" for name in gsun.__all__),
    "lqft_lab.io.save_checkpoint",
    "lqft_lab.io.load_checkpoint",
    "lqft_lab.io.read_metadata",
    "lqft_lab.io.pretrained_path",
}

L = 4


# --- tiny models, built once -----------------------------------------------------------------


_CACHE: dict[str, object] = {}


def _once(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def real_nvp():
    return _once("nvp", lambda: build_real_nvp(L=L, n_layers=2, hidden=(2,), seed=0))


def u1_flow():
    return _once("u1", lambda: build_u1_flow(L, n_layers=2, hidden=(2,), seed=0))


def sun_flow():
    return _once(
        "sun",
        lambda: build_sun_flow(
            L, 2, n_layers=1, n_bins=2, n_blocks=1, mlp_hidden=(2,), hidden=(2,), seed=0
        ),
    )


def matrix_flow():
    return _once("mat", lambda: build_single_matrix_flow(3, n_bins=2, hidden=(2,), seed=0))


def links_sun(B=2, N=2):
    return gsun.haar(
        (B, 2, L, L), N, dtype=torch.complex64, generator=torch.Generator().manual_seed(1)
    )


def not_a_field_but_no_nan(like):
    """Bad fields except the poisoned ones (layers check kind, shape, dtype, device only)."""
    return bad_fields(like).filter(
        lambda x: (
            not (isinstance(x, torch.Tensor) and x.shape == like.shape and x.dtype == like.dtype)
        )
    )


def _not_empty(x) -> bool:
    return not (isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == 0)


bad_widths = st.one_of(
    st.integers(-3, 9),
    st.text(max_size=2),
    st.none(),
    st.lists(bad_integers(low=1), min_size=1, max_size=2),
)


# --- configs and builders ----------------------------------------------------------------------

BUILDERS = {
    "real_nvp": (build_real_nvp, RealNVPConfig, {"L": L, "n_layers": 1, "hidden": (2,)}),
    "u1": (build_u1_flow, U1FlowConfig, {"L": L, "n_layers": 1, "hidden": (2,)}),
    "sun": (build_sun_flow, SUNFlowConfig, {"L": L, "N": 2, "n_layers": 1, "hidden": (2,)}),
    "matrix": (build_single_matrix_flow, SingleMatrixFlowConfig, {"N": 2, "hidden": (2,)}),
}
FIELDS = [
    ("real_nvp", "L", bad_integers(low=2)),
    ("real_nvp", "n_layers", bad_integers(low=1)),
    ("real_nvp", "hidden", bad_widths),
    ("real_nvp", "kernel_size", st.one_of(not_integers, st.integers(max_value=0), st.just(4))),
    ("real_nvp", "final_tanh", st.one_of(st.integers(), st.text(max_size=2), st.none())),
    ("real_nvp", "spectral_prior", st.one_of(st.integers(), st.none())),
    ("u1", "L", st.one_of(bad_integers(low=2), st.sampled_from([2, 6, 10]))),
    ("u1", "n_layers", bad_integers(low=1)),
    ("u1", "n_mixture", bad_integers(low=1)),
    ("u1", "n_bins", bad_integers(low=1)),
    ("u1", "hidden", bad_widths),
    ("u1", "kernel", st.one_of(st.text(max_size=3), st.integers(), st.none())),
    (
        "u1",
        "offset_step",
        st.one_of(not_integers, st.integers().filter(lambda v: v not in (-1, 1))),
    ),
    ("u1", "rotation", st.one_of(st.integers(), st.none())),
    ("u1", "loops_2x1", st.one_of(st.integers(), st.none())),
    ("u1", "line_rotations", st.one_of(st.integers(), st.none())),
    ("sun", "N", bad_integers(low=2)),
    ("sun", "n_layers", bad_integers(low=1)),
    ("sun", "n_blocks", bad_integers(low=1)),
    ("sun", "n_bins", bad_integers(low=1)),
    ("sun", "context_dim", bad_integers(low=0)),
    ("sun", "mlp_hidden", bad_widths),
    ("sun", "hidden", bad_widths),
    ("matrix", "N", bad_integers(low=2)),
    ("matrix", "n_bins", bad_integers(low=1)),
    ("matrix", "n_blocks", bad_integers(low=1)),
    ("matrix", "hidden", bad_widths),
]


def _valid_widths(value) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    )


@pytest.mark.parametrize("kind, field, strategy", FIELDS, ids=[f"{k}-{f}" for k, f, _ in FIELDS])
@pytest.mark.parametrize("via", ["builder", "config"])
@BOUNDARY
@given(data=st.data())
def test_configs_and_builders_refuse_bad_fields(kind, field, strategy, via, data):
    builder, config_cls, base = BUILDERS[kind]
    value = data.draw(strategy)
    if field.endswith("hidden") and _valid_widths(value):
        return  # e.g. an empty list of widths is valid
    if via == "builder" and field in ("L", "N") and value is None:
        return  # the builders' L=None / N=None mean "the config's"
    call = builder if via == "builder" else config_cls
    refuses(call, field, **{**base, field: value})


@pytest.mark.parametrize("kind", list(BUILDERS))
@BOUNDARY
@given(seed=st.one_of(st.floats(), st.text(max_size=2), st.integers(max_value=-1)))
def test_builders_refuse_bad_seeds_configs_and_unknown_fields(kind, seed):
    builder, _, base = BUILDERS[kind]
    refuses(builder, "seed", **base, seed=seed)
    refuses(builder, "config", config={"L": 4})
    refuses(builder, "n_layer", **base, n_layer=3)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_builders_edge_cases_sample_finite(kind):
    builder, _, base = BUILDERS[kind]
    model = builder(**base, seed=0)
    x, logq = model.sample(1)
    assert_finite((x, logq))
    assert torch.allclose(model.log_prob(x), logq, atol=1e-3)


# --- Flow and FlowModel: the entry points of fields --------------------------------------------

MODELS = {"real_nvp": real_nvp, "u1": u1_flow, "sun": sun_flow, "matrix": matrix_flow}


@pytest.mark.parametrize("kind", list(MODELS))
@BOUNDARY
@given(data=st.data())
def test_models_refuse_bad_fields(kind, data):
    model = MODELS[kind]()
    with torch.no_grad():
        like, _ = model.sample(2, generator=torch.Generator().manual_seed(0))
    x = data.draw(bad_fields(like))
    refuses(model.log_prob, "x", x)
    if isinstance(model.flow, Flow):
        refuses(model.flow.forward, "z", x)
        refuses(model.flow.reverse, "x", x)
    else:  # SingleMatrixFlow checks kind, shape, dtype (finiteness: FlowModel.log_prob)
        if not (isinstance(x, torch.Tensor) and x.shape == like.shape and x.dtype == like.dtype):
            refuses(model.flow.forward, "z", x)


@pytest.mark.parametrize("kind", list(MODELS))
@BOUNDARY
@given(batch_size=bad_integers(low=1))
def test_sample_refuses_bad_batch_sizes(kind, batch_size):
    model = MODELS[kind]()
    refuses(model.sample, "batch_size", batch_size)
    refuses(model.sample, "generator", 2, generator="seed")


def test_flow_and_flow_model_round_trip_on_valid_edges():
    model = real_nvp()
    with torch.no_grad():
        x, logq = model.sample(1, generator=torch.Generator().manual_seed(3))
        z, logJ_inv = model.flow.reverse(x)
        x2, logJ = model.flow(z)
    assert_finite((x, logq, z, x2))
    assert torch.allclose(x2, x, atol=1e-5) and torch.allclose(logJ, -logJ_inv, atol=1e-5)
    empty = Flow([])
    assert torch.equal(empty(z)[0], z)
    refuses(FlowModel(NormalPrior((L, L)), empty).log_prob, "x", torch.zeros(1, L + 2, L))


# --- layers ------------------------------------------------------------------------------------


def _layers():
    nvp, u1, sun = real_nvp(), u1_flow(), sun_flow()
    return {
        "affine": (nvp.flow.layers[0], torch.zeros(2, L, L)),
        "u1": (u1.flow.layers[0], torch.zeros(2, 2, L, L)),
        "sun": (sun.flow.layers[0], links_sun()),
        "line": (
            LineRotationCoupling(
                NCPKernel(2), ConvNet(6, NCPKernel(2).n_params, (2,), dim=1), (L, L), 0, 0
            ),
            torch.zeros(2, 2, L, L),
        ),
        "matrix": (matrix_flow().flow, gsun.haar(2, 3, dtype=torch.complex64)),
    }


@pytest.mark.parametrize("which", ["affine", "u1", "sun", "line", "matrix"])
@BOUNDARY
@given(data=st.data())
def test_layers_refuse_bad_fields(which, data):
    layer, like = _layers()[which]
    x = data.draw(not_a_field_but_no_nan(like))
    refuses(layer.forward, "z", x)
    refuses(layer.reverse, "x", x)
    out, logJ = layer(like)
    assert_finite((out, logJ))
    assert logJ.shape == (like.shape[0],)


@BOUNDARY
@given(mask=st.sampled_from([0.5, 2.0, math.nan, 0.0, 1.0]))
def test_affine_coupling_refuses_masks_that_are_not_binary(mask):
    net = ConvNet(1, 2, (2,))
    m = torch.full((L, L), mask)  # constant: never both 0 and 1
    refuses(AffineCoupling, "mask", net, m)
    refuses(AffineCoupling, "net", "conv", torch.ones(L, L))
    refuses(AffineCoupling, "mask", net, [[0, 1], [1, 0]])


def test_gauge_couplings_refuse_wrong_parts():
    masks = u1_masks((L, L), 0, 0)
    refuses(GaugeEquivariantCoupling, "kernel", "ncp", ConvNet(2, 4), masks)
    refuses(GaugeEquivariantCoupling, "masks", NCPKernel(2), ConvNet(2, 4), "masks")
    refuses(GaugeEquivariantCoupling, "loops_2x1", NCPKernel(2), ConvNet(2, 4), masks, "yes")
    refuses(SUNGaugeEquivariantCoupling, "kernel", NCPKernel(2), None, masks)
    refuses(SUNGaugeEquivariantCoupling, "conditioner", SpectralKernel(2, 2), None, masks)
    refuses(LineRotationCoupling, "mu", NCPKernel(2), ConvNet(6, 4, dim=1), (L, L), 2, 0)
    refuses(LineRotationCoupling, "parity", NCPKernel(2), ConvNet(6, 4, dim=1), (L, L), 0, True)
    refuses(LineRotationCoupling, "conditioner", NCPKernel(2), "net", (L, L), 0, 0)
    refuses(SingleMatrixFlow, "N", 1)


# --- nets ---------------------------------------------------------------------------------------


@BOUNDARY
@given(pad=st.one_of(bad_integers(low=0), st.integers(min_value=L + 1, max_value=10**6)))
def test_periodic_pad_refuses_bad_pads(pad):
    refuses(periodic_pad, "pad", torch.zeros(1, 1, L, L), pad)
    refuses(periodic_pad, "x", [[1.0]], 1)
    assert torch.equal(
        periodic_pad(torch.arange(4.0).view(1, 2, 2), 2)[0, 0], torch.tensor([0.0, 1, 0, 1, 0, 1])
    )


@BOUNDARY
@given(k=st.one_of(bad_integers(low=1), st.integers(1, 50).map(lambda v: 2 * v)))
def test_convolutions_refuse_bad_kernels(k):
    refuses(PeriodicConv2d, "kernel_size", 1, 1, k)
    refuses(PeriodicConv1d, "kernel_size", 1, 1, k)
    refuses(ConvNet, "kernel_size", 1, 1, kernel_size=k)


@BOUNDARY
@given(data=st.data())
def test_convolutions_refuse_bad_inputs(data):
    conv2, conv1 = PeriodicConv2d(2, 3, 3), PeriodicConv1d(2, 3, 3)
    like2, like1 = torch.zeros(1, 2, L, L), torch.zeros(1, 2, L)
    # an empty batch is fine for a convolution (it is refused where fields enter a model)
    refuses(conv2, "x", data.draw(not_a_field_but_no_nan(like2).filter(_not_empty)))
    refuses(conv1, "x", data.draw(not_a_field_but_no_nan(like1).filter(_not_empty)))
    refuses(conv2, "x", like2.double())
    assert conv2(like2).shape == (1, 3, L, L) and conv1(like1).shape == (1, 3, L)
    refuses(ConvNet, "in_channels", data.draw(bad_integers(low=1)), 2)
    refuses(
        ConvNet, "hidden", 1, 2, hidden=data.draw(bad_widths.filter(lambda v: not _valid_widths(v)))
    )
    refuses(ConvNet, "dim", 1, 2, dim=data.draw(st.one_of(not_integers, st.sampled_from([0, 3]))))
    refuses(ConvNet, "final_tanh", 1, 2, final_tanh=data.draw(st.one_of(st.integers(), st.none())))


# --- priors -------------------------------------------------------------------------------------

PRIORS = {
    "normal": lambda: NormalPrior((L, L)),
    "spectral": lambda: SpectralNormalPrior((L, L)),
    "angles": lambda: UniformAnglePrior((L, L)),
    "haar": lambda: HaarPrior(2),
    "links": lambda: HaarLinkPrior((L, L), 2),
}


@pytest.mark.parametrize("which", list(PRIORS))
@BOUNDARY
@given(batch_size=bad_integers(low=1), data=st.data())
def test_priors_refuse_bad_batches_and_fields(which, batch_size, data):
    prior = PRIORS[which]()
    refuses(prior.sample, "batch_size", batch_size)
    refuses(prior.sample, "generator", 1, generator=0)
    z = prior.sample(1, generator=torch.Generator().manual_seed(0))
    logr = prior.log_prob(z)
    assert_finite((z, logr))
    assert logr.shape == (1,)
    bad = data.draw(
        not_a_field_but_no_nan(z).filter(
            lambda x: not (isinstance(x, torch.Tensor) and x.dim() == z.dim() and x.shape[0] == 0)
        )
    )
    refuses(prior.log_prob, "z", bad)


@BOUNDARY
@given(
    shape=st.one_of(
        bad_integers(low=2), st.lists(bad_integers(low=2), min_size=1, max_size=2), st.just([])
    ).filter(lambda s: s != [2]),  # [2] is a valid 1D lattice of two sites
    sigma=bad_reals(low=0, low_open=True),
)
def test_prior_constructors_refuse_bad_arguments(shape, sigma):
    refuses(NormalPrior, "lattice_shape", shape)
    refuses(NormalPrior, "sigma", (L, L), sigma)
    refuses(SpectralNormalPrior, "lattice_shape", shape)
    refuses(SpectralNormalPrior, "spectrum", (L, L), spectrum="mlp")
    refuses(UniformAnglePrior, "lattice_shape", shape)
    refuses(momentum_features, "lattice_shape", shape)
    refuses(HaarPrior, "N", shape if not isinstance(shape, list) else 1.5)
    refuses(HaarLinkPrior, "lattice_shape", (L, L, L), 2)
    features = momentum_features((L, 2))
    assert features.shape == (L, 2, 2) and float(features.min()) >= 0 and float(features.max()) <= 1


# --- kernels and the spectral pieces ------------------------------------------------------------


@BOUNDARY
@given(n=bad_integers(low=1), flag=st.one_of(st.integers(), st.none()), data=st.data())
def test_kernels_refuse_bad_construction_and_inputs(n, flag, data):
    refuses(NCPKernel, "n_mixture", n)
    refuses(NCPKernel, "rotation", 2, flag)
    refuses(CircularSplineKernel, "n_bins", n)
    refuses(CircularSplineKernel, "min_size", 4, min_size=data.draw(bad_reals(low=0, high=1)))
    refuses(IntervalSplineKernel, "n_bins", n)
    for kernel in (NCPKernel(2), CircularSplineKernel(3)):
        x = torch.zeros(2, 5)
        params = torch.zeros(2, kernel.n_params, 5)
        refuses(kernel, "params", x, params[:, :-1])
        refuses(kernel, "params", x, params.double())
        refuses(kernel, "x", x.tolist(), params)
        refuses(kernel.inverse, "params", x, params[:1])
        y, log_dy = kernel(x, params)
        assert_finite((y, log_dy))
    spline = IntervalSplineKernel(2)
    refuses(spline, "params", torch.rand(3), torch.zeros(3, spline.n_params - 1))
    refuses(spline, "params", torch.rand(3), torch.zeros(4, spline.n_params))
    u = torch.rand(3)
    assert torch.allclose(spline(u, torch.zeros(3, spline.n_params))[0], u)


@BOUNDARY
@given(n=bad_integers(low=2), data=st.data())
def test_spectral_kernel_refuses_bad_arguments(n, data):
    refuses(SpectralKernel, "N", n)
    refuses(SpectralKernel, "context_dim", 2, data.draw(bad_integers(low=0)))
    refuses(SpectralKernel, "n_blocks", 2, n_blocks=data.draw(bad_integers(low=1)))
    refuses(SpectralKernel, "hidden", 2, 1, hidden=8)
    kernel = SpectralKernel(3, context_dim=2, hidden=(2,), n_bins=2, n_blocks=1)
    U = gsun.haar(4, 3, dtype=torch.complex64)
    context = torch.zeros(4, 2)
    refuses(kernel, "U", U.to(torch.complex128), context)
    refuses(kernel, "U", gsun.haar(4, 2, dtype=torch.complex64), context)
    refuses(kernel, "U", U.real, context)
    refuses(kernel, "context", U, context.double())
    refuses(kernel, "context", U, None)
    refuses(kernel.forward_phases, "theta", torch.zeros(4, 2), context)
    refuses(kernel.inverse_phases, "theta", torch.zeros(4, 3, dtype=torch.float64), context)
    U2, logJ = kernel(U, context)
    assert_finite((U2, logJ))
    back, logJ_inv = kernel.inverse(U2, context)
    assert torch.allclose(back, U, atol=1e-4) and torch.allclose(logJ, -logJ_inv, atol=1e-4)


@BOUNDARY
@given(data=st.data())
def test_simplex_and_cube_maps_refuse_bad_tensors(data):
    x = torch.full((3, 3), 1 / 3)
    for fn, name, like in (
        (simplex_to_cube, "x", x),
        (cube_to_simplex, "u", x[:, :2]),
        (log_stick_jacobian, "u", x[:, :2]),
    ):
        bad = data.draw(
            st.one_of(
                st.just(like.tolist()),
                st.just(like.to(torch.float16)),
                st.just(like.long()),
                st.just(torch.zeros(0)),
            )
        )
        refuses(fn, name, bad)
    u = simplex_to_cube(x)
    assert torch.allclose(cube_to_simplex(u), x, atol=1e-6)
    assert_finite(log_stick_jacobian(u))


# --- U(1) masks and the upgrades ------------------------------------------------------------------


@BOUNDARY
@given(
    mu=st.one_of(not_integers, st.integers().filter(lambda v: v not in (0, 1))),
    offset=st.one_of(not_integers, st.integers().filter(lambda v: v not in range(4))),
    layer=bad_integers(low=0),
)
def test_u1_masks_refuse_bad_arguments(mu, offset, layer):
    refuses(u1_masks, "mu", (L, L), mu, 0)
    refuses(u1_masks, "offset", (L, L), 0, offset)
    refuses(u1_masks, "lattice_shape", (L, L, L), 0, 0)
    refuses(stripe_offset, "layer", layer)
    refuses(stripe_offset, "offset_step", 0, offset_step=mu if mu not in (-1,) else 0)
    good = u1_masks((L, L), 1, 3)
    refuses(
        U1Masks, "mu", mu, 0, good.links, good.link_sign, good.active, good.passive, good.frozen
    )
    refuses(U1Masks, "links", 0, 0, None, good.link_sign, good.active, good.passive, good.frozen)
    assert int(good.active.sum() + good.passive.sum() + good.frozen.sum()) == L * L


def test_upgrades_refuse_other_models_and_keep_the_map():
    for fn in (add_loops_2x1, add_line_rotations):
        refuses(fn, "model", real_nvp())
        refuses(fn, "model", "u1")
    refuses(transfer_real_nvp, "model", u1_flow(), 4)
    refuses(transfer_real_nvp, "L", real_nvp(), 5)
    refuses(transfer_real_nvp, "L", real_nvp(), 2.0)
    refuses(transfer_real_nvp, "spectral_prior", real_nvp(), 4, spectral_prior="yes")
    z = torch.rand(1, 2, L, L, generator=torch.Generator().manual_seed(0)) * 6 - 3
    for fn in (add_loops_2x1, add_line_rotations):
        x, logJ = fn(u1_flow()).flow(z)
        x0, logJ0 = u1_flow().flow(z)
        assert torch.allclose(logJ, logJ0, atol=1e-4)
    assert transfer_real_nvp(real_nvp(), 6).lattice_shape == (6, 6)
    context = torch.zeros(1, L, L)
    refuses(add_context, "model", real_nvp(), context)
    refuses(add_context, "context", u1_flow(), torch.zeros(1, L + 1, L))
    refuses(add_context, "context", u1_flow(), torch.full((1, L, L), float("nan")))
    refuses(add_context, "context", u1_flow(), "defect")
    x, logJ = add_context(u1_flow(), context).flow(z)
    assert torch.allclose(logJ, u1_flow().flow(z)[1], atol=1e-4)
    refuses(WithContext, "net", "conv", context)
    refuses(WithContext, "context", ConvNet(3, 1), torch.zeros(L, L))


@BOUNDARY
@given(data=st.data())
def test_sun_plaquette_features_refuse_bad_plaquettes(data):
    P = gsun.haar((1, L, L), 2, dtype=torch.complex64)
    refuses(
        sun_plaquette_features,
        "P",
        data.draw(st.sampled_from([P.real, P[0], P.tolist(), P.to(torch.complex32)])),
    )
    features = sun_plaquette_features(P)
    assert features.shape == (1, 4, L, L) and float(features[:, 0].abs().max()) <= 1 + 1e-5


# --- groups.sun ----------------------------------------------------------------------------------

bad_matrices = st.sampled_from(
    [
        "U",
        torch.zeros(2, 2),  # real
        torch.zeros(2, 3, dtype=torch.complex64),  # not square
        torch.zeros(3, dtype=torch.complex64),  # not a matrix
        torch.zeros(1, 1, dtype=torch.complex64),  # N = 1
        torch.zeros(2, 2, dtype=torch.complex32),  # half precision
    ]
)


@pytest.mark.parametrize(
    "fn, name",
    [
        (gsun.check_matrices, "U"),
        (gsun.project_sun, "M"),
        (gsun.project_algebra, "M"),
        (gsun.expm, "X"),
        (gsun.eigenphases, "U"),
        (gsun.spectral_decomposition, "U"),
        (gsun.unitarity_violation, "U"),
        (gsun.check_special_unitary, "U"),
    ],
)
@BOUNDARY
@given(U=bad_matrices)
def test_sun_matrix_functions_refuse_bad_matrices(fn, name, U):
    refuses(fn, name, U)


@BOUNDARY
@given(
    batch=st.one_of(st.integers(max_value=-1), st.floats(), st.just([2, -1]), st.text(max_size=2)),
    N=bad_integers(low=2),
)
def test_sun_draws_refuse_bad_arguments(batch, N):
    for draw in (gsun.haar, gsun.random_algebra):
        refuses(draw, "batch_shape", batch, 2)
        refuses(draw, "N", 2, N)
        refuses(draw, "dtype", 2, 2, dtype=torch.float64)
        refuses(draw, "dtype", 2, 2, dtype="complex64")
        refuses(draw, "generator", 2, 2, generator=1)
        refuses(draw, "device", 2, 2, device="nowhere")


def test_sun_functions_on_valid_edges_are_finite_and_correct():
    U = gsun.haar((3,), 3, generator=torch.Generator().manual_seed(0))
    assert float(gsun.unitarity_violation(U).max()) < 1e-12
    gsun.check_special_unitary(U)
    theta, V = gsun.spectral_decomposition(U)
    assert torch.allclose(gsun.from_eigenphases(theta, V), U, atol=1e-10)
    g = gsun.alcove_gaps(theta)
    assert torch.allclose(g.sum(-1), torch.full((3,), 2 * math.pi, dtype=g.dtype))
    assert torch.allclose(gsun.eigenphases_from_gaps(g), theta, atol=1e-10)
    assert_finite(gsun.log_vandermonde_sq(theta))
    X = gsun.random_algebra(2, 2)
    assert torch.allclose(gsun.project_algebra(X), X)
    gsun.check_special_unitary(gsun.expm(X))
    assert torch.allclose(gsun.project_sun(U), U, atol=1e-10)
    assert torch.equal(gsun.dagger(gsun.dagger(U)), U)
    assert gsun.haar(0, 2).shape == (0, 2, 2)
    assert_finite(gsun.eigenphases(U))


@BOUNDARY
@given(
    theta=st.sampled_from(
        [
            [0.0, 0.0],
            torch.zeros(2, 1),
            torch.zeros(2, 2, dtype=torch.int64),
            torch.zeros(2, 2, dtype=torch.complex64),
        ]
    )
)
def test_sun_eigenphase_functions_refuse_bad_phases(theta):
    refuses(gsun.alcove_gaps, "theta", theta)
    refuses(gsun.log_vandermonde_sq, "theta", theta)
    refuses(gsun.eigenphases_from_gaps, "g", theta)
    refuses(
        gsun.from_eigenphases, "theta", theta, torch.eye(2, dtype=torch.complex128).expand(2, 2, 2)
    )
    refuses(gsun.dagger, "U", "U")
    refuses(gsun.dagger, "U", torch.zeros(3))


@BOUNDARY
@given(U=poisoned(torch.eye(3, dtype=torch.complex128).expand(2, 3, 3).contiguous()))
def test_sun_decompositions_and_unitarity_check_refuse_non_finite_matrices(U):
    refuses(gsun.eigenphases, "U", U)
    refuses(gsun.spectral_decomposition, "U", U)
    refuses(gsun.check_special_unitary, "U", U)


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    model = build_real_nvp(L=L, n_layers=2, hidden=(2,), seed=0)
    return model, save_checkpoint(tmp_path / "m.safetensors", model, Phi4Action(-4.0, 8.0), steps=1)


def _rewrite(path, out, meta=None, tensors=None):
    """A copy of checkpoint ``path`` with its metadata and/or tensors replaced."""
    from safetensors.torch import load_file

    old_meta = read_metadata(path)
    save_file(
        tensors if tensors is not None else load_file(str(path)),
        str(out),
        metadata={"lqft_lab": json.dumps(old_meta if meta is None else meta)},
    )
    return out


@BOUNDARY
@given(path=st.one_of(st.integers(), st.none(), st.floats(), st.just(["m.safetensors"])))
def test_checkpoint_functions_refuse_paths_that_are_not_paths(path):
    refuses(read_metadata, "path", path)
    refuses(load_checkpoint, "path", path)
    refuses(save_checkpoint, "path", path, real_nvp(), Phi4Action(-4.0, 8.0))


@BOUNDARY
@given(
    name=st.one_of(st.integers(), st.none(), st.just(""), st.just("../u1_L8_b2"), st.just("a/b"))
)
def test_pretrained_path_refuses_names_that_are_not_names(name):
    refuses(pretrained_path, "name", name)


def test_pretrained_path_and_metadata_of_shipped_models():
    path = pretrained_path("u1_L8_b2")
    assert read_metadata(path)["kind"] == "u1_equivariant"


def test_save_checkpoint_refuses_bad_models_actions_and_extras(saved, tmp_path):
    model, _ = saved
    action = Phi4Action(-4.0, 8.0)
    refuses(save_checkpoint, "model", tmp_path / "x.safetensors", torch.nn.Linear(2, 2), action)
    refuses(save_checkpoint, "action", tmp_path / "x.safetensors", model, "phi4")
    refuses(save_checkpoint, "metrics", tmp_path / "x.safetensors", model, action, metrics=object())
    refuses(save_checkpoint, "steps", tmp_path / "x.safetensors", model, action, steps="7")
    refuses(save_checkpoint, "kind", tmp_path / "x.safetensors", model, action, kind="other")
    broken = build_real_nvp(L=L, n_layers=2, hidden=(2,), seed=0)
    with torch.no_grad():
        next(broken.parameters())[0] = math.nan
    refuses(save_checkpoint, "model", tmp_path / "x.safetensors", broken, action)
    assert not (tmp_path / "x.safetensors").exists()


def test_load_checkpoint_refuses_bad_devices_and_architectures(saved):
    _, path = saved
    refuses(load_checkpoint, "device", path, device="nowhere")
    refuses(load_checkpoint, "device", path, device=3.5)
    refuses(load_checkpoint, "architecture", path, architecture=[4])
    refuses(load_checkpoint, "architecture", path, architecture={"L": 4, "layers": 2})
    loaded, meta = load_checkpoint(path, architecture={"L": L, "n_layers": 2, "hidden": [2]})
    assert meta["steps"] == 1 and not loaded.training


def test_tensor_counts_match_built_models():
    """io checks a header's tensor count from the config alone: it must be exact."""
    configs = [
        ("real_nvp", build_real_nvp(L=2, n_layers=3, hidden=(), spectral_prior=True)),
        ("u1_equivariant", build_u1_flow(4, n_layers=9, hidden=(2, 2), line_rotations=True)),
        ("u1_equivariant", build_u1_flow(4, n_layers=1, kernel="spline", n_bins=2, loops_2x1=True)),
        ("sun_equivariant", build_sun_flow(4, 2, n_layers=2, context_dim=0, mlp_hidden=(2,))),
        ("sun_equivariant", build_sun_flow(4, 3, n_layers=1, n_blocks=1, mlp_hidden=())),
        ("sun_single_matrix", build_single_matrix_flow(2, n_blocks=3)),
        ("sun_single_matrix", build_single_matrix_flow(4, hidden=(3,))),
        ("pseudofermion", flows.PseudofermionFlow((4, 6), n_blocks=3, hidden=(2, 2))),
        ("pseudofermion", flows.PseudofermionFlow((2, 2), hidden=(), kernel_size=1, couplings=2)),
    ]
    for kind, model in configs:
        assert io._tensor_count(kind, model.config) == len(model.state_dict()), model.config


# --- issue 25: one regression test per case ----------------------------------------------


def test_issue25_load_checkpoint_refuses_nan_weights(saved, tmp_path):
    model, path = saved
    tensors = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    tensors["flow.layers.0.net.0.weight"][0, 0, 0, 0] = math.nan
    bad = _rewrite(path, tmp_path / "nan.safetensors", tensors=tensors)
    with pytest.raises(ValueError, match=r"nan\.safetensors.*flow\.layers\.0\.net\.0\.weight.*NaN"):
        load_checkpoint(bad)


def test_issue25_load_checkpoint_refuses_masks_of_one_half(saved, tmp_path):
    model, path = saved
    tensors = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    tensors["flow.layers.1.mask"] = torch.full((L, L), 0.5)
    bad = _rewrite(path, tmp_path / "half.safetensors", tensors=tensors)
    with pytest.raises(ValueError, match=r"half\.safetensors: mask flow\.layers\.1\.mask.*0 and 1"):
        load_checkpoint(bad)
    # the complement pattern: layer 1's mask swapped for layer 0's is refused too
    tensors["flow.layers.1.mask"] = tensors["flow.layers.0.mask"].clone()
    swapped = _rewrite(path, tmp_path / "swapped.safetensors", tensors=tensors)
    with pytest.raises(ValueError, match="mask flow.layers.1.mask differs"):
        load_checkpoint(swapped)


@pytest.mark.parametrize("meta", [[1, 2], "real_nvp", 7])
def test_issue25_metadata_that_is_not_an_object_is_a_value_error(saved, tmp_path, meta):
    _, path = saved
    bad = tmp_path / "list.safetensors"
    save_file({"w": torch.zeros(1)}, str(bad), metadata={"lqft_lab": json.dumps(meta)})
    with pytest.raises(
        ValueError, match=r"list\.safetensors: the lqft_lab metadata must be a JSON object"
    ):
        load_checkpoint(bad)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("architecture"), "lacks the required key 'architecture'"),
        (lambda m: m.update(architecture=[4, 2]), "'architecture' must be a JSON object"),
        (lambda m: m.update(steps="7"), "'steps' must be an integer"),
        (lambda m: m.update(action="Phi4Action"), "'action' must be a JSON object"),
        (lambda m: m["architecture"].pop("L"), r"lacks \['L'\]"),
        (lambda m: m["architecture"].update(depth=3), r"unknown fields \['depth'\]"),
        (lambda m: m["architecture"].update(n_layers=2.5), "invalid architecture.*n_layers"),
    ],
)
def test_issue25_metadata_schema_is_checked_before_building(saved, tmp_path, edit, message):
    _, path = saved
    meta = read_metadata(path)
    edit(meta)
    bad = _rewrite(path, tmp_path / "schema.safetensors", meta=meta)
    with pytest.raises(ValueError, match=message) as err:
        load_checkpoint(bad)
    assert "schema.safetensors" in str(err.value)


def test_issue25_two_million_layers_in_the_header_are_refused_at_once(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    meta["architecture"]["n_layers"] = 2_000_000
    bad = _rewrite(path, tmp_path / "huge.safetensors", meta=meta)
    assert bad.stat().st_size < 100_000
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"huge\.safetensors: tensors do not fit.*refused before building"
    ):
        load_checkpoint(bad)
    assert time.perf_counter() - start < 1.0
    # widths the tensors do not have are refused from the header too (a shape-only model)
    meta["architecture"].update(n_layers=2, hidden=[10**9])
    wide = _rewrite(path, tmp_path / "wide.safetensors", meta=meta)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(wide)
    assert time.perf_counter() - start < 1.0


def test_a_huge_lattice_in_a_u1_header_is_refused_before_building(tmp_path):
    """U(1) and SU(N) checkpoints store no tensor whose shape fixes L (their masks are rebuilt),
    so only a bound on L keeps a forged header from making the loader allocate L² masks."""
    from lqft_lab.actions import U1WilsonAction

    model = build_u1_flow(L=4, n_layers=1, hidden=(2,), seed=0)
    path = save_checkpoint(tmp_path / "u1.safetensors", model, U1WilsonAction(1.0), steps=1)
    meta = read_metadata(path)
    meta["architecture"]["L"] = 10**6
    bad = _rewrite(path, tmp_path / "u1-huge.safetensors", meta=meta)
    start = time.perf_counter()
    with expect_error_naming("L"):
        load_checkpoint(bad)
    assert time.perf_counter() - start < 1.0


def test_issue25_corrupted_files_name_the_path(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for name, content in [
        ("cut.safetensors", data[: len(data) // 2]),
        ("junk.safetensors", b"\x00junk"),
    ]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            load_checkpoint(bad)
    wrong = _rewrite(path, tmp_path / "wrong.safetensors", tensors={"w": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"wrong\.safetensors: tensors do not fit"):
        load_checkpoint(wrong)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_issue25_fractional_layer_counts_and_scalar_widths_are_refused_by_name(kind):
    builder, config_cls, base = BUILDERS[kind]
    count = "n_blocks" if kind == "matrix" else "n_layers"
    for call in (builder, config_cls):
        with expect_error_naming(count):
            call(**{**base, count: 2.5})
        with expect_error_naming("hidden"):
            call(**{**base, "hidden": 8})


@pytest.mark.parametrize("kind", list(MODELS))
def test_issue25_float64_field_through_a_float32_flow_names_the_dtype(kind):
    model = MODELS[kind]()
    with torch.no_grad():
        x, _ = model.sample(2)
    wrong = x.to(torch.complex128 if x.is_complex() else torch.float64)
    for call, name in ((model.log_prob, "x"), (model.flow.forward, "z"), (model.flow.reverse, "x")):
        with pytest.raises(ValueError, match=rf"^{name} has dtype torch\.(float|complex)") as err:
            call(wrong)
        assert "float32" in str(err.value) or "complex64" in str(err.value)
    on_meta = torch.empty_like(x, device="meta")
    for call, name in ((model.log_prob, "x"), (model.flow.forward, "z")):
        with pytest.raises(ValueError, match=rf"^{name} is on meta but cpu is required"):
            call(on_meta)


@pytest.mark.parametrize("kind", ["real_nvp", "u1", "sun"])
def test_issue25_a_kernel_wider_than_the_lattice_is_refused_at_build_time(kind):
    builder, config_cls, base = BUILDERS[kind]
    for call in (builder, config_cls):
        with pytest.raises(ValueError, match=r"kernel_size must be odd and at most L \+ 1 = 5"):
            call(**{**base, "kernel_size": 7})
    model = builder(**{**base, "kernel_size": 5}, seed=0)  # half width L/2: the limit, works
    assert_finite(model.sample(1))
