"""The throughput figures the README and the user guide quote are bench/RESULTS.md's, where each
is recorded with its device, date and command: a figure edited in a guide alone, or measured
and never recorded, fails here."""

from __future__ import annotations

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")
GUIDE = os.path.join(ROOT, "docs", "guide")
DOCUMENTS = ["README.md", *sorted(f"docs/guide/{n}" for n in os.listdir(GUIDE) if n.endswith(".md"))]

#: A figure "0.85 images/s", a range "0.62-0.64 images/s", or the last of a list "... 0.95 images/s".
THROUGHPUT = re.compile(r"(\d+\.\d+)(?:-(\d+\.\d+))? images/s")


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _figures(text: str) -> list[str]:
    """Each number of a throughput figure in ``text`` (both ends of a range)."""
    return [n for match in THROUGHPUT.finditer(" ".join(text.split())) for n in match.groups() if n]


def test_the_figures_are_found_in_a_sample():
    assert _figures("went at 0.85 images/s, earlier 0.62-0.64 images/s") == ["0.85", "0.62", "0.64"]


def _recorded() -> set[str]:
    """The numbers bench/RESULTS.md gives as throughputs: in a paragraph that says images/s, or in
    a table whose header row does (its cells say no unit)."""
    numbers = set()
    for block in re.split(r"\n\s*\n", _read("bench/RESULTS.md")):
        lines, header = block.splitlines(), None
        for line in lines:
            if not line.startswith("|"):
                header = None
            elif header is None:
                header = line  # (then its separator and rows)
            if header is not None and "images/s" in header:
                numbers.update(re.findall(r"\d+\.\d+", line))
        prose = [line for line in lines if not line.startswith("|")]
        if "images/s" in " ".join(prose):
            numbers.update(re.findall(r"\d+\.\d+", " ".join(prose)))
    return numbers


def test_a_throughput_is_recorded_in_its_paragraph_or_under_its_tables_header():
    assert {"0.85", "1.01", "0.24", "0.51"} <= _recorded()
    assert "0.228" not in _recorded()  # (a WLS solve's seconds, not a throughput)


def test_every_throughput_figure_the_documents_quote_is_recorded_in_results():
    results = _recorded()
    quoted = {document: _figures(_read(document)) for document in DOCUMENTS}
    assert sum(len(figures) for figures in quoted.values()) >= 5  # (the pattern still finds them)
    missing = {document: [n for n in figures if n not in results] for document, figures in quoted.items()}
    assert {document: figures for document, figures in missing.items() if figures} == {}
