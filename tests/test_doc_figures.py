"""The throughput figures the README and the user guide quote are bench/RESULTS.md's, where each
is recorded with its device, date and command: a figure edited in a guide alone, or measured
and never recorded, fails here."""

from __future__ import annotations

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")
GUIDE = os.path.join(ROOT, "docs", "guide")
DOCUMENTS = ["README.md", *sorted(f"docs/guide/{n}" for n in os.listdir(GUIDE) if n.endswith(".md"))]

#: A quantity (a number, a range "0.62-0.64", a change "0.30 -> 0.15") and what follows it: its unit,
#: if it has one. Not a version (2.5.1, v1.2), nor a piece of a date or a size (2026-12-04, 1024^2).
QUANTITY = re.compile(r"(?<![\w.^-])(\d+(?:\.\d+)?(?:\s*(?:-|->|to)\s*\d+(?:\.\d+)?)*)(?!\.?\d)(?=(\S*\s?\S*))")
#: Units of what is not a throughput: seconds, a ratio (1.2x), a share, a size, a power, 1e-3.
OTHER_UNIT = re.compile(r"\s?(?:s|ms|min|h|hours?|minutes?|seconds?|days?|x|[KMGT]i?B|px|bits?|-bit)\b|%|\^|e[-+]?\d")


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``'s paragraphs and list items (each table row, code line or heading
    a passage of its own), code spans left out: an option's value is not a figure."""
    blocks, prose, fenced = [], [], False
    for line in text.splitlines():
        fence = line.lstrip().startswith("```")
        fenced ^= fence
        alone = fence or fenced or line.lstrip().startswith(("#", "|"))
        if alone or not line.strip() or re.match(r"\s*(?:[-*+]|\d+\.)\s", line):  # (a list item starts)
            blocks.append(" ".join(prose))
            prose = []
        (blocks if alone else prose).append(line)
    blocks.append(" ".join(prose))
    passages = [" ".join(re.sub(r"`[^`]*`", "``", block).split()) for block in blocks]
    return [sentence for passage in passages for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z(\[])", passage)]


def _figures(text: str) -> list[str]:
    """Each number of ``text`` that is a throughput (both ends of a range): every number with no
    other unit in a sentence that speaks of images/s; an "about 1.0" too: quote the figures recorded."""
    return [number for sentence in _sentences(text) if "images/s" in sentence
            for match in QUANTITY.finditer(sentence) if not OTHER_UNIT.match(match.group(2))
            for number in re.findall(r"\d+\.\d+", match.group(1))]  # fmt: skip


def test_the_figures_are_found_in_a_sample():
    text = """# Speed 1.5
- went at 0.85 images/s in fp32 and 1.01 with `--precision 0.5`, ~1.2x (0.30 -> 0.15 s, 1.8-2x
  the stage), on 2026-12-04 with torch 2.5.1 at 1024^2; earlier 0.62-0.64, about 1.0 against
  0.95 images/s. Then 0.6 of a core was idle.
- 0.72-0.73 with one worker against 0.67-0.68 with 2 (6.7%)
  on 1.5e-3 of the cores, i.e. 0.20 images/s."""
    assert _figures(text) == ["0.85", "1.01", "0.62", "0.64", "1.0", "0.95", "0.72", "0.73", "0.67", "0.68", "0.20"]


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
    assert sum(len(figures) for figures in quoted.values()) >= 15  # (the patterns still find them)
    missing = {document: [n for n in figures if n not in results] for document, figures in quoted.items()}
    assert {document: figures for document, figures in missing.items() if figures} == {}
