"""summary.md's "best mean per metric" table and summary.csv's columns of it, on made-up scores:
the reader compared the means by eye, and the table after outlier removal compares means over
other ROIs per method, so a winner read off it was shaky."""

from __future__ import annotations

import csv

from xvertfast.eval.protocol import EvalRun
from xvertfast.eval.report import write_report


def _run(gains: dict[str, list[float]], metrics=("entropy", "brisque")) -> EvalRun:
    """Two ROIs an image; each method's scores: identity's plus its gain on that image, on every metric alike
    (so a method above identity on entropy is above it on BRISQUE too, where lower is better)."""
    images = len(next(iter(gains.values()), [0.0] * 4))  # (no method but identity: 4 images)
    run = EvalRun(["identity", *gains], list(metrics), images=images)
    for i in range(images):
        for k, roi in enumerate(("upper", "lower")):
            ref = 5.0 + 0.125 * (i - (images - 1) / 2) + 0.0625 * (k - 0.5)  # mean 5
            for method, gain in {"identity": 0.0, **{m: g[i] for m, g in gains.items()}}.items():
                run.rows.append({"file": f"f{i}.png", "roi": roi, "method": method, **{m: ref + gain for m in metrics}})
    return run


def _best(tmp_path, run: EvalRun, compare_to: str | None = "identity") -> tuple[dict[str, str], list[dict]]:
    """summary.md's best-per-metric rows by metric label, and summary.csv's rows."""
    out = write_report(run, str(tmp_path / "r"), compare_to)
    md = open(out["summary.md"], encoding="utf-8").read()
    table = md.split("## Best mean per metric (all ROIs)\n")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    with open(out["summary.csv"], encoding="utf-8") as f:
        return rows, list(csv.DictReader(f))


def test_the_best_mean_follows_each_metrics_direction_and_is_tested_against_the_next_best(tmp_path):
    # clahe above identity on every image, farbman a little less: 8 of 8 images the same way, p = 2/256
    run = _run({"clahe": [0.3 + 0.02 * i for i in range(8)], "farbman": [0.2 + 0.01 * i for i in range(8)]})
    rows, csv_rows = _best(tmp_path, run)
    # higher is better: clahe, against farbman (not against identity, the reference)
    assert rows["Entropy (bits)"] == "| Entropy (bits) | clahe 5.3700 | farbman 5.2350 | 0.0078 (n=8) | 0.0156* | clahe |"
    # lower is better: the same scores make identity the best, against farbman
    assert rows["BRISQUE (lower is better)"] == ("| BRISQUE (lower is better) | identity 5.0000 | farbman 5.2350 | "
                                                 "0.0078 (n=8) | 0.0156* | identity |")  # fmt: skip
    by = {(r["method"], r["metric"]): r for r in csv_rows}
    assert [by[(m, "entropy")]["rank_by_mean"] for m in run.methods] == ["3", "1", "2"]
    assert [by[(m, "brisque")]["rank_by_mean"] for m in run.methods] == ["1", "3", "2"]
    assert [(r["method"], r["metric"]) for r in csv_rows if r["clear_best"] == "True"] == [
        ("clahe", "entropy"), ("identity", "brisque")]
    assert by[("clahe", "entropy")]["next_best"] == "farbman"
    assert float(by[("clahe", "entropy")]["p_vs_next_by_image"]) == 2 / 256
    assert float(by[("identity", "brisque")]["p_vs_next_by_image_holm"]) == 2 * 2 / 256
    assert by[("farbman", "entropy")]["p_vs_next_by_image"] == "" and by[("farbman", "entropy")]["next_best"] == ""


def test_the_best_table_follows_the_all_rois_table_it_ranks(tmp_path):
    """A reader looks for the winner beside the means it ranks: the table came after the p-value tables."""
    run = _run({"clahe": [0.3 + 0.02 * i for i in range(8)]}, metrics=("entropy",))
    out = write_report(run, str(tmp_path / "r"), "identity")
    md = open(out["summary.md"], encoding="utf-8").read()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert [h.split(" (")[0] for h in headings[:4]] == ["## After z-score outlier removal", "## All ROIs",
                                                      "## Best mean per metric", "## p-values paired by ROI"]


def test_a_table_too_few_images_can_name_no_best_in_says_so(tmp_path):
    """6 images and 2 metrics: every image one way gives p = 2/64, Holm 0.0625: "no clear best" on
    each row was the test's reach, not the scores'. With 8 images (2/256 x 2) one can be named: no such line."""
    rows, _ = _best(tmp_path / "six", _run({"clahe": [0.3 + 0.02 * i for i in range(6)]}))
    assert [label for label, row in rows.items() if row.endswith(" | no clear best (p Holm ≥ 0.05) |")] == [
        "Entropy (bits)", "BRISQUE (lower is better)"], rows  # (each the best against the next, every image one way)
    said = open(tmp_path / "six" / "r" / "summary.md", encoding="utf-8").read().split("## Best mean")[1]
    assert "No row could name a best method here, whatever the scores: a test of 6 images (the most here) has no p " \
           "by image below 0.0312 (every image leaning one way), and Holm's method over 2 tests makes the smallest at " \
           "least 0.0625; more images can." in said  # fmt: skip
    _best(tmp_path / "eight", _run({"clahe": [0.3 + 0.02 * i for i in range(8)]}))
    assert "No row could" not in open(tmp_path / "eight" / "r" / "summary.md", encoding="utf-8").read()


def test_equal_means_are_no_clear_best_and_share_their_rank(tmp_path):
    # clahe's gains sum to 0: its mean is identity's, though it differs on every image
    run = _run({"clahe": [0.5, -0.5, 0.25, -0.25, 0.5, -0.5, 0.25, -0.25]}, metrics=("entropy",))
    rows, csv_rows = _best(tmp_path, run, None)  # (no method tested against a reference: ranked all the same)
    assert rows["Entropy (bits)"] == ("| Entropy (bits) | identity 5.0000 | clahe 5.0000 | n/a | n/a | "
                                      "no clear best (equal means) |")  # fmt: skip
    assert [r["rank_by_mean"] for r in csv_rows] == ["1", "1"]
    assert [r["clear_best"] for r in csv_rows] == ["False", "False"]


def test_a_better_mean_without_a_significant_test_is_no_clear_best(tmp_path):
    run = _run({"clahe": [1.0, -0.5, 0.625, -0.375, 0.25, -0.25, 0.125, 0.25]}, metrics=("entropy",))
    rows, csv_rows = _best(tmp_path, run)
    assert rows["Entropy (bits)"].startswith("| Entropy (bits) | clahe 5.1406 | identity 5.0000 | ")
    assert rows["Entropy (bits)"].endswith(" | no clear best (p Holm ≥ 0.05) |")
    assert [r["clear_best"] for r in csv_rows] == ["False", "False"]


def test_a_mean_won_by_one_image_is_no_clear_best_where_the_images_lean_the_other_way(tmp_path):
    """One image far above, nineteen a little below: the best mean over all ROIs, a significant test, but
    most images say the other method does better (the Hodges-Lehmann difference is below 0)."""
    run = _run({"clahe": [100.0] + [-0.1] * 19}, metrics=("entropy",))
    rows, csv_rows = _best(tmp_path, run)
    row = rows["Entropy (bits)"]
    assert row.startswith("| Entropy (bits) | clahe ") and " | identity " in row  # the all-ROIs means, not the cleaned
    assert row.endswith("* | no clear best (the images' differences lean the other way) |")
    assert [r["clear_best"] for r in csv_rows] == ["False", "False"]


def test_one_method_has_no_best_table(tmp_path):
    run = _run({}, metrics=("entropy",))
    out = write_report(run, str(tmp_path / "r"), None)
    assert "## Best mean" not in open(out["summary.md"], encoding="utf-8").read()


def test_rois_overlapping_alike_in_every_image_read_one_share_not_a_range():
    """225 and 226 rows of 512 in common (43.9% and 44.1%) read "from 44% to 44%"."""
    from xvertfast.eval.report import _overlap_said

    run = EvalRun(["identity"], ["entropy"], images=2)
    run.rows = [{"file": file, "roi": roi, "method": "identity", "top": top, "left": 367, "height": 512, "width": 290,
                 "entropy": 5.0}
                for file, tops in {"a.png": (51, 338), "b.png": (51, 337)}.items()
                for roi, top in zip(("upper", "lower"), tops)]  # fmt: skip
    assert _overlap_said(run).startswith("An image's upper and lower ROIs overlap: they share 44% of their pixels "
                                         "(on each of the 2 images; ")  # fmt: skip


def test_each_next_best_is_paired_once_not_once_a_metric(tmp_path, monkeypatch):
    """summarise_best paired every method's ROIs with the next best's for each metric anew (and
    with compare_to's, which the report had paired already): seconds a metric on a large archive.
    Here farbman is the next best on all three metrics: it is paired once, identity once."""
    import xvertfast.eval.report as report

    made, pairs = [], report._pairs

    def counted(columns, compare_to):
        made.append(compare_to)
        return pairs(columns, compare_to)

    monkeypatch.setattr(report, "_pairs", counted)
    run = _run({"clahe": [0.3 + 0.02 * i for i in range(8)], "farbman": [0.2 + 0.01 * i for i in range(8)]},
               metrics=("entropy", "tenengrad", "brisque"))  # fmt: skip
    rows, _ = _best(tmp_path, run)
    assert rows["BRISQUE (lower is better)"].startswith("| BRISQUE (lower is better) | identity 5.0000 | farbman ")
    assert sorted(made, key=str) == ["farbman", "identity"]
