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
