"""``xvertfast evaluate``: the protocol and the report in one call."""

from __future__ import annotations

import datetime
import os

from xvertfast._checks import whole_number
from xvertfast._paths import PATH_TYPES, working_folder
from xvertfast._text import asked, option_said, part_percent
from xvertfast._version import __version__, backend_library_versions, code_digest, library_versions
from xvertfast.eval._report_files import check_grid_folder
from xvertfast.eval.baselines import XVERTNET_METHODS, get_method, parse_method
from xvertfast.eval.journal import JOURNAL_FILE, Journal
from xvertfast.eval.protocol import DEFAULT_METRICS, EvalRun, check_metrics, load_roi_centres, method_kind, run_protocol
from xvertfast.eval.provenance import run_provenance, scoring_machine
from xvertfast.eval.report import write_report
from xvertfast.io.files import InputLists, NothingFound, discover, input_paths
from xvertfast.model.persistence import fingerprint
from xvertfast.preprocess.centres import centres_of_inputs

__all__ = ["evaluate", "check_report_folder", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("identity", "clahe", "farbman", "xvertnet")


def _names(value, argument: str) -> list:
    """A list of names, where one string is read as the command line reads it, comma-separated:
    iterated, ``methods="clahe"`` was the methods 'c', 'l', ... ("unknown method 'c'"). Any other
    iterable is read once (a generator checked, then run, was none at the run). ValueError naming
    ``argument`` where it holds something else than names (None, a number: Python's own errors)."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    try:
        names = list(value)
    except TypeError:
        names = [value]
    if not all(isinstance(name, str) for name in names):  # (None: list(None) fails, so [None])
        raise ValueError(f"evaluate: {argument} must be names (a list of them, or one string of them comma-separated), "
                         f"got {value!r}")  # fmt: skip
    return names


def evaluate(inputs: list[str], out_dir: str, methods=DEFAULT_METHODS, metrics=DEFAULT_METRICS,
             rois: str = "auto", compare_to: str | None = None, pictures: int = 6, progress: bool = True,
             log=print, restart: bool = False, command: str | None = None, argv: list[str] | None = None,
             program: list[str] | None = None, **enhancer_kwargs) -> tuple[EvalRun, dict[str, str]]:  # fmt: skip
    """Scores ``methods`` on the spine ROIs of ``inputs`` and writes the report into ``out_dir``.

    Args:
        methods: a list (or one comma-separated string, as ``--methods`` takes them) of
            ``[LABEL:]METHOD`` with METHOD from identity, clahe, farbman,
            xvertnet[=MODEL_DIR], xvertnet_original_brightness[=MODEL_DIR], outputs=DIR
            (another tool's outputs), inverted_outputs=DIR (those of a tool storing them bone
            dark, each scored inverted: said in the report's notes); see
            :func:`xvertfast.eval.baselines.get_method`.
        metrics: names (a list, or one comma-separated string) from entropy, tenengrad, lpc_si,
            tmqi, brisque, tmqi_paper_compat.
        rois: ``auto`` (find the spine) or a CSV of hand-placed centres
            (see :func:`xvertfast.preprocess.centres.load_roi_centres`); ValueError otherwise.
        compare_to: the method (label) the others are tested against; default the first
            xvertnet method, else the first xvertnet_original_brightness, else identity.
        pictures: images shown side by side in the report.
        restart: ignore the images a previous run with ``out_dir`` scored (by default a rerun
            with the same settings takes them from ``out_dir``'s journal and scores the rest:
            :mod:`xvertfast.eval.journal`).
        program, argv: the words that ran xvertfast (``["xvertfast"]``, or the interpreter's path,
            ``-m``, ``xvertfast``) and the arguments given after them: the CLI gives them for the
            report's provenance, ``provenance.json`` holding the command line they make (with the
            folder the run started in and this call's arguments), summary.md and report.html
            ``argv``, as ``xvertfast ...``, with no path the user did not type. In both, a run of
            more than 4 inputs in a row shows its first 3 and counts the rest (provenance.INPUTS_SHOWN:
            3; a shell glob gives thousands): ``provenance.json``'s ``arguments.inputs`` lists every one.
        command: without ``program``, the command line ``provenance.json`` records, as given.
        enhancer_kwargs: device, backend, batch_size... for xvertnet.

    A Ctrl-C while the images are scored raises KeyboardInterrupt (those scored are journalled);
    once they all are, while the report is written, :class:`~xvertfast.eval.report.ReportInterrupted`.
    """
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    cwd = working_folder()  # (provenance's: read now, as the folder may be deleted while the images are scored)
    if not _is_a_path(out_dir):  # ('' was the current folder, refused as a folder of outputs holding the inputs)
        raise ValueError(f"evaluate: out_dir must be the report folder's path, got {out_dir!r}")
    methods, metrics, inputs = _names(methods, "methods"), _names(metrics, "metrics"), input_paths(inputs)
    arguments = {"inputs": inputs, "methods": methods, "metrics": metrics, "rois": rois, "compare_to": compare_to,
                 "pictures": pictures, "restart": restart, **enhancer_kwargs}  # as read (an iterator once)  # fmt: skip
    if not methods:
        raise ValueError("no methods to evaluate")
    check_metrics(metrics)  # before the report folder is touched: a typo must not leave a journal
    # (--pictures is checked by the parser; from Python None failed inside the run, a journal left behind)
    pictures = whole_number(pictures, "pictures", "evaluate", low=0, meaning="images shown side by side, 0 for none")
    networks: dict = {}  # one network per model: xvertnet and xvertnet_original_brightness share its runs
    pairs = [get_method(spec, networks, **enhancer_kwargs) for spec in methods]
    labels = [label for label, _ in pairs]
    if clash := next((label for label in labels if labels.count(label) > 1), None):
        named = ", ".join(spec for spec, label in zip(methods, labels) if label == clash)
        raise ValueError(f"{named} would all be reported as {clash!r}: each method needs a label of its own "
                         "(LABEL:METHOD, e.g. mine:xvertnet=runs/mine/model)")  # fmt: skip
    built = dict(pairs)
    if compare_to is None:  # the first xvertnet method in --methods order, whatever its label; else the first
        # xvertnet_original_brightness; else identity
        kinds = {label: method_kind(method, label) for label, method in built.items()}
        candidates = [label for kind in [*XVERTNET_METHODS, "identity"] for label in built if kinds[label] == kind]
        compare_to = candidates[0] if candidates else None
    elif compare_to not in built:
        raise ValueError(f"{asked('compare_to', compare_to)} is not among the methods ({', '.join(built)})")
    _require_packages(built)  # before hours of scoring, not when the report is drawn
    uncovered = _rois_left_original(methods, built)
    if rois != "auto" and not _is_a_path(rois):  # ('' was 'ROI centres file : No such file')
        raise ValueError(f"evaluate: rois must be 'auto' or the path of a ROI centres CSV file, got {rois!r}")
    centres = None if rois == "auto" else load_roi_centres(rois)
    rois_file = None if rois == "auto" else os.path.abspath(rois)  # (read: its folder was there)
    _refuse_a_file(out_dir)  # (an input as REPORT_DIR: not 'a folder of outputs')
    # neither the report nor another tool's outputs are inputs (both may sit inside the input folder)
    exclude = [out_dir, *(m.folder for m in built.values() if getattr(m, "folder", None))]
    lists = InputLists()  # (read once: the message of a list that names nothing says so)
    # an input folder that is one of them fails here, before the journal
    files = discover(inputs, exclude=exclude, lists=lists)
    if not files:
        raise NothingFound(inputs, lists=lists)
    unused: list[str] = []  # a row naming two inputs, or an input named twice: said before the folder is made
    given = centres_of_inputs(centres, [f.path for f in files], unused) if centres is not None else None
    check_report_folder(out_dir)
    if pictures:  # (a grid/ in the way was found when the report was put in place, after hours of scoring)
        check_grid_folder(out_dir)
    idle = _settings_unused(built, enhancer_kwargs)
    warned = [*uncovered, *([idle] if idle else [])]  # the run's own notes, not an image's
    for note in warned:  # after the refusals, before the scoring (hours); kept in the report's notes
        log(f"warning: {note}")
    inverted = _inverted_outputs_said(built)
    for note in inverted:
        log(f"note: {note}")
    journal = Journal(out_dir, _settings(methods, built, metrics, centres, enhancer_kwargs), restart)
    try:  # the report too under the journal's lock: no other evaluation writes into the folder meanwhile
        run = run_protocol(inputs, built, list(metrics), centres, pictures=pictures, progress=progress, log=log,
                           journal=journal, files=files, given=given, unused=unused,
                           machine=scoring_machine(built))  # fmt: skip
        run.notes[:0] = [*warned, *inverted]  # first: the images' notes may be thousands
        provenance = run_provenance(journal.settings, built, rois, started, command, argv, arguments, program,
                                    cwd=cwd, rois_file=rois_file)
        # (cut short: ReportInterrupted, every image scored); the lock held, a killed run's leftovers go first
        paths = write_report(run, out_dir, compare_to, remove_unfinished=True, provenance=provenance,
                             call="evaluate()")
    finally:
        journal.close()
    return run, paths


def _is_a_path(value) -> bool:
    """Whether ``value`` can name a file or folder: a str, bytes or os.PathLike path, not empty.
    None raised os.stat's or os.fspath's TypeError from deep in the run, and a number was taken
    for a file descriptor (reading it closed it); '' is the current folder or no file at all."""
    return isinstance(value, PATH_TYPES) and bool(os.fspath(value))


def _rois_left_original(specs, built: dict) -> list[str]:
    """A warning for each XVertNet method whose spine tiles leave part of the evaluation ROIs
    original (:func:`~xvertfast.infer.enhancer.partial_roi_coverage`, at the centres find_spine
    places): a model trained at --roi-size 128 enhances 6% of them, and scored like identity
    (entropy 6.695 against 6.718) without a word. In the caller's words (``roi_size=128`` from
    Python, as enhance_files says it: evaluate's Python callers were told of --roi-size)."""
    from xvertfast.infer.enhancer import partial_roi_coverage

    notes = []
    for spec, (label, method) in zip(specs, built.items()):
        enhancer = getattr(method, "enhancer", None)
        share = None if enhancer is None else partial_roi_coverage(enhancer)
        if share is not None:
            model = parse_method(spec)[2] or "default"
            notes.append(f"method {label} (model {model}) was trained at {asked('roi_size', enhancer.tile)}: its "
                         f"spine tiles fill {part_percent(share)} of the 512x290 evaluation ROIs' pixels with the "
                         "network's output (at the default centres; the rest is the original or blended with it), so "
                         f"its scores are {'mostly' if share < 0.5 else 'partly'} the original's; evaluate a model "
                         f"trained at {asked('roi_size', 512)} (the default)")  # fmt: skip
    return notes


def _settings_unused(built: dict, enhancer_kwargs: dict) -> str | None:
    """What to say where the Enhancer's settings are given (not auto: the CLI's defaults) and no
    method runs one: --device cuda with identity, clahe and farbman ran on the CPU without a word,
    the report's command line giving it as if it had acted. The settings are named in the caller's
    words (``--device cuda`` from the CLI, ``device='cuda'`` from Python: :func:`~xvertfast._text.asked`)."""
    given = {name: value for name, value in enhancer_kwargs.items() if value is not None and value != "auto"}
    if not given or any(getattr(method, "enhancer", None) is not None for method in built.values()):
        return None
    said = " and ".join(asked(name, value) for name, value in given.items())
    return (f"{said} {'are settings' if len(given) > 1 else 'is a setting'} of the xvertnet methods, and none is "
            f"evaluated: {'they are' if len(given) > 1 else 'it is'} not used ({', '.join(built)})")  # fmt: skip


def _inverted_outputs_said(built: dict) -> list[str]:
    """A note for each method reading another tool's outputs inverted (``inverted_outputs=DIR``): its
    scores are of images this run turned over, which the report says beside them."""
    return [f"method {label} (inverted_outputs={method.folder}) scores each output inverted, 1 - its value on its "
            "format's scale: its tool stores bone dark; an output that looks inverted so fails its image"
            for label, method in built.items() if getattr(method, "inverted", False)]  # fmt: skip


def _require_packages(built: dict) -> None:
    """ImportError naming the ``eval`` extra where a package the run needs is missing:
    matplotlib draws the report, scikit-image runs clahe."""
    needed = {"matplotlib": "the report's figures"}
    clahes = [label for label, method in built.items() if method_kind(method, label) == "clahe"]
    if clahes:
        needed["skimage"] = f"method {clahes[0]}"
    missing = []
    for module, what in needed.items():
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} (for {what})")
    if missing:
        raise ImportError(f"evaluate needs {' and '.join(missing)}, not installed: pip install 'xvertfast[eval]'")


def _refuse_a_file(out_dir: str) -> None:
    """Refuses a file as the report folder (an image given as REPORT_DIR): said as such, before the
    search, which would say it is a folder of outputs given as an input."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"report folder {out_dir} is a file: give the report a folder "
                         f"({option_said('-o', 'made where missing')})")  # fmt: skip


def check_report_folder(out_dir: str) -> None:
    """Refuses a report folder evaluate would refuse, for a caller (the demo) to say so before its
    own work: the report goes into a new or empty folder, or one an evaluation wrote (its journal
    there), not a file; its files (summary.md, report.html, ...) would replace others' of those names."""
    _refuse_a_file(out_dir)
    if not os.path.exists(out_dir):
        return
    clutter = {"Thumbs.db", "desktop.ini"}  # and dot files (.DS_Store): what file browsers leave in a folder
    files = [name for name in os.listdir(out_dir) if not name.startswith(".") and name not in clutter]
    if files and not os.path.exists(os.path.join(out_dir, JOURNAL_FILE)):
        raise ValueError(f"{out_dir} holds files and no evaluation (no {JOURNAL_FILE}): the report would replace "
                         "files of its names there; give it a new or empty folder")  # fmt: skip


def _settings(specs, built: dict, metrics, centres: dict | None, enhancer_kwargs: dict) -> dict:
    """What the scores depend on: a rerun resumes only where these are the same. The ROI file's
    centres are not among them: each image's are journalled with it, so a rerun with one row
    edited scores that image again and takes the others from the journal."""
    methods = []  # each with the label its rows carry: a rerun that adds or drops methods keeps the others' rows
    backends = []  # onnxruntime's, TensorRT's, Triton's version: they compute the network's outputs, as torch's does
    for spec, (label, method) in zip(specs, built.items()):
        enhancer, folder = getattr(method, "enhancer", None), getattr(method, "folder", None)
        if enhancer is not None:  # what it runs on, resolved ("auto" is bf16 on a GPU, fp32 on the CPU), not as asked
            backend = enhancer.backend.name  # built first: its precision may differ from the planned one
            if backend != "compile" or enhancer.device.type == "cuda":  # (compile on the CPU runs C++, no Triton)
                backends.append(backend)
            runs = {"device": enhancer.device.type, "precision": str(enhancer.dtype).replace("torch.", ""),
                    "backend": backend}  # fmt: skip
            others = {k: v for k, v in enhancer_kwargs.items() if k not in ("device", "precision", "backend")}
            methods.append({"spec": spec, "label": label, "model": fingerprint(enhancer.model), **others, "runs": runs})
        else:  # another tool's outputs: their folder wherever the run starts (each file's state is journalled)
            methods.append({"spec": spec, "label": label, **({"folder": os.path.abspath(folder)} if folder else {}),
                            **({"inverted": True} if getattr(method, "inverted", False) else {})})  # fmt: skip
    # the code too: a development install changes the metrics' code under one version; and the libraries' versions
    libraries = {**library_versions(), **backend_library_versions(backends)}
    return {"xvertfast": __version__, "code_sha256": code_digest(), "libraries": libraries,
            "methods": methods, "metrics": list(metrics),
            "rois": "auto" if centres is None else "file"}  # each image's centres: in its journal entry
