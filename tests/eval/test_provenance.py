"""The evaluation report says how it was made, and what its identity row is.

A user audit found the xvertfast version, the model's digest, the device and precision, the
baselines' parameters, the ROI source, the metrics and the command only in the hidden journal:
summary.md, summary.csv and report.html held none of them, so a table pasted into a paper could
not be traced to its settings. summary.md and report.html now end with a provenance block, and
``provenance.json`` beside them holds every value, as the run used it (the CSVs stay one table
each). And 'identity' scores an original deeper than 8 bits min-max stretched over each ROI, an
8-bit one as stored: the report says so where it happened, and that a mixed archive mixes both.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.eval.test_evaluate import an_image_and_its_roi_file, check_report, chest_like, tiny_model_dir
from xvertfast._version import __version__, code_digest
from xvertfast.cli import main
from xvertfast.eval.baselines import CLAHE_CLIP, CLAHE_TILES, FARBMAN_ALPHA, FARBMAN_GAINS, FARBMAN_LAMBDAS
from xvertfast.eval.baselines import identity
from xvertfast.eval.evaluate import evaluate
from xvertfast.eval.journal import JOURNAL_FILE, Journal
from xvertfast.eval.protocol import EvalRun, _stretched_originals_note, run_protocol
from xvertfast.eval.provenance import PROVENANCE_HEADING
from xvertfast.eval.report import REPORT_FILES, write_report
from xvertfast.model import load_model
from xvertfast.model.persistence import fingerprint


def block(out) -> str:
    """summary.md's provenance block (its last section)."""
    md = (out / "summary.md").read_text()
    assert md.count(f"## {PROVENANCE_HEADING}") == 1
    return md.split(f"## {PROVENANCE_HEADING}")[1]


def images(folder, seed, n=2):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(chest_like(seed + i)).save(folder / f"img{i}.png")
    return folder


def test_the_report_names_the_version_model_digest_baseline_parameters_and_roi_source(tmp_path, seed):
    model = tiny_model_dir(tmp_path, seed)
    src, out = images(tmp_path / "in", seed), tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,clahe,farbman,mine:xvertnet={model}",
                 "--metrics", "entropy,tenengrad", "--device", "cpu", "--pictures", "1", "-q"]) == 0  # fmt: skip
    digest = fingerprint(load_model(str(model)))
    said = block(out)
    assert f"xvertfast {__version__} (code sha256 `{code_digest()}`)" in said
    assert f"- method `mine:xvertnet={model}`: model sha256 `{digest}`, run on cpu in float32 (torch backend" in said
    assert f"- method `clahe`: tiles {CLAHE_TILES}, clip {CLAHE_CLIP:g}\n" in said  # 8, 0.0078125 (2/256)
    assert "- method `farbman`: lambdas 0.125/0.5/2, alpha 1.2, gains 2/1.6/1.3\n" in said
    assert "- ROIs: found automatically, their centres at 0.3 and 0.58 of the image height" in said
    assert "- metrics: entropy, tenengrad\n" in said and "Wilcoxon signed-rank tests against mine" in said
    assert f"- this run's command: `xvertfast evaluate {src} -o {out} --methods" in said
    assert "- images: 2 evaluated, 0 failed; bit depths of the originals (8-bit: 2)\n" in said
    assert f"- scored with torch's CPU threads {torch.get_num_threads()}\n" in said

    record = json.loads((out / "provenance.json").read_text())
    with open(out / JOURNAL_FILE) as f:
        journalled = json.loads(f.readline())["settings"]  # what the run recorded: the values come from there
    assert record["xvertfast"] == journalled["xvertfast"] == __version__
    assert record["code_sha256"] == journalled["code_sha256"]
    methods = {m["label"]: m for m in record["methods"]}
    assert methods["mine"]["model"] == journalled["methods"][3]["model"] == digest
    assert methods["mine"]["runs"] == {"device": "cpu", "precision": "float32", "backend": "torch"}
    assert methods["clahe"]["parameters"] == {"tiles": CLAHE_TILES, "clip": CLAHE_CLIP}
    assert methods["farbman"]["parameters"] == {"lambdas": list(FARBMAN_LAMBDAS), "alpha": FARBMAN_ALPHA,
                                                "gains": list(FARBMAN_GAINS)}  # fmt: skip
    assert record["rois"] == {"source": "auto", "centre_rows": [0.3, 0.58]}
    assert record["metrics"] == ["entropy", "tenengrad"]
    assert record["statistics"]["z_limit"] == 1.96 and record["statistics"]["compared_to"] == "mine"
    assert record["arguments"]["device"] == "cpu" and record["arguments"]["pictures"] == 1
    assert record["images"] == {"evaluated": 2, "failed": 0, "from_earlier_runs": 0, "original_bits": {"8": 2},
                                "identity_stretched": 0}  # fmt: skip
    assert record["ran_on"] == {"cpu_threads": {str(torch.get_num_threads()): 2}, "gpus": {}, "images_unrecorded": 0}
    assert record["cwd"] == os.getcwd() and record["argv"][:2] == ["evaluate", str(src)]

    page = check_report(out)  # (every link resolves: provenance.json among them)
    assert f"<h2>{PROVENANCE_HEADING}</h2>" in page and f"<code>{digest}</code>" in page
    assert "href='provenance.json'" in page
    # the tables stay one table each: a header row and one row per (method, metric)
    with open(out / "summary.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["method", "metric"] and len(rows) == 1 + 4 * 2
    assert REPORT_FILES.index("provenance.json") < REPORT_FILES.index("report.html")  # the page still last


def test_the_report_names_the_roi_file_it_was_scored_at(tmp_path, seed):
    src, rois = an_image_and_its_roi_file(tmp_path, seed)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "--pictures", "0", "-q"]) == 0  # fmt: skip
    assert f"- ROIs: centres given by hand in {rois}\n" in block(out)
    assert json.loads((out / "provenance.json").read_text())["rois"] == {"source": "file", "file": str(rois),
                                                                        "as_given": str(rois)}  # fmt: skip


def test_the_shared_report_gives_paths_as_typed_and_provenance_json_the_full_ones(tmp_path, seed, monkeypatch):
    """summary.md and report.html are what a user shares: an absolute path there (a home folder,
    a site's or cohort's folder names, the interpreter's path) is one the user did not type. Run
    as ``python -m xvertfast`` from the folder, with relative inputs, --rois and outputs=DIR."""
    (tmp_path / "in").mkdir()
    (tmp_path / "theirs").mkdir()
    Image.fromarray(chest_like(seed)).save(tmp_path / "in" / "a.png")
    Image.fromarray(chest_like(seed + 1)).save(tmp_path / "theirs" / "a.png")  # another tool's output of a.png
    (tmp_path / "rois.csv").write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,150,120,260,280\n")
    monkeypatch.chdir(tmp_path)
    typed = ["evaluate", "in", "-o", "r", "--rois", "rois.csv", "--methods", "identity,vendor:outputs=theirs",
             "--metrics", "entropy", "--pictures", "1", "-q"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "xvertfast" / "__main__.py"), *typed])
    assert main() == 0
    said = block(tmp_path / "r")
    assert f"- this run's command: `xvertfast {' '.join(typed)}`\n" in said
    assert "- ROIs: centres given by hand in rois.csv\n" in said
    assert "- method `vendor:outputs=theirs`: another tool's outputs (the folder's full path: provenance.json)" in said
    for name in ("summary.md", "report.html"):
        text = (tmp_path / "r" / name).read_text()
        assert str(tmp_path) not in text and sys.executable not in text, name
    record = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert record["cwd"] == str(tmp_path) and record["argv"] == typed
    assert record["command"].startswith(f"{sys.executable} -m xvertfast evaluate in -o r")
    assert record["rois"] == {"source": "file", "file": str(tmp_path / "rois.csv"), "as_given": "rois.csv"}
    assert {m["label"]: m.get("folder") for m in record["methods"]}["vendor"] == str(tmp_path / "theirs")


def test_provenance_json_is_strict_json_without_memory_addresses(tmp_path, seed):
    """The call's arguments (``**enhancer_kwargs`` as given) went into provenance.json through
    ``default=str``: an object as its repr with a memory address, NaN written bare, which a
    strict JSON reader refuses."""
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)

    class Tuning:  # an object of the caller's, with object's repr: "<...Tuning object at 0x7f...>"
        pass

    evaluate([str(src)], str(tmp_path / "r"), "identity", "entropy", pictures=0, progress=False,
             log=lambda line: None, tuning=Tuning(), scale=float("nan"), limit=float("inf"), batch=np.int64(3),
             where=torch.device("cpu"), folder=pathlib.Path("models") / "m")  # fmt: skip
    text = (tmp_path / "r" / "provenance.json").read_text()

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    arguments = json.loads(text, parse_constant=refuse)["arguments"]  # (NaN, Infinity: not JSON)
    assert "0x" not in text
    assert arguments["tuning"] == "<Tuning>" and arguments["scale"] is None and arguments["limit"] is None
    assert arguments["batch"] == 3 and arguments["where"] == "cpu" and arguments["folder"] == "models/m"


def test_a_report_written_from_python_says_what_it_knows(tmp_path):
    run = EvalRun(["identity", "clahe"], ["entropy"], images=1)
    run.rows = [{"file": "a.png", "roi": roi, "method": m, "entropy": 5.0 + k} for k, m in enumerate(run.methods)
                for roi in ("upper", "lower")]  # fmt: skip
    write_report(run, str(tmp_path / "r"), "identity")
    record = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert record["methods"] == [{"label": "identity"}, {"label": "clahe"}] and record["metrics"] == ["entropy"]
    assert record["statistics"]["compared_to"] == "identity" and "written" in record
    assert "- method `clahe`\n" in block(tmp_path / "r")


def deep(v: np.ndarray) -> np.ndarray:
    """The 8-bit picture ``v`` as a 16-bit one (0..255 -> 0..65535): the same image, deeper."""
    return v.astype(np.uint16) * 257


def scores(run, method: str) -> list[float]:
    return [r["tenengrad"] for r in run.rows if r["method"] == method]


def test_identity_of_originals_deeper_than_8_bits_is_noted_and_a_mixed_archive_said_mixed(tmp_path, seed):
    picture = chest_like(seed)
    folders = {name: tmp_path / name for name in ("eight", "sixteen", "mixed")}
    for folder in folders.values():
        folder.mkdir()
    Image.fromarray(picture).save(folders["eight"] / "a.png")
    Image.fromarray(deep(picture)).save(folders["sixteen"] / "a.png")
    Image.fromarray(picture).save(folders["mixed"] / "a.png")
    Image.fromarray(deep(chest_like(seed + 1))).save(folders["mixed"] / "b.png")
    runs, said = {}, {}
    for name, folder in folders.items():
        log = []
        runs[name], _ = evaluate([str(folder)], str(tmp_path / f"r_{name}"), "identity,clahe", "tenengrad",
                                 pictures=0, progress=False, log=log.append)  # fmt: skip
        said[name] = [n for n in runs[name].notes if "stretched" in n]
        assert not [line for line in log if "stretched" in line]  # in the summary the command prints: once
    # what the audit saw: identity's scores move with the depth alone, the methods' do not
    assert scores(runs["eight"], "clahe") == pytest.approx(scores(runs["sixteen"], "clahe"), rel=1e-9)
    eight, sixteen = scores(runs["eight"], "identity"), scores(runs["sixteen"], "identity")
    assert all(b > 1.2 * a for a, b in zip(eight, sixteen))
    assert said["eight"] == []
    # what it means said in the note itself: it sent the reader to docs/guide/evaluation.md, not in a pip install
    assert said["sixteen"] == [
        "identity: every original (16-bit: 1) is deeper than 8 bits or not stored as 8-bit integers, so identity "
        "scored its ROIs min-max stretched to 0..255 over each ROI (a per-ROI auto-window) rather than as stored: "
        "not the scores the same images saved at 8 bits give (the other methods' scores do not move with it, their "
        "outputs taken to 8 bits as round(255 x); for an identity row comparable across images and runs, evaluate "
        "originals of one depth)"]  # fmt: skip
    mixed = ("identity: 1 of the 2 originals (16-bit: 1) was scored min-max stretched to 0..255 over each ROI (a "
             "per-ROI auto-window) rather than as stored, the other 1 (8-bit: 1) as stored: identity's row mixes two "
             "conversions to 8 bits")  # fmt: skip
    assert len(said["mixed"]) == 1 and said["mixed"][0].startswith(mixed)
    assert f"- {said['mixed'][0]}\n" in (tmp_path / "r_mixed" / "summary.md").read_text()
    assert "bit depths of the originals (16-bit: 1, 8-bit: 1)" in block(tmp_path / "r_mixed")
    # a rerun takes both images from the journal, which recorded their depths: the same note
    again, _ = evaluate([str(folders["mixed"])], str(tmp_path / "r_mixed"), "identity,clahe", "tenengrad",
                        pictures=0, progress=False, log=lambda line: None)  # fmt: skip
    assert [n for n in again.notes if "stretched" in n] == said["mixed"] and again.from_journal == 2
    assert "(2 of them scored, wholly or but for methods or metrics added, by an earlier run" in block(
        tmp_path / "r_mixed")
    images = json.loads((tmp_path / "r_mixed" / "provenance.json").read_text())["images"]
    assert images == {"evaluated": 2, "failed": 0, "from_earlier_runs": 2, "original_bits": {"16": 1, "8": 1},
                      "identity_stretched": 1}  # fmt: skip
    # without identity the conversion scores nothing: no note, and no count of originals it stretched
    none, _ = evaluate([str(folders["sixteen"])], str(tmp_path / "r_none"), "clahe", "tenengrad", pictures=0,
                       progress=False, log=lambda line: None)  # fmt: skip
    assert not [n for n in none.notes if "stretched" in n] and not math.isnan(scores(none, "clahe")[0])
    images = json.loads((tmp_path / "r_none" / "provenance.json").read_text())["images"]
    assert images["original_bits"] == {"16": 1} and images["identity_stretched"] is None


def test_the_depth_note_says_of_how_many_originals_it_knows_the_depth():
    """An EvalRun made by hand may hold the depth of some of its images only: "every original"
    was said of those."""
    run = EvalRun(["identity"], ["entropy"], images=3)
    run.originals = {"a.png": {"bits": 16, "stretched": True}, "b.png": {"bits": 12, "stretched": True}}
    note = _stretched_originals_note(run)
    assert note.startswith("identity: every one of the 2 originals whose depth is known (16-bit: 1, 12-bit: 1) is "
                           "deeper than 8 bits")  # fmt: skip
    run.originals["c.png"] = {"bits": 8, "stretched": False}
    assert _stretched_originals_note(run).startswith(
        "identity: 2 of the 3 originals (16-bit: 1, 12-bit: 1) were scored min-max stretched")


@pytest.fixture
def threads():
    """Sets torch's CPU threads for a test, and puts them back."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_the_cpu_threads_are_each_images_as_journalled_not_the_reports(tmp_path, seed, threads):
    """The threads (and the GPU's name) were read when the report was drawn: a run resumed on
    another machine, or a report written from the journal alone, named that machine for every
    image. Each image's are journalled with it; a rerun that adds a method names both."""
    src = images(tmp_path / "in", seed)
    out = tmp_path / "r"
    threads(1)
    evaluate([str(src)], str(out), "identity", "entropy", pictures=0, progress=False, log=lambda line: None)
    threads(2)  # every image from the journal: what scored them is the first run's
    evaluate([str(src)], str(out), "identity", "entropy", pictures=0, progress=False, log=lambda line: None)
    assert "- scored with torch's CPU threads 1\n" in block(out)
    assert json.loads((out / "provenance.json").read_text())["ran_on"]["cpu_threads"] == {"1": 2}
    # clahe added at 2 threads: each image's rows now come of both
    evaluate([str(src)], str(out), "identity,clahe", "entropy", pictures=0, progress=False, log=lambda line: None)
    assert "- scored with torch's CPU threads 1 (2 images), 2 (2 images)\n" in block(out)
    with open(out / JOURNAL_FILE) as f:
        entries = [json.loads(line) for line in f][1:]
    assert {e["file"]: e["ran_on"]["threads"] for e in entries} == {str(src / f"img{i}.png"): [1, 2] for i in (0, 1)}


def test_a_gpu_is_named_as_the_journal_recorded_it_for_the_methods_run_on_it(tmp_path, seed):
    """(No GPU needed: run_protocol is told the GPUs its methods run on, as evaluate tells it.)"""
    src = images(tmp_path / "in", seed)
    out = tmp_path / "r"
    settings = {"xvertfast": __version__, "methods": [{"label": "identity"}, {"label": "net"}]}

    def run(machine: dict, methods: dict) -> EvalRun:
        journal = Journal(str(out), {**settings, "methods": [{"label": m} for m in methods]})
        try:
            done = run_protocol([str(src)], methods, ["entropy"], pictures=0, progress=False, log=lambda line: None,
                                journal=journal, machine=machine)  # fmt: skip
        finally:
            journal.close()
        write_report(done, str(out), None)
        return done

    first = run({"threads": 4, "gpus": {"net": "GPU A"}}, {"identity": identity, "net": identity})
    assert set(map(str, first.ran_on.values())) == {"{'threads': [4], 'gpus': ['GPU A']}"}
    run({"threads": 8, "gpus": {"net": "GPU B"}}, {"identity": identity, "net": identity})  # all from the journal
    assert "- scored with torch's CPU threads 4; GPU GPU A\n" in block(out)
    # a method added on GPU B: GPU A scored the rows kept, GPU B the new ones
    run({"threads": 4, "gpus": {"more": "GPU B"}}, {"identity": identity, "net": identity, "more": identity})
    record = json.loads((out / "provenance.json").read_text())
    assert record["ran_on"] == {"cpu_threads": {"4": 2}, "gpus": {"GPU A": 2, "GPU B": 2}, "images_unrecorded": 0}
    assert "- scored with torch's CPU threads 4; GPU GPU A (2 images), GPU B (2 images)\n" in block(out)


def test_the_help_aligns_provenance_json_with_the_report_files_it_lists():
    """``provenance.json`` (15 characters) ran into its description: "provenance.json how the"."""
    from tests.test_cli import subcommands

    text = subcommands()["evaluate"].format_help()
    listing = text[text.index("write into REPORT_DIR"): text.index("Methods:")].splitlines()[1:]
    named = [line for line in listing if re.match(r"  \S", line)]  # a file's line; its description's go on at 17
    assert any(line.strip() == "provenance.json" for line in named)
    for line in named:
        assert len(line.rstrip()) == 2 + len(line.split()[0]) or (line[16] == " " and line[17] != " "), line
    assert all(line.startswith(" " * 17) and line[17] != " " for line in listing if not re.match(r"  \S", line))


def test_a_glob_of_many_inputs_is_listed_once_in_provenance_json_and_cut_in_summary_md(tmp_path, seed, capsys):
    """A shell glob of 2,000 files made summary.md's command line 44 KB (and the console's copy of
    it), and provenance.json listed them three times (command, argv, arguments.inputs): the first
    three now show, then how many more, and arguments.inputs alone lists every one."""
    from xvertfast.eval.provenance import INPUTS_SHOWN

    files = []
    for k in range(INPUTS_SHOWN + 9):
        files.append(str(tmp_path / f"img{k:02d}.png"))
        Image.fromarray(chest_like(seed + k, 320, 300)).save(files[-1])
    out = tmp_path / "r"
    assert main(["evaluate", *files, "-o", str(out), "--methods", "identity", "--metrics", "entropy", "-q"]) == 0
    more = "... 9 more inputs (provenance.json: arguments.inputs)"
    shown = " ".join(files[:INPUTS_SHOWN])
    said = f"- this run's command: `xvertfast evaluate {shown} {more} -o {out} --methods identity"
    assert said in (out / "summary.md").read_text() and said in capsys.readouterr().out
    record = json.loads((out / "provenance.json").read_text())
    assert record["arguments"]["inputs"] == files
    assert record["argv"][:INPUTS_SHOWN + 2] == ["evaluate", *files[:INPUTS_SHOWN], more]
    assert f" {shown} {more} -o " in record["command"]
    assert all(f not in json.dumps([record["argv"], record["command"]]) for f in files[INPUTS_SHOWN:])


def test_the_command_recorded_to_run_again_is_quoted_for_cmd_exe_on_windows(monkeypatch):
    """summary.md's and provenance.json's command, there to run the evaluation again, was shlex-quoted
    on Windows too: ``'C:\\data\\in'``, which cmd.exe passes on with its single quotes (no such folder),
    and a folder with an & split the line. It is quoted for the shell of the system that ran it."""
    from tests.test_cli import as_cmd_exe_runs
    from xvertfast.eval.provenance import provenance_markdown, run_provenance

    argv = ["evaluate", "C:\\data\\R&D", "-o", "C:\\my reports\\%TEMP%", "--metrics", "entropy"]
    program = ["C:\\Program Files\\Python312\\python.exe", "-m", "xvertfast"]
    settings = {"xvertfast": "x", "code_sha256": "y", "methods": [], "metrics": ["entropy"], "rois": "auto"}
    record = {"written": "now", "methods": [], "identity_methods": [], "metrics": ["entropy"],
              "statistics": {"outliers": "none", "compared_to": None},
              "images": {"evaluated": 1, "failed": 0, "from_earlier_runs": 0, "original_bits": {}}}  # fmt: skip
    with monkeypatch.context() as windows:  # (os.name put back before any assert: pytest's report needs it)
        windows.setattr(os, "name", "nt")
        made = run_provenance(settings, {}, "auto", "then", None, argv, {"inputs": [argv[1]]}, program, cwd=None,
                              rois_file=None)  # fmt: skip
        said = provenance_markdown({**record, "argv": argv})
    env = {"TEMP": "C:\\Temp"}
    assert as_cmd_exe_runs(made["command"], env) == [[*program, *argv]], made["command"]
    (line,) = [line for line in said.splitlines() if line.startswith("- this run's command: ")]
    typed = line.removeprefix("- this run's command: `").removesuffix("`")
    assert typed == 'xvertfast evaluate "C:\\data\\R&D" -o "C:\\my reports\\\\"^%TEMP^% --metrics entropy', line
    assert as_cmd_exe_runs(typed, env) == [["xvertfast", *argv]], line


def test_a_python_caller_gives_the_program_and_arguments_or_a_command_line_of_its_own(tmp_path, seed):
    """The CLI hands evaluate() the words that ran xvertfast (``program``) and its arguments, and
    provenance.json's command is made of them; a caller with no command line to give may record
    its own, which is kept as given, or none."""
    src = tmp_path / "a b.png"  # (a space: the command line quotes it)
    Image.fromarray(chest_like(seed)).save(src)
    typed = ["evaluate", str(src), "-o", "r", "--metrics", "entropy"]
    made = {
        "program": dict(program=["/opt/py 3/bin/python", "-m", "xvertfast"], argv=typed),
        "own": dict(command="my_pipeline.py --stage 3"),
        "none": {},
    }  # fmt: skip
    for name, given in made.items():
        evaluate([str(src)], str(tmp_path / name), "identity", "entropy", pictures=0, progress=False,
                 log=lambda line: None, **given)  # fmt: skip
    recorded = {name: json.loads((tmp_path / name / "provenance.json").read_text()) for name in made}
    assert recorded["program"]["command"] == f"'/opt/py 3/bin/python' -m xvertfast evaluate '{src}' -o r --metrics entropy"
    assert recorded["program"]["argv"] == typed
    assert f"- this run's command: `xvertfast evaluate '{src}' -o r --metrics entropy`\n" in block(tmp_path / "program")
    assert recorded["own"]["command"] == "my_pipeline.py --stage 3" and recorded["own"]["argv"] is None
    assert "- this run's command: `my_pipeline.py --stage 3`\n" in block(tmp_path / "own")
    assert recorded["none"]["command"] is None and recorded["none"]["argv"] is None
    assert "- called from Python (no command line)" in block(tmp_path / "none")
