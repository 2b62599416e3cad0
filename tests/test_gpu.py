"""GPU tests, run by `make gpu` (`pytest -m gpu`) after the full-mode notebook run on CUDA.

They fail on a machine without CUDA, never skip: a GPU run that silently fell back to the CPU
must not pass. The default pytest run deselects them (pyproject.toml's addopts).
What they check: the full-mode figures each notebook recorded in
``build/notebooks-full/metrics.json`` against its issue's targets, and that the samplers'
steps on CUDA never synchronise with the host.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lqft_lab.actions import Phi4Action
from lqft_lab.flows import build_real_nvp
from lqft_lab.report import check_targets
from lqft_lab.samplers import HMC, FlowMetropolis, LocalMetropolis
from lqft_lab.train import TrainConfig, Trainer

pytestmark = pytest.mark.gpu

FULL_METRICS = Path(__file__).resolve().parents[1] / "build" / "notebooks-full" / "metrics.json"
RUN_FULL = (
    "python -m lqft_lab notebooks --mode full --device cuda --out build/notebooks-full "
    "(make gpu runs it before these tests)"
)


def require_cuda() -> torch.device:
    assert torch.cuda.is_available(), (
        f"the gpu tests need CUDA; torch {torch.__version__} sees no CUDA device "
        "(install a CUDA build, e.g. `make gpu TORCH_SPEC=torch`, or deselect with -m 'not gpu')"
    )
    return torch.device("cuda")


@pytest.fixture(scope="module")
def full_metrics() -> dict:
    require_cuda()
    assert FULL_METRICS.is_file(), f"no full-mode run at {FULL_METRICS}; run {RUN_FULL}"
    return json.loads(FULL_METRICS.read_text())


def test_cuda_is_available():
    device = require_cuda()
    assert torch.ones(1, device=device).item() == 1.0


def test_every_notebook_ran_in_full_mode_on_cuda(full_metrics):
    meta = full_metrics["_meta"]
    assert meta, f"{FULL_METRICS} records no notebook"
    for stem, info in meta.items():
        assert info["status"] == "ok", (stem, info.get("error"))
        assert info["mode"] == "full" and info["device"] == "cuda", (stem, info)


def test_notebook_01_full_mode_targets(full_metrics):
    meta = full_metrics["_meta"]["01_phi4_real_nvp"]
    assert meta["device"] == "cuda" and meta["mode"] == "full", meta
    figures = full_metrics["01_phi4_real_nvp"]
    assert figures["ess"] >= 0.5, figures["ess"]
    assert figures["acceptance"] >= 0.5, figures["acceptance"]
    assert abs(figures["chi2_pull"]) < 2, figures["chi2_pull"]
    assert figures["n_proposals"] >= 10_000 and figures["ess_samples"] >= 4096


def test_every_recorded_figure_meets_its_target(full_metrics):
    # The same table the report in reports/gpu/ is written from (lqft_lab.report.TARGETS).
    misses = [c for c in check_targets(full_metrics) if not c.ok]
    assert not misses, "\n".join(
        f"{c.notebook}: {c.target.figure} = {c.value}, target {c.target}" for c in misses
    )


# --------------------------------------------------------------------------- no host syncs


@pytest.fixture
def no_sync():
    """Any operation that synchronises CUDA with the host raises inside this block."""
    require_cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_sync_debug_mode_catches_a_sync(request):
    # The tests below prove nothing unless a host sync really raises inside `no_sync`.
    x = torch.ones(3, device=require_cuda())
    request.getfixturevalue("no_sync")
    with pytest.raises(RuntimeError, match="synchroniz"):
        x.sum().item()


@pytest.fixture
def cuda_setup():
    device = require_cuda()
    action = Phi4Action(m2=-4.0, lam=8.0)
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(16, 8, 8, device=device, generator=gen)
    return device, action, gen, x0


@pytest.mark.parametrize("integrator, jitter", [("leapfrog", 0.0), ("omelyan", 0.2)])
def test_hmc_trajectory_does_not_sync(cuda_setup, integrator, jitter, request):
    device, action, gen, x0 = cuda_setup
    hmc = HMC(action, step_size=0.1, n_steps=5, integrator=integrator, jitter=jitter)
    state = hmc.init(x0)
    request.getfixturevalue("no_sync")
    for _ in range(3):
        state, info = hmc.step(state, generator=gen)
    assert state.x.device.type == "cuda" and info.accepted.device.type == "cuda"


def test_local_metropolis_sweep_does_not_sync(cuda_setup, request):
    device, action, gen, x0 = cuda_setup
    sampler = LocalMetropolis(action, delta=1.0, n_hits=2)
    state = sampler.init(x0)  # builds the checkerboard masks, outside the no-sync block
    request.getfixturevalue("no_sync")
    for _ in range(3):
        state, info = sampler.step(state, generator=gen)
    assert state.x.device.type == "cuda" and info.accepted.device.type == "cuda"


@pytest.mark.parametrize("prefetch", [1, 4])
def test_flow_metropolis_step_does_not_sync(cuda_setup, prefetch, request):
    device, action, gen, _ = cuda_setup
    model = build_real_nvp(L=8, n_layers=4, seed=0).to(device)
    sampler = FlowMetropolis(model, action, batch_size=16, prefetch=prefetch)
    state = sampler.init(None, generator=gen)
    request.getfixturevalue("no_sync")
    for _ in range(2 * prefetch + 1):  # drawing ahead, handing out, and drawing again
        state, info = sampler.step(state, generator=gen)
    assert state.x.device.type == "cuda" and info.logw.device.type == "cuda"


@pytest.mark.parametrize("spectral_prior", [False, True])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_training_step_does_not_sync(cuda_setup, cuda_graph, spectral_prior, request):
    # The whole optimisation step, NaN guard included: a non-finite step is undone on the
    # device (Trainer._step_or_skip), so the host is never asked, op by op or as a graph.
    # The spectral prior's FFTs are part of the step.
    device, action, gen, _ = cuda_setup
    model = build_real_nvp(L=8, n_layers=4, spectral_prior=spectral_prior, seed=0).to(device)
    trainer = Trainer(model, action, TrainConfig(n_steps=10, log_every=10, cuda_graph=cuda_graph))
    for _ in range(5):  # set-up (cuDNN, autograd, Adam state; the capture) outside
        trainer._train_step()
    assert trainer.uses_cuda_graph == cuda_graph
    request.getfixturevalue("no_sync")
    for _ in range(3):
        logw = trainer._train_step()
    assert logw.device.type == "cuda"
    if not cuda_graph:
        for p in model.parameters():
            p.grad = torch.full_like(p, float("nan"))
        trainer._step_or_skip(torch.zeros((), dtype=torch.bool, device=device))


# --------------------------------------------------------------------------- CUDA graphs


def test_the_first_trainer_of_a_fresh_process_captures_its_step():
    # torch warns once per process, the first time sync debug mode is set, that the mode is a
    # prototype; the capture check once took that notice for a sync, so a notebook kernel's
    # first trainer never used its graph. Only a fresh process shows it, hence the subprocess.
    require_cuda()
    script = (
        "import torch\n"
        "from lqft_lab.actions import Phi4Action\n"
        "from lqft_lab.flows import build_real_nvp\n"
        "from lqft_lab.train import TrainConfig, Trainer\n"
        "model = build_real_nvp(L=8, n_layers=4, seed=0).cuda()\n"
        "trainer = Trainer(model, Phi4Action(-4.0, 8.0), TrainConfig(n_steps=8, log_every=8))\n"
        "trainer.train()\n"
        "print('graph', trainer.uses_cuda_graph)\n"
    )
    root = Path(__file__).resolve().parents[1]  # `python -c` imports from its working folder
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "graph True" in done.stdout, done.stdout + done.stderr[-2000:]


def _graph_pair(device, action, n_layers=4, spectral_prior=False, **config):
    trainers = {}
    for graph in (False, True):
        model = build_real_nvp(L=8, n_layers=n_layers, spectral_prior=spectral_prior, seed=0)
        model = model.to(device)
        trainers[graph] = Trainer(
            model, action, TrainConfig(n_steps=40, log_every=1, cuda_graph=graph, **config)
        )
    return trainers[False], trainers[True]


@pytest.mark.parametrize("spectral_prior", [False, True])
def test_a_graphed_trainer_trains_like_an_ordinary_one(cuda_setup, spectral_prior):
    # Same seed, same batches: the graph draws from the training generator's stream exactly
    # as ordinary steps do, and applies the same schedule. A graph that replayed a stale
    # batch, a frozen learning rate or a skipped Adam update would show here at once: the
    # batch losses are O(10) and differ by O(0.1) between different draws.
    device, action, _, _ = cuda_setup
    plain, graphed = _graph_pair(device, action, spectral_prior=spectral_prior)
    plain.train(), graphed.train()
    assert graphed.uses_cuda_graph and not plain.uses_cuda_graph
    loss = {t: torch.tensor([m["loss"] for m in t.history]) for t in (plain, graphed)}
    assert len(loss[plain]) == 40 and loss[plain].std() > 0.1
    # cuDNN's backward kernels may sum in a different order: rounding-level differences,
    # compounded over 40 Adam steps.
    torch.testing.assert_close(loss[graphed], loss[plain], atol=2e-3, rtol=1e-4)
    for a, b in zip(plain.model.parameters(), graphed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    for t in (plain, graphed):  # the last step ran at the schedule's last learning rate
        assert float(t.optimizer.param_groups[0]["lr"]) == pytest.approx(t.config.lr_at(39))


def test_a_graphed_step_skips_a_non_finite_loss(cuda_setup):
    # The NaN guard is part of the captured graph: flip a device flag that poisons the
    # action, replay, and nothing may change but the skip counter.
    device, action, _, _ = cuda_setup
    poison = torch.zeros((), dtype=torch.bool, device=device)

    def poisoned(x):
        return torch.where(poison, torch.nan, action(x))

    model = build_real_nvp(L=8, n_layers=4, seed=0).to(device)
    trainer = Trainer(model, poisoned, TrainConfig(n_steps=40, log_every=10, cuda_graph=True))
    for _ in range(5):
        trainer._train_step()
    assert trainer.uses_cuda_graph and trainer.skipped == 0
    before = [p.detach().clone() for p in model.parameters()]
    adam = [
        {k: v.clone() for k, v in trainer.optimizer.state[p].items()} for p in model.parameters()
    ]
    poison.fill_(True)
    trainer._train_step()
    assert trainer.skipped == 1
    for p, old, state in zip(model.parameters(), before, adam, strict=True):
        assert torch.equal(p, old)
        for key, value in state.items():
            assert torch.equal(trainer.optimizer.state[p][key], value), key
    poison.fill_(False)
    trainer._train_step()
    assert trainer.skipped == 1
    assert any(not torch.equal(p, old) for p, old in zip(model.parameters(), before, strict=True))


def _host_action(action):
    def host_action(x):  # .item() synchronises: a capture cannot contain it
        return action(x) + 0.0 * x.abs().max().item()

    return host_action


def test_a_flow_that_asks_the_host_falls_back_to_ordinary_steps(cuda_setup):
    device, action, _, _ = cuda_setup
    host_action = _host_action(action)
    model = build_real_nvp(L=8, n_layers=2, seed=0).to(device)
    trainer = Trainer(model, host_action, TrainConfig(n_steps=20, log_every=10))
    with pytest.warns(RuntimeWarning, match="synchronises with the host"):
        history = trainer.train()
    assert not trainer.uses_cuda_graph and trainer.step == 20
    assert all(math.isfinite(m["loss"]) for m in history) and trainer.skipped == 0

    strict = Trainer(
        build_real_nvp(L=8, n_layers=2, seed=0).to(device),
        host_action,
        TrainConfig(n_steps=20, log_every=10, cuda_graph=True),
    )
    with pytest.raises(RuntimeError, match="cannot be captured as a CUDA graph"):
        strict.train()


def test_a_voided_capture_leaves_the_random_generators_usable(cuda_setup):
    # Skip the sync check and capture a step that asks the host: the capture is voided, and
    # with it the generators it registered would stay marked as capturing (every draw would
    # raise) unless released.
    device, action, _, _ = cuda_setup
    model = build_real_nvp(L=8, n_layers=2, seed=0).to(device)
    trainer = Trainer(model, _host_action(action), TrainConfig(n_steps=20, log_every=10))
    with pytest.warns(RuntimeWarning, match="the capture failed"):
        logw = trainer._graph._capture(trainer)
    assert torch.isfinite(logw).all() and not trainer.uses_cuda_graph
    assert torch.randn(4, device=device).isfinite().all()  # the default generator
    assert torch.randn(4, device=device, generator=trainer.generator).isfinite().all()
    history = trainer.train()
    assert trainer.step == 20 and all(math.isfinite(m["loss"]) for m in history)


# --------------------------------------------------------------------------- heatbaths


@pytest.mark.parametrize("beta", [2.0, 4.0])
def test_u1_heatbath_step_does_not_sync(beta, request):
    # A sweep draws a fixed number of von Mises candidates per link and indexes the link
    # groups as strided slices: no compaction, masks or host checks (samplers/heatbath.py).
    from lqft_lab.actions import U1WilsonAction
    from lqft_lab.samplers import U1Heatbath

    device = require_cuda()
    gen = torch.Generator(device=device).manual_seed(0)
    sampler = U1Heatbath(U1WilsonAction(beta), n_overrelax=1)
    state = sampler.init(torch.zeros(64, 2, 16, 16, device=device))  # checks on the host
    state, _ = sampler.step(state, generator=gen)  # set-up outside the no-sync block
    request.getfixturevalue("no_sync")
    for _ in range(3):
        state, info = sampler.step(state, generator=gen)
    assert state.x.device.type == "cuda" and info.accepted.device.type == "cuda"


def test_sun_heatbath_step_does_not_sync(request):
    # complex128, as run_sun_algorithm uses: a complex64 step ends with an SVD re-projection,
    # whose convergence check asks the host (samplers/heatbath_sun.py).
    from lqft_lab.actions import SUNWilsonAction
    from lqft_lab.groups.sun import haar
    from lqft_lab.samplers import SUNHeatbath

    device = require_cuda()
    gen = torch.Generator(device=device).manual_seed(0)
    sampler = SUNHeatbath(SUNWilsonAction(4.0, 3), n_overrelax=1)
    U = haar((16, 2, 8, 8), 3, dtype=torch.complex128, device=device, generator=gen)
    state = sampler.init(U)  # checks that the links are in SU(3) on the host
    state, _ = sampler.step(state, generator=gen)  # set-up outside the no-sync block
    request.getfixturevalue("no_sync")
    for _ in range(3):
        state, info = sampler.step(state, generator=gen)
    assert state.x.device.type == "cuda" and info.accepted.device.type == "cuda"


def test_su3_spectral_decomposition_on_cuda_is_the_cpus():
    # SU(N >= 3) is decomposed by LAPACK on the host in one batch (sun._on_host), not by
    # CUDA's MAGMA path one matrix at a time; the results must come back to the GPU unchanged.
    from lqft_lab.groups.sun import eigenphases, haar, spectral_decomposition

    device = require_cuda()
    U = haar(64, 3, generator=torch.Generator().manual_seed(0))
    theta_cpu, V_cpu = spectral_decomposition(U)
    theta, V = spectral_decomposition(U.to(device))
    assert theta.device.type == "cuda" and V.device.type == "cuda"
    torch.testing.assert_close(theta.cpu(), theta_cpu)
    torch.testing.assert_close(V.cpu(), V_cpu)
    phases = eigenphases(U.to(device))
    assert phases.device.type == "cuda"
    torch.testing.assert_close(phases.cpu(), eigenphases(U))
