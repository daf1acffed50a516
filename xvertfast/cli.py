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


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from xvertfast.pipeline.preprocess_files import preprocess_files

    summary = preprocess_files(args.inputs, args.output, overwrite=args.overwrite, progress=not args.quiet,
                               log=lambda msg: print(msg, file=sys.stderr))  # fmt: skip
    print(summary.line())
    for path, reason in summary.failed:
        print(f"  failed: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


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

    pre = sub.add_parser(
        "preprocess",
        help="compute the network inputs X_p and Y of radiographs, with overlays to check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""Compute the XVertNet inputs of each radiograph and write, under OUTDIR
(mirroring the input folders):
  NAME_xp.png       X_p, the enhanced input (16-bit PNG)
  NAME_y.tiff       Y, the high-frequency guidance image (float32, signed)
  NAME_y.png        Y for viewing (mid-grey = 0)
  NAME_overlay.png  the image with the detected spine line (yellow), its band
                    estimates (orange), the training ROIs (blue) and the
                    evaluation ROIs (green): look at these before training.
Bad files are reported and get no output; the others go on; the exit code is 1
if any failed. Files whose outputs exist are skipped (use --overwrite).""",
    )
    pre.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="image files, folders (searched recursively) or @list.txt files")  # fmt: skip
    pre.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    pre.add_argument("--overwrite", action="store_true", help="recompute files whose outputs exist")
    pre.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pre.set_defaults(func=_cmd_preprocess)
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
