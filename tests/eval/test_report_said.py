"""What the report's page and the README say of the report, checked against what it holds.

The page turned a note's `code` into code only in the provenance section, so a note naming a
spec or an option showed its backticks raw; the README's list of the report's files left out
summary.csv and provenance.json.
"""

from __future__ import annotations

import pathlib

from xvertfast.eval.protocol import EvalRun
from xvertfast.eval.report import REPORT_FILES, write_report


def test_a_notes_backticks_become_code_on_the_page_after_escaping(tmp_path):
    run = EvalRun(["identity", "clahe"], ["entropy"], images=1)
    run.rows = [{"file": "a.png", "roi": roi, "method": m, "entropy": 5.0 + k} for k, m in enumerate(run.methods)
                for roi in ("upper", "lower")]  # fmt: skip
    run.notes = ["clahe: see `--methods clahe:clip=2` <b>"]
    write_report(run, str(tmp_path / "r"), "identity")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<p class='note'>clahe: see <code>--methods clahe:clip=2</code> &lt;b&gt;</p>" in page
    assert "`" not in page


def test_the_readme_names_every_file_of_the_report():
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    said = readme.split("## Evaluation")[1].split("The report folder holds")[1].split(". ")[0]
    assert [name for name in REPORT_FILES if name != "boxplots.png" and f"`{name}`" not in said] == []


def test_the_report_says_how_much_an_images_two_rois_overlap(tmp_path):
    """The default upper and lower ROIs (512 rows at 0.30 and 0.58 of a 1024-row image) share about
    44% of their pixels, and the report said nothing of it: a reader took an image's two ROIs for
    separate regions. It says their share, computed from the places the rows record."""
    from xvertfast.eval.report import _html, _overlap_said

    run = EvalRun(["identity"], ["entropy"], images=3)
    places = {"a.png": (51, 338), "b.png": (51, 338), "c.png": (100, 700)}  # c: centres given apart (none shared)
    run.rows = [{"file": file, "roi": roi, "method": "identity", "top": top, "left": 367, "height": 512, "width": 290,
                 "entropy": 5.0 + k}
                for file, tops in places.items() for k, (roi, top) in enumerate(zip(("upper", "lower"), tops))]  # fmt: skip
    said = "2 of 3 images' upper and lower ROIs overlap: they share 44% of their pixels (on each of the 2 images; "
    assert _overlap_said(run).startswith(said)  # (225 of 512 rows in common: 43.9%)
    write_report(run, str(tmp_path / "r"), "identity")
    assert said in (tmp_path / "r" / "summary.md").read_text()
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count(said.replace("'", "&#x27;")) == 1
    # with pictures drawn, "Side by side" said it again below the summary's paragraph: once on the page
    drawn = _html(run, (tmp_path / "r" / "summary.md").read_text(), ["grid/000_a.png"])
    assert "Side by side" in drawn and drawn.count(said.replace("'", "&#x27;")) == 1
    # most apart, one overlapping: said "they share 0% (the median over 3 images; from 0% to 44%)"
    run.rows = [dict(row, top={"lower": 700, "upper": 100}[row["roi"]]) if row["file"] == "b.png" else row
                for row in run.rows]  # fmt: skip
    assert _overlap_said(run).startswith("1 of 3 images' upper and lower ROIs overlap: they share 44% of their "
                                         "pixels (on the one image; ")  # fmt: skip
    overlapping = [row for row in run.rows if row["file"] == "a.png"]
    apart = [row for row in run.rows if row["file"] == "b.png"]
    run.rows = overlapping + [dict(row, file="d.png") for row in overlapping]
    assert _overlap_said(run).startswith("An image's upper and lower ROIs overlap: they share 44% of their pixels "
                                         "(on each of the 2 images; ")  # all of them overlap: as before
    run.rows = apart  # no overlap: nothing said
    assert _overlap_said(run) is None
    # places not recorded (rows of an older scores.csv): nothing said, though these ROIs overlap
    run.rows = [{k: v for k, v in row.items() if k != "top"} for row in overlapping]
    assert _overlap_said(run) is None
