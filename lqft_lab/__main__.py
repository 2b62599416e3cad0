"""Command line: ``python -m lqft_lab <command>``.

Commands:
    notebooks   execute the numbered notebooks headless (see :mod:`lqft_lab.notebooks`) and
                print the figures they recorded.
    train       train a real NVP flow for φ⁴ by reverse KL and save a checkpoint; with the
                defaults it reproduces ``data/models/phi4_L8_m2-4_lam8.safetensors``.
    report      write a Markdown report of a notebook run (``metrics.json``) with every
                recorded figure against its target (see :mod:`lqft_lab.report`).

Exit status: 0 on success, 1 when a notebook failed, 2 for a usage error (unknown notebook,
mode or device, CUDA requested where there is none). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .notebooks import DEVICES, MODES, NotebookFailed, run_notebooks

__all__ = ["main"]


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        text = "[" + ", ".join(_format_value(v) for v in value[:6])
        return text + (", ...]" if len(value) > 6 else "]")
    return "null" if value is None else str(value)


def summary_table(metrics: dict) -> str:
    """Render ``metrics.json`` contents as a plain-text table: notebook, figure, value."""
    meta = metrics.get("_meta", {})
    rows = [("notebook", "figure", "value")]
    for stem, info in meta.items():
        status = f"{info['status']}, {info['wall_s']:.1f} s, {info['mode']}, {info['device']}"
        for key, label in (("peak_rss_mb", "peak RSS"), ("peak_gpu_mb", "peak GPU")):
            if info.get(key) is not None:
                status += f", {label} {info[key]:.0f} MiB"
        rows.append((stem, "(run)", status))
        for name, value in metrics.get(stem, {}).items():
            rows.append(("", name, _format_value(value)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows)


def _notebooks(args: argparse.Namespace) -> int:
    try:
        metrics = run_notebooks(
            mode=args.mode,
            device=args.device,
            only=args.only,
            out=args.out,
            notebooks_dir=args.notebooks_dir,
            progress=not args.no_progress,
            timeout=args.timeout,
            jobs=args.jobs,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NotebookFailed as err:
        print(summary_table(err.metrics))
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary_table(metrics))
    print(f"figures written to {args.out}/metrics.json", file=sys.stderr)
    return 0


def _channels(text: str) -> tuple[int, ...]:
    """``"32,32"`` -> ``(32, 32)``: hidden channels of the coupling networks."""
    try:
        hidden = tuple(int(h) for h in text.split(","))
    except ValueError:
        hidden = ()
    if not hidden or min(hidden) < 1:
        raise ValueError(f"--hidden takes positive channel counts, e.g. 32,32; got {text!r}")
    return hidden


def _train(args: argparse.Namespace) -> int:
    # Imported here: the notebooks command should not pay for torch's import.
    import torch

    from .actions import Phi4Action
    from .flows import RealNVPConfig, build_real_nvp, transfer_real_nvp
    from .io import load_checkpoint, save_checkpoint
    from .lattice import resolve_device
    from .train import TrainConfig, Trainer, evaluate, train_to_acceptance

    try:
        device = resolve_device(args.device)
        action = Phi4Action(args.m2, args.lam)
        config = TrainConfig(
            n_steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed
        )
        if args.target_acceptance is not None and not 0 < args.target_acceptance < 1:
            raise ValueError(f"--target-acceptance must be in (0, 1), got {args.target_acceptance}")
        if args.check_every < 1:
            raise ValueError(f"--check-every must be positive, got {args.check_every}")
        hidden = None if args.hidden is None else _channels(args.hidden)
        if args.init is None:
            arch = RealNVPConfig(
                L=args.L,
                n_layers=args.layers or 16,
                hidden=hidden or (8, 8),
                spectral_prior=args.spectral_prior,
            )
            model = build_real_nvp(arch, seed=args.seed)
        else:
            model, _ = load_checkpoint(args.init)
            if args.layers is not None and args.layers != model.config.n_layers:
                raise ValueError(
                    f"--layers {args.layers} differs from {args.init} "
                    f"({model.config.n_layers} layers)"
                )
            if hidden is not None and hidden != tuple(model.config.hidden):
                raise ValueError(
                    f"--hidden {args.hidden} differs from {args.init} "
                    f"(hidden channels {','.join(map(str, model.config.hidden))})"
                )
            # --spectral-prior adds an (untrained) spectral prior to a flow that has none
            model = transfer_real_nvp(model, args.L, spectral_prior=args.spectral_prior or None)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = model.to(device)
    trainer = Trainer(model, action, config)
    gen = torch.Generator(device=device).manual_seed(args.seed + 12345)
    if args.target_acceptance is None:
        trainer.train(progress=True)
    else:
        train_to_acceptance(
            trainer,
            args.target_acceptance,
            args.check_every,
            generator=gen,
            progress=True,
            log=lambda line: print(line, file=sys.stderr),
        )
    final = evaluate(model, action, 16384, generator=gen)  # fresh samples, never the batch
    extra = {}
    if args.init is not None:
        extra["init"] = Path(args.init).name
    if args.target_acceptance is not None:
        extra["target_acceptance"] = args.target_acceptance
    save_checkpoint(
        args.out,
        model.cpu(),
        action,
        steps=trainer.step,
        seed=args.seed,
        train=config.to_dict(),
        metrics={
            "ess": round(final["ess"], 4),
            "acceptance": round(final["acceptance"], 4),
            "ess_samples": final["n"],
            "train_seconds": round(trainer.history[-1]["time"], 1) if trainer.history else 0.0,
        },
        **extra,
    )
    print(
        f"trained {trainer.step} steps, skipped {trainer.skipped}; ESS {final['ess']:.3f}, "
        f"acceptance {final['acceptance']:.3f} on {final['n']} fresh samples; saved {args.out}"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    try:
        path = write_report(args.metrics, args.out, date=args.date, gpu=args.gpu)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lqft_lab", description="lqft_lab: lattice field theory sampling lab"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    nb = commands.add_parser(
        "notebooks",
        help="execute the notebooks headless and collect their recorded figures",
        description="Execute notebooks/NN_*.ipynb with papermill into OUT/ and write "
        "OUT/metrics.json with the figures each notebook recorded.",
    )
    nb.add_argument("--mode", choices=MODES, default="fast", help="fast (CPU, minutes) or full")
    nb.add_argument("--device", choices=DEVICES, default="auto", help="device for the notebooks")
    nb.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NB",
        help="notebooks to run, by number (01) or name (01_phi4_real_nvp); default: all",
    )
    nb.add_argument("--out", default="build/notebooks", help="folder for executed copies")
    nb.add_argument("--notebooks-dir", default="notebooks", help="folder holding NN_*.ipynb")
    nb.add_argument("--timeout", type=float, default=None, help="per-cell limit in seconds")
    nb.add_argument(
        "--jobs", type=int, default=1, help="notebooks run at once, each in its own kernel"
    )
    nb.add_argument("--no-progress", action="store_true", help="no progress bar")
    nb.set_defaults(run=_notebooks)

    tr = commands.add_parser(
        "train",
        help="train a real NVP flow for phi^4 and save a checkpoint",
        description="Reverse-KL training of the 2021 tutorial's real NVP flow; the defaults "
        "reproduce data/models/phi4_L8_m2-4_lam8.safetensors.",
    )
    defaults = {
        "L": 8,
        "m2": -4.0,
        "lam": 8.0,
        "steps": 20_000,
        "batch_size": 64,
        "lr": 1e-3,
        "seed": 0,
    }
    for name, value in defaults.items():
        tr.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(value),
            default=value,
            help=f"(default {value})",
        )
    tr.add_argument("--layers", type=int, default=None, help="coupling layers (default 16)")
    tr.add_argument(
        "--hidden",
        default=None,
        help="hidden channels of each coupling's conv net, e.g. 32,32 (default 8,8)",
    )
    tr.add_argument(
        "--spectral-prior",
        action="store_true",
        help="draw the couplings' input from a Gaussian with a learned momentum-space spectrum "
        "(added, untrained, to an --init flow that has none)",
    )
    tr.add_argument(
        "--init",
        default=None,
        help="start from this checkpoint's weights (any L: the flow is transferred to --L)",
    )
    tr.add_argument(
        "--target-acceptance",
        type=float,
        default=None,
        help="stop once the MH acceptance on 4096 fresh samples reaches this "
        "(and 8192 more confirm it)",
    )
    tr.add_argument("--check-every", type=int, default=500, help="steps between acceptance checks")
    tr.add_argument("--device", choices=DEVICES, default="auto", help="where to train")
    tr.add_argument("--out", required=True, help="checkpoint file (.safetensors)")
    tr.set_defaults(run=_train)

    rp = commands.add_parser(
        "report",
        help="write a Markdown report of a notebook run against the notebooks' targets",
        description="Read METRICS (written by the notebooks command) and write "
        "OUT/<date>-<gpu>.md plus a copy of the metrics beside it.",
    )
    rp.add_argument("--metrics", default="build/notebooks-full/metrics.json", help="run's JSON")
    rp.add_argument("--out", default="reports/gpu", help="folder for the report")
    rp.add_argument("--date", default=None, help="YYYY-MM-DD (default: today)")
    rp.add_argument("--gpu", default=None, help="device name (default: the one recorded)")
    rp.set_defaults(run=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
