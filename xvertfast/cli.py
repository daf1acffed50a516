"""The ``xvertfast`` command line.

Subcommands are added here as the package grows; each one is a thin layer over
the Python API so that everything the CLI does can also be scripted.
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
xvertfast: unsupervised contrast enhancement of the vertebrae in chest X-rays
(XVertNet), with C++/CUDA kernels for its losses and solvers.

Run `xvertfast COMMAND --help` for the options of a command."""


def _cmd_info(args: argparse.Namespace) -> int:
    from xvertfast.info import collect, format_report

    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xvertfast", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from xvertfast import __version__

    parser.add_argument("--version", action="version", version=f"xvertfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="show versions, compiled kernels, visible GPUs and optional backends",
        description="Show what this installation can do: package and torch versions, whether the "
        "compiled extension is in use, its CPU ops, the CUDA architectures its kernels were "
        "compiled for, the GPUs visible, and whether cupy, onnxruntime and tensorrt import.",
    )
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
