"""How an evaluation report was made, said in the report itself.

The scores of a report depend on settings its tables do not show: xvertfast's code, each
XVertNet model's weights and the device and precision it ran in, the baselines' parameters,
the metrics, where the ROIs came from. Those are recorded in the report folder's hidden journal
(:mod:`xvertfast.eval.journal`) so that a rerun resumes; a reader of ``summary.md`` or
``report.html`` (a co-author, a reviewer) never sees it. :func:`run_provenance` gathers them,
as the run recorded them (:func:`scoring_machine`: what scored each image, journalled with it),
and :func:`provenance_record` adds what the report itself decided (the statistics, the images it
holds), for ``provenance.json``; :func:`provenance_markdown` gives them in short, as the last
section of ``summary.md`` (and so of the page, which is drawn from it).
"""

from __future__ import annotations

import collections
import datetime
import json
import math
import os
import re

import numpy as np

from xvertfast._text import count, shell_word
from xvertfast.eval.baselines import BASELINES, baseline_parameters
from xvertfast.eval.protocol import EvalRun, depth_counts, depths_said, method_kind
from xvertfast.eval.stats import _CONFIDENCE, EXACT_MAX_PAIRS, Z_LIMIT
from xvertfast.preprocess.spine import LOWER_LEVEL, UPPER_LEVEL

__all__ = ["PROVENANCE_HEADING", "scoring_machine", "run_provenance", "provenance_record", "provenance_markdown",
           "provenance_json"]

#: The title of summary.md's provenance section (and of the page's).
PROVENANCE_HEADING = "Provenance: how this report was made"


def scoring_machine(built: dict) -> dict:
    """What this run scores on (:func:`~xvertfast.eval.protocol.run_protocol`'s ``machine``, each
    image's journalled with it): torch's CPU threads and the GPU of each method run on one. Read
    here, not when the report is drawn: a run resumed on another machine, or a report written
    from the journal alone, named that machine for every image."""
    import torch

    gpus = {}
    for label, method in built.items():
        enhancer = getattr(method, "enhancer", None)
        if enhancer is not None and enhancer.device.type == "cuda":
            gpus[label] = torch.cuda.get_device_name(enhancer.device)
    return {"threads": torch.get_num_threads(), "gpus": gpus}


def run_provenance(settings: dict, built: dict, rois, started: str, command: str | None, argv: list[str] | None,
                   arguments: dict, program: list[str] | None = None, *, cwd: str | None,
                   rois_file: str | None) -> dict:  # fmt: skip
    """How the report was made, for its provenance block and ``provenance.json`` (the ``given`` of
    :func:`provenance_record`, whose keys :func:`provenance_markdown` reads): the settings
    the journal holds (the version and code digest, the libraries' versions, each XVertNet method's model
    digest, device, precision and backend, the metrics, the ROI source) as the run recorded them, with what they
    leave out: the baselines' parameters, read off the functions that ran (the code digest covers
    them, so the journal need not), the ROI file, the command and the folder this run started in (None
    where it cannot be read: deleted).
    ``cwd`` and ``rois_file`` (the ROI CSV's whole path; None for auto) are read as the run starts:
    by now, hours later, the folder may be gone, and a relative ``rois`` with it.
    (The CPU threads and GPUs are each image's, in the journal: :attr:`EvalRun.ran_on`.)
    The command is ``program`` (what ran xvertfast: the CLI's) then ``argv``, its inputs cut, where
    both are given; else ``command`` as given (a Python caller's own line, or None)."""
    methods = []
    for entry, (label, method) in zip(settings["methods"], built.items()):
        if method_kind(method, label) in BASELINES and (parameters := baseline_parameters(method)):
            entry = {**entry, "parameters": parameters}
        methods.append(entry)
    where = ({"source": "auto", "centre_rows": [UPPER_LEVEL, LOWER_LEVEL]} if settings["rois"] == "auto"
             else {"source": "file", "file": rois_file, "as_given": os.fsdecode(rois)})  # fmt: skip
    if argv is not None:  # a shell glob's thousands of inputs: listed once, in arguments.inputs
        argv = _inputs_cut(list(argv), arguments.get("inputs") or [])
        if program is not None:
            command = _joined([*program, *argv])
    return {"xvertfast": settings["xvertfast"], "code_sha256": settings["code_sha256"],
            "libraries": settings.get("libraries"), "started": started,
            "command": command, "argv": argv, "cwd": cwd,
            "arguments": arguments, "methods": methods, "metrics": settings["metrics"], "rois": where}  # fmt: skip


#: The inputs of a command line that provenance.json's ``command`` and ``argv`` and summary.md
#: show before the rest are counted (``arguments.inputs`` lists them all).
INPUTS_SHOWN = 3
#: What stands for the inputs left out, as one item of ``argv`` (shown unquoted).
_MORE_INPUTS = "... {} more inputs (provenance.json: arguments.inputs)"
#: That item with its count, left unquoted in the shell line.
_MORE_INPUTS_ITEM = re.compile(re.escape(_MORE_INPUTS).replace(r"\{\}", r"\d+"))


def _inputs_cut(argv: list[str], inputs: list[str]) -> list[str]:
    """``argv`` with each run of more than INPUTS_SHOWN + 1 inputs in a row cut to its first
    INPUTS_SHOWN and one item counting the rest: a shell glob of 2,000 files made summary.md's
    command line 44 KB, and provenance.json listed them three times."""
    given, out, run = set(inputs), [], []
    for item in [*argv, None]:
        if item is not None and item in given:
            run.append(item)
            continue
        out += run if len(run) <= INPUTS_SHOWN + 1 else [*run[:INPUTS_SHOWN], _MORE_INPUTS.format(len(run) - INPUTS_SHOWN)]
        run = []
        if item is not None:
            out.append(item)
    return out


def _joined(argv: list[str]) -> str:
    """``argv`` as a line to run the same evaluation again, quoted for the shell of the system that ran it
    (:func:`~xvertfast._text.shell_line`: shlex's ``'C:\\data\\in'`` failed in cmd.exe), the item counting
    inputs left out unquoted."""
    return " ".join(item if _MORE_INPUTS_ITEM.fullmatch(item) else shell_word(item) for item in argv)


def provenance_record(run: EvalRun, tested: str | None, given: dict | None = None) -> dict:
    """``given`` (:func:`run_provenance`: what :func:`~xvertfast.eval.evaluate.evaluate` recorded
    of the run: the journal's settings, the ROI file, the command, ...) with the report's own
    part: when it was written, its statistics (``tested``: the method the others were tested
    against, as the report decided it; None: no test) and the images it holds, with their bit
    depths and what scored them as the journal recorded each. A report written from Python without ``given``
    still says its methods, metrics and statistics."""
    record = dict(given or {})
    record.setdefault("methods", [{"label": method} for method in run.methods])
    record.setdefault("metrics", list(run.metrics))
    record["statistics"] = {
        "outliers": f"values outside mean +/- {Z_LIMIT:g} sample standard deviations (n - 1) of a method's ROIs; "
                    "a method tested against the reference loses the union of both's",
        "z_limit": Z_LIMIT,
        "compared_to": tested,
        "test": "Wilcoxon signed-rank, two-sided, paired by ROI and by image" if tested else None,
        "exact_max_pairs": EXACT_MAX_PAIRS if tested else None,  # beyond: the normal approximation
        "multiple_tests": ("Holm, over the family of the tests paired by image (methods x metrics), raw and after "
                           "outlier removal apart" if tested else None),
        "difference": (f"Hodges-Lehmann estimate of method - {tested} on the image means, with its "
                       "distribution-free interval (the signed-rank test inverted)" if tested else None),
        "confidence": _CONFIDENCE if tested else None,
    }  # fmt: skip
    record["identity_methods"] = list(run.identity)  # (found by run_protocol from the methods that ran)
    stretched = sum(1 for o in run.originals.values() if isinstance(o, dict) and o.get("stretched"))
    record["images"] = {"evaluated": run.images, "failed": len(run.failed), "from_earlier_runs": run.from_journal,
                        "original_bits": {str(bits): n for bits, n in depth_counts(run.originals.values()).items()},
                        "identity_stretched": stretched if run.identity else None}  # (no identity: it stretched none)
    record["ran_on"] = _ran_on_counts(run)
    record["written"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return record


def _ran_on_counts(run: EvalRun) -> dict:
    """What scored the report's images, as the journal recorded each (:attr:`EvalRun.ran_on`):
    how many images each count of torch's CPU threads and each GPU scored (an image a rerun
    added methods to on another machine counts under both), and how many have no record."""
    threads: collections.Counter = collections.Counter()
    gpus: collections.Counter = collections.Counter()
    for ran in run.ran_on.values():
        threads.update(set(ran.get("threads") or []))
        gpus.update(set(ran.get("gpus") or []))
    return {"cpu_threads": {str(n): k for n, k in sorted(threads.items())}, "gpus": dict(sorted(gpus.items())),
            "images_unrecorded": max(run.images - len(run.ran_on), 0)}  # fmt: skip


def _json_ready(value):
    """``value`` as provenance.json holds it: JSON's own types kept (a path as its text, a numpy
    number as Python's); a float that is not finite as null (``NaN`` is not JSON: a strict reader
    refused the file); anything else as its text where that names no memory address (a
    torch.device's "cuda:0"), else by its type (and name): an address changes from run to run
    and tells a reader nothing."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    if isinstance(value, (os.PathLike, bytes)):
        return os.fsdecode(value)
    if isinstance(value, dict):
        return {(key if isinstance(key, str) else str(_json_ready(key))): _json_ready(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_json_ready(v) for v in value), key=str)
    text = str(value)
    if not re.search(r"0x[0-9a-fA-F]{6,}", text):
        return text
    name = getattr(value, "__qualname__", None)
    return f"<{type(value).__name__}{f' {name}' if isinstance(name, str) else ''}>"


def provenance_json(record: dict) -> str:
    """:func:`provenance_record` as ``provenance.json``'s text: valid JSON (no NaN), ASCII (a path
    that is not UTF-8 as its escapes), the same values giving the same text."""
    return json.dumps(_json_ready(record), indent=2, allow_nan=False) + "\n"


def _value(value) -> str:
    """A parameter as the block gives it: numbers short (0.0078125, 2), a list's items with /."""
    if isinstance(value, (list, tuple)):
        return "/".join(_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _method_line(method: dict, identity: list[str]) -> str:
    """One method of the block: what it is and what its scores depend on (the model's digest, the
    device and precision it ran in; a baseline's parameters; another tool's folder; for one of the
    ``identity`` labels, the originals' conversion)."""
    said = f"`{method.get('spec', method.get('label'))}`"
    if "model" in method:  # (the GPU's name: the images' line, each image's as journalled)
        runs = method.get("runs", {})
        where = runs.get("device", "?")
        asked = [f"{k} {_value(v)}" for k, v in method.items() if k not in ("spec", "label", "model", "runs")]
        return (f"{said}: model sha256 `{method['model']}`, run on {where} in {runs.get('precision', '?')} "
                f"({runs.get('backend', '?')} backend{''.join(', ' + a for a in asked)})")  # fmt: skip
    if "folder" in method:
        stored = ", stored bone dark and scored inverted" if method.get("inverted") else ""
        return f"{said}: another tool's outputs{stored} (the folder's full path: provenance.json)"
    if method.get("parameters"):
        return f"{said}: " + ", ".join(f"{k} {_value(v)}" for k, v in method["parameters"].items())
    if method.get("label") in identity:  # its conversion, which scores differ by
        return f"{said}: the original, an 8-bit one as stored, a deeper or float one min-max stretched over each ROI"
    return said


def provenance_markdown(record: dict) -> str:
    """:func:`provenance_record` in short, as summary.md's last section (a blank line, then its
    heading and a list). Shared with the tables, it gives the command and paths as typed, never
    an absolute path the user did not type (a home folder, a site's or cohort's folder names):
    those are in provenance.json alone."""
    lines = ["", f"## {PROVENANCE_HEADING}", ""]
    code = f" (code sha256 `{record['code_sha256']}`)" if record.get("code_sha256") else ""
    when = f"this run started {record['started']}, " if record.get("started") else ""
    lines.append(f"- xvertfast {record.get('xvertfast', '(version not recorded)')}{code}; {when}report written "
                 f"{record['written']}")  # fmt: skip
    if record.get("libraries"):
        lines.append(f"- {_libraries_said(record['libraries'])}")
    if record.get("argv") is not None:  # as typed, after the program (never the interpreter's path)
        lines.append(f"- this run's command: `{_joined(['xvertfast', *record['argv']])}`")
    elif record.get("command"):
        lines.append(f"- this run's command: `{record['command']}`")
    elif "arguments" in record:
        lines.append("- called from Python (no command line): its arguments are in provenance.json")
    lines += [f"- method {_method_line(m, record['identity_methods'])}" for m in record["methods"]]
    lines.append(f"- metrics: {', '.join(record['metrics'])}")
    rois = record.get("rois")
    if isinstance(rois, dict) and rois.get("source") == "auto":
        upper, lower = rois["centre_rows"]
        lines.append(f"- ROIs: found automatically, their centres at {upper:g} and {lower:g} of the image height on "
                     "the spine's centre line, whose column is searched in each image")  # fmt: skip
    elif isinstance(rois, dict) and rois.get("source") == "file":
        lines.append(f"- ROIs: centres given by hand in {rois.get('as_given', rois['file'])}")
    stats = record["statistics"]
    tests = "; no significance test"
    if stats["compared_to"]:
        tests = (f"; Wilcoxon signed-rank tests against {stats['compared_to']}, paired by ROI and by image (exact p "
                 f"up to {stats['exact_max_pairs']} pairs); by image, p Holm-adjusted over the tests paired by image "
                 f"(methods × metrics) and the Hodges–Lehmann difference of the image means with its "
                 f"{stats['confidence']:.0%} interval")  # fmt: skip
    lines.append(f"- outlier removal: {stats['outliers']}{tests}")
    images = record["images"]
    earlier = (f" ({images['from_earlier_runs']} of them scored, wholly or but for methods or metrics added, by an "
               "earlier run into this folder)" if images["from_earlier_runs"] else "")  # fmt: skip
    depths = depths_said(images["original_bits"])
    lines.append(f"- images: {images['evaluated']} evaluated{earlier}, {images['failed']} failed"
                 + (f"; bit depths of the originals ({depths})" if depths else ""))  # fmt: skip
    ran = _ran_on_said(record.get("ran_on") or {})
    if ran:
        lines.append(f"- scored with {ran}")
    lines += ["- every value, with the call's arguments and full paths: provenance.json", ""]
    return "\n".join(lines)


def _libraries_said(libraries: dict) -> str:
    """The libraries' versions that computed the scores, those not installed after them: "numpy
    2.1.3, scipy 1.14.1, ...; imagecodecs not installed"."""
    installed = [f"{name} {version}" for name, version in libraries.items() if version is not None]
    absent = [name for name, version in libraries.items() if version is None]
    return (f"libraries that compute the scores: {', '.join(installed) or 'none recorded'}"
            + (f"; {', '.join(absent)} not installed" if absent else ""))  # fmt: skip


def _ran_on_said(ran: dict) -> str:
    """provenance.json's ``ran_on`` in short: "torch's CPU threads 16; GPU NVIDIA H100", each
    value with its images where the images differ; empty where none is recorded."""

    def values(counted: dict) -> str:
        if len(counted) == 1:
            return str(next(iter(counted)))
        return ", ".join(f"{value} ({count(n, 'image')})" for value, n in counted.items())

    said = []
    if ran.get("cpu_threads"):
        said.append(f"torch's CPU threads {values(ran['cpu_threads'])}")
    if ran.get("gpus"):
        said.append(f"GPU {values(ran['gpus'])}")
    if said and ran.get("images_unrecorded"):
        said.append(f"{count(ran['images_unrecorded'], 'image')} without a record of it")
    return "; ".join(said)
