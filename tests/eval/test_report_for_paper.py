"""What a paper needs beside the protocol's table: the test by image with Holm-adjusted p, the
Hodges-Lehmann difference and its interval, which test the marks come from, and why a score is
what a metric's floor made it."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image
from scipy.stats import wilcoxon

from tests.eval.test_evaluate import chest_like


def _run(images: int = 8):
    """Two ROIs an image, three methods, two metrics; values spread evenly (no outlier: an even
    spread stays within 1.73 sd), clahe above identity on every image, farbman on some."""
    from xvertfast.eval.protocol import EvalRun

    rng = np.random.default_rng(11)
    run = EvalRun(["identity", "clahe", "farbman"], ["entropy", "brisque"], images=images)
    base = rng.permutation(np.linspace(5.0, 6.0, images))
    for i in range(images):
        for k, roi in enumerate(("upper", "lower")):
            ref = base[i] + 0.05 * k
            gains = {"identity": 0.0, "clahe": 0.3 + 0.02 * i, "farbman": 0.01 * i - 0.031}
            run.rows += [{"file": f"f{i}.png", "roi": roi, "method": m, "entropy": ref + g, "brisque": 20 - 2 * ref - g}
                         for m, g in gains.items()]  # fmt: skip
    return run


def _image_differences(run, method: str, metric: str) -> np.ndarray:
    """method - identity per image, the means of its two ROIs, worked out here from the rows."""
    by = {}
    for r in run.rows:
        by.setdefault(r["file"], {}).setdefault(r["method"], []).append(r[metric])
    return np.array([np.mean(v[method]) - np.mean(v["identity"]) for _, v in sorted(by.items())])


def test_summary_csv_adds_holm_and_the_hodges_lehmann_difference_after_its_columns(tmp_path):
    from xvertfast.eval.report import write_report

    run = _run()
    with open(write_report(run, str(tmp_path), "identity")["summary.csv"]) as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    # the columns readers know stay first, in their order; the new ones follow
    assert header[:19] == ["method", "metric", "n", "mean", "std", "compared_to", "p_value", "pairs_differing",
                           "n_clean", "mean_clean", "std_clean", "p_value_clean", "pairs_differing_clean", "n_images",
                           "p_value_by_image", "images_differing", "n_images_clean", "p_value_by_image_clean",
                           "images_differing_clean"]  # fmt: skip
    tested = [r for r in rows if r["compared_to"]]
    assert len(tested) == 4  # the family: clahe and farbman x entropy and brisque
    p = {(r["method"], r["metric"]): float(r["p_value_by_image_clean"]) for r in tested}
    # Holm by hand: the i-th smallest of the 4 times (4 - i + 1), each at least the one before, at most 1
    running, holm = 0.0, {}
    for rank, key in enumerate(sorted(p, key=p.get)):
        running = max(running, min(1.0, (4 - rank) * p[key]))
        holm[key] = running
    for r in tested:
        key = (r["method"], r["metric"])
        assert float(r["p_value_by_image_holm_clean"]) == pytest.approx(holm[key], rel=1e-12), key
        d = _image_differences(run, *key)
        assert float(r["p_value_by_image_clean"]) == pytest.approx(wilcoxon(d, method="exact").pvalue, rel=1e-12)
        walsh = [(d[i] + d[j]) / 2 for i in range(d.size) for j in range(i, d.size)]
        assert float(r["hodges_lehmann_by_image_clean"]) == pytest.approx(np.median(walsh), rel=1e-12)
        # 8 images: P(T <= 3) = 5/256 <= 0.025 < P(T <= 4) = 7/256, so the 4th smallest and 4th largest
        assert float(r["ci95_low_by_image_clean"]) == pytest.approx(sorted(walsh)[3], rel=1e-12)
        assert float(r["ci95_high_by_image_clean"]) == pytest.approx(sorted(walsh)[-4], rel=1e-12)
        assert r["hodges_lehmann_by_image"] == r["hodges_lehmann_by_image_clean"]  # no outlier here
    reference = next(r for r in rows if r["method"] == "identity")
    assert reference["p_value_by_image_holm_clean"] == reference["hodges_lehmann_by_image_clean"] == ""


def test_summary_md_says_where_its_marks_come_from_and_gives_the_paper_table(tmp_path):
    from xvertfast.eval.report import write_report

    run = _run()
    paths = write_report(run, str(tmp_path), "identity")
    md = open(paths["summary.md"]).read()
    with open(paths["summary.csv"]) as f:
        rows = {(r["method"], r["metric"]): r for r in csv.DictReader(f)}
    # the protocol's table keeps its marks (by ROI) and its legend says so, and the sd both use
    assert "The marks of the two mean ± sd tables come from this test paired by ROI" in md
    assert "no correction for multiple tests" in md
    assert ("Outliers: values beyond mean ± 1.96 σ of a method's values, σ the same sample standard deviation "
            "(n − 1)") in md  # fmt: skip
    section = md.split("## Paired by image, for a paper: difference, 95% interval and Holm-adjusted p "
                       "(after outlier removal)")[1].split("\n## ")[0]  # fmt: skip
    assert "family of 4 tests paired by image after outlier removal (2 methods × 2 metrics against identity" in section
    assert "Hodges–Lehmann" in section and "method − identity" in section
    header = "| method | metric | n images | p by image | p Holm | difference (Hodges–Lehmann) | 95% interval |"
    assert header in section
    clahe = rows[("clahe", "entropy")]
    holm = float(clahe["p_value_by_image_holm_clean"])
    mark = "**" if holm < 0.01 else "*" if holm < 0.05 else ""
    low, high = float(clahe["ci95_low_by_image_clean"]), float(clahe["ci95_high_by_image_clean"])
    assert (f"| clahe | Entropy (bits) | 8 | {float(clahe['p_value_by_image_clean']):.4f} | {holm:.4f}{mark} | "
            f"{float(clahe['hodges_lehmann_by_image_clean']):+.4g} | [{low:+.4g}, {high:+.4g}] |") in section, section
    assert mark == "*" and low > 0  # clahe is above identity here, and the table shows it
    page = open(paths["report.html"]).read()
    heading = "Paired by image, for a paper: difference, 95% interval and Holm-adjusted p (after outlier removal)"
    assert f"<h2>{heading}</h2>" in page


def test_few_images_give_no_interval_and_say_why(tmp_path):
    from xvertfast.eval.report import write_report

    md = open(write_report(_run(images=5), str(tmp_path), "identity")["summary.md"]).read()
    section = md.split("## Paired by image, for a paper")[1].split("\n## ")[0]
    assert "No interval (n/a) below 6 images" in section
    assert all(line.endswith("| n/a |") for line in section.splitlines() if line.startswith("| clahe |"))


def test_the_p_value_tables_notes_stay_under_them_not_under_the_paper_table(tmp_path):
    """'n/a: no test' and 'fewer than 6 pairs' are said of the p-value tables: they come before the
    paper table's heading, under the p-values paired by image, and none is in the paper table's section."""
    from xvertfast.eval.report import write_report

    run = _run(images=5)  # 5 pairs: the fewer-than-6 note
    identity = {(r["file"], r["roi"]): r["entropy"] for r in run.rows if r["method"] == "identity"}
    for r in run.rows:
        if r["method"] == "farbman":  # no pair differs: no test, the n/a note
            r["entropy"] = identity[(r["file"], r["roi"])]
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    notes = ["n/a: no test, fewer than 2 pairs that differ.", "With fewer than 6 pairs that differ"]
    before, paper = md.split("## Paired by image, for a paper")
    by_image = before.split("## p-values paired by image (after outlier removal)")[1]
    assert all(note in by_image for note in notes), by_image
    section = paper.split("\n## ")[0]
    assert not any(note in section for note in notes), section


@pytest.mark.parametrize("document", ["README.md", "xvertfast/weights/MODEL_CARD.md"])
def test_the_quoted_holm_adjusted_p_is_what_the_shipped_scores_give(document):
    """The README and the model card quote the default model's entropy p by image (0.031) with its
    Holm adjustment over a report's tests by image: the shipped scores must give it, and no test
    below 0.05. Both say the shipped report holds that table: its summary.md must show it."""
    import os
    import re

    from tests.model.test_model_card import ROOT, _summary
    from xvertfast.eval.stats import holm

    by_image = _summary("scores.csv", "xvertnet", by_image=True)
    adjusted = holm([r["p_value_by_image_clean"] for r in by_image])
    tested = [p for p in adjusted if p == p]
    with open(os.path.join(ROOT, document)) as f:
        text = re.sub(r"\s+", " ", f.read())
    said = re.search(r"Holm-adjusted over the (\d+) tests by image of the shipped report \(.*?\) (?:it|entropy's p) is "
                     r"([\d.]+), and no test stays below 0\.05", text)  # fmt: skip
    assert said, f"the {document}'s Holm-adjusted p"
    assert int(said.group(1)) == len(tested) == 15
    entropy = [(r["method"], p) for r, p in zip(by_image, adjusted) if r["metric"] == "entropy" and p == p]
    assert [f"{p:.2f}" for _, p in entropy] == [said.group(2)] * 3 and min(tested) >= 0.05
    shipped = open(os.path.join(ROOT, "docs", "default-model", "summary.md")).read()
    table = shipped.split("## Paired by image, for a paper")[1].split("\n## ")[0]
    for method, p in entropy:  # the row the documents point to: p by image, then p Holm
        assert re.search(rf"^\| {method} \| Entropy \(bits\) \| 6 \| 0\.0312 \| {p:.4f} \|", table, flags=re.M), method


def test_a_tmqi_floored_to_structure_zero_is_noted_naming_the_image_and_roi(tmp_path, seed):
    """A TMQI of 0.067 among 0.8s (one level of the pyramid anti-correlated, counted as 0, so S = 0)
    came with no word, and outlier removal then dropped it from the mean unsaid."""
    from xvertfast.eval.protocol import run_protocol
    from xvertfast.eval.report import write_report

    src = tmp_path / "chest.png"
    Image.fromarray(chest_like(seed)).save(src)  # ROIs 320 x 181: TMQI is defined

    def inverted(pixels, spine=None):  # its output anti-correlated with the original at every level
        return 1.0 - pixels

    def kept(pixels, spine=None):
        return pixels

    run = run_protocol([str(src)], {"kept": kept, "inverted": inverted}, ["entropy", "tmqi"], pictures=0,
                       progress=False, log=lambda m: None)  # fmt: skip
    floored = [n for n in run.notes if "structural fidelity" in n]
    assert [n.split(": tmqi: ")[0] for n in floored] == [f"{src}, upper ROI (inverted)", f"{src}, lower ROI (inverted)"]
    scores = {(r["roi"], r["method"]): r["tmqi"] for r in run.rows}
    for note, roi in zip(floored, ("upper", "lower")):
        assert "which TMQI counts as 0: S = 0" in note and f"Q = {scores[(roi, 'inverted')]:.4g}" in note, note
    assert scores[("upper", "kept")] > 0.5 > scores[("upper", "inverted")]
    md = open(write_report(run, str(tmp_path / "r"), "kept")["summary.md"]).read()
    notes = md.split("## Notes")[1]
    for note in floored:  # whole, or with its twin counted in one line where both ROIs' read alike
        assert f"- {note}" in notes or f"- 2 ROIs of 1 image{note.reason} (e.g. {src} upper, {src} lower)" in notes
    assert not any(math.isnan(r["tmqi"]) for r in run.rows)  # a floor, not a score left out


def test_a_family_of_one_test_is_said_so(tmp_path):
    """One method and one metric against identity: the table's legend said 'family of 1 tests'."""
    from xvertfast.eval.protocol import EvalRun
    from xvertfast.eval.report import write_report

    whole = _run()
    run = EvalRun(["identity", "clahe"], ["entropy"], images=whole.images)
    run.rows = [{k: r[k] for k in ("file", "roi", "method", "entropy")} for r in whole.rows if r["method"] != "farbman"]
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    assert "family of 1 test paired by image after outlier removal (1 method × 1 metric against identity" in md, md


def test_a_family_of_no_test_is_not_said_to_be_adjusted(tmp_path):
    """One image: no test paired by image has a p-value, and the legend said its p Holm was 'adjusted
    by Holm's method over this report's family of 0 tests', marked * or ** below thresholds no cell reaches."""
    from xvertfast.eval.report import write_report

    md = open(write_report(_run(images=1), str(tmp_path), "identity")["summary.md"]).read()
    section = md.split("## Paired by image, for a paper")[1].split("\n## ")[0]
    assert "family of 0 tests" not in section
    assert ("p Holm: n/a, as no test paired by image has a p-value here (each has fewer than 2 images that differ): "
            "no family to adjust over.") in section, section  # fmt: skip
    assert "| clahe | Entropy (bits) | 1 | n/a | n/a |" in section  # the differences are still given
