"""Benchmark of the Schwinger model's fermion kernels: matrix-free Wilson–Dirac against dense.

One run measures, on one device, at ``L = 8, 16, 32`` (16 configurations drawn exactly
from pure U(1) gauge theory at ``β = 2`` by :func:`~lqft_lab.samplers.sample_u1_exact`,
Wilson fermions at ``κ = 0.24``, antiperiodic in time), and prints every figure as a
``name=value`` line on stdout (after a header block describing the machine):

(a) **One application of D** to a batch of fields: ours, :class:`WilsonDirac` matrix-free on
    precomputed links (``D._apply(U, ψ)``, ``O(V)`` per configuration), against a batched
    dense matrix-vector product with ``D`` already built (``O(V²)``).
(b) **One solve** ``D†D x = φ`` to a relative residual of ``1e-10`` in complex128, ``φ`` from
    the pseudofermion heatbath: ours, :func:`conjugate_gradient` on the matrix-free ``D†D``,
    against forming the dense ``D†D`` from the built ``D`` and ``torch.linalg.solve``
    (``O(V³)``). Also the CG iterations per configuration (``cg_iterations_L*``).
(c) **One pseudofermion-HMC trajectory** (heatbath of ``φ``, momenta, leapfrog with
    ``n_steps = 10``, ``ε = 0.1``, Metropolis): ours, :class:`PseudofermionHMC` (analytic
    force, one CG solve per force), against the same trajectory written densely here: ``D``
    built from the links at every force evaluation, ``S_pf = φ†(D†D)^{-1}φ`` by a dense solve
    and the force by autograd through it. Above ``L = 16`` it is skipped
    (``trajectory_ms_dense_L32=skipped``): at ``L = 32`` (``2V = 2048``) one dense solve
    already takes about 30 s on a CPU core and a trajectory needs some 22 solves' worth.
(d) **Even/odd preconditioning**: the trajectory of (c) with plain pseudofermions
    (``φ†(D†D)^{-1}φ`` on all sites) against even/odd ones (``φ_e†(M†M)^{-1}φ_e`` with the
    Schur complement ``M = 1 - D_eo D_oe``), side by side, with the CG iterations of each.

The dense ``D`` is :meth:`WilsonDirac.dense` (the link phases scattered into the hopping
pattern, differentiable), which is what a plain dense implementation does. Before timing,
every size checks that the reference computes what ours does (it raises otherwise): the
dense gauge action against ``U1WilsonAction``, the dense
application against ours, the dense solution against CG's (two configurations) and, where
the dense trajectory runs, two dense leapfrog steps against
:meth:`PseudofermionHMC.integrate` from the same ``(θ, p, φ)``. The two variants are then
timed in alternating rounds; every ``*_ratio_L*`` is the median over rounds of the
per-round ratio **dense / ours** (paired, so slow phases of a shared machine cancel): above
1, ours is faster.

Absolute times depend on the machine and on what else runs on it. On a shared CPU only the
ratios are meaningful; absolute figures compare only between runs on the same machine.

Usage::

    python benchmarks/bench_fermions.py --quick          # L = 8 only, seconds
    python benchmarks/bench_fermions.py --device cuda    # full run
    python benchmarks/bench_fermions.py --sizes 8,16 --threads 1

Results, with the header lines naming the machine they ran on, go in
``benchmarks/RESULTS.md``.

References:
    M. R. Hestenes, E. Stiefel, J. Res. Nat. Bur. Standards 49 (1952) 409 (CG);
    S. Duane, A. D. Kennedy, B. J. Pendleton, D. Roweth, Phys. Lett. B 195 (1987) 216 (HMC);
    M. S. Albergo et al., arXiv:2106.05934 (the 2D conventions and pseudofermions).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from lqft_lab import linalg
from lqft_lab.actions import PseudofermionAction, U1WilsonAction, WilsonDirac, conjugate_gradient
from lqft_lab.lattice import resolve_device
from lqft_lab.samplers import PseudofermionHMC, sample_u1_exact

BETA, KAPPA = 2.0, 0.24
STEP_SIZE, N_STEPS = 0.1, 10
TOL = 1e-10
BATCH = 16
SIZES = (8, 16, 32)
DENSE_TRAJECTORY_MAX_L = 16  # above: dense trajectory skipped (module docstring)

#: operation -> L -> (rounds, calls per round), full mode; --quick uses QUICK_PLAN at L = 8
PLAN = {
    "apply": {8: (5, 200), 16: (5, 50), 32: (3, 10)},
    "solve": {8: (5, 5), 16: (3, 2), 32: (1, 1)},
    "trajectory": {8: (3, 1), 16: (1, 1), 32: (1, 1)},
    "even_odd": {8: (3, 1), 16: (3, 1), 32: (1, 1)},
}
QUICK_PLAN = {"apply": (2, 20), "solve": (2, 1), "trajectory": (1, 1), "even_odd": (1, 1)}
#: warm-up calls of each variant before timing; none for an operation above a second
WARMUP_MAX_L = {"apply": 32, "solve": 16, "trajectory": 8, "even_odd": 8}


def emit(name: str, value) -> None:
    """Print one ``name=value`` line on stdout (floats to 6 significant digits)."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    print(f"{name}={text}", flush=True)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock intervals measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the reference: the Schwinger model with dense matrices -------------------------------


def dense_dirac(theta: torch.Tensor, kappa: float) -> torch.Tensor:
    """Dense hopping-form ``D`` ``(B, 2V, 2V)`` from links ``(B, 2, L0, L1)``, differentiable
    in ``theta``: :meth:`WilsonDirac.dense`, which places the link phases entry by entry."""
    return WilsonDirac(kappa).dense(theta)


def gauge_action(theta: torch.Tensor, beta: float) -> torch.Tensor:
    """``S_g = -β Σ_x cos θ_P(x)``, ``θ_P = θ_0(x) + θ_1(x+0̂) - θ_0(x+1̂) - θ_1(x)``, ``(B,)``."""
    t0, t1 = theta[:, 0], theta[:, 1]
    plaq = t0 + torch.roll(t1, -1, 1) - torch.roll(t0, -1, 2) - t1
    return -beta * torch.cos(plaq).sum(dim=(1, 2))


def dense_pf_action(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``S_pf = φ†(D†D)^{-1}φ`` by a dense solve, ``phi (B, 2V)``, ``(B,)``."""
    D = dense_dirac(theta, KAPPA)
    X = linalg.solve(D.mH @ D, phi)
    return (phi.conj() * X).real.sum(dim=1)


def dense_force(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``-dS/dθ`` of ``S_g + S_pf`` at fixed ``φ``, by autograd through the dense solve."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        S = gauge_action(theta, BETA) + dense_pf_action(theta, phi)
        (grad,) = torch.autograd.grad(S.sum(), theta)
    return -grad


def dense_leapfrog(x, p, phi, eps: float, n_steps: int):
    """Leapfrog over ``n_steps · ε`` with :func:`dense_force` (``n_steps + 1`` forces)."""
    p = p + 0.5 * eps * dense_force(x, phi)  # p(ε/2)
    for i in range(n_steps):
        x = x + eps * p  # x(t + ε)
        kick = eps if i < n_steps - 1 else 0.5 * eps  # merged half kicks; last one is ε/2
        p = p + kick * dense_force(x, phi)
    return x, p


def dense_trajectory(theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One pseudofermion-HMC trajectory, densely: heatbath, leapfrog, Metropolis."""
    B = theta.shape[0]
    n = 2 * theta[0, 0].numel()
    chi = torch.randn(B, n, dtype=torch.complex128, generator=generator, device=theta.device)
    phi = (dense_dirac(theta, KAPPA).mH @ chi[..., None])[..., 0]  # φ = D†χ ~ CN(0, D†D)
    p = torch.randn(theta.shape, dtype=theta.dtype, generator=generator, device=theta.device)
    H0 = 0.5 * p.pow(2).flatten(1).sum(1) + gauge_action(theta, BETA) + chi.abs().pow(2).sum(1)
    x1, p1 = dense_leapfrog(theta, p, phi, STEP_SIZE, N_STEPS)
    H1 = 0.5 * p1.pow(2).flatten(1).sum(1) + gauge_action(x1, BETA) + dense_pf_action(x1, phi)
    u = torch.rand(B, dtype=theta.dtype, generator=generator, device=theta.device)
    accepted = torch.log(u) < -(H1 - H0)
    return torch.where(accepted.view(B, 1, 1, 1), x1, theta)


# --- checks: the reference computes what ours does ----------------------------------------


def require_close(what: str, ours: torch.Tensor, ref: torch.Tensor, rtol: float) -> float:
    """Relative max difference ``max|ours - ref| / max|ref|``; raise above ``rtol``."""
    diff = ((ours - ref).abs().max() / ref.abs().max()).item()
    if not diff <= rtol:
        raise RuntimeError(
            f"ours and the dense reference disagree on {what} (relative max |diff| = "
            f"{diff:.3g} > {rtol:g}): the timing would compare different computations"
        )
    return diff


def check_same_physics(D: WilsonDirac, U, theta, phi, X_cg, D_dense, L: int) -> None:
    """Raise unless the dense reference and ours agree (module docstring); emit the diffs.

    ``X_cg (B, 2V)`` is CG's solution of ``D†D X = φ``; the solve and the leapfrog are
    compared on the first two configurations (a dense solve at ``L = 32`` takes seconds).
    """
    S_g = U1WilsonAction(BETA)(theta)
    require_close("the gauge action", gauge_action(theta, BETA), S_g, 1e-13)
    psi = phi.reshape(phi.shape[0], -1)
    ours = D._apply(U, phi).reshape(psi.shape)
    require_close("D ψ", ours, (D_dense @ psi[..., None])[..., 0], 1e-13)
    X_dense = linalg.solve(D_dense[:2].mH @ D_dense[:2], psi[:2])  # (2, 2V)
    emit(f"solve_rel_diff_L{L}", require_close("(D†D)^{-1} φ", X_cg[:2], X_dense, 1e-6))
    if L <= DENSE_TRAJECTORY_MAX_L:
        # Two leapfrog steps of two chains from the same (θ, p, φ): positions and momenta.
        short = PseudofermionHMC(PseudofermionAction(BETA, KAPPA, tol=TOL), STEP_SIZE, 2)
        gen = torch.Generator(theta.device).manual_seed(1)
        p = torch.randn(theta[:2].shape, dtype=theta.dtype, generator=gen, device=theta.device)
        x_ours, p_ours, _ = short.integrate(theta[:2], p, phi[:2])
        x_ref, p_ref = dense_leapfrog(theta[:2], p, psi[:2], STEP_SIZE, 2)
        require_close("the leapfrog positions", x_ours, x_ref, 1e-8)
        emit(f"leapfrog_rel_diff_L{L}", require_close("the leapfrog momenta", p_ours, p_ref, 1e-6))


# --- timing -------------------------------------------------------------------------------


def ms_per_call(call: Callable[[], object], n_calls: int, device: torch.device) -> float:
    """Wall time of ``n_calls`` calls of ``call``, in ms per call."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(n_calls):
        call()
    synchronize(device)
    return (time.perf_counter() - t0) / n_calls * 1e3


def time_side_by_side(calls: dict, rounds: int, n_calls: int, warmup: bool, device) -> dict:
    """ms per call of each of ``calls`` (name → callable), in rounds of alternating order."""
    if warmup:
        for call in calls.values():
            ms_per_call(call, 1, device)
    times = {name: [] for name in calls}
    for r in range(rounds):
        for name in list(calls)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(ms_per_call(calls[name], n_calls, device))
    return times


def report(op: str, L: int, times: dict[str, list[float]]) -> None:
    """Emit the median ms of each variant and the median paired ratio dense / ours."""
    for name, ms in times.items():
        emit(f"{op}_ms_{name}_L{L}", statistics.median(ms))
    if "dense" in times:
        ratios = [d / o for d, o in zip(times["dense"], times["ours"], strict=True)]
        emit(f"{op}_ratio_L{L}", statistics.median(ratios))


def plan_for(op: str, L: int, quick: bool) -> tuple[int, int]:
    """``(rounds, calls per round)`` of ``op`` at ``L``: the plan of the next size up."""
    if quick:
        return QUICK_PLAN[op]
    return PLAN[op][min((size for size in PLAN[op] if size >= L), default=max(PLAN[op]))]


def bench_size(L: int, device: torch.device, quick: bool, seed: int) -> None:
    plan = {op: plan_for(op, L, quick) for op in PLAN}
    generator = torch.Generator(device=device).manual_seed(seed)
    theta = sample_u1_exact(BATCH, L, BETA, generator, dtype=torch.float64, device=device)
    action = PseudofermionAction(BETA, KAPPA, tol=TOL)
    D = action.dirac
    U = D.links(theta)
    phi = action.heatbath(theta, generator)  # (B, L, L, 2) complex128
    psi = phi.reshape(BATCH, -1, 1)  # (B, 2V, 1), the dense index order
    emit(f"batch_L{L}", BATCH)

    synchronize(device)
    t0 = time.perf_counter()
    D_dense = dense_dirac(theta, KAPPA)
    synchronize(device)
    emit(f"dense_build_ms_L{L}", (time.perf_counter() - t0) * 1e3)

    def cg():
        return conjugate_gradient(lambda v: D._apply_dagger(U, D._apply(U, v)), phi, tol=TOL)

    def dense_solve():
        return linalg.solve(D_dense.mH @ D_dense, psi)

    result = cg()
    check_same_physics(D, U, theta, phi, result.x.reshape(BATCH, -1), D_dense, L)
    emit(f"cg_iterations_L{L}", result.iterations.double().mean().item())
    emit(f"cg_iterations_max_L{L}", int(result.iterations.max()))

    calls = {"ours": lambda: D._apply(U, phi), "dense": lambda: D_dense @ psi}
    warm = L <= WARMUP_MAX_L["apply"]
    report("apply", L, time_side_by_side(calls, *plan["apply"], warm, device))
    calls = {"ours": cg, "dense": dense_solve}
    report("solve", L, time_side_by_side(calls, *plan["solve"], L <= WARMUP_MAX_L["solve"], device))

    hmc = PseudofermionHMC(action, STEP_SIZE, N_STEPS)
    state = hmc.init(theta)
    infos = []

    def ours_trajectory():
        infos.append(hmc.step(state, generator)[1])

    calls = {"ours": ours_trajectory}
    if L <= DENSE_TRAJECTORY_MAX_L:
        calls["dense"] = lambda: dense_trajectory(theta, generator)
    else:
        emit(f"trajectory_ms_dense_L{L}", "skipped")
        emit(f"note_L{L}", f"dense trajectory skipped above L = {DENSE_TRAJECTORY_MAX_L} (cost)")
    warm = L <= WARMUP_MAX_L["trajectory"]
    report("trajectory", L, time_side_by_side(calls, *plan["trajectory"], warm, device))
    iterations = torch.cat([info.cg_iterations for info in infos]).double()
    emit(f"trajectory_cg_iterations_L{L}", iterations.mean().item())
    emit(f"trajectory_accept_L{L}", torch.cat([i.accept_prob for i in infos]).mean().item())
    bench_even_odd(L, theta, generator, plan["even_odd"], device)


def bench_even_odd(L: int, theta, generator, plan: tuple[int, int], device) -> None:
    """(d) Does even/odd preconditioning pay off? The same trajectory with plain and with
    even/odd pseudofermions, side by side: ``even_odd_ratio_L*`` is the median paired ratio
    plain / even-odd (above 1, even/odd is faster), with each one's CG iterations
    (per trajectory, summed over its force evaluations)."""
    infos = {"plain": [], "even_odd": []}
    samplers = {
        name: PseudofermionHMC(
            PseudofermionAction(BETA, KAPPA, tol=TOL, even_odd=name == "even_odd"),
            STEP_SIZE,
            N_STEPS,
        )
        for name in infos
    }
    states = {name: sampler.init(theta) for name, sampler in samplers.items()}

    def trajectory(name):
        return lambda: infos[name].append(samplers[name].step(states[name], generator)[1])

    calls = {name: trajectory(name) for name in infos}
    times = time_side_by_side(calls, *plan, L <= WARMUP_MAX_L["even_odd"], device)
    for name, ms in times.items():
        emit(f"even_odd_trajectory_ms_{name}_L{L}", statistics.median(ms))
        iterations = torch.cat([info.cg_iterations for info in infos[name]]).double()
        emit(f"even_odd_cg_iterations_{name}_L{L}", iterations.mean().item())
    ratios = [p / e for p, e in zip(times["plain"], times["even_odd"], strict=True)]
    emit(f"even_odd_ratio_L{L}", statistics.median(ratios))


# --- command line -------------------------------------------------------------------------


def print_header(device: torch.device, quick: bool, sizes: list[int]) -> None:
    emit("device", device.type)
    if device.type == "cuda":
        emit("gpu", torch.cuda.get_device_name(device))
    emit("torch", torch.__version__)
    emit("threads", torch.get_num_threads())
    emit("cpus", os.cpu_count())
    emit("platform", platform.platform())
    emit("quick", quick)
    emit("sizes", ",".join(map(str, sizes)))
    emit("beta", BETA)
    emit("kappa", KAPPA)
    emit("cg_tol", TOL)
    emit("hmc", f"leapfrog n_steps={N_STEPS} step_size={STEP_SIZE}")


def parse_device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 2, e.g. 8,16; got {text!r}")
    return sizes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 8 only, few repeats")
    parser.add_argument(
        "--device", type=parse_device, default="auto", help="cpu, cuda or auto (default)"
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: unset)")
    parser.add_argument("--sizes", type=parse_sizes, help="lattice extents (default 8,16,32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.sizes is None:
        args.sizes = [8] if args.quick else list(SIZES)
    return args


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print_header(args.device, args.quick, args.sizes)
    for L in args.sizes:
        bench_size(L, args.device, args.quick, args.seed)


if __name__ == "__main__":
    main()
