"""summary.md's numbers as a reader copies them: each one says what the value behind it says.

A p-value just under 0.05 was printed "0.0500" beside a test the tables mark `*` (p < 0.05),
which reads as a mark given at p = 0.05.
"""

from __future__ import annotations

import re

import numpy as np

from xvertfast.eval.protocol import EvalRun
from xvertfast.eval.report import write_report
from xvertfast.eval.stats import wilcoxon_p


def _signed_ranks(n: int, positive_sum: int) -> list[int]:
    """The differences 1..n, those whose ranks sum to ``positive_sum`` positive (largest first), the others negative."""
    signs, left = {}, positive_sum
    for rank in range(n, 0, -1):
        signs[rank] = 1 if rank <= left else -1
        left -= rank if rank <= left else 0
    assert left == 0
    return [signs[rank] * rank for rank in range(1, n + 1)]


def _summary(tmp_path, differences: list[int]) -> str:
    """summary.md of clahe against a constant identity, one ROI pair per difference (no outlier: the
    differences spread evenly), 2 ROIs an image."""
    run = EvalRun(["identity", "clahe"], ["entropy"], images=len(differences) // 2)
    for k, d in enumerate(differences):
        where = {"file": f"f{k // 2:03d}.png", "roi": ("upper", "lower")[k % 2]}
        run.rows += [{**where, "method": "identity", "entropy": 5.0}, {**where, "method": "clahe", "entropy": 5.0 + d / 1000}]
    write_report(run, str(tmp_path / "r"), "identity")
    return (tmp_path / "r" / "summary.md").read_text()


def _row(markdown: str, heading: str, method: str) -> list[str]:
    """The cells of ``method``'s row in the table under ``heading``."""
    table = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    line = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_a_p_value_just_under_a_mark_threshold_is_not_printed_as_the_threshold(tmp_path):
    differences = _signed_ranks(124, 4661)  # 124 pairs, signed-rank sum 4661: the normal approximation's p = 0.049992
    p = wilcoxon_p([d / 1000 for d in differences], [0.0] * 124)
    assert 0.04995 <= p < 0.05  # (what the rounding to 4 decimals turned into 0.0500)
    md = _summary(tmp_path, differences)
    cell = _row(md, "## After z-score outlier removal", "clahe")[0]
    assert cell.endswith("* (n=124)") and not cell.endswith("** (n=124)")  # marked: p < 0.05
    shown = _row(md, "## p-values paired by ROI", "clahe")[0]
    assert float(shown) < 0.05, shown  # was 0.0500
    assert re.fullmatch(r"0\.0499\d*", shown)


def test_a_metric_with_small_values_keeps_three_significant_digits_in_the_tables(tmp_path):
    """Tenengrad on a full-resolution radiograph's ROIs (3000 rows) is near 0.0008: at 4 decimals the
    table gave one significant digit, "0.0008 ± 0.0002" against "0.0011 ± 0.0003", the methods'
    difference rounded away. Entropy beside it keeps its 4 decimals."""
    run = EvalRun(["identity", "clahe"], ["entropy", "tenengrad"], images=6)
    for i in range(6):
        for k, roi in enumerate(("upper", "lower")):
            where = {"file": f"f{i}.png", "roi": roi}
            run.rows += [{**where, "method": "identity", "entropy": 6.5 + 0.05 * i, "tenengrad": 0.00061 + 0.00007 * i + 0.00003 * k},
                         {**where, "method": "clahe", "entropy": 7.0 + 0.04 * i, "tenengrad": 0.00093 + 0.00011 * i + 0.00002 * k}]  # fmt: skip
    write_report(run, str(tmp_path / "r"), "identity")
    md = (tmp_path / "r" / "summary.md").read_text()
    from xvertfast.eval.stats import describe

    for heading in ("## After z-score outlier removal", "## All ROIs"):
        for method in run.methods:
            entropy_cell, tenengrad_cell = _row(md, heading, method)
            _, mean, std = describe([r["tenengrad"] for r in run.rows if r["method"] == method])
            shown_mean, shown_std = re.match(r"([\d.]+) ± ([\d.]+)", tenengrad_cell).groups()
            assert abs(float(shown_mean) - mean) <= 0.005 * mean, (heading, method, tenengrad_cell)  # was 0.0008 for 0.000812
            assert abs(float(shown_std) - std) <= 0.05 * std, (heading, method, tenengrad_cell)
            assert len(shown_mean.split(".")[1]) == len(shown_std.split(".")[1])  # one rounding for both
            assert re.match(r"\d\.\d{4} ± 0\.\d{4}\D", entropy_cell), entropy_cell  # unchanged


def test_a_metric_has_the_same_decimals_in_both_tables(tmp_path):
    """An outlier that takes the mean under 0.01 in the table of all ROIs (0.00988, 5 decimals) and
    not in the one without it (0.0105, 4) gave the one column two roundings side by side."""
    run = EvalRun(["identity"], ["tenengrad"], images=6)
    values = [0.0105 + 0.0001 * (k % 3 - 1) for k in range(11)] + [0.003]
    run.rows = [{"file": f"f{k // 2}.png", "roi": ("upper", "lower")[k % 2], "method": "identity", "tenengrad": v}
                for k, v in enumerate(values)]  # fmt: skip
    write_report(run, str(tmp_path / "r"), None)
    md = (tmp_path / "r" / "summary.md").read_text()
    clean, every = (_row(md, heading, "identity")[0] for heading in ("## After z-score outlier removal", "## All ROIs"))
    assert clean.endswith("(n=11)") and every.endswith("(n=12)")  # the outlier is removed from one alone
    decimals = {len(re.match(r"0\.(\d+) ± ", cell).group(1)) for cell in (clean, every)}
    assert decimals == {5}, (clean, every)


def test_a_metric_whose_mean_is_near_zero_keeps_the_decimals_its_spread_needs(tmp_path):
    """BRISQUE can be negative (a cxr-dev CLAHE region scores -2.88): a method's regions at +-3
    averaged 0.0000333, and its smallest mean to 3 significant digits gave the whole column 7
    decimals, "18.6361138 ± 4.1178544". A cell's sd of units says 4 are enough, and the mean is
    written with them: "0.0000 ± 3.1334" (ef750b8 wrote it "3.3e-05 ± 3.1334", beside a
    "0.0000 ± 0.4858", as if the 3.3e-05 were data), its sign dropped where below 0 ("-0.0000")."""
    run = EvalRun(["identity", "clahe", "farbman"], ["brisque"], images=6)
    for i in range(6):
        for k, roi in enumerate(("upper", "lower")):
            where = {"file": f"f{i}.png", "roi": roi}
            spread = (-1) ** (i + k) * 3.0
            run.rows += [{**where, "method": "identity", "brisque": 14.0 + 1.3 * i + 0.7 * k},
                         {**where, "method": "clahe", "brisque": spread + 0.0004 * (i + k == 0)},
                         {**where, "method": "farbman", "brisque": spread - 0.0004 * (i + k == 0)}]  # fmt: skip
    write_report(run, str(tmp_path / "r"), "identity")
    md = (tmp_path / "r" / "summary.md").read_text()
    for heading in ("## After z-score outlier removal", "## All ROIs"):
        for method in run.methods:
            cell = _row(md, heading, method)[0]
            assert re.match(r"\d+\.\d{4} ± \d+\.\d{4}\D", cell), (heading, method, cell)
            if method != "identity":
                assert cell.startswith("0.0000 ± 3.1334"), (heading, method, cell)


def test_a_column_of_tiny_values_has_a_bounded_number_of_decimals(tmp_path):
    """Decimals grow to keep 3 significant digits only down to a scale of 1e-5 (MAX_DECIMALS, 7),
    not 12 for a column near 1e-9. A cell those 7 round whole to "0.0000000 ± 0.0000000", as if
    the metric were exactly 0, is written in scientific notation, both its numbers ("0" for a zero
    sd, and for a constant's sd of float noise; "n/a" for one ROI's); every other cell keeps the
    column's decimals: ef750b8 wrote each number alone that way, "0.0000200 ± 1.9e-09"."""
    run = EvalRun(["identity", "clahe", "farbman", "lone"], ["tenengrad"], images=6)
    values = {"identity": [1e-9 * (1.02 + 0.1 * k) for k in range(12)], "clahe": [-3e-8] * 12,
              "farbman": [2e-5 + 1e-9 * k for k in range(12)], "lone": [1.3e-9] + [float("nan")] * 11}  # fmt: skip
    run.rows = [{"file": f"f{k // 2}.png", "roi": ("upper", "lower")[k % 2], "method": method, "tenengrad": v}
                for method, column in values.items() for k, v in enumerate(column)]  # fmt: skip
    assert np.std(values["clahe"], ddof=1) > 0  # (numpy's sd of the constant is 6.9e-24: noise, said 0)
    write_report(run, str(tmp_path / "r"), None)
    md = (tmp_path / "r" / "summary.md").read_text()
    tiny, negative, small, lone = (_row(md, "## All ROIs", method)[0] for method in run.methods)
    assert tiny.startswith("1.6e-09 ± 3.6e-10 "), tiny
    assert negative.startswith("-3.0e-08 ± 0 "), negative
    assert small.startswith("0.0000200 ± 0.0000000 "), small
    assert lone == "1.3e-09 ± n/a (n=1)", lone
    assert "0.0000000 ± 0.0000000" not in md and "-0.0000000" not in md


def test_a_constant_column_reads_a_zero_sd(tmp_path):
    """numpy's sd of six 0.1s is 1.5e-17, not 0: ef750b8 printed it "0.1000 ± 1.5e-17", rounding
    noise as data. A cell the column's decimals show is written with them: "0.1000 ± 0.0000"."""
    run = EvalRun(["identity", "clahe"], ["tenengrad"], images=3)
    run.rows = [{"file": f"f{k // 2}.png", "roi": ("upper", "lower")[k % 2], "method": method, "tenengrad": value}
                for method, value in (("identity", 0.1), ("clahe", 0.3)) for k in range(6)]  # fmt: skip
    assert np.std([0.1] * 6, ddof=1) > 0
    write_report(run, str(tmp_path / "r"), None)
    md = (tmp_path / "r" / "summary.md").read_text()
    for heading in ("## After z-score outlier removal", "## All ROIs"):
        assert _row(md, heading, "identity")[0] == "0.1000 ± 0.0000 (n=6)", heading
        assert _row(md, heading, "clahe")[0] == "0.3000 ± 0.0000 (n=6)", heading
