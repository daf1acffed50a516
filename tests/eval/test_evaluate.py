"""``xvertfast evaluate``: the protocol's numbers and every file of the report."""

from __future__ import annotations

import csv
import math
import os
import re
import sys
import urllib.parse
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CXR_DEV, needs_cxr_dev, said_around_the_bar
from xvertfast.cli import main
from xvertfast.eval import metrics
from xvertfast.eval.protocol import to_8bit_original, to_8bit_output
from xvertfast.eval.report import REPORT_FILES
from xvertfast.io import read_image
from xvertfast.model import XVertNet, XVertNetStage, save_model
from xvertfast.preprocess import find_spine


def chest_like(seed: int, h: int = 640, w: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, w)
    rows = np.linspace(0, 1, h)[:, None]
    body = 0.25 + 0.5 * np.exp(-(x[None, :] ** 2) / 0.01) + 0.1 * np.sin(25 * rows) + 0.1 * rng.random((h, w))
    return np.round(np.clip(body, 0, 1) * 250).astype(np.uint8)


def tiny_model_dir(tmp_path, seed: int):
    """A saved one-stage XVertNet (width 4, depth 2, random weights from ``seed``) trained on 64 px ROIs."""
    torch.manual_seed(seed)
    return save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "model", extra={"training": {"config": {"roi_size": 64}}})


def an_image_and_its_roi_file(tmp_path, seed):
    """a.png and a rois.csv placing its ROIs' centres by hand (150,120 and 260,280): the inputs of
    an evaluation given ``--rois``, whose ROIs are then known without the spine search."""
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    rois = tmp_path / "rois.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,150,120,260,280\n")
    return src, rois


def check_report(out_dir) -> str:
    for name in REPORT_FILES:
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0, name
    page = (out_dir / "report.html").read_text()
    linked = [urllib.parse.unquote(link) for link in re.findall(r"(?:src|href)='([^']+)'", page)]  # URLs
    assert any(link.startswith("grid/") for link in linked) and "boxplots.png" in linked
    for link in linked:
        assert (out_dir / link).is_file(), f"report.html links to a missing file: {link}"
    return page


def test_evaluate_synthetic_folder(tmp_path, seed, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(chest_like(seed + i)).save(src / f"img{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "report"
    code = main(["evaluate", str(src), "-o", str(out), "--methods", "identity,clahe,farbman",
                 "--metrics", "entropy,tenengrad,lpc_si,tmqi", "--pictures", "2", "-q"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1  # one image failed, the others were evaluated
    assert "3 images evaluated, 1 failed" in captured.out and "broken.png" in captured.err
    page = check_report(out)
    assert "broken.png" in page
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 3
    # identity scores the original ROI exactly as stored (8-bit source)
    first = next(r for r in rows if r["method"] == "identity" and r["roi"] == "upper" and r["file"].endswith("img0.png"))
    rad = read_image(src / "img0.png")
    t, l, h, w = (int(first[k]) for k in ("top", "left", "height", "width"))
    roi = rad.values[t : t + h, l : l + w]
    assert float(first["entropy"]) == pytest.approx(metrics.entropy(roi.astype(np.uint8)), abs=1e-12)
    assert float(first["tmqi"]) == pytest.approx(metrics.tmqi(roi, roi.astype(np.uint8)), rel=1e-9)
    box = find_spine(rad.pixels).eval_rois()[0]
    assert (t, l, t + h, l + w) == tuple(box)
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert {r["compared_to"] for r in summary if r["method"] != "identity"} == {"identity"}
    assert len(list((out / "grid").iterdir())) == 2


def test_evaluate_with_a_model(tmp_path, seed):
    model = tiny_model_dir(tmp_path, seed)
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,xvertnet={model}",
                 "--metrics", "entropy,tenengrad", "--device", "cpu", "-q"]) == 0  # fmt: skip
    check_report(out)
    with open(out / "summary.csv") as f:
        assert {r["compared_to"] for r in csv.DictReader(f) if r["method"] == "identity"} == {"xvertnet"}
    # the same network with the original's brightness: scored under its own name, and the
    # comparison's default when the papers' xvertnet is not evaluated
    out2 = tmp_path / "r2"
    assert main(["evaluate", str(src), "-o", str(out2), "--methods", f"identity,xvertnet_original_brightness={model}",
                 "--metrics", "entropy,tenengrad", "--device", "cpu", "-q"]) == 0  # fmt: skip
    with open(out2 / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["compared_to"] for r in rows if r["method"] == "identity"} == {"xvertnet_original_brightness"}
    with open(out / "scores.csv") as f1, open(out2 / "scores.csv") as f2:
        network = {r["roi"]: (r["entropy"], r["tenengrad"]) for r in csv.DictReader(f1) if r["method"] == "xvertnet"}
        original = {r["roi"]: (r["entropy"], r["tenengrad"]) for r in csv.DictReader(f2)
                    if r["method"] == "xvertnet_original_brightness"}  # fmt: skip
    assert network.keys() == original.keys() and network != original


def test_bad_options(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "-o", str(tmp_path / "r"), "--methods", "gamma", "-q"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "-o", str(tmp_path / "r"), "--metrics", "psnr", "--methods", "identity", "-q"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    rois = tmp_path / "rois.csv"
    rois.write_text("file,upper_row\nx.png,1\n")
    assert main(["evaluate", str(tmp_path), "-o", str(tmp_path / "r"), "--rois", str(rois), "--methods", "identity", "-q"]) == 2
    assert "needs the columns" in capsys.readouterr().err


def test_roi_file_places_the_rois(tmp_path, seed):
    src, rois = an_image_and_its_roi_file(tmp_path, seed)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "-q"]) == 0  # fmt: skip
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    upper = next(r for r in rows if r["roi"] == "upper")
    assert int(upper["left"]) + int(upper["width"]) / 2 == pytest.approx(120, abs=1)


def test_the_roi_file_is_matched_to_the_inputs_once(tmp_path, seed, monkeypatch, capsys):
    """evaluate matched the file's rows to its inputs for its early check, and the protocol did
    it again: the second time is the first one's result, rows naming no input still noted."""
    import xvertfast.eval.evaluate as evaluate_module
    import xvertfast.eval.protocol as protocol

    calls, match = [], evaluate_module.centres_of_inputs
    counted = lambda *a, **k: calls.append(1) or match(*a, **k)  # noqa: E731
    monkeypatch.setattr(evaluate_module, "centres_of_inputs", counted)
    monkeypatch.setattr(protocol, "centres_of_inputs", counted)
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    rois = tmp_path / "rois.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,150,120,260,280\nother.png,1,1,2,2\n")
    assert main(["evaluate", str(src), "-o", str(tmp_path / "r"), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "--pictures", "0", "-q"]) == 0  # fmt: skip
    assert len(calls) == 1
    assert "1 row(s) of the ROI file name no input: other.png" in capsys.readouterr().out


def test_roi_centres_are_checked(tmp_path, seed, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    rois = tmp_path / "rois.csv"
    head = "file,upper_row,upper_col,lower_row,lower_col\n"
    rois.write_text(head + "a.png,-5000,99999,260,280\nother.png,1,1,2,2\n")
    assert main(["evaluate", str(src), "-o", str(tmp_path / "r"), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "-q"]) == 1  # fmt: skip
    captured = capsys.readouterr()
    # the CSV's line named, as enhance, preprocess and train name it (a row among thousands)
    assert f"{src}: {rois}, line 2: the upper ROI centre (-5000, 99999) lies outside the 600x640 image" in captured.err
    assert "1 row(s) of the ROI file name no input: other.png" in captured.out
    rois.write_text(head + "a.png,inf,120,260,280\n")
    assert main(["evaluate", str(src), "-o", str(tmp_path / "r2"), "--rois", str(rois), "-q"]) == 2
    assert "line 2: ROI centres must be finite numbers" in capsys.readouterr().err


def test_a_typo_leaves_the_report_folder_untouched(tmp_path, seed, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--metrics", "entropy,tenengard", "-q"]) == 2
    assert "unknown metric(s) 'tenengard'" in capsys.readouterr().err and not out.exists()
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "", "-q"]) == 2
    assert "no methods" in capsys.readouterr().err and not out.exists()
    # a metric named twice made scores.csv's header name it twice, and summary.md's tables too
    assert main(["evaluate", str(src), "-o", str(out), "--metrics", "entropy,tenengrad,entropy", "-q"]) == 2
    assert "metric(s) given more than once: entropy" in capsys.readouterr().err and not out.exists()


def test_an_input_given_as_the_report_folder_is_refused_as_a_file(tmp_path, seed, capsys):
    """-o naming one of the inputs (an image) said 'a.png is inside /.../a.png, a folder of outputs':
    it is no folder; and then only that it is a file, not what to give (and named -o to a Python caller
    since). The input is left as it was."""
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    before = src.read_bytes()
    assert main(["evaluate", str(src), "-o", str(src), "--methods", "identity", "--metrics", "entropy", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"error: report folder {src} is a file: give the report a folder (-o, made where missing)\n" in err, err
    assert "folder of outputs" not in err
    assert src.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["a.png"]
    from xvertfast.eval.evaluate import evaluate

    with pytest.raises(ValueError) as refused:  # (from Python: no -o to name)
        evaluate([str(src)], str(src), "identity", "entropy", progress=False)
    assert str(refused.value) == f"report folder {src} is a file: give the report a folder (made where missing)"
    assert src.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["a.png"]


@pytest.mark.parametrize("n, asked, shown", [(4, 6, 4), (4, 100, 4), (2, 6, 2), (10, 3, 3), (5, 0, 0)])
def test_pictures_show_as_many_images_as_asked_or_there_are(n, asked, shown):
    from xvertfast.eval.protocol import _sample

    picked = _sample(n, asked)
    assert len(picked) == shown and picked <= set(range(n))
    if shown >= 2:
        assert {0, n - 1} <= picked


def test_the_reference_row_is_cleaned_of_its_own_outliers():
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import summarise

    rng = np.random.default_rng(0)
    ref = 5.0 + 0.1 * rng.standard_normal(20)
    ref[3] = 50.0  # one wild value
    other = 6.0 + 0.1 * rng.standard_normal(20)
    run = EvalRun(["identity", "clahe"], ["entropy"])
    for i in range(20):
        run.rows += [{"file": f"f{i:02d}", "roi": "upper", "method": m, "entropy": float(v[i])}
                     for m, v in (("identity", ref), ("clahe", other))]  # fmt: skip
    by = {r["method"]: r for r in summarise(run, "identity")}
    assert by["identity"]["n"] == 20 and by["identity"]["n_clean"] == 19
    assert by["identity"]["mean_clean"] == pytest.approx(np.delete(ref, 3).mean())
    assert by["clahe"]["n_clean"] <= 19  # paired with identity: the union of both's outliers


def test_a_report_of_the_reference_alone_has_no_test_section(tmp_path):
    # with nothing to test against the reference, summary.md had a header-only p-value table
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity"], ["entropy"], images=3)
    run.rows += [{"file": f"f{i}", "roi": "upper", "method": "identity", "entropy": 5.0 + i} for i in range(3)]
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert "p-values" not in md and "Wilcoxon" not in md, md
    assert "| identity | 6.0000 ± 1.0000 (n=3) |" in md, md


def test_a_report_without_a_reference_says_why_it_has_no_test(tmp_path):
    """evaluate --methods clahe,farbman has no default reference (no xvertnet, no identity): the
    report gave means alone and no word on why the p-values, the paper's point, were missing."""
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["clahe", "farbman"], ["entropy"], images=3)
    run.rows += [{"file": f"f{i}", "roi": "upper", "method": m, "entropy": 5.0 + i + (m == "clahe")}
                 for i in range(3) for m in run.methods]  # fmt: skip
    md = open(write_report(run, str(tmp_path / "none"), None)["summary.md"]).read()
    assert ("No significance test: no method to test the others against (evaluate's default is the first xvertnet "
            "method, else identity; compare_to names another)") in md, md  # (a Python caller's word)
    from xvertfast.cli import main  # the option, as the CLI's user typed it

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    assert main(["evaluate", str(tmp_path / "a.png"), "-o", str(tmp_path / "cli"), "--methods", "clahe,farbman",
                 "--metrics", "entropy", "--pictures", "0", "--quiet"]) == 0  # fmt: skip
    assert "else identity; --compare-to names another)" in (tmp_path / "cli" / "summary.md").read_text()
    tested = open(write_report(run, str(tmp_path / "clahe"), "clahe")["summary.md"]).read()
    assert "No significance test" not in tested and "## p-values paired by ROI" in tested


def test_a_report_says_n_a_once_and_tells_notes_from_failures(tmp_path):
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    # a metric no ROI has (TMQI on small images) reads n/a, once
    run = EvalRun(["identity"], ["entropy", "tmqi"], images=1)
    run.rows += [{"file": "f", "roi": "upper", "method": "identity", "entropy": 5.0, "tmqi": float("nan")}]
    run.notes.append("tmqi: both sides must be at least 161 px")
    run.failed.append(("g.png", "g.png: cannot decode PNG"))
    paths = write_report(run, str(tmp_path), "identity")
    md = open(paths["summary.md"]).read()
    assert "| identity | 5.0000 ± n/a (n=1) | n/a (n=0) |" in md, md
    # in report.html, a note is not shown as a failure (both were red)
    page = open(paths["report.html"]).read()
    assert "<p class='note'>tmqi: both sides must be at least 161 px</p>" in page
    assert "<p class='fail'>g.png: cannot decode PNG</p>" in page


def test_the_p_value_table_says_what_n_a_a_tiny_p_and_few_pairs_mean(tmp_path):
    # a p below 5e-5 read "0.0000"; "n/a" was not explained; 2 to 5 pairs gave p-values that no
    # difference could bring below 0.05, which the table did not say
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    def table(n: int) -> str:
        run = EvalRun(["identity", "clahe", "same"], ["entropy"], images=n)
        for i in range(n):
            run.rows += [{"file": f"f{i:02d}", "roi": "upper", "method": m,
                          "entropy": 5.0 + 0.01 * i + (m == "clahe") * (1 + 0.001 * i)} for m in run.methods]  # fmt: skip
        return open(write_report(run, str(tmp_path / str(n)), "identity")["summary.md"]).read()

    many, few = table(40), table(4)
    assert "| clahe | < 0.0001 |" in many and "0.0000" not in many.split("## p-values")[1]
    assert "| same | n/a |" in many and "n/a: no test, fewer than 2 pairs that differ." in many
    assert "fewer than 6 pairs" not in many
    assert "| clahe | 0.1250 |" in few and "With fewer than 6 pairs that differ (equal pairs are dropped)" in few


def test_the_few_pairs_note_counts_the_pairs_the_test_ranks_not_n(tmp_path):
    # 40 ROIs of which 36 score the same for both methods: the test ranks 4 differences, so no p can
    # be below 0.05, but the note counted n (40) and said nothing; summary.csv gave no count either
    import csv

    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity", "clahe"], ["entropy"], images=40)
    for i in range(40):
        run.rows += [{"file": f"f{i:02d}", "roi": "upper", "method": m,
                      "entropy": 5.0 + 0.01 * i + (m == "clahe" and i < 4) * 0.001 * (i + 1)} for m in run.methods]  # fmt: skip
    paths = write_report(run, str(tmp_path), "identity")
    text = open(paths["summary.md"]).read()
    assert "| clahe | 0.1250 |" in text and "fewer than 6 pairs that differ" in text
    rows = {r["method"]: r for r in csv.DictReader(open(paths["summary.csv"]))}
    assert rows["clahe"]["n"] == "40" and rows["clahe"]["pairs_differing"] == "4"
    assert rows["identity"]["pairs_differing"] == ""  # (the reference is not tested against itself)


def test_the_tables_name_the_tenengrad_variant(tmp_path):
    # the metric spec asks for the variant to be named (mean(Gx²+Gy²) and mean(sqrt(Gx²+Gy²)) are both
    # in use, a factor of ~2 apart); the tables said "Tenengrad"
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity"], ["tenengrad"], images=2)
    run.rows += [{"file": f"f{i}", "roi": "upper", "method": "identity", "tenengrad": 0.01 * (i + 1)} for i in range(2)]
    md = open(write_report(run, str(tmp_path), None)["summary.md"]).read()
    assert "| method | Tenengrad, mean(Gx²+Gy²) |" in md, md


def test_the_grids_show_the_original_where_identity_is_not_a_method(tmp_path, seed, monkeypatch):
    # --methods clahe,xvertnet drew the methods' outputs with no original to judge them by
    from matplotlib.figure import Figure

    from xvertfast.eval.baselines import clahe, identity
    from xvertfast.eval.journal import Journal
    from xvertfast.eval.protocol import run_protocol
    from xvertfast.eval.report import write_report

    Image.fromarray(chest_like(seed)).save(tmp_path / "a.png")
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: drawn.append(fig))
    titles = {}
    for methods in ({"clahe": clahe}, {"identity": identity, "clahe": clahe}):
        journal = Journal(str(tmp_path / "r"), {"methods": list(methods)}, restart=True)
        try:  # through the journal: its picture is what a resumed report draws
            run = run_protocol([str(tmp_path / "a.png")], methods, ["entropy"], pictures=1, progress=False,
                               log=lambda m: None, journal=journal)  # fmt: skip
            picture = journal.picture(journal.entry(str(tmp_path / "a.png")))
        finally:
            journal.close()
        assert picture["thumbs"].keys() == run.pictures[0]["thumbs"].keys()
        drawn.clear()
        write_report(run, str(tmp_path / "r"), None)
        titles[len(methods)] = [ax.get_title() for ax in drawn[-1].axes[: len(picture["thumbs"])]]
    assert titles == {1: ["original", "clahe"], 2: ["identity", "clahe"]}
    # identity dropped on a rerun: the picture journalled with it still gives the original (its column)
    journal = Journal(str(tmp_path / "r"), {"methods": ["clahe"]})
    try:
        run = run_protocol([str(tmp_path / "a.png")], {"clahe": clahe}, ["entropy"], pictures=1, progress=False,
                           log=lambda m: None, journal=journal)  # fmt: skip
    finally:
        journal.close()
    drawn.clear()
    write_report(run, str(tmp_path / "r"), None)
    assert [ax.get_title() for ax in drawn[-1].axes[:2]] == ["original", "clahe"]


def test_the_page_shows_the_reference_in_bold_and_names_the_tests_variant(tmp_path):
    # "against **identity**" was shown as it stands in summary.md, asterisks that read like a mark
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity", "clahe"], ["entropy"], images=3)
    for i in range(3):
        run.rows += [{"file": f"f{i}", "roi": "upper", "method": m, "entropy": 5.0 + i + (m == "clahe")}
                     for m in run.methods]  # fmt: skip
    page = open(write_report(run, str(tmp_path), "identity")["report.html"]).read()
    assert "against <strong>identity</strong> (two-sided" in page and "**identity**" not in page
    # and which test: its p-values depend on the variant (SciPy's default has moved between releases)
    assert ("zero differences dropped; exact p up to 50 pairs, ties at their midranks, else the normal "
            "approximation with tie correction") in page  # fmt: skip
    assert "<code>*</code> p &lt; 0.05, <code>**</code> p &lt; 0.01" in page


def test_the_box_plots_give_n_per_box_and_say_when_a_metric_has_no_values(tmp_path, monkeypatch):
    # the boxes gave no n, though TMQI has fewer values than the others where some ROIs are small,
    # and a metric without values drew an empty frame on a made-up -0.04..0.04 axis
    from matplotlib.figure import Figure

    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import _boxplots

    run = EvalRun(["identity", "clahe"], ["entropy", "tmqi"], images=3)
    for i in range(3):
        run.rows += [{"file": f"f{i}", "roi": "upper", "method": m, "entropy": 5.0 + i + (m == "clahe"),
                      "tmqi": math.nan} for m in run.methods]  # fmt: skip
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: drawn.append(fig))
    _boxplots(run, str(tmp_path / "boxplots.png"))
    entropy, tmqi = drawn[0].axes
    assert [t.get_text() for t in entropy.get_xticklabels()] == ["identity\nn=3", "clahe\nn=3"]
    assert [t.get_text() for t in tmqi.get_xticklabels()] == ["identity\nn=0", "clahe\nn=0"]
    assert [t.get_text() for t in tmqi.texts] == ["no values"] and not entropy.texts
    assert "no outlier removal" in drawn[0].get_suptitle().replace("\n", " ")


@pytest.mark.parametrize("metrics", [["entropy"], ["entropy", "tmqi", "lpc_si"]])
def test_the_box_plots_labels_do_not_run_into_each_other(tmp_path, monkeypatch, metrics):
    # centred under their boxes, "xvertnet_original_brightness" ran into its neighbours' labels
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import _boxplots

    methods = ["clahe", "xvertnet", "xvertnet_original_brightness", "mine", "vendor"]
    run = EvalRun(methods, metrics, images=4)
    for i in range(4):
        run.rows += [{"file": f"f{i}", "roi": "upper", "method": m, **{k: 0.5 + 0.1 * i + j for k in metrics}}
                     for j, m in enumerate(methods)]  # fmt: skip
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: drawn.append(fig))
    _boxplots(run, str(tmp_path / "boxplots.png"))
    fig = drawn[0]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:  # each label ends before halfway to the next box, not over the next label
        ticks = [ax.transData.transform((x, 0))[0] for x in ax.get_xticks()]
        half = (ticks[1] - ticks[0]) / 2
        for tick, label in zip(ticks, ax.get_xticklabels()):
            assert label.get_window_extent(renderer).x1 < tick + half, label.get_text()


def test_a_compared_method_is_cleaned_of_the_union_of_outliers_and_tested_against_the_reference(tmp_path):
    """The reference's outlier falls where the method has none: the method's cleaned statistics and
    p-value are those of the pairs without it (paired_clean), its raw p-value that of all pairs, and
    summary.md marks p < 0.05 (and only that)."""
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import summarise, write_report
    from xvertfast.eval.stats import describe, outlier_mask, paired_clean, significance_mark, wilcoxon_p

    rng = np.random.default_rng(0)
    n = 20
    ref = 5.0 + 0.1 * rng.standard_normal(n)
    ref[3] = 50.0  # the reference's outlier
    values = {"identity": ref,
              "clahe": 6.0 + 0.1 * rng.permutation(np.linspace(-1, 1, n)),  # above the reference, no outlier
              "wls": ref + 0.01 * np.arange(1, n + 1) * (-1.0) ** np.arange(n)}  # symmetric around it
    assert not outlier_mask(values["clahe"]).any() and outlier_mask(ref)[3]
    run = EvalRun(list(values), ["entropy"], images=n)
    for i in range(n):
        run.rows += [{"file": f"f{i:02d}", "roi": "upper", "method": m, "entropy": float(v[i])}
                     for m, v in values.items()]  # fmt: skip
    by = {r["method"]: r for r in summarise(run, "identity")}
    for method in ("clahe", "wls"):
        v, r = values[method], by[method]
        a, b = paired_clean(v, ref)
        assert (r["n"], r["mean"], r["std"]) == describe(v)
        assert (r["n_clean"], r["mean_clean"], r["std_clean"]) == describe(a)
        assert r["p_value"] == wilcoxon_p(v, ref) and r["p_value_clean"] == wilcoxon_p(a, b)
        assert r["compared_to"] == "identity"
    assert by["clahe"]["n_clean"] == n - 1  # its own values have no outlier: the reference's was removed
    assert by["clahe"]["p_value"] < 0.01 and by["clahe"]["p_value_clean"] < 0.01
    assert by["wls"]["p_value"] > 0.05 and by["wls"]["p_value_clean"] > 0.05
    assert by["identity"]["compared_to"] == "" and by["identity"]["p_value"] != by["identity"]["p_value"]

    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    for method in values:  # one row in each table: cleaned, then raw
        rows = [line for line in md.splitlines() if line.startswith(f"| {method} | ") and "±" in line]
        assert len(rows) == 2, md
        for row, suffix in zip(rows, ("_clean", "")):
            r = by[method]
            mark = significance_mark(r["p_value" + suffix]) if r["compared_to"] else ""
            assert row.split(" (n=")[0].endswith(f"{r['std' + suffix]:.4f}{mark}"), row
            assert f"(n={r['n' + suffix]})" in row
    assert all("** (n=" in line for line in md.splitlines() if line.startswith("| clahe | ") and "±" in line)
    assert "*" not in "".join(line for line in md.splitlines() if line.startswith(("| wls | ", "| identity | ")))


def _image_test(rows: list[dict], method: str, ref: str, metric: str, clean: bool) -> tuple[int, float]:
    """(n images, p) of the test by image, worked out here from rows as scores.csv has them, not
    by the code under test: each image's mean over its ROIs both methods have a value on (with
    ``clean``, within mean +- 1.96 sd of both), then SciPy's exact Wilcoxon on those means."""
    from scipy.stats import wilcoxon

    def scores(m):
        return {(r["file"], r["roi"]): float(r[metric]) if r[metric] != "" else math.nan
                for r in rows if r["method"] == m}  # fmt: skip

    mine, theirs = scores(method), scores(ref)
    keys = sorted(theirs)
    a, b = np.array([mine[k] for k in keys]), np.array([theirs[k] for k in keys])
    kept = np.isfinite(a) & np.isfinite(b)
    if clean:
        for v in (a, b):
            mean, sd = np.nanmean(v), np.nanstd(v, ddof=1)
            kept &= np.abs(v - mean) <= 1.96 * sd
    by_image: dict = {}
    for (file, _), x, y, k in zip(keys, a, b, kept):
        if k:
            by_image.setdefault(file, []).append((x, y))
    means = np.array([np.mean(pairs, axis=0) for pairs in by_image.values()])
    p = wilcoxon(means[:, 0], means[:, 1], zero_method="wilcox", correction=False, method="exact").pvalue
    return len(by_image), float(p)


def test_the_report_tests_by_image_beside_by_roi(tmp_path):
    """The two ROIs of an image are not independent: beside the protocol's test by ROI (unchanged),
    summary.csv, summary.md and report.html give the test of the images' means, with n images;
    an image with one ROI an outlier counts by the other."""
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import summarise, write_report

    rng = np.random.default_rng(0)
    n = 12
    run = EvalRun(["identity", "clahe"], ["entropy"], images=n)
    for i, shared in enumerate(rng.permutation(np.linspace(-1, 1, n))):  # the image's: both its ROIs move with it
        for roi in ("upper", "lower"):
            ref = 5.0 + shared + 0.05 * rng.normal()
            gain = 0.3 if i % 3 else -0.2  # better on most images, worse on some
            run.rows += [{"file": f"f{i:02d}", "roi": roi, "method": "identity", "entropy": ref},
                         {"file": f"f{i:02d}", "roi": roi, "method": "clahe", "entropy": ref + gain + 0.01 * i}]
    run.rows[1]["entropy"] = 40.0  # clahe's upper ROI of f00: an outlier, f00 counts by its lower ROI
    paths = write_report(run, str(tmp_path), "identity")
    rows = list(csv.DictReader(open(paths["scores.csv"])))
    summary = {r["method"]: r for r in csv.DictReader(open(paths["summary.csv"]))}
    by_roi = {r["method"]: r for r in summarise(run, "identity")}
    clahe = summary["clahe"]
    assert float(clahe["p_value_clean"]) == by_roi["clahe"]["p_value_clean"]  # the protocol's, as it was
    assert by_roi["clahe"]["n_clean"] == 2 * n - 1  # the outlier's ROI is removed, its image is not
    for suffix, clean in (("", False), ("_clean", True)):
        k, p = _image_test(rows, "clahe", "identity", "entropy", clean)
        assert (int(clahe["n_images" + suffix]), float(clahe["p_value_by_image" + suffix])) == (k, pytest.approx(p))
        assert k == n and int(clahe["images_differing" + suffix]) == n
    assert float(clahe["p_value_by_image_clean"]) > 10 * by_roi["clahe"]["p_value_clean"]  # 12 images, not 23 ROIs
    assert summary["identity"]["n_images"] == summary["identity"]["p_value_by_image"] == ""  # the reference

    md = open(paths["summary.md"]).read()
    # each table of p-values says how it pairs: one copied alone (into a paper) must not pass for the other
    # (split at the by-image table's heading: the best-mean table before it says "paired by image" in its legend)
    assert "## p-values paired by ROI (after outlier removal)" in md.split("## p-values paired by image")[0], md
    table = md.split("## p-values paired by image (after outlier removal)")[1]
    assert "not independent samples" in table.split("|")[0]  # why it is there, said before the table
    assert f"| clahe | {float(clahe['p_value_by_image_clean']):.4f} (n={n}) |" in table, md
    page = open(paths["report.html"]).read()
    assert "<h2>p-values paired by image (after outlier removal)</h2>" in page
    assert f"<td>{float(clahe['p_value_by_image_clean']):.4f} (n={n})</td>" in page


def test_methods_scored_on_other_rois_are_tested_on_the_rois_both_have_and_the_report_says_so(tmp_path):
    """A method scored on other ROIs than the reference (one lacking an image, the other another) was
    not tested at all: one ROI missing among 20 000 took away its p-values. As a paired test takes
    missing values, it is tested on the (file, roi) both have, by ROI and by image, and summary.md
    says how many each side lacks; one with fewer than 2 ROIs in common is not tested, said why."""
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import summarise, summarise_by_image, write_report
    from xvertfast.eval.stats import image_means, paired_clean, wilcoxon_p

    rng = np.random.default_rng(3)
    n = 10
    run = EvalRun(["identity", "clahe", "farbman", "vendor"], ["entropy"], images=n)
    lacks = {"identity": {(3, "lower"), (3, "upper")}, "clahe": {(6, "lower"), (6, "upper"), (8, "upper")},
             "farbman": {(3, "lower"), (3, "upper")}}  # fmt: skip
    values = {}
    for i in range(n):
        for roi in ("lower", "upper"):
            ref = 5.0 + rng.normal()
            for m, v in (("identity", ref), ("clahe", ref + 0.3 + 0.1 * rng.normal()), ("farbman", ref + 1.0)):
                if (i, roi) not in lacks[m]:
                    values[(m, f"f{i:02d}", roi)] = v
    values[("vendor", "f00", "upper")] = 6.0  # 1 ROI in common: nothing to test
    run.rows = [{"file": f, "roi": roi, "method": m, "entropy": v} for (m, f, roi), v in values.items()]
    rng.shuffle(run.rows)  # (the order of the rows is not the pairing)
    common = sorted((f, roi) for m, f, roi in values if m == "clahe" and ("identity", f, roi) in values)
    assert len(common) == 15
    a, b = (np.array([values[(m, f, roi)] for f, roi in common]) for m in ("clahe", "identity"))
    by_roi = {r["method"]: r for r in summarise(run, "identity")}
    by_image = {r["method"]: r for r in summarise_by_image(run, "identity")}
    clahe = by_roi["clahe"]
    assert clahe["compared_to"] == "identity" and clahe["p_value"] == wilcoxon_p(a, b) < 0.05
    assert clahe["p_value_clean"] == wilcoxon_p(*paired_clean(a, b)) and clahe["n_clean"] == len(paired_clean(a, b)[0])
    assert clahe["n"] == 17  # its own ROIs, as described
    files = [f for f, _ in common]
    for suffix, clean in (("", False), ("_clean", True)):
        x, y = image_means(a, b, files, clean=clean)
        assert by_image["clahe"]["n_images" + suffix] == x.size == 8  # f08 by its lower ROI
        assert by_image["clahe"]["p_value_by_image" + suffix] == wilcoxon_p(x, y)
    assert by_roi["farbman"]["p_value"] < 0.01 and by_image["farbman"]["n_images"] == 9  # the same ROIs: as before
    assert by_roi["vendor"]["compared_to"] == "" and math.isnan(by_image["vendor"]["p_value_by_image"])
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert ("clahe is tested against identity on the 15 ROIs both were scored on (clahe lacks 3 of identity's, "
            "first f06 (lower ROI); identity lacks 2 of clahe's, first f03 (lower ROI)).") in md, md
    assert ("n/a: vendor is not tested against identity: they were scored on 1 ROI in common, too few to test "
            "(vendor lacks 17 of identity's, first f00 (lower ROI)).") in md, md
    assert "farbman is tested" not in md and "farbman is not tested" not in md


def test_a_method_scoring_a_roi_twice_is_not_paired_with_one_that_scored_it_once(tmp_path):
    # which of its two values pairs with the reference's one is not known: no test, and summary.md says why
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import summarise, write_report

    run = EvalRun(["identity", "clahe"], ["entropy"], images=6)
    for i in range(6):
        for m in run.methods:
            run.rows += [{"file": f"f{i}", "roi": roi, "method": m, "entropy": 5.0 + i + (m == "clahe")}
                         for roi in ("lower", "upper")]  # fmt: skip
    run.rows.append({"file": "f0", "roi": "upper", "method": "clahe", "entropy": 9.0})
    assert summarise(run, "identity")[1]["compared_to"] == ""
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert ("No significance test: clahe is not tested against identity: they were not scored on the same ROIs "
            "(clahe scored a ROI more than once).") in md, md


def test_a_reference_scoring_a_roi_twice_is_named_as_the_one_that_did(tmp_path):
    # each method was said to have "a ROI scored more than once" where it was the reference that had
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity", "clahe", "farbman"], ["entropy"], images=6)
    for i in range(6):
        for m in run.methods:
            run.rows += [{"file": f"f{i}", "roi": roi, "method": m, "entropy": 5.0 + i + (m == "clahe")}
                         for roi in ("lower", "upper")]  # fmt: skip
    run.rows.append({"file": "f0", "roi": "upper", "method": "identity", "entropy": 9.0})
    run.rows.append({"file": "f1", "roi": "lower", "method": "farbman", "entropy": 9.0})
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert ("No significance test: clahe is not tested against identity: they were not scored on the same ROIs "
            "(identity scored a ROI more than once).") in md, md
    assert ("No significance test: farbman is not tested against identity: they were not scored on the same "
            "ROIs (farbman and identity each scored a ROI more than once).") in md, md


def test_the_heading_counts_each_methods_rois_where_they_differ(tmp_path):
    # "3 ROIs per method" was the rows over the methods: identity had 4, clahe 2 (a run built in Python)
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    run = EvalRun(["identity", "clahe"], ["entropy"], images=2)
    run.rows = [{"file": f"f{i}", "roi": roi, "method": "identity", "entropy": 5.0 + i}
                for i in range(2) for roi in ("lower", "upper")]  # fmt: skip
    run.rows += [{"file": "f0", "roi": roi, "method": "clahe", "entropy": 6.0} for roi in ("lower", "upper")]
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert md.startswith("# Evaluation: 2 images, ROIs per method: identity 4, clahe 2\n"), md
    run.rows = [r for r in run.rows if r["file"] == "f0"]
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert md.startswith("# Evaluation: 2 images, 2 ROIs per method\n"), md


def test_the_notes_under_the_p_values_count_the_images_tested(tmp_path):
    # 4 images of 2 ROIs: 8 pairs by ROI, but 4 by image, where no p can be below 0.05; and
    # 1 image: 2 pairs by ROI, 1 by image, no test
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    def report(n: int) -> str:
        run = EvalRun(["identity", "clahe"], ["entropy"], images=n)
        for i in range(n):
            run.rows += [{"file": f"f{i}", "roi": roi, "method": m, "entropy": 5.0 + 0.1 * i + j + (m == "clahe")}
                         for j, roi in enumerate(("upper", "lower")) for m in run.methods]  # fmt: skip
        return open(write_report(run, str(tmp_path / str(n)), "identity")["summary.md"]).read()

    four, one = report(4), report(1)
    assert "| clahe | 0.0078 |" in four and "| clahe | 0.1250 (n=4) |" in four, four
    assert "With fewer than 6 pairs that differ (equal pairs are dropped)" in four
    assert "| clahe | 0.5000 |" in one and "| clahe | n/a (n=1) |" in one, one
    assert "n/a: no test, fewer than 2 pairs that differ." in one


def test_a_small_evaluate_run_tests_by_image_and_a_rerun_keeps_it(tmp_path, seed, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(chest_like(seed + i, 400, 380)).save(src / f"img{i}.png")
    args = ["evaluate", str(src), "-o", str(tmp_path / "r"), "--methods", "identity,clahe", "--metrics", "entropy",
            "--pictures", "0", "-q"]  # fmt: skip
    assert main(args) == 0

    def tables(name: str) -> bytes:  # summary.md's provenance block, its last, says when each was written
        return (tmp_path / "r" / name).read_bytes().split(b"\n## Provenance")[0]

    first = {name: tables(name) for name in ("summary.csv", "summary.md")}
    rows = list(csv.DictReader(open(tmp_path / "r" / "scores.csv")))
    assert len(rows) == 3 * 2 * 2
    clahe = next(r for r in csv.DictReader(open(tmp_path / "r" / "summary.csv")) if r["method"] == "clahe")
    k, p = _image_test(rows, "clahe", "identity", "entropy", clean=False)
    assert (int(clahe["n_images"]), float(clahe["p_value_by_image"])) == (3, pytest.approx(p))
    # (the by-image tests' table: the best-per-metric table, whose own paragraph pairs by image too, is before it)
    assert "| clahe | " in first["summary.md"].decode().split("## p-values paired by image")[1].split("\n## ")[0]
    capsys.readouterr()
    assert main(args) == 0  # every image from the journal: the same report, with no --restart
    assert "--restart" not in capsys.readouterr().err
    assert {name: tables(name) for name in first} == first
    assert "3 evaluated (3 of them scored, wholly or but for methods or metrics added, by an earlier run" in (
        tmp_path / "r" / "summary.md").read_text()


def test_small_image_leaves_tmqi_out_with_a_note(tmp_path, seed, capsys):
    src = tmp_path / "small.png"
    Image.fromarray(chest_like(seed, 420, 400)).save(src)  # ROIs 210 x 119: under TMQI's 161 px
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity,clahe", "--metrics", "entropy,tmqi",
                 "-q"]) == 0  # fmt: skip
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["tmqi"] == "" and float(r["entropy"]) > 0 for r in rows)
    assert "161" in (out / "summary.md").read_text()


def _grid_warnings(monkeypatch) -> dict[str, str]:
    """Each grid drawn from now: its title -> the red text under it (what the run warned of its
    image), "" for none; the figures still saved."""
    from matplotlib.figure import Figure

    said, save = {}, Figure.savefig

    def kept(fig, *args, **kwargs):
        if fig.get_suptitle().endswith(".png"):  # a grid's title is its image's name (the box plots' is not)
            red = [t.get_text() for t in fig.texts if t.get_color() == "#a00"]
            said[fig.get_suptitle()] = " ".join(red).replace("\n", " ")
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", kept)
    return said


def test_an_image_that_looks_inverted_gets_a_note(tmp_path, seed, capsys, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "upright.png")
    Image.fromarray(255 - chest_like(seed + 1)).save(src / "bone_dark.png")
    flat = np.zeros((250, 225), np.uint8)  # dark in the middle, but no spine to find: too little contrast
    flat[75:112, 37:75] = flat[75:112, 150:190] = 255
    Image.fromarray(flat).save(src / "flat.png")
    out = tmp_path / "r"
    grids = _grid_warnings(monkeypatch)
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy", "-q"]) == 0
    err = capsys.readouterr().err
    assert "bone_dark.png: looks inverted" in err and "upright.png: looks inverted" not in err
    # its ROIs are on the centre column, said so; no polarity note to point to (the ROIs note said "the note on
    # its polarity" and that the spine search placed them)
    assert "flat.png: too little contrast" in err and "flat.png: its ROIs were placed" not in err
    summary = (out / "summary.md").read_text()
    assert "bone_dark.png: looks inverted" in summary
    # its ROIs, found by the spine search (a bright band), may be off the spine: said beside it (cxr-dev's
    # MONOCHROME1 PNG was scored on a lung field and the heart's border), not of the upright one
    off = ("bone_dark.png: its ROIs were placed by the spine search, which looks for a bright band, on an image that "
           "looks inverted: they may lie off the spine, its scores then those of another region; read it upright (the "
           "note on its polarity) or give its centres (--rois FILE)")  # fmt: skip
    assert off in err and off in summary and "upright.png: its ROIs" not in summary
    # and in its grid, under its title: opened alone, its ROIs (on a lung field in cxr-dev's) said nothing of why;
    # the upright image's grid says nothing. Rerun, from the journal, alike
    inverted = "warning: " + re.search(r"bone_dark\.png: (looks inverted .*)", summary).group(1)
    for rerun in (False, True):
        if rerun:
            grids.clear()
            assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy",
                         "-q"]) == 0  # fmt: skip
            assert "resumed: 3 images scored by an earlier run were taken from" in capsys.readouterr().err
        assert grids.keys() == {"bone_dark.png", "flat.png", "upright.png"}
        assert inverted in grids["bone_dark.png"] and f"warning: {off.split(': ', 1)[1]}" in grids["bone_dark.png"]
        assert "warning: too little contrast" in grids["flat.png"] and grids["upright.png"] == ""


def test_the_summary_printed_lists_a_screenful_of_notes_and_failures_and_summary_md_keeps_them_all(tmp_path, seed,
                                                                                                    capsys):  # fmt: skip
    """stdout had the whole summary.md, a note line an image: 76 KB for 2,000 images, each note said
    on stderr already as its image was scored. It lists the first WARNED_LISTED notes and
    FAILED_LISTED failed images, counts the rest and names summary.md, which keeps every one."""
    from xvertfast._text import FAILED_LISTED, WARNED_LISTED

    src = tmp_path / "in"
    src.mkdir()
    for k in range(WARNED_LISTED + 1):  # each its own size: its ROIs' TMQI note its own (alike ones are one line)
        Image.fromarray(chest_like(seed + k, 320 + 4 * k, 300)).save(src / f"small{k:02d}.png")
    for k in range(FAILED_LISTED + 2):
        (src / f"text{k:02d}.png").write_text("not an image")
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy,tmqi",
                 "-q"]) == 1  # fmt: skip
    printed = capsys.readouterr().out
    assert len(re.findall(r"(?m)^- .*tmqi: both sides", printed)) == WARNED_LISTED
    # counted in lines of summary.md's notes (one may count many alike notes), and said so
    assert f"\n- ... and 1 more note line: every one is in {out / 'summary.md'}\n" in printed
    assert len(re.findall(r"(?m)^- .*text\d\d\.png", printed)) == FAILED_LISTED
    assert f"\n- ... and 2 more failed images: every one is in {out / 'summary.md'}\n" in printed
    assert "## Failed images" in printed and "Time: " in printed  # what follows the lists is still printed
    kept = (out / "summary.md").read_text()
    assert len(re.findall(r"(?m)^- .*tmqi: both sides", kept)) == WARNED_LISTED + 1
    assert len(re.findall(r"(?m)^- .*text\d\d\.png", kept)) == FAILED_LISTED + 2
    assert "more note" not in kept and "more failed" not in kept


def test_8bit_conversions():
    assert to_8bit_output(np.array([[0.0, 0.5, 1.0, 1.7, -0.2]])).tolist() == [[0, 128, 255, 255, 0]]
    v = np.array([[100, 1100], [600, 350]], dtype=np.uint16)
    assert to_8bit_original(v, 12).tolist() == [[0, 255], [128, 64]]  # min-max over the region, half away
    u = np.array([[3, 200]], dtype=np.uint8)
    assert to_8bit_original(u, 8).tolist() == [[3, 200]]  # 8-bit: as stored
    # an 8-bit DICOM through pydicom's modality LUT, or inverted: float64, still the stored values
    assert to_8bit_original(u.astype(np.float64), 8).tolist() == [[3, 200]]  # was stretched to [[0, 255]]
    assert to_8bit_original(np.array([[3.5, 200.0]]), 8).tolist() == [[0, 255]]  # not whole: stretched


@pytest.mark.slow
@needs_cxr_dev
def test_evaluate_cxr_dev_baselines(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["evaluate", CXR_DEV, "-o", str(out), "--methods", "identity,clahe,farbman", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    check_report(out)
    n_images = len([f for f in os.listdir(CXR_DEV) if f.endswith(".png")])
    with open(out / "scores.csv") as f:
        assert len(list(csv.DictReader(f))) == n_images * 2 * 3
    assert f"{n_images} images evaluated, 0 failed" in captured.out


def test_a_metric_that_cannot_score_a_roi_is_noted_once_by_name():
    from xvertfast.eval.protocol import score_roi

    roi = (np.arange(100 * 120) % 251).reshape(100, 120).astype(np.uint8)
    scores, notes = score_roi(roi, roi, ["entropy", "tmqi"])
    assert math.isnan(scores["tmqi"]) and math.isfinite(scores["entropy"])
    assert notes == [notes[0]] and notes[0].startswith("tmqi: both sides must be at least 161 px")  # not "tmqi: tmqi:"


def test_a_metric_left_out_is_noted_without_identity_among_the_methods(tmp_path, seed):
    """The note saying why TMQI is n/a (ROIs under 161 px) came from identity alone: without it the
    report left TMQI empty with no reason. It is said once per ROI, naming the methods only where
    not all of them lack it; a metric undefined on a method's ROI (NaN) is noted too."""
    from xvertfast.eval.baselines import clahe, farbman
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "small.png"
    Image.fromarray(chest_like(seed, 420, 400)).save(src)  # ROIs 210 x 119: under TMQI's 161 px

    def flat(pixels, spine=None):  # a method whose output is constant: BRISQUE is undefined there
        return np.full_like(pixels, 0.5)

    run = run_protocol([str(src)], {"clahe": clahe, "farbman": farbman, "flat": flat}, ["entropy", "tmqi", "brisque"],
                       pictures=0, progress=False, log=lambda m: None)  # fmt: skip
    tmqi = [n for n in run.notes if "tmqi: both sides must be at least 161 px" in n]
    assert [n.split(": tmqi")[0] for n in tmqi] == [f"{src}, upper ROI", f"{src}, lower ROI"], run.notes
    brisque = [n for n in run.notes if "brisque" in n]
    assert [n.split(": brisque")[0] for n in brisque] == [f"{src}, upper ROI (flat)", f"{src}, lower ROI (flat)"]
    assert all(math.isnan(r["brisque"]) == (r["method"] == "flat") for r in run.rows)


def test_a_failed_image_among_the_pictured_leaves_its_place_to_another(tmp_path, seed):
    """7 images, 6 pictures asked: indices 0, 1, 2, 4, 5, 6 are drawn. Image 0 fails; its place went
    to image 1, already drawn, so the report showed 5 pictures with 6 images scored."""
    from xvertfast.eval.baselines import identity
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "in"
    src.mkdir()
    (src / "a0_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for k in range(1, 7):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"a{k}.png")
    run = run_protocol([str(src)], {"identity": identity}, ["entropy"], pictures=6, progress=False, log=lambda m: None)
    assert run.images == 6 and len(run.failed) == 1
    assert sorted(os.path.basename(p["file"]) for p in run.pictures) == [f"a{k}.png" for k in range(1, 7)]
    # the last image failing: no later one to take its place, the others still shown
    (src / "a9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    run = run_protocol([str(src)], {"identity": identity}, ["entropy"], pictures=2, progress=False, log=lambda m: None)
    assert [os.path.basename(p["file"]) for p in run.pictures] == ["a1.png"]


def test_a_rerun_leaves_no_picture_of_an_earlier_report_in_its_grid_folder(tmp_path, seed):
    """grid/ kept the pictures of an earlier run (more pictures, other images) beside the new ones,
    which report.html no longer showed. Files in grid/ that are not report pictures stay."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    out = tmp_path / "r"
    args = ["--methods", "identity", "--metrics", "entropy", "-q"]
    assert main(["evaluate", str(src), "-o", str(out), "--pictures", "4", *args]) == 0
    assert len(os.listdir(out / "grid")) == 4
    (out / "grid" / "my_notes.txt").write_text("kept")
    assert main(["evaluate", str(src), "-o", str(out), "--pictures", "2", *args]) == 0
    linked = re.findall(r"src='(grid/[^']+)'", (out / "report.html").read_text())
    assert len(linked) == 2
    assert sorted(os.listdir(out / "grid")) == sorted([os.path.basename(g) for g in linked] + ["my_notes.txt"])


def test_no_pictures_asked_makes_no_grid_folder(tmp_path, seed):
    """--pictures 0 left an empty grid/ in the report folder, as if its pictures had failed; a rerun so
    of a report with pictures removes them and the grid/ they leave empty."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    out, again = tmp_path / "r", tmp_path / "again"
    args = ["--methods", "identity", "--metrics", "entropy", "-q"]
    assert main(["evaluate", str(src), "-o", str(out), "--pictures", "0", *args]) == 0
    assert (out / "report.html").is_file() and not (out / "grid").exists()
    assert main(["evaluate", str(src), "-o", str(again), "--pictures", "2", *args]) == 0
    assert len(os.listdir(again / "grid")) == 2
    assert main(["evaluate", str(src), "-o", str(again), "--pictures", "0", *args]) == 0
    assert (again / "report.html").is_file() and not (again / "grid").exists()


@pytest.mark.parametrize("grid", ["a link", "unreadable"])
def test_no_pictures_asked_puts_the_report_in_place_whatever_its_grid_folder(tmp_path, seed, monkeypatch, grid):
    """--pictures 0 removed an earlier report's emptied grid/ with os.rmdir, which failed on a grid/
    that is a link to a folder (ENOTDIR) or that cannot be listed, and the whole report was lost
    ("could not be put in place", every time). The link and a grid/ it cannot read stay."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    out = tmp_path / "r"
    args = ["--methods", "identity", "--metrics", "entropy", "-q"]
    assert main(["evaluate", str(src), "-o", str(out), "--pictures", "2", *args]) == 0
    if grid == "a link":  # grid/ moved elsewhere and linked back
        os.rename(out / "grid", tmp_path / "pictures")
        os.symlink(tmp_path / "pictures", out / "grid")
        assert main(["evaluate", str(src), "-o", str(out), "--pictures", "2", *args]) == 0
    else:
        listdir = os.listdir

        def refused(path="."):
            if os.path.basename(os.fspath(path)) == "grid":
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return listdir(path)

        monkeypatch.setattr(os, "listdir", refused)
    (out / "report.html").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the unreadable grid/'s: its pictures not looked for)
        assert main(["evaluate", str(src), "-o", str(out), "--pictures", "0", *args]) == 0
    assert (out / "report.html").is_file() and "grid/" not in (out / "report.html").read_text()
    if grid == "a link":
        assert os.path.islink(out / "grid") and os.listdir(tmp_path / "pictures") == []
    else:
        assert os.path.isdir(out / "grid")


def test_a_roi_file_saved_by_a_spreadsheet_is_read(tmp_path, seed):
    """Excel's "CSV UTF-8" starts with a byte-order mark, which made the header's first name
    '\\ufefffile' and the file refused; spaces after the commas of a typed header too."""
    from xvertfast.eval.protocol import load_roi_centres

    rois = tmp_path / "rois.csv"
    rois.write_bytes(b"\xef\xbb\xbffile,upper_row,upper_col,lower_row,lower_col\r\na.png,150,120,260,280\r\n")
    assert load_roi_centres(str(rois)) == {"a.png": ((150.0, 120.0), (260.0, 280.0))}
    rois.write_text("file, upper_row, upper_col, lower_row, lower_col\na.png, 150, 120, 260, 280\n")
    assert load_roi_centres(str(rois)) == {"a.png": ((150.0, 120.0), (260.0, 280.0))}


def test_out_of_memory_on_one_image_fails_that_image_alone(tmp_path, seed, capsys):
    """A MemoryError (a huge image through the WLS solves) stopped the whole evaluation with a
    traceback; like enhance and preprocess, it fails that image, said in words, and the run goes on."""
    from xvertfast.eval.baselines import clahe
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")

    def greedy(pixels, spine=None):
        if greedy.calls == 0:
            greedy.calls += 1
            raise MemoryError
        return clahe(pixels, spine)

    greedy.calls = 0
    run = run_protocol([str(src)], {"greedy": greedy}, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    # the reason names the method that failed: "out of memory" alone did not say which of them ran out
    reason = f"{src / 'img0.png'}: out of memory (method greedy)"
    assert run.images == 1 and run.failed == [(str(src / "img0.png"), reason)]


def _returning_in_turn(returns):
    """A method for run_protocol whose n-th call returns ``returns[n](pixels)``: one wrong output an
    image, in the order the images are enhanced."""
    calls = iter(returns)

    def method(pixels, spine=None):
        return next(calls)(pixels)

    return method


def test_a_python_method_returning_no_image_fails_that_image_saying_what_it_returned(tmp_path, seed):
    """A plain Python method (run_protocol's name -> function) returning None stopped the whole run
    with an AttributeError; one returning another shape or NaN failed the image as 'method m returned
    shape (200, 190) or non-finite values', not saying which, and dropped what was noted of the image
    (an RGB input's luminance). Each now fails that image alone, naming the method and what was wrong;
    a list of rows is taken as the array it makes."""
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    grey = chest_like(seed + 4, 200, 190)
    Image.fromarray(np.stack([grey, grey // 2 + 60, grey], axis=-1)).save(src / "img4.png")

    def one_nan(pixels):
        pixels = pixels.copy()
        pixels[3, 4] = np.nan
        return pixels

    returns = [lambda p: None, lambda p: p[:10], one_nan, lambda p: p.tolist(), lambda p: np.full_like(p, np.inf)]

    broken = _returning_in_turn(returns)
    run = run_protocol([str(src)], {"m": broken}, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    assert run.images == 1 and {row["file"] for row in run.rows} == {str(src / "img3.png")}
    assert run.failed == [
        (str(src / "img0.png"), f"{src / 'img0.png'}: the method's output is NoneType, not an image: a method returns "
                                "the enhanced image, an array of the input's shape (200, 190) with values in [0, 1] "
                                "(method m)"),
        (str(src / "img1.png"), f"{src / 'img1.png'}: the method's output has shape (10, 190), not the input's "
                                "(200, 190) (method m)"),
        (str(src / "img2.png"), f"{src / 'img2.png'}: the method's output holds 1 non-finite value (NaN or infinity) "
                                "of 38000 (method m)"),
        (str(src / "img4.png"), f"{src / 'img4.png'}: the method's output holds 38000 non-finite values (NaN or "
                                "infinity) of 38000 (method m)")]  # fmt: skip
    assert any("img4.png" in str(note) and "RGB image converted to luminance" in str(note) for note in run.notes), \
        run.notes  # (what was noted of the image failed is kept)


def test_a_python_method_returning_another_scale_than_unit_floats_fails_that_image(tmp_path, seed):
    """A plain Python method returning its image as 8-bit integers (0..255) or as floats of 0..255 was
    clipped to [0, 1] and scored as an almost white image, without a word; a slight overshoot of
    [0, 1] is still the method's to clip, and is scored."""
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    returns = [lambda p: np.round(p * 255).astype(np.uint8), lambda p: np.round(p * 255).astype(np.int64),
               lambda p: p * 255, lambda p: p * 1.2 - 0.1]  # fmt: skip

    scaled = _returning_in_turn(returns)
    run = run_protocol([str(src)], {"m": scaled}, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    assert run.images == 1 and {row["file"] for row in run.rows} == {str(src / "img3.png")}
    assert run.failed == [
        (str(src / "img0.png"), f"{src / 'img0.png'}: the method's output holds integers from 0 to 255, outside "
                                "[0, 1]: a method returns floats in [0, 1] (8-bit values divided by 255) (method m)"),
        (str(src / "img1.png"), f"{src / 'img1.png'}: the method's output holds integers from 0 to 255, outside "
                                "[0, 1]: a method returns floats in [0, 1] (8-bit values divided by 255) (method m)"),
        (str(src / "img2.png"), f"{src / 'img2.png'}: the method's output holds values from 0 to 255, far outside "
                                "[0, 1] (clipped to it, the image would score as almost black and white): a method "
                                "returns floats in [0, 1] (method m)")]  # fmt: skip


def test_a_python_method_returning_a_mask_of_zeros_and_ones_is_scored(tmp_path, seed):
    """A method returning a mask (p > 0.5, bool) or 0/1 integers was failed as "an array of bool
    (values False to True), not of floats" by 039dc43, though on the [0, 1] scale: it is scored as
    the floats 0.0 and 1.0 are, as before. Integers beyond 1 still fail, their span said: the
    range, not the type, is the problem (an int16 0..2 was "an array of int16 (values 0 to 2), not
    of floats", though integers within [0, 1] are taken)."""
    from xvertfast.eval.protocol import run_protocol

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed, 200, 190)).save(src / "img.png")
    masks = {"bool": lambda p, spine=None: p > 0.5, "uint8": lambda p, spine=None: (p > 0.5).astype(np.uint8),
             "float": lambda p, spine=None: (p > 0.5).astype(np.float32)}  # fmt: skip
    run = run_protocol([str(src)], masks, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    assert run.images == 1 and not run.failed
    scores = {(r["method"], r["roi"]): r["entropy"] for r in run.rows}
    assert not any(math.isnan(v) for v in scores.values())
    for roi in ("upper", "lower"):
        assert scores["bool", roi] == scores["uint8", roi] == scores["float", roi]
    doubled = {"m": lambda p, spine=None: (p > 0.5).astype(np.int16) * 2}
    run = run_protocol([str(src)], doubled, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    assert run.failed == [
        (str(src / "img.png"), f"{src / 'img.png'}: the method's output holds integers from 0 to 2, outside [0, 1]: "
                               "a method returns floats in [0, 1] (8-bit values divided by 255) (method m)")]


def test_a_python_method_returning_what_numpy_cannot_read_fails_that_image_saying_why(tmp_path, seed):
    """A plain Python method returning a tensor that requires grad, or one on a GPU, failed its image
    as "is Tensor, not an image", torch's reason (detach it, move it to the CPU) lost; a complex
    array alike, its type not named. Each now says why."""
    import torch

    from xvertfast.eval.protocol import run_protocol

    class OnGpu:  # (refused as a CUDA tensor is: no GPU here)
        def __array__(self, dtype=None, copy=None):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                            "to host memory first.")  # fmt: skip

    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        Image.fromarray(chest_like(seed + k, 200, 190)).save(src / f"img{k}.png")
    returns = [lambda p: torch.from_numpy(p).requires_grad_(), lambda p: OnGpu(), lambda p: p.astype(np.complex64),
               lambda p: p]  # fmt: skip

    method = _returning_in_turn(returns)
    run = run_protocol([str(src)], {"m": method}, ["entropy"], pictures=0, progress=False, log=lambda m: None)
    wanted = "a method returns the enhanced image, an array of the input's shape (200, 190) with values in [0, 1]"
    assert run.images == 1 and {row["file"] for row in run.rows} == {str(src / "img3.png")}
    assert run.failed == [
        (str(src / "img0.png"), f"{src / 'img0.png'}: the method's output is Tensor, which numpy cannot read as an "
                                "array (Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                                f"instead.): {wanted} (method m)"),
        (str(src / "img1.png"), f"{src / 'img1.png'}: the method's output is OnGpu, which numpy cannot read as an "
                                "array (can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                                f"tensor to host memory first.): {wanted} (method m)"),
        (str(src / "img2.png"), f"{src / 'img2.png'}: the method's output is an array of complex64, not of real "
                                f"numbers: {wanted} (method m)")]  # fmt: skip


@pytest.mark.parametrize("module, methods", [("matplotlib", ["identity"]), ("skimage", ["identity", "clahe"])])
def test_a_missing_eval_package_is_said_before_anything_is_scored(tmp_path, seed, monkeypatch, module, methods):
    """matplotlib and scikit-image are the ``eval`` extra: without matplotlib every image was scored
    and then write_report failed ('import of matplotlib halted'), leaving scores.csv and summary.md
    without report.html; without scikit-image clahe failed on the first image with a bare
    ModuleNotFoundError. Both are said at the start, naming the extra, before REPORT_DIR is made."""
    from xvertfast.eval.evaluate import evaluate

    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed, 200, 190)).save(src)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    out = tmp_path / "r"
    with pytest.raises(ImportError, match=rf"{module}.*pip install 'xvertfast\[eval\]'"):
        evaluate([str(src)], str(out), methods, ["entropy"], progress=False, log=lambda m: None)
    assert not out.exists()


def test_a_roi_file_names_an_input_by_any_path_to_it(tmp_path, seed, monkeypatch):
    """An absolute path in the ROI file did not match the same input given by a relative one (and
    the reverse): the input failed with 'no ROI centres for this file' and the row was reported as
    naming no input."""
    from xvertfast.eval.baselines import identity
    from xvertfast.eval.protocol import load_roi_centres, run_protocol

    (tmp_path / "in").mkdir()
    Image.fromarray(chest_like(seed)).save(tmp_path / "in" / "a.png")
    monkeypatch.chdir(tmp_path)
    rois = tmp_path / "rois.csv"
    head = "file,upper_row,upper_col,lower_row,lower_col\n"
    for row, given in ((f"{tmp_path / 'in' / 'a.png'},150,120,260,280", "in/a.png"),
                       ("./in/a.png,150,120,260,280", str(tmp_path / "in" / "a.png"))):  # fmt: skip
        rois.write_text(head + row + "\n")
        run = run_protocol([given], {"identity": identity}, ["entropy"], load_roi_centres(str(rois)), pictures=0,
                           progress=False, log=lambda m: None)  # fmt: skip
        assert run.failed == [] and run.images == 1 and not any("ROI file" in n for n in run.notes), run
        upper = next(r for r in run.rows if r["roi"] == "upper")
        assert upper["left"] + upper["width"] / 2 == pytest.approx(120, abs=1)


def test_a_roi_file_naming_an_image_twice_is_refused(tmp_path):
    """A repeated row (a copy-paste slip) silently placed the ROIs at its last centres."""
    from xvertfast.eval.protocol import load_roi_centres

    rois = tmp_path / "rois.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,150,120,260,280\nb.png,1,2,3,4\n"
                    "a.png,100,100,200,200\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"rois.csv, line 4: a.png has centres on line 2 already"):
        load_roi_centres(str(rois))


def test_the_papers_tmqi_scale_can_be_asked_for_by_name(tmp_path, seed):
    """SPEC: the paper's TMQI range is offered as tmqi_paper_compat, never as the default; evaluate
    refused it as an unknown metric, so the paper's table could not be compared with."""
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity,clahe", "--metrics",
                 "tmqi,tmqi_paper_compat", "-q"]) == 0  # fmt: skip
    rad = read_image(str(src))
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        t, l, h, w = (int(r[k]) for k in ("top", "left", "height", "width"))
        original = rad.values[t : t + h, l : l + w]
        test = original if r["method"] == "identity" else None
        if test is not None:
            assert float(r["tmqi_paper_compat"]) == pytest.approx(metrics.tmqi_paper_compat(original, test), rel=1e-12)
        assert float(r["tmqi_paper_compat"]) < 0.3 < float(r["tmqi"])  # the paper's scale, not TMQI's
    assert "TMQI Q, paper's [0, 1] scale" in (out / "summary.md").read_text()


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes")
def test_a_file_name_that_is_not_utf8_does_not_fail_the_report(tmp_path, seed):
    """An archive's Latin-1 name ("caf\\xe9.png", held by Python as "caf\\udce9.png") failed the
    whole report after every image was scored: the CSV, markdown and HTML could not encode it."""
    src = tmp_path / "in"
    src.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.fromarray(chest_like(seed, 200, 190)).save(os.path.join(src, name))
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy",
                 "--pictures", "1", "-q"]) == 0  # fmt: skip
    for report in ("scores.csv", "summary.md", "report.html"):
        text = (out / report).read_bytes().decode("utf-8")  # valid UTF-8 throughout
        assert report != "scores.csv" or "caf\\udce9.png" in text
    (linked,) = re.findall(r"src='(grid/[^']+)'", (out / "report.html").read_text(encoding="utf-8"))
    assert (out / urllib.parse.unquote(linked)).is_file()  # the page links the picture under the name it was saved as


def test_a_file_name_with_a_hash_or_question_mark_is_linked_as_a_url(tmp_path, seed):
    # "chest #1?.png": the page's src='grid/000_chest #1?.png' is a URL whose path ends at the "#",
    # so the browser looked for grid/000_chest and showed no picture
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed, 200, 190)).save(src / "chest #1?.png")
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy",
                 "--pictures", "1", "-q"]) == 0  # fmt: skip
    (linked,) = re.findall(r"src='(grid/[^']+)'", (out / "report.html").read_text(encoding="utf-8"))
    assert "#" not in linked and "?" not in linked and " " not in linked
    assert (out / urllib.parse.unquote(linked)).is_file()
    check_report(out)


def test_a_report_records_what_xvertnet_ran_on_and_refuses_to_mix(tmp_path, seed, capsys):
    """The journal holds the device kind, precision and backend that ran ("auto" resolved): a
    report begun on a GPU in bf16 and resumed on the CPU in fp32 would mix two precisions'
    scores, so a rerun that would run otherwise is refused (the journal is edited here to say
    the first run was on a GPU, which this machine has not)."""
    import json

    from xvertfast.eval.journal import JOURNAL_FILE

    model = tiny_model_dir(tmp_path, seed)
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed, 320, 300)).save(src)
    out = tmp_path / "r"
    command = ["evaluate", str(src), "-o", str(out), "--methods", f"identity,xvertnet={model}",
               "--metrics", "entropy", "--precision", "fp32", "-q"]  # fmt: skip
    assert main(command) == 0
    journal = out / JOURNAL_FILE
    lines = journal.read_text().split("\n")
    settings = json.loads(lines[0])
    (network,) = [m for m in settings["settings"]["methods"] if "runs" in m]
    assert network["runs"] == {"device": "cpu", "precision": "float32", "backend": "torch"}
    assert main(command) == 0  # the same: resumed
    network["runs"].update(device="cuda", precision="bfloat16")
    journal.write_text("\n".join([json.dumps(settings), *lines[1:]]))
    capsys.readouterr()
    assert main(command) == 2
    assert re.search(r"other settings \(.*(cuda|bfloat16).*\).*--restart", capsys.readouterr().err)


def test_a_rerun_asking_otherwise_for_what_runs_the_same_resumes(tmp_path, seed):
    """The journal compares what ran, not how it was asked for: --precision fp32 on the CPU is
    what auto runs there, so the rerun resumes (nothing is scored again)."""
    from xvertfast.eval.journal import JOURNAL_FILE

    model = tiny_model_dir(tmp_path, seed)
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed, 320, 300)).save(src)
    out = tmp_path / "r"
    command = ["evaluate", str(src), "-o", str(out), "--methods", f"identity,xvertnet={model}", "--metrics", "entropy", "-q"]
    assert main([*command, "--device", "auto", "--precision", "auto"]) == 0
    scored = (out / JOURNAL_FILE).read_text()
    assert main([*command, "--device", "cpu", "--precision", "fp32"]) == 0
    assert (out / JOURNAL_FILE).read_text() == scored  # resumed: no image scored again


def test_one_image_without_pictures_reads_right(tmp_path, seed, capsys):
    # "1 images, 2 ROIs per method" in the heading and the CLI's last line, and --pictures 0 left an
    # empty "Side by side" heading on the page
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    out = tmp_path / "r"
    argv = ["evaluate", str(src), "-o", str(out), "--methods", "identity,clahe", "--metrics", "entropy", "-q"]
    assert main([*argv, "--pictures", "0"]) == 0
    said = capsys.readouterr().out
    assert "1 image evaluated" in said and "# Evaluation: 1 image, 2 ROIs per method" in said
    assert "Side by side" not in (out / "report.html").read_text()


def test_two_methods_of_one_label_are_told_apart_from_a_method_given_twice(tmp_path, seed):
    # "a:identity,a:clahe" was refused as "each method may appear once", which they do
    from xvertfast.eval.evaluate import evaluate

    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    with pytest.raises(ValueError, match=r"a:identity, a:clahe would all be reported as 'a': each method needs a label"):
        evaluate([str(src)], str(tmp_path / "r"), ["a:identity", "a:clahe"], ["entropy"], progress=False)
    with pytest.raises(ValueError, match=r"clahe, clahe would all be reported as 'clahe'"):
        evaluate([str(src)], str(tmp_path / "r"), ["clahe", "clahe"], ["entropy"], progress=False)
    assert not (tmp_path / "r").exists()


def test_grids_of_two_images_of_one_name_are_told_apart():
    # a/chest.png and b/chest.png were both titled "chest.png" in the report's grids
    from xvertfast.eval.report import _picture_titles

    same = [{"file": os.path.join("data", "a", "chest.png")}, {"file": os.path.join("data", "b", "chest.png")}]
    assert _picture_titles(same) == [os.path.join("a", "chest.png"), os.path.join("b", "chest.png")]
    other = [{"file": os.path.join("data", "a", "one.png")}, {"file": os.path.join("data", "b", "two.png")}]
    assert _picture_titles(other) == ["one.png", "two.png"]
    # inputs given as a file of the current folder and a whole path (commonpath refuses that mix,
    # and the first has no folder): told apart below the folder both are in
    here = [{"file": "chest.png"}, {"file": os.path.join(os.getcwd(), "b", "chest.png")}]
    assert _picture_titles(here) == ["chest.png", os.path.join("b", "chest.png")]


def test_errors_start_their_own_line_under_the_progress_bar(tmp_path, seed, capsys):
    # printed after the bar's text, which ends without a newline: "...0/2 [00:00<?, ?img/s]error: ..."
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed, 200, 190)).save(src / "img0.png")
    (src / "empty.png").write_bytes(b"")
    args = ["--methods", "identity", "--metrics", "entropy", "--pictures", "0"]
    assert main(["evaluate", str(src), "-o", str(tmp_path / "report"), *args]) == 1
    said_around_the_bar(capsys.readouterr().err)


def test_methods_and_metrics_given_as_one_string_are_read_as_on_the_command_line(tmp_path, seed):
    # evaluate(..., methods="clahe", metrics="entropy") iterated the strings: "unknown method 'c'",
    # "unknown metric(s) e, n, t, r, o, p, y"
    from xvertfast.eval.evaluate import evaluate

    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    run, _ = evaluate(str(src), str(tmp_path / "r"), "identity, clahe", "entropy", pictures=0, progress=False,
                      log=lambda m: None)  # fmt: skip
    with open(tmp_path / "r" / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["method"] for r in rows}) == ["clahe", "identity"]
    assert "entropy" in rows[0] and "tenengrad" not in rows[0]


def test_methods_metrics_and_inputs_given_as_iterators_are_read_once(tmp_path, seed):
    # metrics=(m for m in ["entropy"]): the check of the names took them, and the run was then
    # refused with "unknown metric(s) (none given)"; methods so were left out of the journal's settings
    from xvertfast.eval.evaluate import evaluate
    from xvertfast.io.files import NothingFound

    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    evaluate(iter([src]), str(tmp_path / "r"), iter(["identity", "clahe"]), iter(["entropy"]), pictures=0,
             progress=False, log=lambda m: None)  # fmt: skip
    with open(tmp_path / "r" / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["method"] for r in rows}) == ["clahe", "identity"] and "entropy" in rows[0]
    (tmp_path / "none").mkdir()
    with pytest.raises(NothingFound, match=f"^no image files found in {tmp_path / 'none'} "):
        evaluate(iter([tmp_path / "none"]), str(tmp_path / "r2"), ["identity"], ["entropy"], progress=False,
                 log=lambda m: None)  # fmt: skip


def test_the_settings_record_the_precision_the_built_backend_runs(monkeypatch):
    # the precision was read before the backend was built: where auto's TensorRT could not build,
    # torch ran bf16 and the journal said fp16 (the plan's)
    from types import SimpleNamespace

    from xvertfast.eval import evaluate as evaluate_module

    class Planned:
        device, dtype, model = torch.device("cuda", 0), torch.float16, None

        @property
        def backend(self):  # built at first use: auto's TensorRT fell back to torch, which runs bf16
            self.dtype = torch.bfloat16
            return SimpleNamespace(name="torch")

    monkeypatch.setattr(evaluate_module, "fingerprint", lambda model: "weights")
    settings = evaluate_module._settings(["xvertnet"], {"xvertnet": SimpleNamespace(enhancer=Planned())}, ["entropy"],
                                         None, {})  # fmt: skip
    assert settings["methods"][0]["runs"] == {"device": "cuda", "precision": "bfloat16", "backend": "torch"}


def test_a_model_whose_tiles_miss_the_rois_is_warned_of_once_and_noted_and_one_at_512_is_not(tmp_path, seed, capsys):
    """A model trained at --roi-size 128 enhances two 128 px tiles (at 1024 rows) in spine mode, the
    512x290 ROIs are scored mostly on original pixels: it scored like identity, and nothing said so."""
    small = tiny_model_dir(tmp_path, seed)  # trained on 64 px ROIs: 1% of the ROIs filled
    torch.manual_seed(seed)
    large = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "large",
                       extra={"training": {"config": {"roi_size": 512}}})  # fmt: skip
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):  # two images: the warning is the method's, said once, not an image's
        Image.fromarray(chest_like(seed + k, 320, 300)).save(src / f"img{k}.png")
    methods = f"identity,mine:xvertnet={small},mine_bright:xvertnet_original_brightness={small},big:xvertnet={large}"
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", methods, "--metrics", "entropy",
                 "--device", "cpu", "--pictures", "1", "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    for label in ("mine", "mine_bright"):
        said = (f"method {label} (model {small}) was trained at --roi-size 64: its spine tiles fill 1% of the "
                "512x290 evaluation ROIs' pixels with the network's output")  # fmt: skip
        assert err.count(f"warning: {said}") == 1, err
        assert "evaluate a model trained at --roi-size 512 (the default)" in err
        assert f"- {said}" in (out / "summary.md").read_text()
    assert "method big" not in err and "method big" not in (out / "summary.md").read_text()


def test_the_roi_coverage_warning_waits_for_the_refusals(tmp_path, seed, capsys):
    """A mistyped input folder's error came after two long coverage warnings: they are said once
    the evaluation can start, before the scoring."""
    small = tiny_model_dir(tmp_path, seed)  # trained on 64 px ROIs
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), "-o", str(tmp_path / "r"), "--methods", f"identity,mine:xvertnet={small}",
                 "--metrics", "entropy", "--device", "cpu", "-q"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "no image" in err.lower() or "nothing" in err.lower(), err
    assert "--roi-size 64" not in err, err


def test_the_bar_says_which_image_and_step_is_running_before_the_first_is_done(tmp_path, seed, capsys, monkeypatch):
    """The bar counts images done, and stood at "0/N" for the minutes a CPU takes over the first
    large image with farbman and xvertnet, as if nothing ran. It now says the image and its step
    (reading it, each method, its scores) as they start, on the first image and after any slow one;
    a quick image's steps are not drawn (a line a step of 10,000 small images)."""
    from xvertfast.eval import protocol
    from xvertfast.eval.protocol import run_protocol

    monkeypatch.setattr(protocol, "STEP_SLOW_S", 3600.0, raising=False)  # every image quick, however loaded
    src = tmp_path / "in"
    src.mkdir()
    for name in ("first.png", "second.png"):
        Image.fromarray(chest_like(seed, 200, 190)).save(src / name)
    methods = {"sharp": lambda p, spine=None: p, "soft": lambda p, spine=None: p * 0.5}
    run_protocol([str(src)], methods, ["entropy"], pictures=0, progress=True, log=lambda m: None)
    frames = capsys.readouterr().err.split("\r")
    steps = [f for f in frames if " 0/2 " in f and "image 1/2 first.png: " in f]
    assert [f.split("image 1/2 first.png: ")[1].rstrip("]\n ") for f in steps] == [
        "reading, finding the spine", "sharp", "sharp, scoring its ROIs", "soft", "soft, scoring its ROIs"]
    assert not any("image 2/2" in f for f in frames)  # the first was quick: the count moves enough
    assert frames[-1].rstrip().endswith("img/s]")  # the last frame says no step


def _three_chests(tmp_path, seed, height, width):
    """The bar tests' folder: a.png, b.png and c.png, chest-like, so run_protocol scores three images."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(chest_like(seed, height, width)).save(src / name)
    return src


def test_a_slow_image_after_quick_ones_shows_its_steps_from_its_first_slow_one(tmp_path, seed, capsys, monkeypatch):
    """The steps were drawn only on the first image and after a slow one: the first full-size
    radiograph after small ones showed no step for its whole run. Its steps are drawn once it has
    taken protocol.STEP_SLOW_S (a fake clock: the method on the third image "takes" 3 s; the step
    timer a fake that never fires, as a real one did after 1 s of a loaded machine's real time)."""
    import types

    from xvertfast.eval import protocol
    from xvertfast.eval.protocol import run_protocol

    clock = [0.0]
    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(monotonic=lambda: clock[0],
                                                                perf_counter=lambda: clock[0]))  # fmt: skip
    timers_fired_by_hand(monkeypatch)  # (the clock is fake: a real timer's 1 s passed on a loaded machine)
    src = _three_chests(tmp_path, seed, 96, 90)
    calls = []

    def slow(p, spine=None):
        calls.append(1)
        clock[0] += 3.0 if len(calls) == 3 else 0.0
        return p

    methods = {"slow": slow, "sharp": lambda p, spine=None: p}
    run = run_protocol([str(src)], methods, ["entropy"], pictures=0, progress=True, log=lambda m: None)
    assert run.images == 3 and len(calls) == 3
    frames = capsys.readouterr().err.split("\r")
    shown = [f.split("image 3/3 c.png: ")[1].rstrip("]\n ") for f in frames if "image 3/3 c.png: " in f]
    assert shown == ["slow, scoring its ROIs", "sharp", "sharp, scoring its ROIs"], frames
    assert not any("image 2/3" in f for f in frames)  # the first was quick: the second's steps are not drawn


def test_the_step_during_which_an_image_turns_slow_is_drawn_as_it_does(tmp_path, seed, capsys, monkeypatch):
    """A step was drawn only as it started, and where an image turned slow only from its next step
    on: a method that took minutes on the first large image after small ones showed nothing of
    itself until it ended. A timer (a fake here, fired by the method as if protocol.STEP_SLOW_S had
    passed) draws the step running then; a quick image's timer is cancelled as it is done."""
    import types

    from xvertfast.eval import protocol
    from xvertfast.eval.protocol import run_protocol

    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(monotonic=lambda: 0.0, perf_counter=lambda: 0.0))
    timers = timers_fired_by_hand(monkeypatch)
    src = _three_chests(tmp_path, seed, 64, 60)
    calls = []

    def slow(p, spine=None):
        calls.append(1)
        if len(calls) == 3:  # the third image's method runs past STEP_SLOW_S: its image's timer fires
            assert timers and timers[-1].started and not timers[-1].cancelled
            timers[-1].function()
        return p

    run = run_protocol([str(src)], {"slow": slow, "sharp": lambda p, spine=None: p}, ["entropy"], pictures=0,
                       progress=True, log=lambda m: None)  # fmt: skip
    assert run.images == 3
    frames = capsys.readouterr().err.split("\r")
    shown = [f.split("image 3/3 c.png: ")[1].rstrip("]\n ") for f in frames if "image 3/3 c.png: " in f]
    assert shown == ["slow"], frames  # (drawn as it ran, not at the next step)
    assert not any("image 2/3" in f for f in frames)  # the second was quick: its timer never fired
    assert len(timers) == 2 and all(t.seconds == protocol.STEP_SLOW_S and t.cancelled for t in timers)


def test_a_step_being_drawn_as_the_run_ends_is_drawn_before_close_returns(monkeypatch):
    """close() (and an image's end) cancelled the step timer but did not wait for one already
    drawing: that draw could land after the run's last line. It is now waited for: the real alarms
    (protocol._STEP_ALARMS), due at once here (a fake clock: no time taken; STEP_SLOW_S tiny)."""
    import threading
    import types

    from xvertfast.eval import protocol

    monkeypatch.setattr(protocol, "time", types.SimpleNamespace(monotonic=lambda: 0.0))
    monkeypatch.setattr(protocol, "STEP_SLOW_S", 0.001)
    running, closed, ended, order = threading.Event(), threading.Event(), threading.Event(), []

    def draw():  # the alarm's call, under way as the run ends
        running.set()
        closed.wait(0.3)  # (long enough for a close() that does not wait to return first)
        order.append("drawn")
        ended.set()

    bar = types.SimpleNamespace(disable=False, set_postfix_str=lambda *a, **k: None, refresh=draw)
    step = protocol._StepShown(bar, 2)
    step.slow = False  # the image before was quick: this one's step waits for the alarm
    step.of(1, "b.png")("reading")
    assert running.wait(5)
    step.close()
    order.append("closed")
    closed.set()
    assert ended.wait(5)
    assert order == ["drawn", "closed"]  # (drawn before close returned, not after)


def timers_fired_by_hand(monkeypatch) -> list:
    """Puts a fake in place of the bar's step timer (protocol._StepShown.timer): one that never
    fires unless the test calls its ``function``. Returns the list of those made. The real one
    drew a quick image's step after 1 s of real time, whatever a test's fake clock said: on a
    loaded machine, a step the test says is not drawn."""
    from xvertfast.eval import protocol

    timers = []

    class Timer:  # threading.Timer's face, fired by hand
        def __init__(self, seconds, function):
            self.seconds, self.function, self.started, self.cancelled = seconds, function, False, False
            timers.append(self)

        def start(self):
            self.started = True

        def cancel(self):
            self.cancelled = True

    monkeypatch.setattr(protocol._StepShown, "timer", Timer, raising=False)
    return timers


def test_a_pacs_exports_presentation_state_is_a_note_not_a_failed_image(tmp_path, seed, capsys):
    # a PACS export's presentation states and reports beside its images were failed images: every
    # evaluation of an export exited 1, its failures listing them. Passed over now, said in a note
    from tests.io.test_read import no_image_dicom

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed, 200, 190)).save(src / "img0.png")
    no_image_dicom(src / "pr.dcm")
    args = ["--methods", "identity", "--metrics", "entropy", "--pictures", "0", "-q"]
    assert main(["evaluate", str(src), "-o", str(tmp_path / "report"), *args]) == 0
    said = capsys.readouterr()
    assert "1 image evaluated, 0 failed" in said.out, said.out
    assert f"skipped: {src / 'pr.dcm'}: DICOM file has no pixel data: a Grayscale Softcopy Presentation State " \
           "object (Modality PR), not an image" in (tmp_path / "report" / "summary.md").read_text()  # fmt: skip
