"""Command line: ``python -m lqft_lab <command>``.

Commands:
    notebooks   execute the numbered notebooks headless (see :mod:`lqft_lab.notebooks`) and
                print the figures they recorded.

Exit status: 0 on success, 1 when a notebook failed, 2 for a usage error (unknown notebook,
mode or device, CUDA requested where there is none). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    nb.add_argument("--no-progress", action="store_true", help="no progress bar")
    nb.set_defaults(run=_notebooks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
