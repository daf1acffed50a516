"""The ``xvertfast`` command line.

Subcommands are added here as the package grows; each one is a thin layer over
the Python API so that everything the CLI does can also be scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import os
import select
import signal
import sys

from xvertfast._text import FAILED_LISTED, WARNED_LISTED, count, first_listed, shell_line

DESCRIPTION = """\
xvertfast: unsupervised contrast enhancement of the vertebrae in chest X-rays
(XVertNet), with C++/CUDA kernels for its losses and solvers.

Run `xvertfast COMMAND --help` for a command's options and exit codes. SIGTERM
(a cluster scheduler's time limit, `kill`) stops any command as Ctrl-C does,
with exit code 143; so does SIGHUP (the terminal closed, an SSH session
dropped), with exit code 129."""


def _cmd_info(args: argparse.Namespace) -> int:
    _load_torch()
    from xvertfast.info import collect, format_report

    info = collect()
    _print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


def _nothing_found(exc: Exception) -> int:
    _print(f"error: {exc}", file=sys.stderr)
    return 1


def _at_least(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` (to ``high``); a bad value is an argparse
    error that names the option."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _share(text: str) -> float:
    """An argparse type for train's --val-fraction: a number from 0 up to, not including, 1; a bad
    value is an argparse error that names the option (TrainConfig's said "validation fraction")."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:  # (nan too)
        raise argparse.ArgumentTypeError(f"must be a number from 0 up to 1, not 1 itself (0.2: a fifth of the "
                                         f"images held out for validation), got {text!r}")  # fmt: skip
    return value


def _output_folder(text: str) -> str:
    """An argparse type for -o of every command: an empty path (``-o ""``, ``-o "$UNSET"``) is a usage
    error naming the option, not a run that fails later as "cannot write into the run folder : No such
    file or directory" (it names no folder at all); so is a new folder named like an image file (``-o
    out.png``, taken for the output file's name: it became a folder holding out.png/a.png)."""
    if not text:
        raise argparse.ArgumentTypeError("is empty: give the folder to write into (-o . for the current one)")
    stem, ext = os.path.splitext(text)
    if ext and stem and not os.path.lexists(text):  # (-o result.png: a folder result.png/ held the output)
        from xvertfast.io.files import image_extension

        if image_extension(text):
            raise argparse.ArgumentTypeError(f"{text} would be a new folder named like an image file: -o names the "
                                             "folder the outputs are written into, each named after its input, not "
                                             f"an output file; give a folder (-o {stem}), or make the folder first "
                                             "to use this name")  # fmt: skip
    return text


def _device(text: str) -> str:
    """An argparse type: auto or a device torch names (cpu, cuda[:N], mps, xpu, a plug-in's hpu or
    npu); not meta, which holds no data, nor mkldnn and the other types torch makes no tensors of.
    Whether this torch can use it is said by the command (resolve_device), as from Python. The checks
    are the API's (as_device, refuse_meta); the words name the option."""
    import re

    if text in ("auto", "cpu") or re.fullmatch(r"(cuda|xpu|mps)(:\d+)?", text):  # (no torch import for these)
        return text
    from xvertfast.model.persistence import NO_TENSORS, as_device, refuse_meta

    try:
        refuse_meta(as_device(text, "device"))
        return text
    except ValueError:
        pass
    if text.split(":")[0] in NO_TENSORS:  # (as_device's reason, said in the option's words)
        raise argparse.ArgumentTypeError(f"torch has no tensors of this type (a device type kept from Caffe2): use "
                                         f"cpu, got {text!r}")  # fmt: skip
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or another device of torch's (mps, xpu, ...; "
                                     f"not meta, which holds no data), got {text!r}")  # fmt: skip


def _shard(text: str):
    """An argparse type: ``K/N``, the K-th of N shards (1-based)."""
    from xvertfast.io.shards import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: What --device auto picks (infer.backends.resolve_device), for every --device's help.
DEVICE_AUTO = "auto: the current CUDA GPU where torch has one, else the CPU"

#: --precision's choices, of enhance and evaluate: auto and infer.backends.PRECISIONS' names, spelled here
#: (backends imports torch, which building the parser does not load); tests/test_cli.py holds them alike.
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")

#: --rois of enhance, preprocess and train (evaluate's has its own rule: there an input not in the file fails).
ROIS_HELP = ("a CSV of ROI centres placed by hand, for the images whose spine was missed: a header row "
             "file,upper_row,upper_col,lower_row,lower_col, then one row per image: its path or file name and the "
             "centres in pixels of the original image. An input not in it keeps the centres found; a row naming "
             "no input, or a centre outside its image, is an error. A rerun with the file edited redoes the "
             "images whose centres changed (or were added or removed) and skips the others")  # fmt: skip

SHARD_HELP = ("do only the K-th of N parts of the inputs (1 <= K <= N <= 10000), so that N jobs, one per machine or "
              "GPU, share an archive and write into one output folder at once, each with its own ledger; every "
              "shard finds all inputs and keeps those whose path hashes to it (balanced on average). A rerun "
              "with or without --shard, or with another N once none runs, resumes what any shard wrote")  # fmt: skip


#: --threads of preprocess, enhance and evaluate, less what each says of its results (train's says
#: the same in its own words).
THREADS_HELP = ("CPU threads for torch and for xvertfast's compiled ops, the WLS solver's included (0: torch's "
                "default: one a physical core, or OMP_NUM_THREADS where set). For jobs side by side on one machine "
                "(shards, a training run beside this one): give each its share of the cores, or the solver's threads "
                "spin waiting for ones the other jobs keep off their core.")  # fmt: skip
#: How far another --threads moves a network's outputs, said in the help itself: it pointed to the user
#: guide "in the source", which a pip install lacks (measured 1 against 2 threads, 2026-12-06)
THREADS_MOVE = ("the network adds its float sums in another order: up to ~5e-7 on a [0, 1] scale on three test images, "
                "a few pixels of an 8-bit output off by one grey level")  # fmt: skip


def _use_threads(threads: int) -> None:
    """Sets torch's CPU threads for the command (0 leaves torch's default), before its first torch
    op: threads started later (enhance's readers) take this count at their first op, but one that
    had already run an op would keep its own."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _dry_run_notes(summary, job: str, out_dir: str, to_do: int, outputs_each: int) -> None:
    """After a dry run's summary: a job running in the folder now, and how long the ``to_do``
    inputs would take at the rate the folder's job finished outputs lately (``outputs_each``
    output files an input), where one ran there and made enough outputs for a rate
    (:func:`~xvertfast.io.job_folder.recent_rate`); that it did not, where it made fewer (for a
    shard: that shard, where it ran)."""
    if not summary.dry_run:
        return
    if summary.busy:  # (a run takes the locks, or is refused)
        _print(f"note: another xvertfast {job} is writing into {out_dir} now: a run would be refused until it "
               "ends, and what is done already may grow meanwhile", file=sys.stderr)  # fmt: skip
    if not to_do:
        return
    from xvertfast.io.job_folder import job_status

    try:
        status = job_status(out_dir, job) if os.path.isdir(out_dir) else None
    except OSError:
        return
    if status is None:
        return
    rate, counted, whose = status.rate, status.rate_outputs, "this folder's job"
    if summary.shard is not None:  # its own part, at its own pace (the others' run beside it)
        own = next((led for led in status.ledgers if led.shard == summary.shard.fraction), None)
        rate, counted = (own.rate, own.rate_outputs) if own else (None, 0)
        whose = str(summary.shard)
    elif len(status.ledgers) > 1:  # (shards that ran one after the other: the latest one's alone)
        whose = {"latest": "this folder's latest shard", "all": "this folder's jobs, all shards together,",
                 "some": f"this folder's jobs, the {status.ledgers_at_work} shards at work together,",
                 "part": f"this folder's jobs, {_rate_part(status)},"}[status.rate_of]
    if rate:
        _print(f"at the rate {whose} finished outputs lately ({rate * 60:.1f} output files a minute), the {to_do} "
               f"would take about {_duration(to_do * outputs_each / rate)}", file=sys.stderr)  # fmt: skip
    elif counted:  # (a batch's outputs land together: two of them gave 9 s for what took 16)
        _print(f"no estimate of how long the {to_do} would take: {whose} finished too few outputs lately, or too "
               "close together, to tell its pace", file=sys.stderr)  # fmt: skip


def _rate_part(status) -> str:
    """Whose rate a folder's rate is where only some of its shards at work have one (``rate_of``
    'part'): the rate leaves out those too new for one, so the job goes faster than it says."""
    return (f"{status.rate_ledgers} of the {status.ledgers_at_work} shards at work "
            f"({status.ledgers_at_work - status.rate_ledgers} with no rate yet, not counted)")


def _duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads it in: s, min, h, days (from two of each); under a
    second in two digits (a small model's epoch of 0.025 s read "0 s an epoch"), under 0.01 s as such."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 2 * 60:
        return f"{seconds / 60:.0f} min"
    if 0 < seconds < 0.01:
        return "under 0.01 s"
    if 0 < seconds < 1:
        return f"{seconds:.2g} s"
    return f"{max(seconds, 0):.0f} s"


def _dry_run_help(job: str, out_metavar: str) -> str:
    return (f"plan the job and say what a run would do: how many inputs it would {job}, skip as done, or "
            f"fail, and why (output name collisions, files in {out_metavar} xvertfast did not write, other "
            f"settings recorded in {out_metavar}); files that cannot be decoded show only when a run reads them. "
            "Writes nothing and does not make the output folder; exit code 0 nothing would fail, 1 some would, 2 a "
            "run could not start (other settings recorded, a folder it cannot write). A job running there now "
            "is noted (a run is refused until it ends), and where one has run, how long the rest would take at its "
            "rate")


def _started_with(args: argparse.Namespace, *paths: str | list[str] | None) -> dict:
    """The command line a job was started with (shell-quoted, as ``xvertfast ...``, or as
    ``python -m xvertfast ...`` with this Python where it was run so) and, where
    one of its ``paths`` is relative (an ``@list``'s lines may be), the folder it was started in (None
    where it cannot be read: deleted): what its output folder's ledger records for ``xvertfast status``
    to give as the command that resumes it. Empty where main() was not given the command line (called
    with a Namespace)."""
    import shlex

    from xvertfast._paths import working_folder

    argv = getattr(args, "argv", None)
    if argv is None:
        return {}
    given = [p for item in paths for p in (item if isinstance(item, list) else [item]) if p]
    relative = any(p.startswith("@") or not os.path.isabs(p) for p in given)
    return {"command": shlex.join([*_program(args), *argv]), "cwd": working_folder() if relative else None}


def _program(args: argparse.Namespace) -> list[str]:
    """The words that ran xvertfast, before its arguments: ``xvertfast``, or this Python's path,
    ``-m``, ``xvertfast`` where it was run so (main() sets ``args.program`` then)."""
    return getattr(args, "program", None) or ["xvertfast"]


#: Said at a second Ctrl-C (or SIGTERM) while torch loads: the first one stops the command then.
TORCH_LOADING = "\nalready stopping: once torch has loaded (seconds), before anything is written\n"


def _load_torch() -> None:
    """Imports torch and the compiled ops (seconds) with Ctrl-C and SIGTERM held until they are
    loaded, then handled: one raised inside torch's import left it half made, and a batch job
    went on with every image failing ('maximum recursion depth exceeded')."""
    from xvertfast._interrupts import deliver, interrupts_deferred

    with interrupts_deferred(stopping=False, note=TORCH_LOADING) as held:
        import xvertfast.ops  # noqa: F401 (imports torch)
    deliver(held)


def _inputs_refused(inputs: list[str]) -> int | None:
    """The exit code where none of ``inputs`` exists or an ``@list`` cannot be read (said on stderr),
    else None: checked before torch loads, a mistyped folder was said only after seconds of loading."""
    from xvertfast.io.files import NothingFound, check_inputs

    try:
        check_inputs(inputs)  # (no torch: xvertfast.io.files loads none)
    except NothingFound as exc:
        return _nothing_found(exc)
    except ValueError as exc:  # an @list that cannot be read
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    return None


def _raise_if_interrupted(exc: BaseException) -> None:
    """Raises KeyboardInterrupt where ``exc``, caught as a command's error, came of a Ctrl-C or SIGTERM
    (:func:`~xvertfast._interrupts.came_of_an_interrupt`): it is said as an interruption, with exit
    code 130 or 143, not as the job's failure."""
    from xvertfast._interrupts import came_of_an_interrupt

    if came_of_an_interrupt(exc):
        raise KeyboardInterrupt from exc


def _holding_its_lock(args: argparse.Namespace, job: str, run) -> int:
    """``run(args)``, the lock of its job's output folder taken first, where an earlier run made it
    (:func:`~xvertfast.io.job_folder.lock_early`): taken by the job after torch and the model loaded,
    ``xvertfast status`` said until then that the earlier run stopped, with the command that resumes
    it, which started a second job. A job running there is said at once. A dry run takes no lock."""
    from xvertfast.io.job_folder import lock_early

    try:
        let_go = (lambda: None) if args.dry_run else lock_early(args.output, job, args.shard)
    except ValueError as exc:  # (another job holds it)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(args)
    finally:
        let_go()  # (taken over by the job, or let go: the command ended before its job began)


def _cmd_preprocess(args: argparse.Namespace) -> int:
    if (refused := _inputs_refused(args.inputs)) is not None:  # a mistyped folder: said before anything is made
        return refused
    return _holding_its_lock(args, "preprocess", _preprocess)


def _preprocess(args: argparse.Namespace) -> int:
    _load_torch()
    _use_threads(args.threads)
    from xvertfast.io.files import NothingFound
    from xvertfast.pipeline.preprocess_files import SUFFIXES, preprocess_files

    try:
        summary = preprocess_files(args.inputs, args.output, overwrite=args.overwrite, progress=not args.quiet,
                                   log=_say_around_the_bar, shard=args.shard, dry_run=args.dry_run,
                                   rois=_roi_file(args.rois), **_started_with(args, args.inputs, args.output,
                                                                              args.rois))  # fmt: skip
    except NothingFound as exc:
        return _nothing_found(exc)
    except (ValueError, OSError) as exc:  # the output folder cannot be used, an @list cannot be read
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(summary.line())
    _dry_run_notes(summary, "preprocess", args.output, len(summary.planned), outputs_each=len(SUFFIXES))
    # repeated here, as many as a screen holds: on a long job the first mention has scrolled away
    _print_listed([warnings for _, warnings in summary.warned], [reason for _, reason in summary.failed],
                  "each was said above as it finished")  # fmt: skip
    if summary.stopped:  # (its log lost, as enhance: inputs left, none failed; its summary line says why)
        return 130 if summary.stopped == "interrupted" else 1
    return 1 if summary.failed or _said_no_image(summary.found, summary.not_image_kinds(), summary.shard,
                                                 "preprocess") else 0  # fmt: skip


def _said_no_image(found: int, kinds: dict[str, int], shard, job: str) -> bool:
    """Says so where every input a job found was no image (a folder of a PACS export's reports
    alone): it made nothing, which is no success, exit 1, where its summary said "0 failed" and it
    exited 0. Not of a shard, whose share is not the inputs: the others may hold the images."""
    from xvertfast.io.job_folder import no_image_among

    said = None if shard else no_image_among(found, kinds)
    if said:
        _print(f"error: {said}: nothing to {job}", file=sys.stderr)
    return bool(said)


def _print_listed(warned: list[list[str]], failed: list[str], where: str) -> None:
    """A job's end summary of its warned files (``warned``: each one's warnings) and failed ones
    (``failed``: why each failed) on stderr, at most :data:`~xvertfast._text.WARNED_LISTED` and
    :data:`~xvertfast._text.FAILED_LISTED` of them, then how many more and ``where`` every one is:
    listed whole, a 20,000-file job printed some 6,700 lines here, each said already."""
    warned_lines = ["\n".join(f"  warning: {warning}" for warning in warnings) for warnings in warned]
    for line in first_listed(warned_lines, WARNED_LISTED, "warned file", where):
        _print(line, file=sys.stderr)
    for line in first_listed([f"  failed: {reason}" for reason in failed], FAILED_LISTED, "failed file", where):
        _print(line, file=sys.stderr)


def _roi_file(path: str | None):
    """The centres of ``--rois`` (None where not given), read before a model is loaded or an
    output folder made: a malformed file is said at once."""
    if path is None:
        return None
    from xvertfast.preprocess.centres import load_roi_centres

    return load_roi_centres(path)


def _model_option(path: str, option: str):
    """The model ``option`` names (``--model PATH``), loaded; where it cannot be, a ValueError
    naming the option and the value given: enhance and demo said only "nothere: no such folder
    (...)", a path the user may not tie to --model in a long command."""
    from xvertfast.model import load_model

    try:
        return load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        _raise_if_interrupted(exc)
        raise ValueError(f"{option}: {exc}") from None


def _cmd_enhance(args: argparse.Namespace) -> int:
    if (refused := _inputs_refused(args.inputs)) is not None:  # said before the model is loaded or OUT_DIR made
        return refused
    return _holding_its_lock(args, "enhance", _enhance)


def _enhance(args: argparse.Namespace) -> int:
    _load_torch()
    _use_threads(args.threads)  # (before the Enhancer: onnxruntime's session takes torch's count)
    from xvertfast.infer import Enhancer
    from xvertfast.infer.batch import check_rois_mode
    from xvertfast.io.files import NothingFound

    if args.backend == "compile" and not args.dry_run:  # the first batch waits for it, with the bar at 0%
        # (one NIH image, one busy core: 81 s more than the torch backend; 33 s more in a later
        # process that found the stages in torch's on-disk compile cache)
        _print("--backend compile: torch.compile compiles the stages on the first batch, once a job (on a CPU a "
               "minute or more; about half that where torch's compile cache holds them from an earlier run)",
               file=sys.stderr)  # fmt: skip
    try:
        check_rois_mode(args.rois, args.mode)
        rois = _roi_file(args.rois)
        enhancer = Enhancer(_model_option(args.model, "--model"), device=args.device, backend=args.backend,
                            mode=args.mode, brightness=args.brightness, batch_size=args.batch_size,
                            precision=args.precision)  # fmt: skip
        summary = enhancer.enhance_files(args.inputs, args.output, fmt=args.format, overwrite=args.overwrite,
                                         workers=args.workers, report=args.report, progress=not args.quiet,
                                         log=_say_around_the_bar, preview=args.preview,
                                         shard=args.shard, dry_run=args.dry_run, rois=rois,
                                         **_started_with(args, args.inputs, args.output, args.report, args.preview,
                                                         None if args.model == "default" else args.model,
                                                         args.rois))  # fmt: skip
    except NothingFound as exc:
        return _nothing_found(exc)
    except (ValueError, OSError, RuntimeError) as exc:
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(summary.line())
    for note in summary.notes:  # said as the job started too: on a long job that has scrolled away
        _print(f"warning: {note}", file=sys.stderr)
    _dry_run_notes(summary, "enhance", args.output, summary.planned, outputs_each=1)
    # repeated here, as many as a screen holds: on a long job the first mention has scrolled away
    where = (f"every one is in {summary.report}" if summary.report else "each was said above as it finished"
             + ("" if args.report else "; --report RUN_JSON keeps every one in a file"))  # fmt: skip
    _print_listed([rec.warnings for rec in summary.warned], [rec.error for rec in summary.failed], where)
    if summary.skipped_warned:  # (a job over several runs: the list above is this run's alone)
        kept = f"{summary.report} lists them" if summary.report else "--report RUN_JSON lists them"
        n = len(summary.skipped_warned)
        one = n == 1
        _print(f"note: {count(n, 'input')} skipped as done {'was' if one else 'were'} warned of by the run that "
               f"enhanced {'it' if one else 'them'} (not listed here): {kept}", file=sys.stderr)  # fmt: skip
    if summary.report:
        _print(f"report: {summary.report}")
    if summary.preview:
        _print(f"preview: {summary.preview}")
    if summary.stopped:  # last: on a long job the log's lines have scrolled away
        if not _print(summary.stop_line(), file=sys.stderr):  # (its disk full: the summary line's stdout says why)
            _print(summary.stop_line())
        return 130 if summary.stopped == "interrupted" else 1
    if summary.interrupted_at_end:  # (130, or 143 for SIGTERM: a script's next step must not run)
        _print("interrupted once every image was processed: the job is complete", file=sys.stderr)
        return 130
    if _said_no_image(summary.found, summary.not_images, summary.shard, "enhance"):
        return 1
    return 1 if summary.failed or (args.report and not summary.report) else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if (refused := _inputs_refused(args.inputs)) is not None:  # said before the methods' models are loaded
        return refused
    _load_torch()
    _use_threads(args.threads)
    from xvertfast.eval.evaluate import evaluate
    from xvertfast.eval.report import ReportInterrupted, summary_listing_at_most
    from xvertfast.io.files import NothingFound

    try:
        run, paths = evaluate(args.inputs, args.output, args.methods, args.metrics, rois=args.rois,
                              compare_to=args.compare_to, pictures=args.pictures, progress=not args.quiet,
                              restart=args.restart, device=args.device, precision=args.precision,
                              log=_say_around_the_bar, program=_program(args),
                              argv=getattr(args, "argv", None))  # (its folder: evaluate records it always)  # fmt: skip
    except NothingFound as exc:
        return _nothing_found(exc)
    except (ValueError, OSError, RuntimeError, ImportError) as exc:  # OSError: REPORT_DIR is a file, --rois missing
        from xvertfast._interrupts import came_of_an_interrupt

        if came_of_an_interrupt(exc):  # (a KeyboardInterrupt raised here would pass the clause below)
            return _evaluation_interrupted(args.output, exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    except ReportInterrupted as exc:
        _print(f"\n{_report_interrupted(exc)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt as exc:
        return _evaluation_interrupted(args.output, exc)
    _print(f"{count(run.images, 'image')} evaluated, {len(run.failed)} failed; report: {paths['report.html']}")
    with open(paths["summary.md"]) as f:  # its lists of notes and failed images capped: every one stays in the file
        _print(summary_listing_at_most(f.read(), paths["summary.md"]))
    if not run.images:
        _said_no_image(len(run.failed) + sum(run.not_images.values()), run.not_images, None, "evaluate")
        return 1
    return 1 if run.failed else 0


def _evaluation_interrupted(report_dir: str, exc: BaseException) -> int:
    """Says what an evaluation stopped by Ctrl-C or SIGTERM before its report keeps, and the error
    the stop raised if one did (``exc``: :func:`~xvertfast._interrupts.then_line`); its exit code."""
    from xvertfast._interrupts import then_line

    _print(f"\ninterrupted{then_line(exc)}: the images scored so far are kept in {report_dir}; the same command "
           "scores only the rest", file=sys.stderr)  # fmt: skip
    return 130


def _report_interrupted(exc) -> str:
    """What an evaluation interrupted once every image was scored left: a whole report (the
    signal came as its files were put in place), none of its files changed, or some (a step of putting
    them in place failed meanwhile: its error says what the folder holds)."""
    if exc.complete:
        return f"interrupted once the report was written: it is complete ({exc.paths['report.html']})"
    earlier = (f"; until then {os.path.dirname(exc.paths['report.html']) or '.'} holds an earlier run's report, "
               "left as it was" if exc.earlier else "")  # fmt: skip
    retried = ("" if not exc.failed else "; the image that failed is tried again" if exc.failed == 1
               else f"; the {exc.failed} images that failed are tried again")  # fmt: skip
    if exc.error is not None:
        return (f"interrupted while the report's files were put in place, and they could not all be: "
                f"{exc.error} (no image is scored again{retried})")  # fmt: skip
    return (f"interrupted: the report was cut short; the same command writes it again (no image is scored "
            f"again{retried}){earlier}")  # fmt: skip


def _ago(seconds: float) -> str:
    return f"{_duration(seconds if seconds >= 1 else 0)} ago"  # (a clock set back reads 0 s ago; a moment too)


def _cmd_status(args: argparse.Namespace) -> int:
    import time

    from xvertfast.io.job_folder import job_status
    from xvertfast.train.status import train_status

    if not os.path.isdir(args.folder):  # (a typo was said to hold no job's output, as if it were a folder)
        what = "a file, not a folder" if os.path.exists(args.folder) else "no such folder"
        _print(f"error: {args.folder}: {what}: give the output folder of a job or a training run", file=sys.stderr)
        return 2
    try:
        found = [status for job in ("enhance", "preprocess") if (status := job_status(args.folder, job)) is not None]
        run = train_status(args.folder)
    except OSError as exc:  # a ledger another user's umask keeps from this one
        _print(f"error: cannot read {exc.filename or args.folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a damaged checkpoint (named)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    if run is not None and not found:
        return _print_train_status(run, args.json)
    if not found:
        hint = _status_elsewhere(args.folder)
        _print(f"error: {args.folder} holds no output of an xvertfast enhance or preprocess job, nor a training "
               f"run{f'; {hint}' if hint else ''}", file=sys.stderr)  # fmt: skip
        return 2
    if args.json:
        from dataclasses import asdict

        _print(json.dumps([{**asdict(s), "done": s.done, "unfinished": s.unfinished, "other_settings": s.other_settings}
                          for s in found], indent=2))  # fmt: skip
        return 0
    now = time.time()
    for status in found:
        _print(f"{args.folder}: xvertfast {status.job} (settings recorded by xvertfast {status.version or '?'})")
        settings = status.settings or {}
        said = ", ".join(f"{k} {str(v)[:16] if k == 'model' else v}" for k, v in settings.items()
                         if not isinstance(v, list))  # fmt: skip
        smoothing = "WLS smoothing " if status.job == "preprocess" else ""  # (lam, alpha, eps alone said nothing)
        if said:
            _print(f"  settings: {smoothing}{said}")
        elif status.settings_problem:
            _print(f"  settings unreadable: {status.settings_problem}")
        else:  # (read, each a list, which this line leaves out: a bare 'settings: ' said nothing of them)
            _print(f"  settings: none shown (each is a list: {', '.join(settings)})")
        _print(f"  {count(status.done, 'output file')} done, {status.unfinished} started and not finished (in flight, "
               "left by a killed run, or whose writing failed: its next run redoes them)")  # fmt: skip
        if status.rate is not None:
            together = "" if len(status.ledgers) < 2 else {
                "latest": ", by the latest shard alone (no other at work beside it)", "all": ", all shards together",
                "some": f", {status.ledgers_at_work} of the {len(status.ledgers)} shards at work together",
                "part": f", by {_rate_part(status)}",
            }[status.rate_of]
            _print(f"  {status.rate * 60:.1f} output files finished a minute, over the last {status.rate_outputs} "
                   f"outputs{together}")  # fmt: skip
        elif status.rate_outputs:  # (those of the shards at work alone: one before them went at its own pace)
            from xvertfast.io.job_folder import RATE_MIN_OUTPUTS, RATE_MIN_SPAN_S

            by = "" if len(status.ledgers) < 2 else {
                "latest": " by the latest shard", "all": " by all shards together",
                "some": f" by the {status.ledgers_at_work} shards at work together",
            }[status.rate_of]
            yet = " yet" if any(led.running for led in status.ledgers) else ""  # (a job that ended will add none)
            _print(f"  no rate{yet}: {count(status.rate_outputs, 'output file')} finished lately{by}, too few or too "
                   f"close together to tell the pace (outputs come in batches: a rate takes {RATE_MIN_OUTPUTS} after "
                   f"the first batch, over {RATE_MIN_SPAN_S:.0f} s or more)")  # fmt: skip
        if status.other_settings:
            _print(f"  {status.other_settings} output files finished with other settings than those recorded (before "
                   "an --overwrite with new ones): a run with the recorded settings redoes them")  # fmt: skip
        if status.legacy:
            _print("  the folder holds outputs of an xvertfast from before ledgers: they are counted only once a run "
                   "has met them")  # fmt: skip
        for led in status.ledgers:
            who = f"shard {led.shard}" if led.shard else "without --shard"
            other = f" ({led.other_settings} with other settings)" if led.other_settings else ""
            running = {True: "running now", False: "not running", None: "running? cannot tell"}[led.running]
            running += " (starting: its command not recorded yet)" if led.starting else ""
            if led.running and not led.starting and led.found is not None:  # (what its done count goes towards)
                running += f" (its run found {count(led.found, 'input')}{' of its part' if led.shard else ''})"
            _print(f"  {who:<16} {led.done:>8} done {led.unfinished:>4} unfinished   last written "
                   f"{_ago(now - led.modified)}   {_ending_said(led, now) or running}{other}")  # fmt: skip
            _print_failures(led, status.job)
        _print_running(args.folder, status)
    return 0


def _status_elsewhere(folder: str) -> str | None:
    """What ``folder``, holding no job's output, is where xvertfast wrote it, and the folder status
    reads instead: a training run's model/ or checkpoint/, the demo's output (jobs in its
    folders), an evaluate report, an export. Status said only 'holds no output' of each."""
    import re

    from xvertfast._paths import as_the_system_reads
    from xvertfast.io.job_folder import job_status
    from xvertfast.train.status import train_status

    def a_job(path: str, jobs=("enhance", "preprocess", "train")) -> bool:
        try:
            return any(job_status(path, job) is not None for job in jobs if job != "train") or \
                ("train" in jobs and train_status(path) is not None)  # fmt: skip
        except (OSError, ValueError):  # (unreadable: not said to be one)
            return False

    # (the folder above as the system reaches it: latest/../run2/model, latest -> runs/c1, is runs/run2's, where
    # normpath reads ./run2 as text)
    seen = os.path.normpath(as_the_system_reads(folder))
    name, parent = os.path.basename(seen), os.path.dirname(seen) or "."
    if name in ("model", "checkpoint", "cache") and a_job(parent, ("train",)):
        return f"it is the {name}/ of the training run {parent}: {shell_line(['xvertfast', 'status', parent])}"
    # (eval.journal's JOURNAL_FILE, named here: importing it loads torch, which status never does)
    if os.path.exists(os.path.join(folder, ".xvertfast-evaluate.jsonl")):
        return "it is the report folder of an xvertfast evaluate, which status does not read: the same evaluate " \
               "command scores only the images not yet scored"  # fmt: skip
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    folders = [path for n in names if os.path.isdir(path := os.path.join(folder, n))]
    inside = [path for path in folders[:100] if a_job(path)]  # (a data folder of a folder a patient: not all read)
    if inside:
        return f"the folders in it that status reads: {', '.join(inside[:5])}{', ...' if len(inside) > 5 else ''}"
    if any(re.fullmatch(r"stage\d+\.(?:onnx|engine|pt2)", n) for n in names):
        return "it holds the stage files of an xvertfast export, which status does not read"
    return None


def _ending_said(led, now: float) -> str | None:
    """How a ledger's latest run ended, for its row in ``xvertfast status``: finished or stopped,
    when, why, and its inputs' counts; None where its ledger does not say (see
    :class:`~xvertfast.io.job_folder.LedgerStatus`)."""
    from xvertfast.io.job_folder import KILLED, not_images_said

    if led.ended is None:
        return None
    when = f" {_ago(now - led.ended_at)}" if led.ended_at is not None and led.stop != KILLED else ""
    unseen = f"; or still running on {led.elsewhere}, whose lock may not be seen here" if led.elsewhere else ""
    why = f" ({led.stop}{unseen})" if led.stop else ""
    c = led.counts or {}
    counts = ""
    if all(k in c for k in ("done", "skipped", "failed")):
        others = c.get("not_images", 0)  # (inputs that are no image: a PACS export's presentation states, reports)
        also = f", {not_images_said(others)}" if others else ""
        counts = f": {count(c['done'], 'input')} done, {c['skipped']} skipped{also}, {c['failed']} failed"  # (the
        # row's own "done" counts output files: four an input for preprocess)
        left = c.get("found", 0) - c["done"] - c["skipped"] - c["failed"] - others
        counts += f", {left} left" if led.ended == "stopped" and left > 0 else ""
    return f"{led.ended}{when}{why}{counts}"


def _print_failures(led, job: str) -> None:
    """The first inputs a ledger's latest run failed, with why, and where all of them are: its row
    said "1 failed" alone, and which file and why was in no file where the run had no --report.
    A few lines however many failed (the ledger keeps the first few)."""
    failed = (led.counts or {}).get("failed", 0)
    if not failed or not led.failures:
        return
    for _, why in led.failures:  # (each says its input first: failure_text's rule)
        _print(f"    failed: {why}")
    more = failed - len(led.failures)
    if led.report_state == "written":  # (set only where the run named a report)
        also = f"and {more} more: " if more > 0 else ""
        _print(f"    {also}all {failed} are in its report, {led.report}")
        return
    if led.report:  # (not written: an error, a kill after its end line; or replaced, removed since)
        there = ("the file there is older than the run's end, so not its report (not written, or replaced since)"
                 if led.report_state == "older" else "not there now (not written, or removed since)")
        _print(f"    its report was to be written to {led.report}: {there}")
    if more > 0:
        file = " (with --report FILE, in a file)" if job == "enhance" else ""
        _print(f"    and {more} more, not recorded here: its run listed each as it went (its 'error:' lines), and its "
               f"command run again lists them again{file}, skipping what is done")  # fmt: skip


def _resume_command(led, folder: str | None = None) -> str | None:
    """The command that resumes a ledger's run that stopped: the command it was started with
    (``cd`` to its folder first, where its paths are relative), without ``--overwrite``, which
    would redo what it had done; None where the run did not record one (the Python API, an
    xvertfast before run records). A run stopped as its -o came to lead elsewhere (``ln -sfn c2
    latest``) is given -o ``folder``, the one status read: as recorded, it wrote into the other."""
    import shlex

    from xvertfast.io.write import FOLDER_MOVED

    if not led.command:
        return None
    try:
        words = _spelt_out(shlex.split(led.command))
    except ValueError:
        return None
    commands = _options_of_the_commands()
    at = next((i + 1 for i, word in enumerate(words) if word in commands), None)
    if folder is not None and led.stop == FOLDER_MOVED and at is not None:
        words = _with_run_dir_as_output(words, at, led.cwd, folder)
        if words is None:
            return None
    end = words.index("--") if "--" in words else len(words)  # (what follows is inputs)
    command = shell_line([w for i, w in enumerate(words) if i >= end or w != "--overwrite"])
    cd = ["cd", "/d"] if os.name == "nt" else ["cd"]  # (cmd.exe's cd changes the drive only with /d)
    return f"{shell_line([*cd, led.cwd])} && {command}" if led.cwd else command


def _spelt_out(words: list[str]) -> list[str]:
    """A recorded command line (``words``: xvertfast, the command, its arguments) with each long option
    an earlier xvertfast took abbreviated (``--ov``, ``--out=run``: argparse took a unique prefix) written
    whole, as the command has it now: resumed as recorded, it was refused. Words after ``--`` are inputs."""
    commands = _options_of_the_commands()
    at = next((i for i, word in enumerate(words) if word in commands), None)
    if at is None:
        return words
    options = commands[words[at]]
    end = words.index("--") if "--" in words else len(words)
    spelt = list(words)
    for i in range(at + 1, end):
        name, equals, value = words[i].partition("=")
        if len(begun := _begins(name, options)) == 1:
            spelt[i] = f"{begun[0]}{equals}{value}"
    return spelt


@functools.cache
def _options_of_the_commands() -> dict[str, tuple[str, ...]]:
    """Each command's long options, from a parser built once: status spells out the command of each
    stopped shard (:func:`_spelt_out`), and a parser built for each took seconds over 64 shards."""
    commands = next(a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: tuple(_long_options(command)) for name, command in commands.items()}


def _print_running(folder: str, status) -> None:
    """Which of a job's shards (or the job without --shard) run now, which finished and which
    stopped, and the command that resumes each that stopped: what a user of many shards
    resubmits. Ledgers that do not say how their run ended (an xvertfast before run records)
    are "not running", with the command as a template."""
    from xvertfast.io.write import resumes_once

    named = lambda led: f"shard {led.shard}" if led.shard else "the job without --shard"  # noqa: E731
    running = [named(led) for led in status.ledgers if led.running]
    finished = [named(led) for led in status.ledgers if led.ended == "finished"]
    resumable = [led for led in status.ledgers if led.ended == "stopped"]
    commands = {id(led): _resume_command(led, folder) for led in resumable}
    if running:
        _print(f"  running now: {', '.join(running)}")
    if finished:
        _print(f"  finished: {', '.join(finished)}")
    if resumable:
        _print(f"  stopped: {', '.join(named(led) for led in resumable)}")
    _print_shards_without_ledger(status)
    for led in resumable:
        if (command := commands[id(led)]) is not None:
            unseen = f", once it no longer runs on {led.elsewhere}" if led.elsewhere else ""
            _print(f"  to resume {named(led)}{unseen}{resumes_once(led.stop)}: {command}")
    unknown = [led for led in status.ledgers if led.running is False and led.ended is None]
    if unknown:
        _print(f"  not running: {', '.join(named(led) for led in unknown)} (done with its part, or stopped before the "
               "end: killed, its node lost, out of time)")  # fmt: skip
    stopped = unknown + [led for led in resumable if commands[id(led)] is None]
    if stopped:
        shard = {f" --shard {led.shard}" if led.shard else "" for led in stopped}
        shard = shard.pop() if len(shard) == 1 else " [--shard K/N]" if "" in shard else " --shard K/N"
        onces = {resumes_once(led.stop) for led in stopped}  # (", once the disk has room", as a command's line)
        once = onces.pop() if len(onces) == 1 else ""  # (stopped for different reasons: each row says why)
        _print(f"  to resume one that stopped{once}, run its command again: xvertfast {status.job} INPUT ... -o "
               f"{folder}{shard} (its inputs and options as first given: they are not recorded here, and other "
               "settings are refused); it skips what is done and redoes what was started and not finished")  # fmt: skip
    if any(led.running is None for led in status.ledgers):
        _print("  whether a job runs cannot be told here for those marked so: this file system has no file locks, or "
               "their lock files cannot be read")  # fmt: skip


def _print_shards_without_ledger(status) -> None:
    """The shards of each count that left no ledger in the folder, and that the job is not
    complete until every shard of one count has finished: after ``--shard 1/2`` alone, status said
    "finished: shard 1/2" and nothing of 2/2. It never sees the inputs, so it says nothing of how
    many are left."""
    if not status.shards_without_ledger:
        return
    missing: dict[int, list] = {}  # N -> its runs of shards without a ledger
    for run in status.shards_without_ledger:
        missing.setdefault(run.count, []).append(run)
    for runs in missing.values():
        _print(f"  {_shards_named(runs)}: no ledger here (not started yet)")
    ended: dict[int, list[str | None]] = {}  # N -> how the latest run of each of its shards ended
    for led in status.ledgers:
        if led.shard:
            index, total = map(int, led.shard.split("/"))
            if 1 <= index <= total:  # (a ledger named as no shard says nothing of its count)
                ended.setdefault(total, []).append(led.ended)
    # every shard of a count finished (or the job without --shard): each found its part of the inputs and
    # did, skipped or failed every one; the shards missing would find only inputs added since
    covered = [f"every shard of {n}" for n, ends in ended.items() if n not in missing and set(ends) == {"finished"}]
    if any(not led.shard and led.ended == "finished" for led in status.ledgers):
        covered.append("the job without --shard")
    if covered:
        _print(f"  {covered[0]} finished, so every input found then was done, skipped or failed: the shards without a "
               "ledger are needed only for inputs added since")  # fmt: skip
        return
    counts = " or ".join(map(str, sorted(ended)))
    of = f"every shard of {counts}" if len(ended) == 1 else f"every shard of one count ({counts})"
    _print(f"  the job is not complete until {of} has finished, or a run without --shard has (status cannot count the "
           "inputs, so it cannot say how many are left)")  # fmt: skip


def _shards_named(runs: list) -> str:
    """``shard 2/8``, or ``shards 2/8 to 5/8, 7/8`` for several (``runs``: the
    :class:`~xvertfast.io.job_folder.ShardsWithoutLedger` of one count; runs of three or more as a
    range: a count of hundreds missing most of its shards stays a line)."""
    said = [f"{r.first}/{r.count} to {r.last}/{r.count}" if r.last - r.first >= 2
            else ", ".join(f"{k}/{r.count}" for k in range(r.first, r.last + 1)) for r in runs]  # fmt: skip
    several = len(runs) > 1 or runs[0].last > runs[0].first
    return f"shard{'s' if several else ''} {', '.join(said)}"


def _print_train_status(run, as_json: bool) -> int:
    """``xvertfast status RUN_DIR``: the stage and epoch a training run has reached, its latest
    losses, how long it may still take, when it last wrote, and whether it is running now (one
    not finished and not running stopped: its command with --resume continues it)."""
    import time
    from dataclasses import asdict

    from xvertfast.train.run_folder import LOCK_FILE, PRIVATE_CACHE, finite_or_null

    if as_json:  # (no validation images: val_loss null, not NaN, which standard JSON readers refuse)
        record = {"job": "train", **asdict(run), "finished": run.finished,
                  "epochs_left_at_most": run.epochs_left_at_most}  # fmt: skip
        _print(json.dumps(finite_or_null([record]), indent=2, allow_nan=False))
        return 0
    stages = f"{count(run.stages, 'stage')} of width {run.width}" if run.stages is not None else ""
    if run.stage == 0:  # (its settings are recorded with the first epoch)
        # (which crops are this run's is known only by hashing its inputs: the cache may keep others'; a linked
        # one's are counted as the run recorded taking them)
        cache = os.path.join(run.run_dir, "cache")
        held = (f"this run took so far (found there or preprocessed; it is a link to {run.linked}, "
                "whose other crops are other runs')" if run.linked else "so far (one for each of its "
                "images preprocessed, and any kept there of other images or ROI centres)")  # fmt: skip
        _print(f"{run.run_dir}: xvertfast train: no epoch finished yet (its images are preprocessed first)\n"
               f"  {cache} holds {count(run.preprocessed, 'image crop file')} {held}"
               + (f"\n  {os.path.join(run.run_dir, PRIVATE_CACHE)} holds "
                  f"{count(run.preprocessed_private, 'image crop file')} (of its images that cache, which it could not "
                  "write, lacked)" if run.preprocessed_private else ""))  # fmt: skip
    elif run.finished:
        _print(f"{run.run_dir}: xvertfast train, {stages}: finished; the trained model is {run.model}: "
               f"{_enhance_with(run.model)}")  # fmt: skip
    elif run.stage > run.stages:
        _print(f"{run.run_dir}: xvertfast train, {stages}: every stage trained, the model not yet written (the run "
               "writes it next, or was stopped just before: --resume writes it)")  # fmt: skip
    else:
        _print(f"{run.run_dir}: xvertfast train, {stages}: stage {run.stage} of {run.stages}, not finished (its model "
               "is written when the last stage is trained)")  # fmt: skip
        joint = run.epoch - run.epochs_gc
        # the first phase is the structure (gradient-correlation) loss alone; the joint one adds the feature loss
        phase = (f"{run.epoch} of {run.epochs_gc} structure-loss epochs, then up to {run.epochs_joint} joint "
                 "(structure + feature loss)" if joint < 0
                 else f"{run.epochs_gc} structure-loss epochs and {joint} of up to {run.epochs_joint} joint, "
                      f"{run.bad_epochs} of {run.patience} in a row without a better score")  # fmt: skip
        _print(f"  stage {run.stage}: {phase}")
    if run.last is not None:
        val = run.last.get("val_loss")
        val = f", validation loss {val:.4g}" if isinstance(val, float) and val == val else ""
        _print(f"  last epoch (stage {run.last.get('stage')}, epoch {run.last.get('epoch')}): training loss "
               f"{run.last.get('train_loss', float('nan')):.4g}{val}")  # fmt: skip
    if not run.finished and run.seconds_per_epoch and run.epochs_left_at_most:
        left = _duration(run.epochs_left_at_most * run.seconds_per_epoch)
        _print(f"  at most {count(run.epochs_left_at_most, 'epoch')} to go, about {left} at "
               f"{_duration(run.seconds_per_epoch)} an epoch (early stopping may end a stage sooner)")  # fmt: skip
    _print(f"  last written {_ago(time.time() - run.modified)}")
    if run.running:
        starting = " (starting: its command not recorded yet)" if run.starting else ""
        _print(f"  running now (it holds {os.path.join(run.run_dir, LOCK_FILE)}){starting}")
    elif run.running is None:
        _print("  whether it runs cannot be told here: this file system has no file locks, or its lock file cannot "
               "be read")  # fmt: skip
    elif not run.finished:
        command = _train_resume_command(run)
        how = (f"resume it: {command}" if command else "resume it, run its command again with --resume: xvertfast "
               f"train DATA ... -o {run.run_dir} --resume (its data and options as first given: they are not "
               "recorded here)")  # fmt: skip
        from xvertfast.train.run_folder import INTERRUPTED

        why = ("interrupted (Ctrl-C, SIGTERM or SIGHUP)" if run.stopped == INTERRUPTED
               else "stopped before the end (killed, its node lost, out of time, or ended by an error)")
        _print(f"  not running: {why}; to {how}")
    return 0


def _train_resume_command(run) -> str | None:
    """The command line that started a training run, with --resume (where it lacks one), as
    :func:`_resume_command` gives a job's; None where the run recorded none (started from Python, or
    by an older xvertfast, which recorded it only with the first epoch)."""
    import shlex
    from types import SimpleNamespace

    try:
        words = _spelt_out(shlex.split(run.command or ""))
    except ValueError:
        return None
    if "train" not in words:
        return None
    at = words.index("train") + 1  # (the subcommand: only --version and -h may come before it)
    end = words.index("--") if "--" in words else len(words)  # (what follows is inputs)
    if "--resume" not in words[at:end]:  # (after the options, as --help and the guide write it: not before DATA)
        words.insert(end, "--resume")
    words = _with_run_dir_as_output(words, at, run.cwd, run.run_dir)
    if words is None:
        return None
    return _resume_command(SimpleNamespace(command=shlex.join(words), cwd=run.cwd))


def _with_run_dir_as_output(words: list[str], at: int, cwd: str | None, run_dir: str) -> list[str] | None:
    """A training run's recorded command (``words``, its options from ``at`` on, started in ``cwd``)
    with its -o pointed at ``run_dir`` where the run folder is no longer where it was started (moved, renamed,
    copied): the command as recorded resumed the old folder, or, that gone, began a new run there.
    (A job's too, stopped as its -o came to lead elsewhere: :func:`_resume_command`.)
    None where it was moved and its -o cannot be found in the words (the command is then not given)."""
    import io
    from contextlib import redirect_stderr

    try:
        with redirect_stderr(io.StringIO()):
            output = build_parser().parse_args(words[at - 1 :]).output
    except SystemExit:  # (recorded by another version of xvertfast, with options this one lacks): as recorded
        return words
    started_in = os.path.join(cwd or "", output)
    if os.path.realpath(started_in) == os.path.realpath(run_dir):
        return words
    here, found, words = os.path.abspath(run_dir), False, list(words)
    end = words.index("--") if "--" in words else len(words)  # (what follows is inputs)
    for i in range(at, end):
        word = words[i]
        if word in ("-o", "--output"):
            if i + 1 < len(words) and words[i + 1] == output:
                words[i + 1], found = here, True
        elif word == f"--output={output}":
            words[i], found = f"--output={here}", True
        elif word == f"-o{output}":
            words[i], found = f"-o{here}", True
    return words if found else None


#: What the demo scores: the evaluation's default metrics less TMQI, which the sample is too small for.
DEMO_METRICS = ("entropy", "tenengrad", "lpc_si")


def _cmd_demo(args: argparse.Namespace) -> int:
    import os

    _load_torch()
    from xvertfast.eval.evaluate import check_report_folder, evaluate
    from xvertfast.infer import Enhancer
    from xvertfast.samples import SAMPLE_DICOM

    log = lambda msg: _print(msg, file=sys.stderr)  # noqa: E731
    if os.path.exists(args.output) and not os.path.isdir(args.output):  # (said as "cannot write into OUT/enhanced")
        _print(f"error: output folder {args.output} is a file: the demo writes the folders enhanced/ and report/ into "
               "OUT; give a folder (-o, made where missing)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        # the report's folder refused before the sample is enhanced: it was refused after, leaving OUT/enhanced
        check_report_folder(os.path.join(args.output, "report"))
        enhancer = Enhancer(_model_option(args.model, "--model"), device=args.device)
        # (each step said as it starts: the demo, the README's first command, ran a minute or more in silence)
        log(f"enhancing the sample radiograph, {os.path.basename(SAMPLE_DICOM)} ...")
        summary = enhancer.enhance_files([SAMPLE_DICOM], os.path.join(args.output, "enhanced"), overwrite=True,
                                         progress=False, log=log)  # fmt: skip
        if summary.failed:
            return 2  # (its log said why: raised, the error was said twice)
        if summary.stopped:  # (a Ctrl-C: nothing enhanced to evaluate; a rerun starts over, it does not resume)
            _print(f"stopped early: {summary.stopped}, before the demo's sample was enhanced; run the demo again",
                   file=sys.stderr)  # fmt: skip
            return 130 if summary.stopped == "interrupted" else 1
        given = "" if args.model == "default" else f"={args.model}"
        methods = ["identity", "clahe", "farbman", f"xvertnet{given}", f"xvertnet_original_brightness{given}"]
        # (no TMQI: the sample's ROIs are narrower than its 161 px, and its column would read n/a under two notes)
        # (the command recorded: the report said 'called from Python (no command line)' of the demo's)
        log("evaluating it: identity, CLAHE, Farbman and the model run on the whole image, their spine ROIs scored ...")
        run, paths = evaluate([SAMPLE_DICOM], os.path.join(args.output, "report"), methods, DEMO_METRICS,
                              pictures=1, progress=False, log=log, restart=True, device=args.device,
                              program=_program(args), argv=getattr(args, "argv", None))  # fmt: skip
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(f"enhanced: {os.path.abspath(summary.records[0].output)}")
    _print(f"report:   {os.path.abspath(paths['report.html'])}")
    with open(paths["summary.md"]) as f:
        _print(f.read())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    _load_torch()
    from xvertfast.infer.export import export_model

    slow = {"aoti": "AOTInductor compiles C++ for each stage (about half a minute a stage on a CPU)",
            "tensorrt": "TensorRT builds an engine for each stage (minutes on a GPU)"}  # fmt: skip

    def say_it_is_slow() -> None:  # a long wait with nothing on the screen otherwise; said once the checks passed
        _print(f"exporting {args.model} to {args.output}: {slow[args.format]} ...", file=sys.stderr)

    try:
        paths = export_model(args.model, args.output, format=args.format, fp16=args.fp16, max_batch=args.max_batch,
                             tile=args.roi_size, device=args.device, overwrite=args.overwrite,
                             on_start=say_it_is_slow if args.format in slow else None)  # fmt: skip
    except (ValueError, OSError, RuntimeError, ImportError) as exc:  # OSError: an output path that is a file
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        _print(p)
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    _load_torch()  # (xvertfast.infer's package imports it)
    from xvertfast.infer.cache import CacheBusy, cache_usage, clear_cache, describe_usage

    try:
        if not args.clear:
            _print(describe_usage(cache_usage()))
            return 0
        removed = clear_cache()
    except (CacheBusy, OSError) as exc:
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = removed["failed"]
    said = ", ".join(f"{name} ({reason})" for name, reason in failed)
    _print(f"removed {describe_usage(removed)}" + (f"; could not remove {len(failed)}: {said}" if failed else ""))
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        return _train_command(args)
    except KeyboardInterrupt as exc:  # from the start (torch loading) to the end
        return _training_interrupted(args, exc)
    except Exception as exc:  # one a Ctrl-C or SIGTERM raised outside train()'s handlers (a wrapped one)
        from xvertfast._interrupts import came_of_an_interrupt

        if not came_of_an_interrupt(exc):
            raise
        return _training_interrupted(args, exc)


def _training_interrupted(args: argparse.Namespace, exc: BaseException) -> int:
    """Says what a training run stopped by Ctrl-C or SIGTERM keeps in RUN_DIR and how to go on,
    with the error the stop raised if one did (:func:`~xvertfast._interrupts.then_line`); its exit
    code. Before the run took its folder, there is nothing to resume: said plainly. A run this
    command finished (train() returned) as the signal came is complete, said so, and still
    exits 130 (143) as every interrupted job does: a script's next step does not run."""
    from xvertfast._interrupts import then_line
    from xvertfast.train.run_folder import LOCK_FILE, has_finished_epochs, preprocessing_kept, to_go_on

    run_dir = args.output
    if getattr(args, "run_finished", False):  # (a run found finished at the start is no run this command finished)
        if not getattr(args, "run_finished_said", False):
            _print(_trained_line(run_dir))
        _print(f"{_line_start()}interrupted once the run had finished{then_line(exc)}: its model is complete",
               file=sys.stderr)  # fmt: skip
        return 130
    if not os.path.isfile(os.path.join(run_dir, LOCK_FILE)) and not has_finished_epochs(run_dir):
        _print(f"{_line_start()}interrupted{then_line(exc)}: the run had not started; nothing was written",
               file=sys.stderr)  # fmt: skip
        return 130
    if _finished_before(run_dir):  # (an interrupted `train DATA -o FINISHED_RUN`: --resume would only say so)
        _print(f"{_line_start()}interrupted{then_line(exc)}: {run_dir} holds a finished run; its model is "
               f"{os.path.join(run_dir, 'model')}", file=sys.stderr)  # fmt: skip
        return 130
    # (RUN_DIR/private-cache: the crops a cache it could not write lacked, which was said to hold none)
    kept = "the last finished epoch is kept" if has_finished_epochs(run_dir) else preprocessing_kept(run_dir)
    _print(f"{_line_start()}interrupted{then_line(exc)}: {kept}; {to_go_on(args.resume)}", file=sys.stderr)
    return 130


def _line_start() -> str:
    """What starts train's "interrupted" line: no newline, each of its progress bars being closed by then, which
    ends (or clears) its line (a newline left a blank line above it, as a log's); on a terminal a carriage
    return, over the "^C" it echoed at the start of the line."""
    try:
        return "\r" if sys.stderr.isatty() else ""
    except (AttributeError, ValueError, OSError):  # (a closed or a test's stream)
        return ""


def _finished_before(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a run that had finished before this command (False where that
    cannot be read: the interrupted line then says what a resume would)."""
    from xvertfast.train.status import train_status

    try:
        run = train_status(run_dir)
    except (OSError, ValueError):
        return False
    return run is not None and run.finished


def _train_command(args: argparse.Namespace) -> int:
    """``xvertfast train`` but for a Ctrl-C or SIGTERM, which :func:`_cmd_train` says."""
    if (refused := _inputs_refused(args.data)) is not None:  # said before a model is loaded or RUN_DIR made
        return refused
    from xvertfast.io.job_folder import lock_early_at, mark_taken
    from xvertfast.train.run_folder import LOCK_FILE, held_by_another

    # RUN_DIR's lock, where an earlier run made it, held from before torch, the --init model and the device
    # load (seconds), while status would say that run was interrupted; train() takes it over. Its time is
    # set as it is taken (status: the earlier start's record, a killed one's too, is not this one's), and
    # set back where the command is refused before train() takes it over (--init, a setting, the images)
    try:
        let_go = lock_early_at(os.path.join(args.output, LOCK_FILE), lambda: held_by_another(args.output), mark_taken)
    except ValueError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _train_holding_its_lock(args)
    finally:
        let_go()


def _train_holding_its_lock(args: argparse.Namespace) -> int:
    """:func:`_train_command` once RUN_DIR's lock is held."""
    _load_torch()
    from xvertfast.io.files import NothingFound
    from xvertfast.train import DiskFull, TrainConfig, TrainingDiverged, has_finished_epochs, train
    from xvertfast.train.run_folder import to_go_on

    # width and depth: as given, else the --init model's, else TrainConfig's defaults
    arch = {name: value for name, value in (("width", args.width), ("depth", args.depth), ("upsample", args.upsample))
            if value is not None}  # fmt: skip
    if args.init is not None:
        try:
            start = _model_option(args.init, "--init").stages[0]
        except ValueError as exc:
            _print(f"error: {exc}", file=sys.stderr)
            return 2
        arch = {"width": start.width, "depth": start.depth, "upsample": start.upsample, **arch}
    try:  # (TrainConfig checks its settings as it is made)
        config = TrainConfig(stages=args.stages, epochs_gc=args.epochs_gc, epochs_joint=args.epochs_joint,
                             batch_size=args.batch_size, roi_size=args.roi_size, patch_size=args.patch_size,
                             val_fraction=args.val_fraction, patience=args.patience, lr=args.lr, seed=args.seed,
                             device=args.device, amp=args.amp, init=args.init, **arch)  # fmt: skip
    except ValueError as exc:
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    _use_threads(args.threads)
    try:
        init_path = args.init if args.init != "default" else None  # (for the folder the command's paths are from)
        train(args.data, args.output, config, resume=args.resume, progress=not args.quiet, log=_say_around_the_bar,
              rois=_roi_file(args.rois), lr_given=getattr(args, "lr_given", False),
              **_started_with(args, args.data, args.output, init_path, args.rois))  # fmt: skip
        args.run_finished = True  # (for a Ctrl-C from here on: _training_interrupted)
    except NothingFound as exc:
        return _nothing_found(exc)
    except (TrainingDiverged, DiskFull) as exc:  # they say what the checkpoint keeps and what to do
        _print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as exc:  # OSError: RUN_DIR is a file, or cannot be written
        _raise_if_interrupted(exc)
        _print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # out of memory, a device or library error while training
        _raise_if_interrupted(exc)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        kept = (f"the checkpoint in {os.path.join(args.output, 'checkpoint')} keeps the last finished epoch: once the "
                f"cause is gone, {to_go_on(args.resume)} (settings such as --batch-size cannot change on resume)"
                if has_finished_epochs(args.output) else "no epoch had finished; nothing to resume")  # fmt: skip
        _print(f"error: {type(exc).__name__}: {first_line}\n{kept}", file=sys.stderr)
        return 3
    _print(_trained_line(args.output))
    args.run_finished_said = True
    return 0


def _trained_line(run_dir: str) -> str:
    """The line a finished training run ends with: where its model is, how to use it, what else it wrote."""
    model = os.path.join(run_dir, "model")
    # (a run of no epochs, a copy of its --init model, writes neither)
    written = [f"{what} in {path}" for what, path in (("metrics", os.path.join(run_dir, "metrics.csv")),
                                                      ("loss curves", os.path.join(run_dir, "curves.png")))
               if os.path.exists(path)]  # fmt: skip
    previews = _previews(run_dir)  # (each stage's, where matplotlib drew them: the first thing to look at)
    if previews:
        written.append(f"previews (a few ROIs through each stage) in {' and '.join(previews)}")
    return (f"the model is in {model}: {_enhance_with(model)} (Python: xvertfast.load_model)"
            + ("; " + ", ".join(written) if written else ""))  # fmt: skip


def _enhance_with(model: str) -> str:
    """How a trained model is used next, said where a run finishes and by status of a finished run (checked from
    elsewhere, the run's own last line in a log on another node): its folder shell-quoted (a space in it split it)."""
    return f"enhance with `xvertfast enhance INPUT -o OUT --model {shell_line([model])}`"


def _previews(run_dir: str) -> list[str]:
    """RUN_DIR's preview_stage{k}.png files of the stages of the model the run wrote, in stage order
    (none where matplotlib is not installed): a run trained again in the folder of a run of more stages
    (its checkpoint/ and model/ removed) named that run's preview_stage3.png among its own."""
    from xvertfast.model.persistence import check_config

    config = os.path.join(run_dir, "model", "config.json")
    try:
        with open(config, encoding="utf-8") as f:
            stages = len(check_config(json.load(f), config))
    except (OSError, ValueError):  # (the run has finished: its line is not to fail on a folder changed meanwhile)
        return []
    drawn = (os.path.join(run_dir, f"preview_stage{k}.png") for k in range(1, stages + 1))
    return [path for path in drawn if os.path.isfile(path)]


INPUTS_HELP = ("image files, folders (searched recursively) or @list.txt files (one path per line, relative "
               "ones from the current folder; append a tab and MONOCHROME1 for a PNG/JPEG stored "
               "bone-dark)")  # fmt: skip


def _add_job_arguments(parser: argparse.ArgumentParser, out_metavar: str, out_help: str, dest: str = "inputs",
                       metavar: str = "INPUT") -> None:  # fmt: skip
    """The arguments every batch command shares: its inputs, its output folder, and -q."""
    parser.add_argument(dest, nargs="+", metavar=metavar, help=INPUTS_HELP)
    parser.add_argument("-o", "--output", required=True, type=_output_folder, metavar=out_metavar, help=out_help)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


#: The commonest uses of xvertfast and of preprocess, enhance and evaluate, shown at the end of
#: their --help (tests parse each line).
EXAMPLES = {
    "xvertfast": """\
  xvertfast demo                       # a first look: a sample enhanced, scored
  xvertfast enhance scans -o enhanced  # a folder of radiographs
  xvertfast evaluate scans -o report   # XVertNet against CLAHE and Farbman""",
    "preprocess": """\
  xvertfast preprocess scans -o inputs    # then look at inputs/*_overlay.png""",
    "enhance": """\
  xvertfast enhance scans -o enhanced --dry-run      # what a run would do
  xvertfast enhance scans -o enhanced --preview look.png
      the shipped model, spine mode; look.png shows 8 inputs beside their
      outputs; after an interruption the same command does the rest
  xvertfast enhance scans -o full --mode full --format png8   # for viewing
  xvertfast enhance @list.txt -o enhanced --model runs/mine/model
  xvertfast status enhanced               # how far a job has come""",
    "evaluate": """\
  xvertfast evaluate scans -o report      # then open report/report.html
  xvertfast evaluate scans -o cmp --methods xvertnet,mine:xvertnet=runs/a/model""",
}


def _examples(command: str) -> str:
    """The epilog of ``command``'s --help: its examples."""
    return "Examples:\n" + EXAMPLES[command]


def build_parser() -> argparse.ArgumentParser:
    parser = _CommandParser(
        prog="xvertfast", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples("xvertfast"),
    )
    from xvertfast._version import __version__

    parser.add_argument("--version", action="version", version=f"xvertfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="show versions, compiled kernels, visible GPUs and optional backends",
        description="Show what this installation can do: package and torch versions, whether the "
        "compiled extension is in use, its CPU ops, the CUDA architectures its kernels were "
        "compiled for, the GPUs visible, the default model, and which optional packages import (cupy, "
        "onnxruntime, tensorrt, onnx, onnxscript, pydicom, pylibjpeg, gdcm, imagecodecs, matplotlib, "
        "scikit-image). Exit code: 0, 2 an unknown option, 130 interrupted, 143 stopped by SIGTERM, 129 by "
        "SIGHUP.",
    )
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.set_defaults(func=_cmd_info)

    pre = sub.add_parser(
        "preprocess",
        help="compute the network inputs X_p and Y of radiographs, with overlays to check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples("preprocess"),
        description="""Compute the XVertNet inputs of each radiograph and write, under OUTDIR
(mirroring the input folders):
  NAME_xp.png       X_p, the enhanced input (16-bit PNG)
  NAME_y.tiff       Y, the high-frequency guidance image (float32, signed)
  NAME_y.png        Y for viewing (mid-grey = 0)
  NAME_overlay.png  the image with the detected spine line (yellow), its band
                    estimates (orange), the training ROIs (blue) and the
                    evaluation ROIs (green), and a key to them in a strip
                    below: look at these before training.
Bad files are reported and get no output; the others go on (a DICOM file that
is no image, a PACS export's presentation state or report, is passed over and
counted apart, not failed). A rerun resumes:
OUTDIR keeps a ledger of the outputs the job wrote, and an input the ledger
records as done, unchanged since, is skipped (--overwrite recomputes it). A file
in OUTDIR that the job did not write is never replaced.
Exit code: 0 all done, 1 a file failed, none found, none an image (no DICOM
file found holds one), the disk full (or gone read-only) or the job's log lost
(stderr closed), 2 OUTDIR cannot be used (another job in it, other settings
without --overwrite), an @list cannot be read, or the --rois file cannot be
read or has a row naming no input, 130 interrupted, 143 stopped by SIGTERM, 129
by SIGHUP (the same command resumes).""",
    )
    _add_job_arguments(pre, "OUTDIR", "output folder")
    pre.add_argument("--overwrite", action="store_true",
                     help="recompute inputs whose outputs this job's ledger records as done")
    pre.add_argument("--shard", type=_shard, metavar="K/N", help=SHARD_HELP)
    pre.add_argument("--rois", metavar="FILE", help=ROIS_HELP + "; the overlays show them")
    pre.add_argument("--dry-run", action="store_true", help=_dry_run_help("preprocess", "OUTDIR"))
    pre.add_argument("--threads", type=_at_least(0), default=0, metavar="N",
                     help=THREADS_HELP + " The outputs are the same whatever the count (default: %(default)s)")
    pre.set_defaults(func=_cmd_preprocess)

    enh = sub.add_parser(
        "enhance",
        help="enhance radiographs with a trained model (batch, resumable)",
        formatter_class=_LinesKept,
        epilog=_examples("enhance"),
        description="""Enhance every input with XVertNet and write the results under OUT_DIR,
mirroring the input folders: a folder's files keep their paths below it, an
@list's files the paths as listed, and a file named on the command line goes to
OUT_DIR/NAME (two of one name from different folders collide: give their common
parent folder).

  --mode spine   the upper and lower thoracic spine ROIs are enhanced and
                 blended into the original with a feathered seam (what the
                 papers evaluate)
  --mode full    the whole image, tiled with overlap and blended without seams

  --brightness network    the network's output as the papers define it; a small
                          model flattens the large-scale brightness, so in spine
                          mode the ROIs show as grey rectangles
  --brightness original   the network's detail on the original's large-scale
                          brightness (not the papers' method; for viewing)

Outputs are written atomically and recorded in OUT_DIR's ledger: after an
interruption (Ctrl-C, a kill, a full disk) the same command skips what is done
and does the rest; an input changed since is done again. A file in OUT_DIR that
xvertfast did not write is never taken for an output or replaced, even with
--overwrite. OUT_DIR records the model, mode, brightness, format and precision,
and a rerun with other settings is refused (--overwrite redoes the outputs;
after a change of --format each new output replaces the input's earlier one).
OUT_DIR is not searched for inputs, and one job at a time may write into it, or
the N shards of one (--shard K/N, e.g. a cluster array job: --shard
$((TASK_ID + 1))/N). Bad files are reported and skipped. A DICOM file that is no
image (a PACS export's presentation states, reports, key objects) is passed over
and counted apart ("2 not images (PR 1, SR 1)"), not failed. Exit code: 0 all
done, 1 some failed, nothing was found, nothing found was an image (no DICOM
file holds one), the disk filled (or went read-only), the job's log lost
(stderr closed) or the --report could not be written, 2 the job could not
start, 130 interrupted, 143 stopped by SIGTERM, 129 by SIGHUP.

--format same keeps each input's kind: 8-bit PNG/JPEG -> 8-bit PNG, deeper PNG
-> 16-bit PNG at the source's bit depth, TIFF -> float TIFF, DICOM -> derived
DICOM (a Secondary Capture image: patient and study kept, new series). Every
output is stored bone bright (MONOCHROME2) whatever the input's polarity: a
MONOCHROME1 DICOM, or a PNG listed as MONOCHROME1, comes back with its stored
values inverted.""",
    )
    _add_job_arguments(enh, "OUT_DIR", "output folder")
    enh.add_argument("--model", default="default", metavar="PATH|default",
                     help="a model directory (RUN_DIR/model of `xvertfast train`) or the shipped default "
                     "(default: %(default)s)")
    enh.add_argument("--mode", choices=("spine", "full"), default="spine",
                     help="what to enhance (default: %(default)s)")
    enh.add_argument("--brightness", choices=("network", "original"), default="network",
                     help="what sets the large-scale brightness of the enhanced regions (default: %(default)s)")
    enh.add_argument("--rois", metavar="FILE", help=ROIS_HELP + " (--mode spine only)")
    enh.add_argument("--device", type=_device, default="auto",
                     help=f"{DEVICE_AUTO}; or cpu, cuda, cuda:1, ... (default: %(default)s)")
    enh.add_argument("--backend", choices=("auto", "torch", "compile", "onnxruntime", "tensorrt"), default="auto",
                     help="network runtime: auto is TensorRT on a GPU where installed (torch where TensorRT cannot "
                     "build its engines), else torch (default: %(default)s)")
    enh.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                     help="auto: bf16 on a GPU (fp16 below compute capability 8.0), fp32 on the CPU "
                     "(default: %(default)s)\n"
                     "fp32: the full precision the others are measured against; on a GPU fp32 runs without TF32 "
                     "(torch, compile and tensorrt backends)\n"
                     "bf16: GPUs of compute capability 8.0 or later, and CPUs with bf16 (torch and compile backends "
                     "only), "
                     "where with AMX a network stage runs about 2x as fast as fp32, a whole job about 1.2x (the WLS "
                     "solves are not sped up); it moves the outputs by ~1e-3 on a [0, 1] scale on average (0.3 of an "
                     "8-bit grey level), by up to ~1e-2 (a few grey levels)\n"
                     "fp16: GPUs only (auto's choice on GPUs older than compute capability 8.0)\n"
                     "exported graphs hold fp32 or fp16, so onnxruntime runs bf16 as fp32 and tensorrt as fp16")  # fmt: skip
    enh.add_argument("--format", choices=("same", "png16", "png8", "tiff", "dicom"), default="same",
                     help="output format: same (above); png16, a 16-bit PNG holding the source's bit depth "
                     "(a 12-bit input as 0..4095, an 8-bit one as 0..255, so viewers that show the whole 16-bit "
                     "range show them dark); png8, for viewing; tiff, float32 in [0, 1]; dicom, a derived "
                     "DICOM at the source's bit depth (default: %(default)s)")
    enh.add_argument("--batch-size", type=_at_least(1), default=8,
                     help="tiles per network call: an image gives two in spine mode, more in full mode "
                     "(default: %(default)s)")  # fmt: skip
    enh.add_argument("--workers", type=_at_least(1, 64), default=None,
                     help="threads that read and preprocess an image each, and as many that write; a reader's "
                     "WLS solves run using --threads CPU threads (default: half the CPUs, 1 to 4, as the solver and "
                     "the network already use every core; at most 64)")
    enh.add_argument("--threads", type=_at_least(0), default=0, metavar="N",
                     help=THREADS_HELP + " The network uses N, and so does each --workers thread's solve. "
                     "Another count may move the outputs in the last bits (" + THREADS_MOVE + "); "
                     "a resumed job may use another (default: %(default)s)")  # fmt: skip
    enh.add_argument("--overwrite", action="store_true",
                     help="redo the outputs this job already wrote (with new settings, say)")
    enh.add_argument("--report", metavar="RUN_JSON",
                     help="write per-file status and timings of this run to this JSON file, replacing a file "
                     "there (a resumed run lists the files done before as skipped, with the warnings the run that "
                     "enhanced them gave: none for outputs an older xvertfast made)")
    enh.add_argument("--preview", metavar="PNG",
                     help="draw 8 inputs beside their outputs, spread over the job, into this PNG (replacing a "
                     "file there): a first look before trusting the rest; those whose image this run warned of "
                     "(looks inverted, spine in doubt) come first, spread over where more than 8")
    enh.add_argument("--shard", type=_shard, metavar="K/N", help=SHARD_HELP + "; give each shard its own "
                     "--report and --preview")  # fmt: skip
    enh.add_argument("--dry-run", action="store_true",
                     help=_dry_run_help("enhance", "OUT_DIR") + "; --report, if given, lists each file's plan")
    enh.set_defaults(func=_cmd_enhance)

    ev = sub.add_parser(
        "evaluate",
        help="compare XVertNet with baselines on the spine ROIs (the papers' protocol), as a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples("evaluate"),
        description="""Run each method on every whole image, cut the two spine ROIs (upper and
lower thoracic spine, 512x290 at 1024 rows, scaled with the image height; found
automatically or given in a CSV) from the original and from each output, score
them, and write into REPORT_DIR (new, empty, or an earlier evaluation's):
  scores.csv     every ROI, method and metric
  summary.md/csv mean +- std per method, with and without z-score outlier
                 removal (+-1.96 sample sd, n-1: a method paired with the
                 reference loses the outliers of either, the reference's own
                 row only its own), and Wilcoxon signed-rank p-values against
                 --compare-to paired by ROI (the tables' marks * p<0.05,
                 ** p<0.01) and by image, with Holm-adjusted p and the
                 Hodges-Lehmann difference and its 95% interval
  boxplots.png   the distributions
  grid/*.png     a sample of images, all methods side by side, ROIs drawn
  provenance.json
                 how the report was made: xvertfast's version, the versions of
                 the libraries that compute the scores (numpy, scipy,
                 scikit-image, torch, the image decoders, onnxruntime or
                 TensorRT under their --backend, Triton under --backend
                 compile on a GPU), each model's digest, device and
                 precision, the baselines' parameters, the
                 ROI source, the command (summary.md and report.html end with
                 it, their paths as typed; the JSON holds absolute ones)
  report.html    all of it on one page
Methods: identity, clahe (scikit-image's, 8x8 tiles, clip 2/256 per bin:
OpenCV's clipLimit 2.0 by definition, though not OpenCV's algorithm), farbman
(3-level WLS detail boosting), xvertnet[=MODEL_DIR] (the default model when no
directory; the papers' method), xvertnet_original_brightness[=MODEL_DIR] (the
same network's detail on the original's large-scale brightness: enhance
--brightness original), outputs=DIR (what another tool wrote into DIR,
mirroring the inputs' paths as enhance does, any image extension; read on its
format's own scale, not stretched), inverted_outputs=DIR (the same, of a tool
that stores its outputs bone dark: each scored inverted, said in the report's
notes). LABEL:METHOD names a method in the report, so that two of a kind can be
compared:
  --methods identity,clahe,xvertnet,mine:xvertnet=runs/mine/model,vendor:outputs=/data/vendor
Metrics (higher is better, except brisque): entropy (bits: how widely the ROI's
grey levels spread), tenengrad (mean squared Sobel gradient: edge strength),
lpc_si (local phase coherence sharpness index), tmqi (tone-mapped image quality
index: how much of the original's structure is kept, and naturalness;
reference = original), brisque (no-reference naturalness score, lower is
better), tmqi_paper_compat (TMQI with the test image in [0, 1]: the XVertNet
paper's values, 0.01-0.21, for comparing with its tables); definitions in
xvertfast.eval.metrics. A failing image is reported and skipped. Each image's
scores are recorded in REPORT_DIR as it finishes: after an interruption, the
same command scores only the images not done yet (--restart scores all again,
as enhance --overwrite redoes). A rerun may add or drop methods or metrics: an
added one is scored alone on the images done, the others' scores are kept (a
dropped one's too, for a rerun that gives it again; the report shows those
asked); other settings changed (the model, device, precision, ROIs,
xvertfast's code, a library upgraded or downgraded, or replaced by another
build (onnxruntime by onnxruntime-gpu): numpy, scipy, scikit-image, torch,
onnxruntime or TensorRT under its --backend, Triton under --backend compile on
a GPU, or a decoder of the images' formats, pydicom for DICOM, Pillow for PNG)
are refused; a library installed since is not. A DICOM file that is no image (a
PACS export's presentation state or report) is said in a note, no failure. Exit
code: 0 all scored, 1 an image failed, none was found or none found was an
image, 2 the run could not start (an unknown method or metric, other settings
in REPORT_DIR without --restart, REPORT_DIR holding other files) or could not
write REPORT_DIR (read-only, full: the images recorded are kept), 130
interrupted, 143 stopped by SIGTERM, 129 by SIGHUP.""",
    )
    _add_job_arguments(ev, "REPORT_DIR", "report folder")
    ev.add_argument("--methods", default="identity,clahe,farbman,xvertnet",
                    help="comma-separated [LABEL:]METHOD, of the methods above (default: %(default)s)")
    ev.add_argument("--metrics", default="entropy,tenengrad,lpc_si,tmqi",
                    help="comma-separated metrics, of those above; add brisque for BRISQUE (default: %(default)s)")
    ev.add_argument("--rois", default="auto", metavar="auto|FILE",
                    help="auto, or a CSV of hand-placed ROI centres whose first line is the header row "
                    "file,upper_row,upper_col,lower_row,lower_col, then one row per image: its path or name and "
                    "the centres in pixels of the original image; an input not in it fails. A ROI that "
                    "crosses the image's edge is moved inside it: scores.csv gives where each "
                    "was scored (top, left) (default: %(default)s)")
    ev.add_argument("--compare-to", default=None, metavar="LABEL",
                    help="method the others are tested against (default: the first xvertnet method, else "
                    "the first xvertnet_original_brightness, else identity; with none of these among the "
                    "methods, no test is run unless this names one)")
    ev.add_argument("--pictures", type=_at_least(0), default=6,
                    help="how many images grid/ and report.html show, each beside every method's output with "
                    "its ROIs drawn; 0 for none (default: %(default)s)")
    ev.add_argument("--device", type=_device, default="auto",
                    help=f"device for xvertnet ({DEVICE_AUTO}; or cpu, cuda, cuda:1, ...) (default: %(default)s)")
    ev.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                    help="what xvertnet computes in, as for enhance: auto is bf16/fp16 on a GPU, fp32 on the "
                         "CPU; fp32 on a GPU runs without TF32, for scores to compare with a CPU run's. REPORT_DIR "
                         "records the device kind and precision that ran: a resumed run on other ones is "
                         "refused, so one report never mixes them (default: %(default)s)")  # fmt: skip
    ev.add_argument("--restart", action="store_true",
                    help="score every image again, ignoring those an earlier run in REPORT_DIR finished")
    ev.add_argument("--threads", type=_at_least(0), default=0, metavar="N",
                    help=THREADS_HELP + " Another count may move xvertnet's outputs, and so its scores, in the last "
                    "bits (" + THREADS_MOVE + "); a resumed run may use another (default: %(default)s)")  # fmt: skip
    ev.set_defaults(func=_cmd_evaluate)

    st = sub.add_parser(
        "status",
        help="how far the enhance or preprocess job writing into a folder (all its shards), or a training run, "
             "has come",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""Read an enhance or preprocess output folder's settings and ledgers (the
unsharded job's and every shard's) and say how many outputs are done with the
recorded settings, how many were started and not finished (in flight, left by
a killed run, or whose writing failed: the next run redoes them), and how many
have other settings (from before an --overwrite with new ones, which redoes
them). For each ledger: when it was last written, and whether its job (a shard,
or the job without --shard) runs now, i.e. holds its lock, which a killed
process (kill -9, a node lost, a time limit) lets go. For one not running: how
its latest run ended, finished (every input of its part done, skipped or
failed, with the counts) or stopped and why (interrupted, the disk full, the
device failed; killed, or its node lost, where it wrote no end), and for one
that stopped, the command that resumes it: its command line as recorded (cd to
the folder it was started in, where its paths are relative; without
--overwrite), or a template where it recorded none (started from Python or by
an earlier xvertfast). Shards with no ledger here, of a count N that some shard
ran with, are listed: the job is complete once every shard of one N, or a run
without --shard, has finished.
Then the rate in output files a minute, added up over the shards at work: each
over at least its latest 100 outputs and 30 s, not back past a pause of over
10 minutes. A stretch's first batch is left out; under 5 outputs after it, or
under 30 s, give no rate.
Only reads: running jobs are not disturbed (a job starting while status reads
its lock waits a moment). Failed inputs are not in the ledgers (each run's
--report lists them).

Given the RUN_DIR of `xvertfast train`: the stage and epoch reached, the phase
(structure loss alone, or joint, and how near early stopping is), the latest
losses, the epochs it may still train and how long at its recent pace, when it
last wrote, and whether it runs now.
Exit code: 0, 2 where the folder holds no such job or a ledger or checkpoint
cannot be read, 130 interrupted, 143 stopped by SIGTERM, 129 by SIGHUP.""",
    )
    st.add_argument("folder", metavar="FOLDER", help="the output folder of an enhance or preprocess job, or the "
                    "RUN_DIR of a training run")  # fmt: skip
    st.add_argument("--json", action="store_true", help="print the same as JSON, for scripts")
    st.set_defaults(func=_cmd_status)

    demo = sub.add_parser(
        "demo",
        help="enhance the bundled sample radiograph and evaluate it: a first look",
        description="Enhance the sample radiograph shipped with xvertfast (a 10-bit MONOCHROME1 CR chest "
        "DICOM) with a model (the shipped default unless --model), write the enhanced DICOM to "
        "OUT/enhanced/ and an evaluation report against identity, CLAHE and Farbman to "
        "OUT/report/report.html (the model's output also with --brightness original; scored on entropy, "
        "Tenengrad and LPC-SI: the sample's ROIs are too small for TMQI). "
        "Exit code: 0 done, 1 the enhancement stopped early (it says why), 2 failed, 130 interrupted, 143 stopped "
        "by SIGTERM, 129 by SIGHUP.",
    )
    demo.add_argument("-o", "--output", default="xvertfast-demo", type=_output_folder, metavar="OUT",
                      help="output folder (default: %(default)s)")
    demo.add_argument("--model", default="default", metavar="PATH|default",
                      help="a model directory (RUN_DIR/model of `xvertfast train`) or the shipped default "
                      "(default: %(default)s)")
    demo.add_argument("--device", type=_device, default="auto",
                      help=f"{DEVICE_AUTO}; or cpu, cuda, cuda:1, ... (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

    exp = sub.add_parser(
        "export",
        help="export a model's stages to ONNX, TensorRT engines or AOTInductor packages",
        description="Export each stage of MODEL as its own graph (the WLS between stages stays outside): "
        "ONNX with a dynamic batch axis, TensorRT engines built from that ONNX (needs TensorRT and a GPU; "
        "engines are cached by ONNX hash, TensorRT version, GPU and builder settings, precision and shapes "
        "included), or AOTInductor packages (for torch._inductor; load them with "
        "xvertfast.infer.export.load_aoti, which checks their input shapes). The files are for running the "
        "network elsewhere: `xvertfast enhance --backend onnxruntime|tensorrt` exports and caches its own. A "
        "model's stage files are written "
        "as a set; stage files already in OUT are replaced only with --overwrite (which, for onnx, also "
        "removes the stage{k}.engine files built from the old set). "
        "The tile side defaults to the model's training ROI size. Exit code: 0 done, 2 failed, 130 interrupted, "
        "143 stopped by SIGTERM, 129 by SIGHUP.",
    )
    exp.add_argument("model", metavar="MODEL",
                     help="a model directory (RUN_DIR/model of `xvertfast train`) or 'default'")
    exp.add_argument("-o", "--output", required=True, type=_output_folder, metavar="OUT", help="output folder")
    exp.add_argument("--overwrite", action="store_true", help="replace stage files already in OUT")
    exp.add_argument("--device", type=_device, default="auto",
                     help="what TensorRT engines and AOTI packages are built for (auto: the GPU if there is "
                     "one; ONNX files run anywhere) (default: %(default)s)")
    exp.add_argument("--format", choices=("onnx", "tensorrt", "aoti"), default="onnx",
                     help="onnx (ONNX Runtime, any device), tensorrt (a GPU's engine) or aoti (a compiled "
                     "torch package) (default: %(default)s)")
    exp.add_argument("--fp16", action="store_true", help="half precision baked into the graph")
    exp.add_argument("--max-batch", type=_at_least(1), default=8,
                     help="largest batch of a TensorRT profile or an AOTI package; ONNX batches are unbounded "
                     "(default: %(default)s)")
    exp.add_argument("--roi-size", type=_at_least(1), default=None,
                     help="tile side in pixels, the network's input (default: the model's training ROI size)")
    exp.set_defaults(func=_cmd_export)

    cache = sub.add_parser(
        "cache",
        help="show the export cache's size, or empty it",
        description="Show where the export cache is (XVF_CACHE_DIR, else ~/.cache/xvertfast/engines) and how much "
        "it holds: the ONNX exports and TensorRT engines and timing caches that `enhance --backend "
        "onnxruntime|tensorrt` and `export --format tensorrt` keep. xvertfast never prunes it; "
        "--clear removes those (only files of those names: a cache folder shared with other files loses none), "
        "and what is needed again is made again (a TensorRT engine in minutes). Exit code: 0 done, 1 some files "
        "could not be removed (each is named; the others were), 2 refused (another xvertfast process is building "
        "or loading from the cache) or the cache unusable (a file, a folder this user cannot list or lock), 130 "
        "interrupted, 143 stopped by SIGTERM, 129 by SIGHUP.",
    )
    cache.add_argument("--clear", action="store_true", help="remove the cached exports, engines and timing caches")
    cache.set_defaults(func=_cmd_cache)

    tr = sub.add_parser(
        "train",
        help="train XVertNet, unsupervised, on your own radiographs",
        formatter_class=_DefaultsWhereSet,
        description="Train a multi-stage XVertNet on unlabeled frontal chest radiographs. Each image is "
        "preprocessed once and gives two spine ROIs, cached in RUN_DIR/cache and memory-mapped, so the "
        "training set need not fit in memory (disk: ~8 MB per image at --roi-size 512, 4 MB more per later "
        "stage). Each stage trains with the "
        "gradient-correlation loss alone for --epochs-gc epochs, then adds the max-entropy feature loss for "
        "up to --epochs-joint epochs with early stopping on the validation images; stage k+1 trains on stage "
        "k's outputs. A checkpoint is written after every epoch: --resume continues an interrupted run. "
        "RUN_DIR/curves.png draws the losses as they go, and RUN_DIR/preview_stage{k}.png shows a few "
        "validation ROIs through each finished stage (with matplotlib). "
        "The paper's setting is the default (width 64, 200 + 25 epochs); on a CPU start small "
        "(e.g. --width 16 --patch-size 256 --epochs-gc 20 --epochs-joint 5; the shipped default model "
        "was trained with --width 16 --patch-size 256 --epochs-gc 100 --epochs-joint 30). "
        "The model is written to RUN_DIR/model: `xvertfast enhance ... --model RUN_DIR/model`. "
        "Exit code: 0 model written, 1 no image found, 2 bad settings, no readable image, RUN_DIR unusable "
        "(a file, a model's own folder, another train running in it, a damaged checkpoint or cache file, a model/ "
        "but no checkpoint) or holding a checkpoint without --resume, "
        "3 stopped by an error while training (the loss diverged, out of memory, the disk full): the checkpoint "
        "keeps the epochs before it, 130 interrupted, 143 stopped by SIGTERM, 129 by SIGHUP (--resume continues).",
    )
    _add_job_arguments(tr, "RUN_DIR", "run folder", dest="data", metavar="DATA")
    tr.add_argument("--stages", type=_at_least(1), default=2,
                    help="networks trained one after the other, each on the outputs of the one before, and run so "
                    "by enhance (the papers use 2: a third over-enhanced in theirs)")
    tr.add_argument("--epochs-gc", type=_at_least(0), default=200,
                    help="epochs of each stage with the structure loss only (gradient correlation with the guidance "
                    "image Y)")
    tr.add_argument("--epochs-joint", type=_at_least(0), default=25,
                    help="at most this many epochs of each stage with structure + feature (max-entropy) loss, "
                         "stopped early after --patience epochs without a better validation loss; the stage keeps its "
                         "best epoch")
    tr.add_argument("--batch-size", type=_at_least(1), default=8, help="ROIs (or patches) per optimiser step")
    tr.add_argument("--width", type=_at_least(1), default=None,
                    help="base width of the U-Net (paper and default: 64; with --init: the model's)")
    tr.add_argument("--depth", type=_at_least(1), default=None,
                    help="down-sampling levels of the U-Net (default: 4; with --init: the model's)")
    tr.add_argument("--upsample", choices=["bilinear", "transposed"], default=None,
                    help="the decoder's upsampling (default: bilinear; with --init: the model's). 'transposed' "
                    "(2x2 stride-2 transposed conv) is the older form; it produces "
                    "period-2 pixel patterns that the Sobel-based structure loss cannot see")
    tr.add_argument("--init", default=None, metavar="MODEL",
                    help="start from this model's weights instead of random ones: a model directory or 'default' "
                    "(fine-tune the shipped model on your own images; e.g. --epochs-gc 0 for the joint phase only)")
    tr.add_argument("--roi-size", type=_at_least(1), default=512,
                    help="ROI side in pixels at the working height of 1024 rows; also the side of the two tiles "
                    "enhance changes in spine mode: below 512 they cover only part of evaluate's 512x290 ROIs "
                    "(at 128: 6%%), the rest is scored as the original, and evaluate warns")
    tr.add_argument("--patch-size", type=_at_least(0), default=0,
                    help="train on random square patches of this side in pixels, cut from the ROIs (0, or at least "
                    "--roi-size: whole ROIs); same pixel scale, cheaper steps")
    tr.add_argument("--val-fraction", type=_share, default=0.2,
                    help="share of the images held out for validation, which early stopping and each stage's "
                    "kept epoch go by: 0 up to, not including, 1, rounded to whole images, at least one of two "
                    "or more; 0: none, and they go by the training loss")
    tr.add_argument("--patience", type=_at_least(1), default=10,
                    help="joint-phase epochs without a better validation loss before a stage stops early")
    tr.add_argument("--lr", type=float, default=1e-3, action=_TypedOption,
                    help="Adam's learning rate (lower it where training stops with a diverged loss: the one setting "
                    "--resume may change)")
    tr.add_argument("--device", type=_device, default="auto", help=f"{DEVICE_AUTO}; or cpu, cuda, cuda:1, ...")
    tr.add_argument("--amp", action="store_true",
                    help="bfloat16 autocast: on GPUs of compute capability 8.0 or later (Ampere on; refused on older "
                    "ones), and on CPUs with AMX (about 1.7x faster steps there: 13.2 against 7.7 training patches/s "
                    "at width 16 on 2 cores, 2026-12-02); it moves the training trajectory a little")
    tr.add_argument("--seed", type=int, default=0,
                    help="seeds the validation split, the initial weights, the batch order and the augmentation: "
                    "any whole number (torch's seeds are 64-bit, so seeds equal modulo 2**64 train alike)")
    tr.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    tr.add_argument("--rois", metavar="FILE", help=ROIS_HELP + " (from RUN_DIR's cache); a --resume once an epoch "
                    "has trained needs the centres it was trained on")  # fmt: skip
    tr.add_argument("--threads", "--workers", dest="threads", type=_at_least(0), default=0, action=_ThreadsOption,
                    help="CPU threads for torch (0: torch's default); batches come from the memory-mapped "
                    "ROI cache in the training loop: there are no data-loading workers. --workers: the deprecated "
                    "old name of --threads (it warns), not enhance's reader threads")
    tr.set_defaults(func=_cmd_train)
    return parser


#: Options a user brings from another command, and what this command has for the purpose.
COUNTERPARTS = {
    ("evaluate", "--model"): "give the model as a method, --methods xvertnet=MODEL_DIR",
    ("evaluate", "--overwrite"): "--restart scores every image again",
    ("enhance", "--restart"): "--overwrite redoes the outputs",
    ("preprocess", "--restart"): "--overwrite recomputes the outputs",
    ("train", "--model"): "--init MODEL starts from a model's weights",
}


class _CommandParser(argparse.ArgumentParser):
    """The top-level parser: an option the command does not take is refused by that command's parser
    (its usage, not the top level's "xvertfast [-h] [--version] COMMAND ..."), saying what was meant
    where that can be told: a close spelling, the command that has it, this command's counterpart.
    Options given before the command are refused by the top level, saying where they go; a word
    that is no command, what was meant (a misspelt command, an option's value taken for one, help).
    Options are taken whole, never abbreviated (the commands' parsers are of this class too): argparse
    took any unique prefix, so a script's --pre meant --preview until --precision came, and --ov
    --overwrite as long as no other option begins so; an abbreviation is said with the options it begins."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # (for error: a command's parser is given its own)
        return super().parse_known_args(args, namespace)

    def error(self, message):
        """argparse's error, with "-o/--output" required where ``--out`` was given: the option abbreviated."""
        if message.startswith("the following arguments are required"):
            words = getattr(self, "_given", [])
            words = words[: words.index("--")] if "--" in words else words
            options = _long_options(self)
            hints = [f"{w}: {hint}" for w in dict.fromkeys(w.partition("=")[0] for w in words)
                     if (hint := _whole(w, options))]  # fmt: skip
            message += f" ({'; '.join(hints)})" if hints else ""
        super().error(message)

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._words = args  # (for _check_value, which argparse gives the word alone)
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            commands = next(a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction))
            command = getattr(parsed, "command", None)
            if command not in commands:  # (xvertfast --vers: --version abbreviated)
                top = _long_options(self)
                hints = [hint for w in extras if (hint := _whole(w.partition("=")[0], top))]
                self.error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))
            before = _before_the_command(args, command)
            if before:  # (xvertfast --overwrite enhance ...: not enhance's to refuse, nor a misspelling)
                self.error(_misplaced(before, command, commands, self))
            commands[command].error(_unrecognized(extras, command, commands))
        return parsed

    def _check_value(self, action, value):
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            meant = _command_meant(value, action.choices, getattr(self, "_words", []))
            if meant:  # (argparse said "invalid choice: 'enhanse' (choose from 'info', ...)" alone)
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}: {meant}")
        super()._check_value(action, value)


def _command_meant(word: str, commands: dict, words: list[str]) -> str | None:
    """What a ``word`` given where the command goes meant, among the command line's ``words``: an
    option's value before the command (``xvertfast -o out enhance ...``: argparse took out for the
    command; ``-o out in``, the command left out, too), a path (the command left out: no "did you
    mean" for the folder in/), help, a misspelt command (``--threads enhanse in``: enhanse is no
    value; ``-o enhanced in``: a new folder -o would make, or a misspelling, both said); None where
    that cannot be told."""
    import difflib

    names = list(commands)
    at = words.index(word) if word in words else -1
    later = next((w for w in words[at + 1 :] if w in commands), None) if at > 0 else None
    if later and _takes_a_value(commands[later], words[at - 1]):  # (-q out enhance: -q takes none)
        return f"{words[at - 1]} {word} goes after the command: xvertfast {later} ... {words[at - 1]} {word}"
    path = os.path.lexists(word) or "/" in word or os.sep in word or os.path.splitext(word)[1]
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.6)
    takers = [name for name in names if _takes_a_value(commands[name], words[at - 1])] if at > 0 and not later else []
    option = words[at - 1] if takers else ""
    having = [name for name in names if _named_exactly(commands[name], option)]  # (named where one alone has it)
    command = having[0] if len(having) == 1 and having[0] in takers else "COMMAND"
    goes_after = f"{option} {word} goes after the command: xvertfast {command} ... {option} {word}"
    if close and not path:
        # (-o enhanced in: -o makes its folder, so a new one named like a command may be -o's value;
        # --threads enhanse in: enhanse is no whole number, so a misspelt command alone; --mode
        # enhanse in: asked of enhance, the command the hint would name, not of demo's --model)
        if any(_could_take(commands[name], option, word) for name in ([command] if command in takers else takers)):
            return f"did you mean {close[0]}? (or: {goes_after}; the commands: {', '.join(names)})"
        return f"did you mean {close[0]}? (the commands: {', '.join(names)})"
    if takers:  # (-o out in, the command left out: out is -o's, be it a folder or not)
        return f"{goes_after} (the commands: {', '.join(names)})"
    if begun := _begun(words[at - 1] if at > 0 else "", word, commands, [later] if later else names):
        return begun
    if path:
        what = "a folder" if os.path.isdir(word) else "a file" if os.path.lexists(word) else "a path"
        return (f"{what}, not a command: the command goes before it: xvertfast {later or 'COMMAND'} {word} ... "
                f"(the commands: {', '.join(names)})")  # fmt: skip
    if word.lower().lstrip("-") == "help":
        return "xvertfast --help lists the commands, xvertfast COMMAND --help shows one's options and exit codes"
    return None


def _begun(option: str, word: str, commands: dict, names: list[str]) -> str | None:
    """Where ``option`` (``--out``, ``--epochs``), given before the command with ``word`` after it,
    names no option of the commands ``names`` but begins some (every command's --output; train's
    --epochs-gc and --epochs-joint): it is no option, so ``word`` was taken for the command ("invalid
    choice: '3'" alone). The example names a command only where the options that best take ``word``
    are one command's (those with choices holding it first: --mod full, enhance's --mode, not demo's
    --model), else COMMAND (--out o: any command's --output). None where it begins none."""
    if not option.startswith("--") or "=" in option or any(_named_exactly(commands[n], option) for n in names):
        return None
    begun = [(name, o) for name in names for o in _begins(option, _long_options(commands[name]))]
    if not begun:
        return None
    fits = [(name, o) for name, o in begun if _could_take(commands[name], o, word)]
    best = [(name, o) for name, o in fits if _taking_a_value(commands[name], o).choices is not None] or fits or begun
    name = best[0][0] if len({n for n, _ in best}) == 1 else "COMMAND"
    having: dict[str, list[str]] = {}  # (the commands of each option begun)
    for command, o in begun:
        having.setdefault(o, []).append(command)
    if len({command for command, _ in begun}) == 1:
        said = f"{begun[0][0]} has {_and(list(having))}"
    else:  # (--out: --output (preprocess, enhance, ...), not "preprocess has --output; enhance has --output; ...")
        said = "it begins " + _and([f"{o} ({', '.join(takers)})" for o, takers in having.items()])
    go = "goes" if len(having) == 1 else "go"
    return (f"{option} is not an option; {said}, which {go} after the command: xvertfast {name} ... {best[0][1]} "
            f"{word if fits else 'N'} ({WHOLE})")


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


#: Why an abbreviated option is refused, said with the options it begins.
WHOLE = "options are given whole, not abbreviated"


def _begins(option: str, options: list[str]) -> list[str]:
    """The long ``options`` that ``option`` (``--pre``) begins without naming one; none for a short option."""
    if not option.startswith("--") or len(option) < 3 or option in options:
        return []
    return [o for o in options if o.startswith(option)]


def _whole(option: str, options: list[str]) -> str | None:
    """"did you mean --precision or --preview? options are given whole, not abbreviated", where
    ``option`` (--pre) begins some of the long ``options`` and names none; else None."""
    begun = _begins(option, options)
    return f"did you mean {' or '.join(begun)}? {WHOLE}" if begun else None


def _named_exactly(command: argparse.ArgumentParser, name: str) -> set[argparse.Action]:
    """``command``'s options called ``name`` exactly (argparse reads an exact name before the longer
    ones it begins: --mode, not --model)."""
    return {a for a in command._actions if name in a.option_strings}


def _taking_a_value(command: argparse.ArgumentParser, option: str) -> argparse.Action | None:
    """``command``'s option that ``option`` (as given) names, where it takes a value; else None. Named
    whole (:class:`_CommandParser`: --out is no option, nor --mod --mode)."""
    if not option.startswith("-"):
        return None
    found = _named_exactly(command, option.partition("=")[0])
    action = found.pop() if len(found) == 1 else None
    return action if action is not None and action.nargs != 0 and "=" not in option else None


def _takes_a_value(command: argparse.ArgumentParser, option: str) -> bool:
    """Whether ``option`` (as given) is one of ``command``'s that takes a value."""
    return _taking_a_value(command, option) is not None


def _could_take(command: argparse.ArgumentParser, option: str, word: str) -> bool:
    """Whether ``command``'s ``option`` takes ``word`` as its value: any word for -o, no word for the
    whole number of --threads (its type refuses it), nor for --mode but spine or full (its choices)."""
    action = _taking_a_value(command, option)
    if action is None:
        return False
    try:
        value = action.type(word) if callable(action.type) else word
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False
    return action.choices is None or value in action.choices


def _before_the_command(args: list[str], command: str) -> list[str]:
    """The words given before the command word: all options the top level does not take (it takes
    only --help and --version, which exit), so argparse lists them among the unknown words."""
    at = next((i for i, word in enumerate(args) if word == "--" or not word.startswith("-")), 0)
    return args[:at] if args[at:at + 1] == [command] else []


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    """The long options of ``parser``: a command's, or the top level's."""
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _misplaced(before: list[str], command: str, commands: dict, top: argparse.ArgumentParser) -> str:
    """The top level's "unrecognized arguments: ..." for options given before the command, saying
    where one of the command's options goes (argparse reads a command's options after its name), or
    the top level's option meant (--verison)."""
    import difflib

    hints = []
    for option in dict.fromkeys(w.partition("=")[0] for w in before if w.startswith("-")):
        close = difflib.get_close_matches(option, _long_options(top), n=1, cutoff=0.75)
        if _named_exactly(commands[command], option) or _grouped_flags(commands[command], option):  # (-q, -qq too)
            hints.append(f"{option} goes after the command: xvertfast {command} ... {option}")
        elif begun := _begins(option, _long_options(commands[command])):  # (--over: --overwrite abbreviated)
            hints.append(f"{option}: did you mean {' or '.join(begun)}? {WHOLE}, and go after the command: xvertfast "
                         f"{command} ... {begun[0]}")  # fmt: skip
        elif close:
            hints.append(f"{option}: did you mean {close[0]}?")
    said = f"unrecognized arguments: {' '.join(before)}"
    return f"{said} ({'; '.join(hints)})" if hints else said


def _grouped_flags(command: argparse.ArgumentParser, option: str) -> bool:
    """Whether ``option`` is short flags of ``command`` given as one word (``-qq``: argparse reads it
    as ``-q -q`` after the command; before it, it was refused with no word of where it goes)."""
    letters = option[1:] if len(option) > 2 and option[0] == "-" and option[1] != "-" else ""
    return bool(letters) and all(any(a.nargs == 0 for a in _named_exactly(command, f"-{c}")) for c in letters)


def _unrecognized(extras: list[str], command: str, commands: dict) -> str:
    """argparse's "unrecognized arguments: ..." with, for each unknown option, what was meant (none
    for the words after ``--``, which are no options)."""
    import difflib
    import re

    options_given = extras[: extras.index("--")] if "--" in extras else extras
    # (short ones too: export -q said "unrecognized arguments: -q" alone)
    unknown = [w.partition("=")[0] for w in options_given if w.startswith("--") or re.fullmatch(r"-[A-Za-z]", w)]
    hints = []
    for option in unknown:
        close = difflib.get_close_matches(option, _long_options(commands[command]), n=2, cutoff=0.75)
        elsewhere = [name for name in commands if name != command
                     and any(option in a.option_strings for a in commands[name]._actions)]  # fmt: skip
        if (command, option) in COUNTERPARTS:
            hints.append(f"{command} has no {option}: {COUNTERPARTS[command, option]}")
        elif whole := _whole(option, _long_options(commands[command])):  # (--pre: --precision, --preview)
            hints.append(("" if len(unknown) == 1 else f"{option}: ") + whole)
        elif close:
            hints.append(("" if len(unknown) == 1 else f"{option}: ") + f"did you mean {' or '.join(close)}?")
        elif elsewhere:
            named = ", ".join(elsewhere[:-1]) + " and " + elsewhere[-1] if len(elsewhere) > 1 else elsewhere[0]
            hints.append(f"{option} is an option of {named}, not of {command}")
    said = f"unrecognized arguments: {' '.join(extras)}"
    return f"{said} ({'; '.join(hints)})" if hints else said


class _ThreadsOption(argparse.Action):
    """train's --threads, which says so when given by its old name --workers (enhance's
    --workers means reader threads, a different thing)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == "--workers":
            _print("warning: train --workers is now --threads (torch's CPU threads)", file=sys.stderr)
        setattr(namespace, self.dest, values)


class _TypedOption(argparse.Action):
    """An option that also records that it was typed (``lr_given``, for --lr): a stopped run is
    told to change the --lr its command has, not to add a second."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


class _DefaultsWhereSet(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: ...)" only where there is one to show: not for None, flags, or
    options whose help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if unset or "default" in text:
            return text
        return super()._get_help_string(action)


class _LinesKept(argparse.RawDescriptionHelpFormatter):
    """Wraps each line of an option's help on its own, so that a long help can give its cases
    one a line (enhance --precision: the choices, then the CPU's case, then the GPU's)."""

    def _split_lines(self, text, width):
        wrap = super()._split_lines  # (a comprehension has no zero-argument super())
        return [wrapped for line in text.splitlines() for wrapped in wrap(line, width)]


def _print(*values, file=None) -> bool:
    """print() for the CLI's lines on stdout and stderr (``file``): a write that fails is marked
    with the descriptor it wrote to (:func:`_writing`); a line stderr's full disk cannot take is
    dropped (:func:`_full_stderr`): False then."""
    stream = sys.stdout if file is None else file
    try:
        with _writing(stream):
            print(*values, file=stream)
    except OSError as exc:
        if not _full_stderr(exc, stream):
            raise
        return False
    return True


def _full_stderr(exc: OSError, stream) -> bool:
    """Whether ``exc``, met writing a line to ``stream``, is stderr's disk full (``2> /full/log``):
    such a line is dropped, not raised: a batch job stops as its log is lost
    (:class:`~xvertfast.io.job_folder.JobLog`) and records why in its ledger, and the lines after its
    summary raised a traceback, which could not be written either, in place of its exit code."""
    from xvertfast.io.write import disk_full

    return stream is sys.stderr and disk_full(exc)


@contextlib.contextmanager
def _writing(stream):
    """Marks an OSError raised while the CLI writes to ``stream`` with its descriptor, so that main
    can tell a terminal that closed during a stop (the EIO of a line printed there) from a disk's
    EIO, or a log's on stderr, met alike: only the former is said as the terminal closing."""
    try:
        yield
    except OSError as exc:
        with contextlib.suppress(AttributeError, ValueError, OSError):  # (not a file: a test's capture)
            exc.xvertfast_written_fd = stream.fileno()
        raise


def _say_around_the_bar(text: str) -> None:
    """A job's error or warning line on stderr, on a line of its own: printed plainly, it went
    after the progress bar's text (which ends without a newline)."""
    from tqdm import tqdm

    with _writing(sys.stderr):
        tqdm.write(text, file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each ("warning: <file>: <problem>"), written around the progress bar."""
    from tqdm import tqdm

    text = f"warning: {message}" if issubclass(category, UserWarning) else f"warning ({category.__name__}): {message}"
    stream = file or sys.stderr
    try:
        with _writing(stream):
            tqdm.write(text, file=stream)
    except OSError as exc:
        if not _full_stderr(exc, stream):
            raise


def _silence_stdout() -> None:
    """Points stdout at the null device, so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):  # not a file (a test's capture)
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # (recorded by the jobs that resume: _started_with)
    if argv is None and os.path.basename(sys.argv[0]) == "__main__.py":  # python -m xvertfast (no script on the PATH?)
        args.program = [sys.executable, "-m", "xvertfast"]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from xvertfast.runtime import tune_allocator

    tune_allocator()  # this process is the CLI's: let malloc reuse the network's large buffers
    import warnings

    from xvertfast._text import cli_running

    previous, warnings.showwarning = warnings.showwarning, _show_warning
    terminated, restore_signals, lost_terminal = _stop_on_signals()
    # refusals name --device, not the API's device= (and a setting the command has no option for is not one)
    with cli_running(vars(args)):
        try:
            code = int(args.func(args) or 0)
        except KeyboardInterrupt as exc:  # outside a job's own handling (loading a model, training): no traceback
            code = _say_interrupted(exc, lost_terminal)
        except BrokenPipeError:  # stdout's reader stopped early (`xvertfast info | head`): no traceback
            _silence_stdout()  # (`enhance ... | tee log` hung up: tee died of the signal that stopped the job)
            return 128 + terminated[0] if terminated[0] else 1
        except Exception as exc:  # one a Ctrl-C or SIGTERM caused (came_of_an_interrupt) is an interruption too
            from xvertfast._interrupts import came_of_an_interrupt

            # the terminal closed during the stop (its lines are lost, the stop is not a crash; an EIO of a
            # disk's then is said, on a log that stderr goes to), or an error the interruption caused
            gone = lost_terminal(exc)
            if not (gone or came_of_an_interrupt(exc)):
                raise
            code = _say_interrupted(exc, lost_terminal, the_terminals=_written_to(exc) in gone)
        finally:
            warnings.showwarning = previous  # main() also runs inside other programs (tests, notebooks)
            restore_signals()
    return 128 + terminated[0] if terminated[0] and code == 130 else code


def _say_interrupted(exc: BaseException, lost_terminal, the_terminals: bool = False) -> int:
    """Says on stderr that the command was interrupted (and by what error, if one came of it); 130.
    A terminal that closed since the signal (the write failing, :func:`_stop_on_signals`'s
    ``lost_terminal``), or a pipe whose reader is gone, loses the line: the stop is not turned into a crash.
    ``the_terminals``: ``exc`` is that terminal's own EIO, said as such on a log that stderr goes to,
    not as an OSError a disk's EIO would read alike."""
    from xvertfast._interrupts import then_line

    then = " (then the terminal closed: the lines printed there since are lost)" if the_terminals else then_line(exc)
    try:
        _print(f"\ninterrupted{then}", file=sys.stderr)
    except OSError as error:  # (a pipe to stderr whose reader died of the same SIGHUP: `2> >(tee err.log)`)
        if not (isinstance(error, BrokenPipeError) or lost_terminal(error)):
            raise
    return 130


def _written_to(exc: OSError) -> int | None:
    """The descriptor the CLI was writing to (its prints, its lines around the progress bar) when
    ``exc`` was raised, or None for an error raised elsewhere (a ledger's write, a file read or
    opened, by this module too): an EIO then is a disk's, not the terminal's."""
    return getattr(exc, "xvertfast_written_fd", None)


def _stop_on_signals():
    """SIGTERM (a cluster's scheduler at the time limit or on preemption, `kill`, `docker stop`) and
    SIGHUP (the terminal closed, an SSH session dropped without nohup) stop a command as Ctrl-C does:
    a batch job finishes the outputs in flight and writes its summary and --report, training records
    the stop and keeps its last finished epoch; the exit code is then 128 + the signal (143, 129).
    After each SIGHUP (a repeat too), stdout and stderr where they are a terminal that hung up go to
    the null device: a write there fails (EIO), which turned the stop into a crash. A terminal still
    open (`kill -HUP` sent by hand) keeps them, and shows the stop's summary (:func:`_hung_up`).
    Returns the signal that came (a list of one, 0 for none), a function that puts the earlier
    handlers back (none is replaced outside the main thread, which alone receives signals, nor where
    a signal is ignored, as nohup ignores SIGHUP, or handled outside Python:
    :func:`xvertfast._interrupts.left_alone`), and ``lost_terminal(exc)``: where ``exc`` is an EIO
    met once a terminal closed after the stop began with no SIGHUP to say so (the shell's SIGHUP to
    its jobs as it exits, then the terminal closing), the descriptors of the terminals that hung up,
    then sent to the null device too (empty where it is not: falsy)."""
    from xvertfast._interrupts import STOPPING_SIGNALS, left_alone

    terminated, terminals = [0], _terminals()  # (asked now: a hung-up terminal is no longer said to be one)

    def stop(signum, frame):
        if signum == getattr(signal, "SIGHUP", None):  # (a repeat too: a first one may have found it open)
            _to_the_null_device([fd for fd in terminals if _hung_up(fd)])
        if terminated[0]:  # a repeat while the first one's stop runs: let it finish (SIGKILL does not wait)
            return
        terminated[0] = signum
        raise KeyboardInterrupt

    def lost_terminal(exc: BaseException) -> list[int]:
        if not (terminated[0] and isinstance(exc, OSError) and exc.errno == errno.EIO):
            return []  # (EPIPE, a pipe's reader gone, is BrokenPipeError: main's own clause)
        gone = [fd for fd in terminals if _hung_up(fd, strict=True)]
        _to_the_null_device(gone)
        return gone

    previous = {}
    for sig in STOPPING_SIGNALS:
        if left_alone(sig):
            continue
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread
            break

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return terminated, restore, lost_terminal


def _terminals() -> list[int]:
    """The file descriptors of stdout and stderr that are a terminal."""
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            if os.isatty(stream.fileno()):
                fds.append(stream.fileno())
        except (AttributeError, ValueError, OSError):  # not a file (a test's capture), or closed
            pass
    return fds


def _hung_up(fd: int, strict: bool = False) -> bool:
    """Whether the terminal on ``fd`` has hung up (closed, its SSH session dropped), as poll says
    (POLLHUP, POLLERR) without writing to it. A SIGHUP alone does not say so: one sent by hand
    while the terminal is open sent the stop's summary to the null device. After a SIGHUP, where
    poll cannot tell (no poll on this system, it fails, POLLNVAL: a descriptor poll cannot watch,
    as macOS answers for any terminal), the terminal is taken to be gone, as before. ``strict``
    (no SIGHUP came: an EIO during a stop) takes it to be gone only where poll says so: macOS's
    POLLNVAL for an open terminal would take a disk's EIO for the terminal lost."""
    if not hasattr(select, "poll"):
        return not strict
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    try:
        events = poller.poll(0)
    except OSError:
        return not strict
    gone = select.POLLHUP | select.POLLERR | (0 if strict else select.POLLNVAL)
    return any(mask & gone for _, mask in events)


def _to_the_null_device(fds: list[int]) -> None:
    """Points ``fds`` (those of a terminal that hung up) at the null device; a file or pipe that
    stdout or stderr go to is not among them: a log still gets the stop's lines."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
