"""Benchmark of the U(1) flow's reverse pass: the NCP kernel's root finder.

Every reverse pass of a U(1) flow with NCP kernels inverts each kernel numerically: a map
between replica-exchange rungs (T-REX, DR-REX) does one per swap, flow-MH alternated with
heatbath sweeps one per step, and the forward-KL loss one per training step. The kernel
used to bisect ``[-π, π]`` to the dtype's precision (56 evaluations of the mixture in
float64, :func:`~lqft_lab.flows.u1.kernels._bisect`); it now takes safeguarded Newton steps
inside a shrinking bracket (:func:`~lqft_lab.flows.u1.kernels._newton_bisect`).

One run builds U(1) flows that start as the identity and are then pushed away from it
(their conditioners' weights perturbed, ``scale`` below, as a trained flow is), draws exact
configurations of ``β = 6``, and times ``flow.reverse`` with each root finder, in
alternating rounds. It first checks that the Newton finder's round trip ``reverse(forward(x))``
is as good as bisection's (within a factor 2, or 1e-9) and prints both
(``round_trip_error_<case>``): with weights this far from the identity a round trip is
only good to about 1e-9 (8 layers) with either finder, since every later conditioner
amplifies the rounding of the earlier layers. Printed as ``name=value`` lines:
``reverse_ms_{bisect,newton}_<case>`` (median over rounds) and ``reverse_ratio_<case>``,
the median over rounds of the per-round ratio bisect / newton (paired, so slow phases of a
shared machine cancel): above 1 the Newton finder is faster. Only the ratios are
meaningful on a shared CPU.

Usage::

    python benchmarks/bench_u1_inverse.py [--device cpu] [--rounds 5] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from lqft_lab.flows.u1 import kernels
from lqft_lab.samplers import sample_u1_exact
from lqft_lab.studies.replica_exchange import identity_flow

CASES = [  # (L, layers, batch)
    (8, 8, 32),
    (16, 8, 64),
    (16, 16, 64),
]


def _bisect_only(f, target, max_newton=0):
    return kernels._bisect(lambda v: f(v)[0], target)


def _perturbed(L: int, layers: int, scale: float, seed: int):
    flow = identity_flow(L, n_layers=layers, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


def _round_trip_error(x: torch.Tensor, back: torch.Tensor) -> float:
    return (torch.remainder(back - x + torch.pi, 2 * torch.pi) - torch.pi).abs().max().item()


def _time(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--quick", action="store_true", help="the first case only, 2 rounds")
    args = parser.parse_args()
    cases = CASES[:1] if args.quick else CASES
    rounds = 2 if args.quick else args.rounds
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"machine={platform.node()} cpu={platform.processor() or platform.machine()}")
    print(f"torch={torch.__version__} device={device} threads={torch.get_num_threads()}")
    newton = kernels._newton_bisect
    for L, layers, batch in cases:
        case = f"L{L}_layers{layers}_B{batch}"
        flow = _perturbed(L, layers, args.scale, seed=L + layers).to(device)
        gen = torch.Generator(device=device).manual_seed(1)
        x = sample_u1_exact(batch, L, 6.0, gen, dtype=torch.float64, device=device)
        with torch.no_grad():
            y, _ = flow.forward(x)
            results = {}
            for name, finder in (("bisect", _bisect_only), ("newton", newton)):
                kernels._newton_bisect = finder
                results[name] = flow.reverse(y)
            kernels._newton_bisect = newton
            errors = {name: _round_trip_error(x, back) for name, (back, _) in results.items()}
            if errors["newton"] > max(2 * errors["bisect"], 1e-9):
                raise RuntimeError(f"{case}: Newton's round trip is worse: {errors}")
            print(f"round_trip_error_{case}=" + ",".join(f"{k}:{v:.1e}" for k, v in errors.items()))
            times = {"bisect": [], "newton": []}
            for _ in range(rounds):
                for name, finder in (("bisect", _bisect_only), ("newton", newton)):
                    kernels._newton_bisect = finder
                    times[name].append(_time(lambda f=flow, v=y: f.reverse(v), device))
                kernels._newton_bisect = newton
        for name, values in times.items():
            print(f"reverse_ms_{name}_{case}={1e3 * statistics.median(values):.2f}")
        ratios = [b / n for b, n in zip(times["bisect"], times["newton"], strict=True)]
        print(f"reverse_ratio_{case}={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
