"""Command line: ``python -m lqft_lab <command>``.

Commands:
    notebooks   execute the numbered notebooks headless (see :mod:`lqft_lab.notebooks`) and
                print the figures they recorded.
    train       train a real NVP flow for φ⁴ by reverse KL and save a checkpoint; with the
                defaults it reproduces ``data/models/phi4_L8_m2-4_lam8.safetensors``.
    report      write a Markdown report of a notebook run (``metrics.json``) with every
                recorded figure against its target (see :mod:`lqft_lab.report`).

Exit status: 0 on success, 1 when a notebook failed, 2 for a usage error (unknown notebook,
mode or device, CUDA requested where there is none, a number out of range, an output path
that cannot be written). Every argument and every output path is checked before any work
starts (a training run is never lost to a bad ``--out``). Errors are one line on stderr,
``error: <sentence>``, whether argparse or the command found them.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .flows import _args as flows_args
from .notebooks import DEVICES, MODES, NotebookFailed, run_notebooks

__all__ = ["main"]


class _UsageError(Exception):
    """A bad command line; :func:`main` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <sentence>`` instead of usage + message."""

    def error(self, message: str):
        # "argument --lr: --lr must be ..." (a type check's sentence) -> "--lr must be ..."
        match = re.match(r"argument (\S+): (.*)", message, flags=re.S)
        if match and match.group(2).startswith(match.group(1).split("/")[-1]):
            message = match.group(2)
        raise _UsageError(" ".join(message.split()))


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return (" " + " and ".join(parts)) if parts else ""


def _integer(option: str, low: int | None = None, high: int | None = None) -> Callable:
    """An argparse ``type``: an integer in ``[low, high]`` (``2.5``, ``1e3`` are refused)."""
    wanted = f"{option} must be an integer{_bounds(low, high)}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{wanted}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{wanted}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def _real(
    option: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable:
    """An argparse ``type``: a finite real number within the bounds (no NaN, no inf)."""
    wanted = f"{option} must be a finite number{_bounds(low, high, low_open, high_open)}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{wanted}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{wanted}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def _existing(option: str, kind: str) -> Callable:
    """An argparse ``type``: a path to an existing ``"file"`` or ``"folder"``."""

    def parse(text: str) -> str:
        path = Path(text)
        ok = path.is_file() if kind == "file" else path.is_dir()
        if not text or not ok:
            what = "no such file" if kind == "file" else "no such folder"
            raise argparse.ArgumentTypeError(f"{option} {text!r}: {what}")
        return text

    parse.__name__ = kind
    return parse


def _date(text: str) -> str:
    """An argparse ``type``: a calendar date written ``YYYY-MM-DD``."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--date must be a date written YYYY-MM-DD, got {text!r}"
        ) from None
    return text


def _name(option: str) -> Callable:
    """An argparse ``type``: a non-blank name on one line."""

    def parse(text: str) -> str:
        if not text.strip() or "\n" in text:
            raise argparse.ArgumentTypeError(f"{option} must be a non-empty name, got {text!r}")
        return text

    parse.__name__ = "name"
    return parse


def _channels(text: str) -> tuple[int, ...]:
    """``"32,32"`` -> ``(32, 32)``: hidden channels of the coupling networks (an argparse
    ``type``)."""
    try:
        hidden = tuple(int(h) for h in text.split(","))
    except ValueError:
        hidden = ()
    if not hidden or min(hidden) < 1:
        raise argparse.ArgumentTypeError(
            f"--hidden takes positive channel counts, e.g. 32,32; got {text!r}"
        )
    return hidden


def _writable_folder(option: str, folder: Path) -> None:
    """Refuse unless files can be created in ``folder`` or in the folders made above it."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {str(folder)!r}: {str(existing)!r} is a file, not a folder")
    try:  # a real write, which also sees read-only file systems (os.access does not as root)
        fd, probe = tempfile.mkstemp(prefix=".lqft_lab_probe_", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"{option} {str(folder)!r}: cannot write in {str(existing)!r} ({err.strerror})"
        ) from None


def _check_output_file(option: str, path: str, suffix: str | None = None) -> Path:
    """Refuse an output file that could not be written, before any work is done.

    Raises:
        ValueError: when ``path`` is empty, a folder, lacks ``suffix``, or lies where files
            cannot be created.
    """
    text = str(path)
    out = Path(text)
    if not text.strip() or out.is_dir() or text.endswith(("/", os.sep)):
        raise ValueError(f"{option} {text!r} is a folder; give a file name, e.g. model{suffix}")
    if suffix is not None and out.suffix != suffix:
        raise ValueError(f"{option} must name a {suffix} file, got {text!r}")
    _writable_folder(option, out.parent)
    return out


def _check_output_folder(option: str, path: str) -> Path:
    """Refuse an output folder that is a file or cannot be created or written.

    Raises:
        ValueError: naming ``option`` and the path.
    """
    text = str(path)
    out = Path(text)
    if not text.strip():
        raise ValueError(f"{option} must name a folder, got {text!r}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {text!r} is a file, not a folder")
    _writable_folder(option, out)
    return out


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
        _check_output_folder("--out", args.out)
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
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except NotebookFailed as err:
        print(summary_table(err.metrics))
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary_table(metrics))
    print(f"figures written to {args.out}/metrics.json", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    # Imported here: the notebooks command should not pay for torch's import.
    import torch

    from .actions import Phi4Action
    from .flows import RealNVPConfig, build_real_nvp, transfer_real_nvp
    from .io import load_checkpoint, save_checkpoint
    from .lattice import resolve_device
    from .train import TrainConfig, Trainer, evaluate, train_to_acceptance

    # Every argument is checked before any work: argparse checked each number's range; what
    # needs the library (couplings, lattice, an --init checkpoint) and the output path are
    # checked here, so that a mistake never costs a training run.
    try:
        device = resolve_device(args.device)
        action = Phi4Action(args.m2, args.lam)
        config = TrainConfig(
            n_steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed
        )
        hidden = args.hidden
        if args.init is None:
            arch = RealNVPConfig(
                L=args.L,
                n_layers=16 if args.layers is None else args.layers,
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
                    f"--hidden {','.join(map(str, hidden))} differs from {args.init} "
                    f"(hidden channels {','.join(map(str, model.config.hidden))})"
                )
            # --spectral-prior adds an (untrained) spectral prior to a flow that has none
            model = transfer_real_nvp(model, args.L, spectral_prior=args.spectral_prior or None)
        _check_output_file("--out", args.out, suffix=".safetensors")
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
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
        _check_output_folder("--out", args.out)
        path = write_report(args.metrics, args.out, date=args.date, gpu=args.gpu)
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


#: largest lattice extent ``train`` accepts: the flows' own bound (a batch of 64 fields at
#: L = 1024 already needs 256 MiB per float32 copy)
MAX_L = flows_args.MAX_L


def build_parser() -> argparse.ArgumentParser:
    """The command line; its errors raise ``_UsageError`` (one line), never print usage."""
    parser = _Parser(
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
    nb.add_argument(
        "--notebooks-dir",
        default="notebooks",
        type=_existing("--notebooks-dir", "folder"),
        help="folder holding NN_*.ipynb",
    )
    nb.add_argument(
        "--timeout",
        type=_integer("--timeout", low=1, high=10**6),
        default=None,
        help="per-cell limit in whole seconds, 1 to 1000000 (default: no limit)",
    )
    nb.add_argument(
        "--jobs",
        type=_integer("--jobs", low=1),
        default=1,
        help="notebooks run at once, each in its own kernel",
    )
    nb.add_argument("--no-progress", action="store_true", help="no progress bar")
    nb.set_defaults(run=_notebooks)

    tr = commands.add_parser(
        "train",
        help="train a real NVP flow for phi^4 and save a checkpoint",
        description="Reverse-KL training of the 2021 tutorial's real NVP flow; the defaults "
        "reproduce data/models/phi4_L8_m2-4_lam8.safetensors.",
    )
    tr.add_argument(
        "--L", type=_integer("--L", low=2, high=MAX_L), default=8, help="lattice extent, even"
    )
    tr.add_argument("--m2", type=_real("--m2"), default=-4.0, help="(default -4.0)")
    tr.add_argument("--lam", type=_real("--lam", low=0), default=8.0, help="(default 8.0)")
    tr.add_argument(
        "--steps", type=_integer("--steps", low=1), default=20_000, help="(default 20000)"
    )
    tr.add_argument(
        "--batch-size", type=_integer("--batch-size", low=1), default=64, help="(default 64)"
    )
    tr.add_argument(
        "--lr", type=_real("--lr", low=0, low_open=True), default=1e-3, help="(default 0.001)"
    )
    tr.add_argument(
        "--seed", type=_integer("--seed", low=0, high=2**62), default=0, help="(default 0)"
    )
    tr.add_argument(
        "--layers", type=_integer("--layers", low=1), default=None, help="coupling layers (16)"
    )
    tr.add_argument(
        "--hidden",
        type=_channels,
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
        type=_existing("--init", "file"),
        default=None,
        help="start from this checkpoint's weights (any L: the flow is transferred to --L)",
    )
    tr.add_argument(
        "--target-acceptance",
        type=_real("--target-acceptance", low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="stop once the MH acceptance on 4096 fresh samples reaches this "
        "(and 8192 more confirm it); in (0, 1)",
    )
    tr.add_argument(
        "--check-every",
        type=_integer("--check-every", low=1),
        default=500,
        help="steps between acceptance checks",
    )
    tr.add_argument("--device", choices=DEVICES, default="auto", help="where to train")
    tr.add_argument("--out", required=True, help="checkpoint file (.safetensors)")
    tr.set_defaults(run=_train)

    rp = commands.add_parser(
        "report",
        help="write a Markdown report of a notebook run against the notebooks' targets",
        description="Read METRICS (written by the notebooks command) and write "
        "OUT/<date>-<gpu>.md plus a copy of the metrics beside it.",
    )
    rp.add_argument(
        "--metrics",
        default="build/notebooks-full/metrics.json",
        type=_existing("--metrics", "file"),
        help="run's JSON",
    )
    rp.add_argument("--out", default="reports/gpu", help="folder for the report")
    rp.add_argument("--date", type=_date, default=None, help="YYYY-MM-DD (default: today)")
    rp.add_argument(
        "--gpu", type=_name("--gpu"), default=None, help="device name (default: the one recorded)"
    )
    rp.set_defaults(run=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m lqft_lab`` with ``argv`` (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when a notebook failed, 2 for a usage error, which
        is printed as one line ``error: <sentence>`` on stderr before any work starts.
    """
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
