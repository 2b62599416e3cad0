"""Benchmark of the φ⁴ flow workflow: training-step speed, time to a useful flow, sampling cost.

One run measures, on one device, and prints every figure as a ``name=value`` line on stdout
(after a header block describing the machine), so that two runs can be diffed:

(a) **Time per training step** of our flow at the architecture of arXiv:2101.08176 (16 affine
    checkerboard couplings, conv hidden channels ``[8, 8]``, kernel 3, ``L = 8``, φ⁴ with
    ``m² = -4``, ``λ = 8``), at batch 64 and 1024: our full step (``Trainer._train_step``,
    with gradient clipping and the NaN guard; on a GPU captured as one CUDA graph, see
    ``TrainConfig.cuda_graph``) against a plain PyTorch implementation of the same flow kept
    in this file as the reference. The reference is written the way the
    tutorial writes it (explicit frozen/active split, ``nn.Conv2d`` with circular padding,
    default ``Adam``) but is not handicapped: its prior draws with ``torch.randn`` rather
    than through ``torch.distributions`` and its argument checks. Before timing, the two
    are checked to compute the same ``x``, ``logq`` and action from the same weights and
    prior draw. The two are then timed in alternating rounds; ``step_time_ratio_b*`` is the
    median over rounds of the per-round ratio ours/reference (paired, so slow phases of a
    shared machine cancel).
(b) **Wall time to ESS ≥ 0.4** at ``L = 8``, ``m² = -4``, ``λ = 8`` with the default
    :class:`~lqft_lab.train.TrainConfig`, training in chunks of 250 steps and measuring the
    ESS on 4096 fresh samples after each; evaluation is not on the training clock.
(c) **Cost per effectively independent sample** at the E5 ensemble of arXiv:1904.12072
    (``L = 14``, ``m² = -4``, ``λ = 5.113``) for flow-based Metropolis, HMC and local
    Metropolis, 64 chains each: ``cost = (time per Markov step per chain) × 2 τ_int(χ₂)``,
    with τ_int from the Γ-method. The time per step is the wall time of the whole run
    (thermalisation included) over the number of chain updates; for the flow one update is
    one proposal. The flow chain runs twice: drawing one step's 64 proposals per pass of the
    flow (``cost_ratio_*_over_flow``), and drawing ``--prefetch`` steps' proposals per pass
    (``cost_ratio_*_over_flow_prefetch``), which an independence sampler may do because its
    proposals do not depend on the chain's state.

Absolute times depend on the machine and on what else runs on it. On a shared CPU only the
ratios are meaningful; absolute figures compare only between runs on the same machine.

Usage::

    python benchmarks/bench_phi4.py --quick          # about a minute on one CPU core
    python benchmarks/bench_phi4.py --device cuda    # full run
    python benchmarks/bench_phi4.py --only a,c --threads 1

Results, with the header lines naming the machine they ran on, go in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lqft_lab.actions import Phi4Action
from lqft_lab.flows import FlowModel, build_real_nvp, transfer_real_nvp
from lqft_lab.io import DATA_DIR, load_checkpoint, pretrained_path
from lqft_lab.lattice import resolve_device
from lqft_lab.studies.phi4_scaling import ALGORITHMS, ENSEMBLES, run_algorithm
from lqft_lab.train import TrainConfig, Trainer, evaluate

L_TRAIN, M2_TRAIN, LAM_TRAIN = 8, -4.0, 8.0  # the tutorial's theory, parts (a) and (b)
E5 = ENSEMBLES["E5"]  # L = 14, m² = -4, λ = 5.113 (arXiv:1904.12072), part (c)

#: batch size -> (rounds, steps per round) of the side-by-side timing: full mode, --quick
STEP_TIMING = {64: ((7, 50), (3, 6)), 1024: ((7, 10), (3, 1))}
WARMUP_STEPS = 2

ESS_TARGET = 0.4
CHUNK_STEPS = 250
QUICK_TRAIN_SECONDS = 20.0
EVAL_SAMPLES = 4096

N_CHAINS = 64  # the samplers' settings are run_algorithm's defaults, as in notebook 01b
#: sampler -> (thermalize, measured steps): full mode, --quick
CHAIN_STEPS = {
    "flow": ((200, 3000), (10, 100)),
    "hmc": ((500, 5000), (200, 1000)),
    "local": ((500, 10000), (200, 1000)),
}


def emit(name: str, value) -> None:
    """Print one ``name=value`` line on stdout (floats to 6 significant digits)."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    print(f"{name}={text}", flush=True)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock intervals measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the reference: the tutorial's flow in plain PyTorch ----------------------------------


def make_checker_mask(L: int, parity: int) -> torch.Tensor:
    """``(L, L)`` mask, 1 on the sites with ``(x + y) % 2 == parity`` (frozen), else 0."""
    x, y = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    return ((x + y) % 2 == parity).float()


def make_conv_net(hidden=(8, 8), kernel_size: int = 3) -> nn.Sequential:
    """Circular convolutions ``1 → hidden → 2`` channels, LeakyReLU between, tanh last."""
    sizes = [1, *hidden, 2]
    layers = []
    for i, (c_in, c_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        pad = kernel_size // 2
        layers.append(nn.Conv2d(c_in, c_out, kernel_size, padding=pad, padding_mode="circular"))
        layers.append(nn.LeakyReLU() if i < len(sizes) - 2 else nn.Tanh())
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """Reference coupling: ``x = m·z + (1 - m)·(z·exp(s) + t)``, ``s, t`` from ``m·z``."""

    def __init__(self, net: nn.Module, mask: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_frozen = self.mask * z
        z_active = (1 - self.mask) * z
        net_out = self.net(z_frozen.unsqueeze(1))  # (B, 2, L, L)
        s, t = net_out[:, 0], net_out[:, 1]
        x = (1 - self.mask) * t + z_active * torch.exp(s) + z_frozen
        logJ = ((1 - self.mask) * s).sum(dim=(1, 2))
        return x, logJ


def normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Log-density of independent unit normals, summed over the lattice, ``(B,)``."""
    return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(dim=(1, 2))


class ReferenceFlow(nn.Module):
    """The tutorial's real NVP: layer ``i`` freezes the sites of parity ``i % 2``."""

    def __init__(self, L: int, n_layers: int = 16):
        super().__init__()
        self.L = L
        self.layers = nn.ModuleList(
            AffineCoupling(make_conv_net(), make_checker_mask(L, i % 2)) for i in range(n_layers)
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logJ = z, 0.0
        for layer in self.layers:
            x, layer_logJ = layer(x)
            logJ = logJ + layer_logJ
        return x, logJ

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logq)`` for a fresh batch of prior draws."""
        device = self.layers[0].mask.device
        z = torch.randn((batch_size, self.L, self.L), generator=generator, device=device)
        x, logJ = self(z)
        return x, normal_log_prob(z) - logJ


def phi4_action(phi: torch.Tensor, m2: float, lam: float) -> torch.Tensor:
    """``S = Σ_x [-2 Σ_μ φ_x φ_{x+μ} + (4 + m²) φ_x² + λ φ_x⁴]`` in 2D, ``(B,)``."""
    hop = phi * torch.roll(phi, -1, dims=1) + phi * torch.roll(phi, -1, dims=2)
    return (-2 * hop + (4 + m2) * phi**2 + lam * phi**4).sum(dim=(1, 2))


def reference_train_step(flow: ReferenceFlow, optimizer, batch_size: int, generator) -> None:
    x, logq = flow.sample(batch_size, generator)
    logp = -phi4_action(x, M2_TRAIN, LAM_TRAIN)
    loss = (logq - logp).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


# --- (a) training-step time, ours against the reference -----------------------------------


def reference_like(model: FlowModel) -> ReferenceFlow:
    """A :class:`ReferenceFlow` holding a copy of ``model``'s convolution weights."""
    param = next(model.parameters())
    ref = ReferenceFlow(model.lattice_shape[0], len(model.flow.layers)).to(param.device)
    # ours: flow.layers.{i}.net.{j}.weight, j indexing [conv, act, conv, act, conv, tanh]
    weights = {
        key.removeprefix("flow."): value.detach().clone()
        for key, value in model.state_dict().items()
        if key.startswith("flow.") and not key.endswith(".mask")
    }
    ref.load_state_dict(weights, strict=True)
    return ref


@torch.no_grad()
def check_same_flow(model: FlowModel, ref: ReferenceFlow, generator: torch.Generator) -> None:
    """Raise unless ``model`` and ``ref`` give the same ``x``, ``logq`` and action."""
    z = model.prior.sample(64, generator=generator)
    x, logJ = model.flow(z)
    x_ref, logJ_ref = ref(z)
    pairs = {
        "x": (x, x_ref),
        "logq": (model.prior.log_prob(z) - logJ, normal_log_prob(z) - logJ_ref),
        "action": (Phi4Action(M2_TRAIN, LAM_TRAIN)(x), phi4_action(x, M2_TRAIN, LAM_TRAIN)),
    }
    for what, (ours, theirs) in pairs.items():
        if not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5):
            diff = (ours - theirs).abs().max().item()
            raise RuntimeError(
                f"our flow and the reference disagree on {what} (max |diff| = {diff:.3g}): "
                "the step timing would compare different computations"
            )


def ms_per_step(step: Callable[[], object], n_steps: int, device: torch.device) -> float:
    """Wall time of ``n_steps`` calls of ``step``, in ms per call."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step()
    synchronize(device)
    return (time.perf_counter() - t0) / n_steps * 1e3


def time_side_by_side(steps: dict, rounds: int, n_steps: int, device) -> dict[str, list[float]]:
    """ms per step of each of ``steps`` (name → callable), in rounds of alternating order."""
    for step in steps.values():
        ms_per_step(step, WARMUP_STEPS, device)
    times = {name: [] for name in steps}
    for r in range(rounds):
        for name in list(steps)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(ms_per_step(steps[name], n_steps, device))
    return times


def bench_step_time(device: torch.device, quick: bool, seed: int) -> None:
    for batch, plans in STEP_TIMING.items():
        rounds, n_steps = plans[quick]
        model = build_real_nvp(L=L_TRAIN, seed=seed).to(device)
        ref = reference_like(model)
        generator = torch.Generator(device=device).manual_seed(seed)
        check_same_flow(model, ref, generator)
        action = Phi4Action(M2_TRAIN, LAM_TRAIN)
        trainer = Trainer(model, action, TrainConfig(batch_size=batch, seed=seed))
        optimizer = torch.optim.Adam(ref.parameters(), lr=1e-3)
        steps = {
            "ours": trainer._train_step,
            "ref": functools.partial(reference_train_step, ref, optimizer, batch, generator),
        }
        if device.type == "cuda":
            # What the CUDA graph buys: the same step of ours, op by op.
            eager = Trainer(
                build_real_nvp(L=L_TRAIN, seed=seed).to(device),
                action,
                TrainConfig(batch_size=batch, seed=seed, cuda_graph=False),
            )
            steps["ours_eager"] = eager._train_step
        times = time_side_by_side(steps, rounds, n_steps, device)
        if device.type == "cuda":
            emit(f"cuda_graph_b{batch}", trainer.uses_cuda_graph)
        for name in steps:
            emit(f"step_ms_{name}_b{batch}", statistics.median(times[name]))
        for name in [n for n in steps if n != "ref"]:
            suffix = "" if name == "ours" else "_eager"
            ratios = [a / b for a, b in zip(times[name], times["ref"], strict=True)]
            emit(f"step_time_ratio{suffix}_b{batch}", statistics.median(ratios))


# --- (b) wall time to ESS >= 0.4 ----------------------------------------------------------


def bench_time_to_ess(device: torch.device, quick: bool, seed: int) -> None:
    action = Phi4Action(M2_TRAIN, LAM_TRAIN)
    config = TrainConfig(seed=seed)
    model = build_real_nvp(L=L_TRAIN, seed=seed).to(device)
    trainer = Trainer(model, action, config)
    cap_s = QUICK_TRAIN_SECONDS if quick else math.inf

    def stop_at_cap(trainer: Trainer, metrics: dict) -> None:
        if metrics["time"] >= cap_s:
            trainer.stop()

    trainer.add_callback(stop_at_cap)
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    train_s, ess = 0.0, float("nan")  # a NaN ESS counts as not reached
    while trainer.step < config.n_steps and train_s < cap_s and not ess >= ESS_TARGET:
        synchronize(device)
        t0 = time.perf_counter()
        trainer.train(min(CHUNK_STEPS, config.n_steps - trainer.step), progress=True)
        synchronize(device)
        train_s += time.perf_counter() - t0
        ess = evaluate(model, action, EVAL_SAMPLES, generator=generator)["ess"]
    reached = ess >= ESS_TARGET
    emit("time_to_ess40_s", train_s if reached else math.inf)
    emit("steps_to_ess40", trainer.step if reached else math.inf)
    emit("ess_at_stop", ess)
    emit("train_steps_run", trainer.step)
    emit("train_s_run", train_s)


# --- (c) cost per independent sample at E5 ------------------------------------------------


def load_e5_flow(path: Path, device: torch.device) -> tuple[FlowModel, str | None]:
    """The E5 flow at ``path``, or the L = 8 flow transferred to L = 14 and a note saying so."""
    if path.is_file():
        model, _ = load_checkpoint(path, action=E5.action, device=device)
        if model.lattice_shape != E5.lattice:
            raise ValueError(f"{path} is a flow for {model.lattice_shape}, not {E5.lattice}")
        return model, None
    base, _ = load_checkpoint(pretrained_path("phi4_L8_m2-4_lam8"), device=device)
    note = (
        f"no E5 flow at {path}; the flow figures describe the L=8 (m2=-4, lam=8) flow "
        f"transferred to L={E5.L}, not trained for E5"
    )
    return transfer_real_nvp(base, E5.L), note


def report_run(run) -> float:
    """Print one algorithm's figures; return its cost per independent sample in µs."""
    name = run.algorithm
    emit(f"acceptance_{name}", run.acceptance)
    for label in ("chi2", "E"):
        result = getattr(run, label)
        emit(f"{label}_{name}", result.value)
        emit(f"{label}_{name}_err", result.error)
        emit(f"tau_{label}_{name}", result.tau_int)
        emit(f"tau_{label}_{name}_err", result.tau_int_error)
    if not run.chi2.window_converged:
        emit("note", f"{name}: chain too short for tau_chi2, which is a lower bound")
    cost = run.cost_per_independent_sample("chi2") * 1e6
    emit(f"step_us_{name}", run.time_per_step * 1e6)
    emit(f"cost_per_indep_us_{name}", cost)
    return cost


def bench_e5_cost(
    device: torch.device, quick: bool, seed: int, model_path: Path, prefetch: int
) -> None:
    """The samplers of notebook 01b (:func:`lqft_lab.studies.phi4_scaling.run_algorithm`) at E5."""
    model, note = load_e5_flow(model_path, device)
    if note:
        emit("note", note)
    emit("flow_prefetch", prefetch)
    costs = {}
    for name, run_prefetch in [(a, 1) for a in ALGORITHMS] + [("flow", prefetch)]:
        thermalize, n_steps = CHAIN_STEPS[name][quick]
        run = run_algorithm(
            name,
            E5,
            n_steps,
            n_chains=N_CHAINS,
            thermalize=thermalize,
            model=model,
            seed=seed,
            device=device,
            prefetch=run_prefetch,
            progress=True,
        )
        if run_prefetch > 1:
            emit("step_us_flow_prefetch", run.time_per_step * 1e6)
            emit("tau_chi2_flow_prefetch", run.chi2.tau_int)
            emit("tau_chi2_flow_prefetch_err", run.chi2.tau_int_error)
            costs["flow_prefetch"] = run.cost_per_independent_sample("chi2") * 1e6
            emit("cost_per_indep_us_flow_prefetch", costs["flow_prefetch"])
        else:
            costs[name] = report_run(run)
    for flow in ("flow", "flow_prefetch"):
        emit(f"cost_ratio_hmc_over_{flow}", costs["hmc"] / costs[flow])
        emit(f"cost_ratio_local_over_{flow}", costs["local"] / costs[flow])


# --- command line -------------------------------------------------------------------------


def print_header(device: torch.device, quick: bool) -> None:
    emit("device", device.type)
    if device.type == "cuda":
        emit("gpu", torch.cuda.get_device_name(device))
    emit("torch", torch.__version__)
    emit("threads", torch.get_num_threads())
    emit("cpus", os.cpu_count())
    emit("platform", platform.platform())
    emit("quick", quick)


def parse_device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parse_parts(text: str) -> set[str]:
    parts = set(text.split(","))
    if not parts <= {"a", "b", "c"}:
        raise argparse.ArgumentTypeError(f"parts must be among a, b, c; got {text!r}")
    return parts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (under a minute)")
    parser.add_argument(
        "--device", type=parse_device, default="auto", help="cpu, cuda or auto (default)"
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: unset)")
    parser.add_argument("--only", type=parse_parts, default={"a", "b", "c"}, help="e.g. a,c")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--e5-model",
        type=Path,
        default=DATA_DIR / "models" / "phi4_E5.safetensors",
        help="flow checkpoint for E5 (default: the pretrained phi4_E5)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=16,
        help="part (c): steps of flow proposals drawn per pass in the second flow run",
    )
    args = parser.parse_args()
    if args.prefetch < 2:
        parser.error(f"--prefetch must be at least 2, got {args.prefetch}")
    return args


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print_header(args.device, args.quick)
    if "a" in args.only:
        bench_step_time(args.device, args.quick, args.seed)
    if "b" in args.only:
        bench_time_to_ess(args.device, args.quick, args.seed)
    if "c" in args.only:
        bench_e5_cost(args.device, args.quick, args.seed, args.e5_model, args.prefetch)


if __name__ == "__main__":
    main()
