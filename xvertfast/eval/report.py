"""The evaluation report: tables, box plots and side-by-side pictures, as files people can open.

``write_report(run, out_dir, compare_to)`` writes:

- ``scores.csv``: one row per image, ROI and method, every metric;
- ``summary.csv`` and ``summary.md``: per method and metric, n, mean +/- std without and with
  the z-score outlier removal, and the Wilcoxon p-value against ``compare_to`` (marks:
  ``*`` p < 0.05, ``**`` p < 0.01), paired by ROI as the protocol has it and, beside it,
  paired by image (:func:`summarise_by_image`), with what a paper reports of that test
  (:func:`summarise_differences`: Holm-adjusted p, the Hodges-Lehmann difference and its 95%
  interval), and per metric the best mean over all ROIs tested against the next best by image
  (:func:`summarise_best`); ``summary.md`` also lists the notes and the failed images;
- ``boxplots.png``: one panel per metric, one box per method;
- ``provenance.json``: how the report was made (xvertfast's version and code digest, each
  method's model digest, device and precision or its parameters, the metrics, the ROI source,
  the statistics, the command and the date), which ``summary.md`` and the page give in short;
- ``grid/<image>.png``: for a sample of images, the original (as identity, or a column of its own)
  and each method side by side with the evaluation ROIs drawn, and below them the upper ROI at
  full resolution; under its title, what the run warned of that image (looks inverted, its ROIs
  then maybe off the spine; a spine in doubt; what decoding changed);
- ``report.html``: all of the above on one page (relative links, opens from disk).

All of them or none, against an interruption or a failure: they are drawn in a hidden folder
and put in place together (:mod:`xvertfast.eval._report_files`).
"""

from __future__ import annotations

import collections
import csv
import html
import math
import numbers
import os
import re
import textwrap
import urllib.parse

import numpy as np

from xvertfast._plotting import as_written, pyplot, utf8_shown
from xvertfast._text import FAILED_LISTED, WARNED_LISTED, asked, count, first_listed, part_percent
from xvertfast.eval._report_files import (REPORT_FILES, ReportInterrupted, remove_unfinished_reports,
                                          replace_report)
from xvertfast.eval.journal import JOURNAL_FILE
from xvertfast.eval.protocol import ORIGINAL_PICTURE, ROI_NAMES, EvalRun, ImageNote
from xvertfast.eval.provenance import provenance_json, provenance_markdown, provenance_record
from xvertfast.eval.stats import (_CONFIDENCE, EXACT_MAX_PAIRS, describe, differences, hodges_lehmann, holm,
                                   image_means, outlier_mask, paired_clean, significance_mark, wilcoxon_p,
                                   Z_LIMIT)
from xvertfast.io.files import image_extension
from xvertfast.io.write import atomic_write

__all__ = ["summarise", "summarise_by_image", "summarise_differences", "summarise_best", "write_report",
           "remove_unfinished_reports", "ReportInterrupted", "summary_listing_at_most", "REPORT_FILES",
           "HIGHER_IS_BETTER"]  # fmt: skip

#: Direction of each metric (BRISQUE is a distortion score: lower is better).
HIGHER_IS_BETTER = {"entropy": True, "tenengrad": True, "lpc_si": True, "tmqi": True, "brisque": False,
                    "tmqi_paper_compat": True}  # fmt: skip
_LABELS = {"entropy": "Entropy (bits)", "tenengrad": "Tenengrad, mean(Gx²+Gy²)", "lpc_si": "LPC-SI", "tmqi": "TMQI Q",
           "brisque": "BRISQUE", "tmqi_paper_compat": "TMQI Q, paper's [0, 1] scale"}  # fmt: skip


#: The grey scale a metric's numbers are on, where they depend on it (SPEC: Tenengrad on the 8-bit ROI / 255).
_SCALES = {"tenengrad": "grey levels in [0, 1]"}


def _header(metric: str) -> str:
    """A table's column title: the one metric where lower is better says so."""
    return _LABELS[metric] + ("" if HIGHER_IS_BETTER[metric] else " (lower is better)")


def _fmt(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` decimals, "n/a" where missing; one they round to zero reads "0.0000",
    never "-0.0000" (a sign below the decimals shown is not one a reader can use)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


#: An sd below this fraction of its mean's size is the float arithmetic's noise on a constant
#: column (numpy's sd of six 0.1s is 1.5e-17, of twelve -3e-08s 6.9e-24), not a spread.
_SD_NOISE = 1e-12


def _mean_sd(mean: float, sd: float, digits: int) -> str:
    """A table cell's "mean ± sd" with its column's ``digits`` decimals, or both numbers in
    scientific notation (2 significant digits; "0" for a zero) where the decimals would round
    the whole cell to "0.0000000 ± 0.0000000" though it is not zero: a Tenengrad column near
    1e-9, where MAX_DECIMALS caps the decimals, read as if the metric were exactly 0. Only the
    whole cell: a mean alone near 0 beside a spread of units (BRISQUE) keeps the column's form."""
    shown = [v for v in (mean, sd) if v is not None and not math.isnan(v)]
    if not any(shown) or any(float(f"{v:.{digits}f}") != 0 for v in shown):
        return f"{_fmt(mean, digits)} ± {_fmt(sd, digits)}"
    if sd is not None and sd < _SD_NOISE * abs(mean):
        sd = 0.0
    return f"{_scientific(mean)} ± {_scientific(sd)}"


def _scientific(x: float) -> str:
    """``x`` to 2 significant digits in scientific notation, a zero "0", a missing one "n/a"."""
    return "n/a" if x is None or math.isnan(x) else "0" if x == 0 else f"{x:.1e}"


#: The most decimals a metric's column gets: 3 significant digits down to a scale of 1e-5.
MAX_DECIMALS = 7


def _column_decimals(cells) -> int:
    """The decimals of a metric's column in the tables, from its cells' (mean, sd): 4, or more where
    the smallest cell's scale (its mean's size, or its sd where larger) would keep fewer than 3
    significant digits, at most MAX_DECIMALS. Tenengrad on a 3000-row radiograph's ROIs is near
    0.0008: at 4 decimals "0.0008 ± 0.0002" against "0.0011 ± 0.0003", the methods' difference
    rounded away. The sd counts as a metric that can be negative (BRISQUE) may have a mean near 0
    with a spread of units: from the mean alone, 0.0000333 ± 3.13 gave its column 7 decimals."""
    scales = [max((abs(v) for v in cell if v is not None and v == v), default=0.0) for cell in cells]
    smallest = min((scale for scale in scales if scale > 0), default=None)
    if smallest is None:
        return 4
    return min(MAX_DECIMALS, max(4, 2 - math.floor(math.log10(smallest))))


def _fmt_p(p: float) -> str:
    """A p-value with 4 decimals, one below them as "< 0.0001" (not "0.0000": a p is never 0), and
    more where 4 would put it on the other side of a mark's threshold: 0.049992 printed "0.0500"
    beside a `*` (p < 0.05)."""
    if p != p:
        return _fmt(p)
    if p < 0.00005:
        return "< 0.0001"
    for digits in range(4, 17):
        text = _fmt(p, digits)
        if significance_mark(float(text)) == significance_mark(p):
            return text
    return text


def _columns(run: EvalRun) -> dict[str, tuple[list[tuple[str, str]], dict[str, np.ndarray]]]:
    """Per method: its rows' (file, roi) in a fixed order, and each metric's values in that order
    (the rows sorted once, not once per metric)."""
    columns = {}
    for method in run.methods:
        rows = sorted((r for r in run.rows if r["method"] == method), key=lambda r: (r["file"], r["roi"]))
        values = {m: np.array([r.get(m, math.nan) for r in rows], dtype=np.float64) for m in run.metrics}
        columns[method] = ([(r["file"], r["roi"]) for r in rows], values)
    return columns


def _pairs(columns: dict, compare_to: str | None) -> dict[str, tuple[np.ndarray | None, np.ndarray | None, str]]:
    """Per method besides compare_to: the indices into its columns and compare_to's of the
    (file, roi) both were scored on, and what each lacks of the other's ('' where none). A paired
    test takes the pairs both sides have, as a ROI's NaN is left out: one ROI missing among
    20 000 must not take a method's p-values away. (None, None, why) where they cannot be paired:
    fewer than 2 ROIs in common, or a ROI scored more than once."""
    if compare_to not in columns:
        return {}
    ref = columns[compare_to][0]
    where = {key: k for k, key in enumerate(ref)}
    pairs = {}
    for method, (keys, _) in columns.items():
        if method == compare_to:
            continue
        if keys == ref:  # (the same ROIs: a ROI scored twice by both pairs as it was scored)
            pairs[method] = (np.arange(len(keys)), np.arange(len(keys)), "")
            continue
        parts = []
        for who, has, other in ((method, ref, keys), (compare_to, keys, ref)):
            lacking = sorted(set(has) - set(other))
            if lacking:
                parts.append(f"{who} lacks {len(lacking)} of {method if who == compare_to else compare_to}'s, "
                             f"first {lacking[0][0]} ({lacking[0][1]} ROI)")  # fmt: skip
        said = "; ".join(parts)
        mine = [k for k, key in enumerate(keys) if key in where]
        twice = [who for who, scored in sorted(((method, keys), (compare_to, ref))) if len(set(scored)) < len(scored)]
        if twice:  # which side: the reference's own twice-scored ROI was said of every method
            why = f"{' and '.join(twice)}{' each' if len(twice) > 1 else ''} scored a ROI more than once"
            why += f"; {said}" if said else ""
            pairs[method] = (None, None, f"{method} is not tested against {compare_to}: they were not scored on the "
                                         f"same ROIs ({why})")  # fmt: skip
        elif len(mine) < 2:
            pairs[method] = (None, None, f"{method} is not tested against {compare_to}: they were scored on "
                                         f"{count(len(mine), 'ROI')} in common, too few to test ({said})")  # fmt: skip
        else:
            pairs[method] = (np.array(mine), np.array([where[keys[k]] for k in mine]),
                             f"{method} is tested against {compare_to} on the {len(mine)} ROIs both were scored on "
                             f"({said})")  # fmt: skip
    return pairs


def _paired_by_image(columns: dict, pairs: dict, compare_to: str | None, method: str,
                     metric: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:  # fmt: skip
    """``method``'s and compare_to's values of ``metric`` on the ROIs both were scored on
    (:func:`_pairs`), with each pair's image, as :func:`~xvertfast.eval.stats.image_means` takes
    them: the test by image and the Hodges-Lehmann difference slice them alike. None where the
    two cannot be paired."""
    mine, theirs, _ = pairs.get(method, (None, None, ""))
    if mine is None:
        return None
    return (columns[method][1][metric][mine], columns[compare_to][1][metric][theirs],
            [columns[method][0][k][0] for k in mine])  # fmt: skip


def summarise(run: EvalRun, compare_to: str | None, columns: dict | None = None, pairs: dict | None = None
              ) -> list[dict]:  # fmt: skip
    """One record per (method, metric): statistics raw and after outlier removal, p-values vs
    compare_to on the ROIs both were scored on (:func:`_pairs`; ``columns`` and ``pairs`` given
    where the report has them already)."""
    columns = _columns(run) if columns is None else columns
    pairs = _pairs(columns, compare_to) if pairs is None else pairs
    records = []
    for metric in run.metrics:
        ref = columns[compare_to][1][metric] if compare_to in columns else None
        for method in run.methods:
            v = columns[method][1][metric]
            n, mean, std = describe(v)
            # cleaned alone: the reference method's own row, and every row where nothing is compared
            n_clean, mean_clean, std_clean = describe(v[~outlier_mask(v)])
            rec = {"method": method, "metric": metric, "n": n, "mean": mean, "std": std, "compared_to": "",
                   "p_value": math.nan, "pairs_differing": math.nan, "n_clean": n_clean, "mean_clean": mean_clean,
                   "std_clean": std_clean, "p_value_clean": math.nan, "pairs_differing_clean": math.nan}  # fmt: skip
            mine, theirs, _ = pairs.get(method, (None, None, ""))
            if mine is not None:
                v, r = v[mine], ref[theirs]
                a, b = paired_clean(v, r)
                rec["n_clean"], rec["mean_clean"], rec["std_clean"] = describe(a)
                rec["compared_to"] = compare_to
                rec["p_value"], rec["pairs_differing"] = wilcoxon_p(v, r), differences(v, r).size
                rec["p_value_clean"], rec["pairs_differing_clean"] = wilcoxon_p(a, b), differences(a, b).size
            records.append(rec)
    return records


def summarise_by_image(run: EvalRun, compare_to: str | None, columns: dict | None = None,
                       pairs: dict | None = None) -> list[dict]:  # fmt: skip
    """Per (method, metric), in :func:`summarise`'s order: the Wilcoxon test against compare_to
    paired by image (:func:`~xvertfast.eval.stats.image_means`), raw and after outlier removal,
    with n images compared; NaN where nothing is compared. An image's two ROIs are not
    independent samples: this is the test a reviewer asks for beside the protocol's."""
    columns = _columns(run) if columns is None else columns
    pairs = _pairs(columns, compare_to) if pairs is None else pairs
    records = []
    for metric in run.metrics:
        for method in run.methods:
            rec = {"method": method, "metric": metric}
            for suffix in ("", "_clean"):
                rec.update({"n_images" + suffix: math.nan, "p_value_by_image" + suffix: math.nan,
                            "images_differing" + suffix: math.nan})  # fmt: skip
            paired = _paired_by_image(columns, pairs, compare_to, method, metric)
            if paired is not None:
                for suffix, clean in (("", False), ("_clean", True)):
                    a, b = image_means(*paired, clean=clean)
                    rec["n_images" + suffix], rec["p_value_by_image" + suffix] = a.size, wilcoxon_p(a, b)
                    rec["images_differing" + suffix] = differences(a, b).size
            records.append(rec)
    return records


def summarise_differences(run: EvalRun, compare_to: str | None, by_image: list[dict], columns: dict | None = None,
                          pairs: dict | None = None) -> list[dict]:  # fmt: skip
    """Per (method, metric), in :func:`summarise`'s order, what a paper gives beside the test paired
    by image (``by_image``: :func:`summarise_by_image`'s records), raw and after outlier removal:
    its p-value Holm-adjusted over the report's family (every test paired by image of the same
    kind, raw or clean, that has a p-value: methods x metrics), and the Hodges-Lehmann difference
    method - compare_to of the image means with its 95% interval
    (:func:`~xvertfast.eval.stats.hodges_lehmann`).
    A mark beside p says the method differs; the difference says by how much, which way."""
    columns = _columns(run) if columns is None else columns
    pairs = _pairs(columns, compare_to) if pairs is None else pairs
    records = [{"method": r["method"], "metric": r["metric"]} for r in by_image]
    for suffix, clean in (("", False), ("_clean", True)):
        adjusted = holm([r["p_value_by_image" + suffix] for r in by_image])
        for rec, p in zip(records, adjusted):
            rec["p_value_by_image_holm" + suffix] = float(p)
            paired = _paired_by_image(columns, pairs, compare_to, rec["method"], rec["metric"])
            found = (math.nan,) * 3 if paired is None else hodges_lehmann(*image_means(*paired, clean=clean))
            for key, value in zip(("hodges_lehmann_by_image", "ci95_low_by_image", "ci95_high_by_image"), found):
                rec[key + suffix] = value
    return records


def summarise_best(run: EvalRun, records: list[dict], columns: dict | None = None,
                   paired: dict | None = None) -> list[dict]:  # fmt: skip
    """Per metric, which method does best, for a reader who would otherwise compare the means by eye:
    the best mean over all ROIs (``records``: :func:`summarise`'s) in the metric's direction
    (:data:`HIGHER_IS_BETTER`), the next best, and the Wilcoxon test between the two paired by image
    on all ROIs (:func:`~xvertfast.eval.stats.image_means`), Holm-adjusted over the metrics. ``clear``
    where p Holm < 0.05 and the Hodges-Lehmann difference leans the same way as the means; a tie is
    never clear. Never ranked after outlier removal: there each method's mean is over other ROIs.
    ``paired``: :func:`_pairs` made already, by their reference (compare_to's); each other is made
    once, not once a metric (each pairs every method's ROIs with its own: seconds on a large archive)."""
    columns = _columns(run) if columns is None else columns
    paired = dict(paired or {})
    found = []
    for metric in run.metrics:
        rec = {"metric": metric, "best": "", "next_best": "", "best_mean": math.nan, "next_best_mean": math.nan,
               "n_images": math.nan, "p_value_by_image": math.nan, "hodges_lehmann_by_image": math.nan}  # fmt: skip
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        means = {r["method"]: sign * r["mean"] for r in records
                 if r["metric"] == metric and r["n"] and r["mean"] == r["mean"]}  # fmt: skip
        rec["ranks"] = {m: 1 + sum(other > mine for other in means.values()) for m, mine in means.items()}
        ordered = sorted(means, key=lambda m: -means[m])  # (stable: a tie keeps the methods' order)
        if len(ordered) >= 2:
            rec["best"], rec["next_best"] = ordered[:2]
            rec["best_mean"], rec["next_best_mean"] = sign * means[ordered[0]], sign * means[ordered[1]]
            if rec["next_best"] not in paired:
                paired[rec["next_best"]] = _pairs(columns, rec["next_best"])
            both = _paired_by_image(columns, paired[rec["next_best"]], rec["next_best"], rec["best"], metric)
            if both is not None and means[rec["best"]] > means[rec["next_best"]]:
                a, b = image_means(*both, clean=False)
                rec["n_images"], rec["p_value_by_image"] = a.size, wilcoxon_p(a, b)
                rec["hodges_lehmann_by_image"] = hodges_lehmann(a, b)[0] if a.size else math.nan
        found.append(rec)
    for rec, p in zip(found, holm([r["p_value_by_image"] for r in found])):
        rec["p_value_by_image_holm"] = float(p)
        sign = 1.0 if HIGHER_IS_BETTER[rec["metric"]] else -1.0
        rec["clear"] = bool(significance_mark(float(p))) and sign * rec["hodges_lehmann_by_image"] > 0
    return found


def _best_columns(records: list[dict], best: list[dict]) -> list[dict]:
    """summary.csv's columns of :func:`summarise_best`, on each (method, metric) row in ``records``' order:
    its rank by mean (1 the best; equal means share one; empty without a mean), and on the row of the
    best mean, the next best, the test between them by image and whether it is the clear best."""
    per_metric = {r["metric"]: r for r in best}
    rows = []
    for r in records:
        b = per_metric[r["metric"]]
        mine = r["method"] == b["best"]
        rows.append({"rank_by_mean": b["ranks"].get(r["method"], math.nan),
                     "next_best": b["next_best"] if mine else "",
                     "p_vs_next_by_image": b["p_value_by_image"] if mine else math.nan,
                     "p_vs_next_by_image_holm": b["p_value_by_image_holm"] if mine else math.nan,
                     "clear_best": mine and b["clear"]})  # fmt: skip
    return rows


def _best_lines(best: list[dict], decimals: dict) -> list[str]:
    """summary.md's table of :func:`summarise_best`: one row a metric, its last cell the clear best or
    "no clear best", and why not."""
    family = sum(r["p_value_by_image"] == r["p_value_by_image"] for r in best)
    legend = ("Per metric: the method with the best mean in the table of all ROIs (higher, or lower where the metric "
              "says so)")  # fmt: skip
    if family:
        legend += (", the next best, and the Wilcoxon signed-rank test between the two paired by image (all ROIs, an "
                   "image counted once by the mean of its ROIs; n: the images compared), its p adjusted by Holm's "
                   f"method over this table's {count(family, 'test')} (one a metric). Best: the method whose p Holm < "
                   "0.05 (marked `*`, `**` p Holm < 0.01) and whose Hodges–Lehmann difference by image leans the same "
                   "way as the means; else no clear best.")  # fmt: skip
    else:  # (the report says nowhere that a test was run where none was: each row says why there is none)
        legend += (" and the next best. No test between the two could be run here (each row says why), so no method "
                   "is named best.")  # fmt: skip
    lines = ["## Best mean per metric (all ROIs)", "",
             legend + " The table after outlier removal is not ranked: there each method's mean is over other ROIs.",
             "", "| metric | best mean | next best | p by image | p Holm | best |", "|---|---|---|---|---|---|"]
    for r in best:
        digits = decimals[r["metric"]]
        named = [f"{r[who]} {_fmt(r[who + '_mean'], digits)}" if r[who] else "n/a" for who in ("best", "next_best")]
        p, holm_p = r["p_value_by_image"], r["p_value_by_image_holm"]
        tested = f"{_fmt_p(p)} (n={r['n_images']})" if p == p else "n/a"
        if r["clear"]:
            verdict = r["best"]
        elif not r["next_best"]:
            verdict = "no clear best (fewer than 2 methods have a mean)"
        elif r["best_mean"] == r["next_best_mean"]:
            verdict = "no clear best (equal means)"
        elif r["n_images"] != r["n_images"]:
            verdict = f"no clear best (not tested: {r['best']} and {r['next_best']} were not scored on the same ROIs)"
        elif p != p:
            verdict = "no clear best (no test: fewer than 2 images that differ)"
        elif significance_mark(holm_p):
            verdict = "no clear best (the images' differences lean the other way)"
        else:
            verdict = "no clear best (p Holm ≥ 0.05)"
        lines.append(f"| {_header(r['metric'])} | {named[0]} | {named[1]} | {tested} | "
                     f"{_fmt_p(holm_p)}{significance_mark(holm_p)} | {verdict} |")  # fmt: skip
    return [*lines, "", *_best_out_of_reach(best)]


def _best_out_of_reach(best: list[dict]) -> list[str]:
    """The sentence under the best-mean table where too few images were tested for any row to name a
    method, whatever the scores: a test of n images has p >= 2 / 2^n (every image one way), and Holm
    multiplies the smallest p by the family's size. Six images and five metrics: 0.031 x 5 = 0.16, so
    "no clear best" on every row said nothing of the methods, and a reader took it for a finding."""
    tested = [r["n_images"] for r in best if r["p_value_by_image"] == r["p_value_by_image"]]  # (Holm's family)
    family, most = len(tested), max(tested, default=0)
    if not family or family * 2 / 2 ** most < 0.05:
        return []
    return [f"No row could name a best method here, whatever the scores: a test of {count(most, 'image')} (the most "
            f"here) has no p by image below {_fmt_p(2 / 2 ** most)} (every image leaning one way), and Holm's method "
            f"over {count(family, 'test')} makes the smallest at least {_fmt_p(min(1.0, family * 2 / 2 ** most))}; "
            "more images can.", ""]  # fmt: skip


#: How the report's text files are written: UTF-8, with a file name that is not (an archive's Latin-1
#: "caf\xe9.png", which Python holds as "caf\udce9.png") written as that escape, not failing the report.
_TEXT_FILE = {"encoding": "utf-8", "errors": "backslashreplace"}


def _write_csv(path: str, rows: list[dict], fields: list[str]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", newline="", **_TEXT_FILE) as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def _journal_named(journal: str | None, out_dir: str | None) -> str | None:
    """How summary.md names the run's ``journal``: summary.md is the file shared, so one beside it
    (in ``out_dir``, as evaluate keeps it) by its name alone, not by a path of the folder the run
    started in or of the machine; one elsewhere (a run made from Python) by its path."""
    if journal is None:
        return None
    beside = out_dir is not None and os.path.basename(journal) == JOURNAL_FILE and \
        os.path.realpath(os.path.dirname(journal)) == os.path.realpath(out_dir)
    return f"`{JOURNAL_FILE}` (beside this file)" if beside else f"`{journal}`"


def _rois_overlap(run: EvalRun) -> list[float]:
    """Per image whose two ROIs' places the rows give, the share of its upper and lower ROIs'
    pixels they have in common: their intersection over the smaller one. The default ROIs (512
    rows at 0.30 and 0.58 of a 1024-row image) share about 44%, so the two "samples" of an image are
    in part one: read from the rows, as centres given by hand (--rois) or an image's edge move them."""
    boxes: dict[str, dict[str, tuple]] = {}
    for row in run.rows:
        place = tuple(row.get(k) for k in ("top", "left", "height", "width"))
        if all(isinstance(v, numbers.Integral) for v in place):  # (an EvalRun made by hand may not say)
            boxes.setdefault(row["file"], {}).setdefault(row["roi"], place)
    shares = []
    for placed in boxes.values():
        if ROI_NAMES[0] in placed and ROI_NAMES[1] in placed:
            (t1, l1, h1, w1), (t2, l2, h2, w2) = placed[ROI_NAMES[0]], placed[ROI_NAMES[1]]
            rows = max(0, min(t1 + h1, t2 + h2) - max(t1, t2))
            columns = max(0, min(l1 + w1, l2 + w2) - max(l1, l2))
            smaller = min(h1 * w1, h2 * w2)
            if smaller > 0:
                shares.append(rows * columns / smaller)
    return shares


def _overlap_said(run: EvalRun) -> str | None:
    """The report's sentence on how much an image's two ROIs overlap (:func:`_rois_overlap`),
    beside the tables whose n counts ROIs: a reader took them for separate regions. None where no
    image's ROIs overlap (or their places are not in the rows). Where only some images' do, it
    says how many and their share alone: "share 0% (the median over 3 images; from 0% to 44%)"
    said they overlap and do not."""
    placed = _rois_overlap(run)
    shares = [share for share in placed if share > 0]
    if not shares:
        return None
    def percent(share: float) -> str:  # (whole percents, as the guide's 44%; near 0 or 1 never "0%" or "100%")
        return part_percent(share) if share < 0.01 or share > 0.99 else f"{share:.0%}"

    low, middle, high = min(shares), float(np.median(shares)), max(shares)
    if len(shares) == 1:
        where = "on the one image"
    elif percent(low) == percent(high):  # ("from 44% to 44%": shares apart by less than the percent shown)
        where = f"on each of the {len(shares)} images"
    else:
        where = f"the median over {len(shares)} images; from {percent(low)} to {percent(high)}"
    whose = ("An image's" if len(shares) == len(placed)
             else f"{len(shares)} of {len(placed)} images'")  # (the rest's ROIs apart: the share is the overlapping ones')
    return (f"{whose} upper and lower ROIs overlap: they share {percent(middle)} of their pixels ({where}; the "
            "part in common over the smaller ROI), so their two scores are not independent.")


def _markdown(run: EvalRun, records: list[dict], compare_to: str | None, by_image: list[dict] = (),
              pairs: dict | None = None, for_paper: list[dict] = (), journal: str | None = None,
              best: list[dict] = ()) -> str:  # fmt: skip
    by = {(r["method"], r["metric"]): r for r in records}
    images = {(r["method"], r["metric"]): r for r in by_image}
    # each method's own count where they differ (a run built in Python): the rows over the methods was none's
    scored = collections.Counter(r["method"] for r in run.rows)
    rois = {m: scored[m] for m in run.methods}
    said = (f"{count(next(iter(rois.values()), 0), 'ROI')} per method" if len(set(rois.values())) <= 1
            else "ROIs per method: " + ", ".join(f"{m} {n}" for m, n in rois.items()))  # fmt: skip
    lines = [f"# Evaluation: {count(run.images, 'image')}, {said}", ""]
    # what a table pasted into a paper needs beside it: sd or standard error, and which way is better
    lower = [_LABELS[m] for m in run.metrics if not HIGHER_IS_BETTER[m]]
    lines += ["Cells: mean ± sample standard deviation (n − 1) over the ROIs, n = how many ROIs have a value. "
              + ("Higher is better, except for " + ", ".join(lower) if lower else "Higher is better for every metric")
              + "." + (" Tenengrad is computed on the 8-bit ROI's grey levels scaled to [0, 1]."
                       if "tenengrad" in run.metrics else "")
              + f" Outliers: values beyond mean ± {Z_LIMIT:g} σ of a method's values, σ the same sample standard deviation "
              "(n − 1)." + (f" {overlap}" if (overlap := _overlap_said(run)) else ""), ""]  # fmt: skip
    if compare_to:  # (None where no method is tested against it: _draw decides, for the provenance block too)
        lines += [f"Wilcoxon signed-rank test of each method against **{compare_to}** (two-sided, paired by ROI; "
                  f"zero differences dropped; exact p up to {EXACT_MAX_PAIRS} pairs, ties at their midranks, else the "
                  "normal approximation with tie correction): `*` p < 0.05, `**` p < 0.01. The marks of the two "
                  "mean ± sd tables come from this test paired by ROI, the protocol's, one test per cell and no "
                  "correction for multiple tests: as an image's ROIs are not independent, they overstate the "
                  "evidence (the same tests by image, Holm-adjusted and with marks of their own, follow the "
                  f"tables). A mark says the method differs from {compare_to}, better or worse (compare the means); "
                  "each table's marks test its own ROIs.", ""]  # fmt: skip
    elif any(said for _, _, said in (pairs or {}).values()):  # a reference, but no method pairs with it
        for _, _, said in pairs.values():
            lines += [f"No significance test: {said}.", ""]
    elif len(run.methods) > 1:  # the p-values are what a reader looks for: say why there are none
        lines += ["No significance test: no method to test the others against (evaluate's default is the first "
                  f"xvertnet method, else identity; {asked('compare_to')} names another).", ""]  # fmt: skip
    removal = (f"each method paired with {compare_to} without the union of both's outliers, {compare_to} "
               "without its own" if compare_to else "each method without its own outliers")  # fmt: skip
    # a metric's decimals, one for both tables: its cells are compared across them
    decimals = {metric: _column_decimals([(by[(method, metric)]["mean" + suffix], by[(method, metric)]["std" + suffix])
                                          for method in run.methods for suffix in ("", "_clean")])
                for metric in run.metrics}  # fmt: skip
    for title, suffix in ((f"After z-score outlier removal (±{Z_LIMIT:g} σ; {removal})", "_clean"),
                          ("All ROIs (no outlier removal)", "")):  # fmt: skip
        lines += [f"## {title}", "", "| method | " + " | ".join(_header(m) for m in run.metrics) + " |",
                  "|---|" + "---|" * len(run.metrics)]  # fmt: skip
        for method in run.methods:
            cells = []
            for metric in run.metrics:
                r = by[(method, metric)]
                mark = significance_mark(r["p_value" + suffix]) if r["compared_to"] else ""
                if not r["n" + suffix]:  # a metric no ROI could have (TMQI on small images)
                    cells.append("n/a (n=0)")
                    continue
                digits = decimals[metric]
                cells.append(f"{_mean_sd(r['mean' + suffix], r['std' + suffix], digits)}{mark} "
                             f"(n={r['n' + suffix]})")  # fmt: skip
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    if best and len(run.methods) > 1:  # beside the all-ROIs table it ranks, not after the p-values (one method: no rank)
        lines += _best_lines(best, decimals)
    if compare_to:
        header = ["| method | " + " | ".join(map(_header, run.metrics)) + " |", "|---|" + "---|" * len(run.metrics)]
        lines += ["## p-values paired by ROI (after outlier removal)", "", *header]
        ps = [r["p_value_clean"] for r in records if r["compared_to"]]  # (one not compared: said below, why)
        for method in run.methods:
            if method != compare_to:
                lines.append(f"| {method} | " + " | ".join(_fmt_p(by[(method, m)]["p_value_clean"]) for m in run.metrics) + " |")
        lines.append("")
        tested = [r for r in images.values() if r["n_images"] == r["n_images"]]  # (NaN: not compared)
        if tested:
            lines += ["## p-values paired by image (after outlier removal)", "",
                      "The two ROIs of an image are not independent samples (one patient, exposure and processing), "
                      "so the p-values paired by ROI overstate the evidence: here each image counts once, by the mean "
                      "of its ROIs left after the outlier removal (an image with one ROI removed counts by the other), in the "
                      "same test; n: the images compared.", "", *header]  # fmt: skip
            for method in run.methods:
                if method != compare_to:
                    cells = [images[(method, m)] for m in run.metrics]
                    lines.append(f"| {method} | " + " | ".join(_fmt_p(r["p_value_by_image_clean"]) + (
                        f" (n={r['n_images_clean']})" if r["n_images"] == r["n_images"] else "") for r in cells) + " |")  # fmt: skip
            lines.append("")
            ps += [r["p_value_by_image_clean"] for r in tested]
        for mine, _, said in (pairs or {}).values():  # scored on other ROIs: tested on those in common, or why not
            if mine is not None and said:
                lines += [f"{said}.", ""]
        if any(p != p for p in ps):  # say why, rather than leave a bare n/a
            lines += ["n/a: no test, fewer than 2 pairs that differ.", ""]
        for mine, _, said in (pairs or {}).values():
            if mine is None:
                lines += [f"n/a: {said}.", ""]
        # 2 / 2^5 > 0.05; counted as the test counts them, not as n (equal pairs are dropped)
        few = [min(r["pairs_differing"], r["pairs_differing_clean"]) for r in records if r["compared_to"]]
        few += [min(r["images_differing"], r["images_differing_clean"]) for r in tested]
        if any(2 <= k < 6 for k in few):
            lines += ["With fewer than 6 pairs that differ (equal pairs are dropped) no p-value can be below 0.05 "
                      "(two-sided exact test): there the test cannot show a difference.", ""]  # fmt: skip
        if tested:  # after the notes above, which are the p-value tables' (a table of its own, with its legend)
            lines += _for_paper_lines(run, compare_to, images, for_paper)
    if run.notes:
        lines += ["## Notes: methods that leave part of the ROIs original, metrics not computed on some ROIs or "
                  "set there by a floor of the metric, and image warnings (decoding, polarity)", ""]
        listed = _notes_counted(run.notes)
        lines += [f"- {n}" for n in listed] + [""]
        if len(listed) < len(run.notes):
            lines += [f"Notes alike but for their image (or ROI) are one line each, counted, with the first "
                      f"{_EXAMPLES} as examples; " + (f"each image's own, in full, are in the journal {journal} "
                      "(a JSON line an image: `notes`, and `missing`: [ROI, reason, methods] for the metrics left out "
                      "or set by a floor, ROI null for what a method noted of reading its output)." if journal
                      else "every one is in the EvalRun's `notes`."), ""]
    if run.failed:
        lines += ["## Failed images", ""]
        failed = {path for path, _ in run.failed}
        noted = any(getattr(note, "file", None) in failed for note in run.notes)  # (the input's, read before)
        if len(run.methods) > 1:  # (one method's failure dropped the image from every row, unsaid)
            lines += ["Each is left out of every method's scores, so that the methods are compared on the same "
                      "images; where one method failed on it, that method is named."
                      + (" What was noted of them as they were read (decoding, polarity) is among the notes above."
                         if noted else ""), ""]  # fmt: skip
        lines += [f"- {reason}" for _, reason in run.failed] + [""]
    # each method's run, then the metrics' ("metrics 1.6 s" read as one more method's)
    secs = [f"{k} {v:.1f} s" for k, v in run.seconds.items() if k != "metrics"]
    if "metrics" in run.seconds:
        secs.append(f"scoring the ROIs {run.seconds['metrics']:.1f} s")
        if run.metrics_seconds_beyond:  # a rerun that dropped some: the journal keeps one sum an image
            secs[-1] += ", which includes earlier runs' scoring of methods or metrics this report leaves out"
    lines += [f"Time: {', '.join(secs)}.", ""]
    return "\n".join(lines)


#: The images (and ROIs) named as examples in a line of summary.md that counts alike notes.
_EXAMPLES = 3


def _notes_counted(notes: list[str]) -> list[str]:
    """``notes`` as summary.md lists them: those of one reason (:class:`ImageNote`'s) about
    several images or ROIs in one line where the first was, counting them, e.g. "20,000 ROIs of
    10,000 images: tmqi: ... (e.g. a.png upper, ...)"; each other note whole, in its place."""
    groups: dict[tuple, list[ImageNote]] = {}
    out: list = []  # each other note, and each reason's list of notes in its first one's place
    for note in notes:
        if not isinstance(note, ImageNote):
            out.append(note)
        elif (key := (note.roi is None, note.reason)) in groups:
            groups[key].append(note)
        else:
            out.append(groups.setdefault(key, [note]))
    return [_alike_counted(item) if isinstance(item, list) else item for item in out]


def _alike_counted(alike: list[ImageNote]) -> str:
    """Notes of one reason as summary.md's one line: the note where it is alone, else how many
    images (or ROIs of images) it concerns with the first few named."""
    note = alike[0]
    if len(alike) == 1:
        return note
    images = count(len({n.file for n in alike}), "image")
    where = images if note.roi is None else f"{count(len(alike), 'ROI')} of {images}"
    named = ", ".join(n.file if n.roi is None else f"{n.file} {n.roi}" for n in alike[:_EXAMPLES])
    return f"{where}{note.reason} (e.g. {named}{', ...' if len(alike) > _EXAMPLES else ''})"


def _signed(x: float) -> str:
    """A difference with its sign and 4 significant digits (Tenengrad's are near 0.01, BRISQUE's near 10)."""
    return "n/a" if x != x else f"{x:+.4g}"


def _for_paper_lines(run: EvalRun, compare_to: str, images: dict, for_paper: list[dict]) -> list[str]:
    """summary.md's table of what a paper gives of the tests paired by image after outlier removal:
    n, p, p Holm-adjusted over the report's family (with marks), the Hodges-Lehmann difference and
    its 95% interval; one row per test, each saying what it is (copied alone into a paper)."""
    rows = [(r, images[(r["method"], r["metric"])]) for r in for_paper]
    rows = [(r, test) for r, test in rows if test["n_images_clean"] == test["n_images_clean"]]  # (NaN: not compared)
    if not rows:
        return []
    family = sum(test["p_value_by_image_clean"] == test["p_value_by_image_clean"] for _, test in rows)
    methods = len({r["method"] for r, _ in rows})
    lines = ["## Paired by image, for a paper: difference, 95% interval and Holm-adjusted p (after outlier removal)",
             "", "Each row: the test paired by image above, n images. " + (
                 f"p Holm: its p-value adjusted by Holm's method over this report's family of {count(family, 'test')} "
                 f"paired by image after outlier removal ({count(methods, 'method')} × "
                 f"{count(len(run.metrics), 'metric')} against {compare_to}, those with a p-value; other methods or "
                 "metrics make another family), marked `*` p Holm < 0.05, `**` p Holm < 0.01 (the marks of the mean "
                 "± sd tables are the uncorrected test paired by ROI)." if family else
                 "p Holm: n/a, as no test paired by image has a p-value here (each has fewer than 2 images that "
                 "differ): no family to adjust over.")  # (a family of 0 tests, marked below thresholds none reaches)
             + " Difference: method − "
             f"{compare_to} on the image means, the Hodges–Lehmann estimate (the median of the Walsh averages "
             f"(dᵢ + dⱼ) / 2 of the differences) and its distribution-free {_CONFIDENCE:.0%} interval, the "
             f"signed-rank test inverted (exact up to {EXACT_MAX_PAIRS} images, else the normal approximation, as the "
             "test: the tests it inverts, of the differences minus a shift, have every image differing, so here an "
             "image whose means are equal counts, while the p-value drops it), so it leaves out 0 where that test's "
             "p < 0.05 (for differences without ties or zeros). No interval (n/a) below 6 images: none "
             f"reaches {_CONFIDENCE:.0%} there.", "",
             "| method | metric | n images | p by image | p Holm | difference (Hodges–Lehmann) | "
             f"{_CONFIDENCE:.0%} interval |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r, test in rows:
        holm_p = r["p_value_by_image_holm_clean"]
        low, high = r["ci95_low_by_image_clean"], r["ci95_high_by_image_clean"]
        interval = "n/a" if low != low else f"[{_signed(low)}, {_signed(high)}]"
        lines.append(f"| {r['method']} | {_header(r['metric'])} | {test['n_images_clean']} | "
                     f"{_fmt_p(test['p_value_by_image_clean'])} | {_fmt_p(holm_p)}{significance_mark(holm_p)} | "
                     f"{_signed(r['hodges_lehmann_by_image_clean'])} | {interval} |")  # fmt: skip
    return [*lines, ""]


#: The headings of summary.md's lists that grow with the images, the most entries of each that the
#: console shows and what they are called there (notes as warnings; failures, to act on, get more room).
#: A notes line may count many alike notes: what is left out is counted in lines, and said so.
_LISTS_CAPPED = {"## Notes": (WARNED_LISTED, "note line"), "## Failed images": (FAILED_LISTED, "failed image")}


def summary_listing_at_most(markdown: str, path: str) -> str:
    """summary.md's text (``markdown``, read from ``path``) for the console: its lists of notes and
    of failed images cut to their first entries, then how many more and that every one is in
    ``path``. Printed whole, a 2,000-image evaluation put 76 KB on stdout, a note line an image."""
    out: list[str] = []
    cap, items = None, []

    def put_items() -> None:
        if items:
            most, noun = cap
            out.extend(first_listed(items, most, noun, f"every one is in {path}", indent="- "))
            items.clear()

    for line in markdown.split("\n"):
        if line.startswith("## "):
            put_items()
            cap = next((c for heading, c in _LISTS_CAPPED.items() if line.startswith(heading)), None)
        elif cap is not None and line.startswith("- "):
            items.append(line)
            continue
        elif cap is not None and items and line.strip() and not line.startswith("#"):  # an entry of several lines
            items[-1] += "\n" + line
            continue
        else:
            put_items()
        out.append(line)
    put_items()
    return "\n".join(out)


def _wrap_label(name: str, width: int) -> str:
    """A method's label in lines of at most ``width`` characters, broken after a _ or - where it
    has one (xvertnet_ / original_ / brightness; not inside a version's v2.1), else anywhere."""
    lines = [""]
    for piece in re.findall(r"[^_-]*[_-]*", name):
        while piece:
            if lines[-1] and len(lines[-1]) + len(piece) > width:
                lines.append("")
            room = width - len(lines[-1])
            lines[-1] += piece[:room]
            piece = piece[room:]
    return "\n".join(lines)


#: The box plots' colour of the method the others are tested against (matplotlib's first, "tab:blue").
_REFERENCE_COLOUR = "#1f77b4"


def _boxplots(run: EvalRun, path: str, columns: dict | None = None, reference: str | None = None) -> None:
    """One panel a metric, one box a method; ``reference``, the method the others are tested against (None:
    no test), drawn in a colour of its own and labelled so: the tables' marks and differences are against it,
    and the plots said nothing of which one it is."""
    plt = pyplot()

    columns = _columns(run) if columns is None else columns
    n = len(run.metrics)
    width = max(3.2, 0.95 * len(run.methods))  # per panel: room for each box's label (10 characters wide)
    # rows of panels at most 18 in wide: report.html shows the figure at 1400 px at most, and one row of
    # 5 panels of 6 methods (29 in) came out with its 8 pt labels under 4 pt
    cols = max(1, min(n, int(18 // width)))
    rows = -(-n // cols)
    title = ("Spine ROIs (512×290 at 1024 rows, scaled with the image), all values (no outlier removal); "
             "line: median, triangle: mean, box: quartiles, whiskers: the furthest values within 1.5 × IQR of it, "
             f"circles: values beyond (not the ±{Z_LIMIT:g} σ outliers)")  # fmt: skip
    k = run.methods.index(reference) if reference in run.methods else None  # (its box in every panel)
    marks = ["reference\n" if i == k else "" for i in range(len(run.methods))]  # (under its name)
    if k is not None:
        title += f"; blue, labelled reference: {reference}, the method the others are tested against"
    title = textwrap.fill(title, int(13 * (width * cols + 0.5)))  # one panel is narrow: its title takes lines
    height = 3.8 * rows + 0.3 * (rows > 1) + 0.17 * title.count("\n")  # a 10 pt line: the plots keep their height
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 0.5, height), squeeze=False)
    for ax in axes.flat[n:]:  # the last row's empty places
        fig.delaxes(ax)
    for ax, metric in zip(axes.flat, run.metrics):
        data = [columns[m][1][metric] for m in run.methods]
        data = [d[np.isfinite(d)] for d in data]
        # n under each box: a metric undefined on some ROIs (TMQI on small images) has fewer values
        # wrapped to the room under its box, level: rotated on one line, 40-character labels took the figure
        labels = [f"{_wrap_label(m, 10)}\n{mark}n={len(d)}" for m, mark, d in zip(run.methods, marks, data)]
        drawn = ax.boxplot(data, tick_labels=labels, showmeans=True, whis=1.5)  # as the title says
        if k is not None:
            for line in [drawn["boxes"][k], *drawn["whiskers"][2 * k:2 * k + 2], *drawn["caps"][2 * k:2 * k + 2]]:
                line.set_color(_REFERENCE_COLOUR)
            ax.get_xticklabels()[k].set_color(_REFERENCE_COLOUR)
        if not any(len(d) for d in data):  # else an empty frame with a made-up axis
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color="#777")
            ax.set_yticks([])
        better = "↑ higher is better" if HIGHER_IS_BETTER[metric] else "↓ lower is better"
        scale = f"{_SCALES[metric]}; " if metric in _SCALES else ""  # 65,025 times larger on 0..255
        ax.set_title(f"{_LABELS[metric]}\n{scale}{better}", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _picture_titles(pictures: list[dict]) -> list[str]:
    """Each pictured image's title: its file name, or where two share one (a/chest.png and
    b/chest.png), its path below the folder all of them are in, so the grids tell them apart."""
    names = [os.path.basename(p["file"]) for p in pictures]
    if len(set(names)) == len(names):
        return names
    # whole paths: the inputs may mix relative and absolute paths (commonpath refuses the mix), and a
    # relative file of the current folder has no folder to share ('')
    paths = [os.path.abspath(p["file"]) for p in pictures]
    root = os.path.commonpath([os.path.dirname(path) for path in paths])
    return [os.path.relpath(path, root) for path in paths]


def _picture_warnings(run: EvalRun, picture: dict) -> list[str]:
    """What the run warned of a pictured image itself (looks inverted, its ROIs then maybe off the
    spine, a spine in doubt, what decoding changed), from its notes, for its grid: opened alone, the
    grid of cxr-dev's MONOCHROME1 PNG showed its ROIs on a lung field and said nothing of why."""
    return list(dict.fromkeys(note.reason.removeprefix(": ") for note in run.notes
                              if isinstance(note, ImageNote) and note.file == picture["file"] and note.roi is None
                              and not note.methods))  # fmt: skip


def _grid(picture: dict, methods: list[str], path: str, title: str | None = None, warnings: list[str] = ()) -> None:
    """One image's picture: ``warnings`` (:func:`_picture_warnings`) in red under its title."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    thumbs, crops = dict(picture["thumbs"]), dict(picture["crops"])
    if ORIGINAL_PICTURE not in thumbs and "identity" in thumbs and "identity" not in methods:
        # pictured with identity among the methods, which a rerun dropped: it showed the original
        thumbs[ORIGINAL_PICTURE], crops[ORIGINAL_PICTURE] = thumbs["identity"], crops["identity"]
    picture = {**picture, "thumbs": thumbs, "crops": crops}
    methods = [ORIGINAL_PICTURE, *methods] if ORIGINAL_PICTURE in picture["thumbs"] else methods
    k = len(methods)
    fig, axes = plt.subplots(2, k, figsize=(2.6 * k, 6.4), squeeze=False, gridspec_kw={"height_ratios": [1, 1.1]})
    s = picture["scale"]
    for col, name in enumerate(methods):
        ax = axes[0][col]
        ax.imshow(picture["thumbs"][name], cmap="gray", vmin=0, vmax=255)
        for top, left, bottom, right in picture["boxes"]:
            ax.add_patch(Rectangle((left * s, top * s), (right - left) * s, (bottom - top) * s, fill=False,
                                   edgecolor="#33dd33", linewidth=0.8))  # fmt: skip
        # wrapped to its 2.6 in column: a 40-character label ran into the next one's, or off the figure
        ax.set_title(_wrap_label("original" if name == ORIGINAL_PICTURE else name, 22), fontsize=9)
        crop = axes[1][col]
        crop.imshow(picture["crops"][name], cmap="gray", vmin=0, vmax=255)
        rows, cols = np.shape(picture["crops"][name])[:2]  # a small image's ROI is drawn as large: say its size
        crop.set_title(f"upper ROI, {rows}×{cols} px, 8-bit", fontsize=7)
        for a in (ax, crop):
            a.set_xticks([])
            a.set_yticks([])
    heading = as_written(fig.suptitle(title or os.path.basename(picture["file"]), fontsize=9))
    # the key the report page gives, on the figure itself: it is also shown on its own (a slide, a paper)
    key = ("green boxes: the two evaluation ROIs (512×290 at 1024 rows, scaled with the image); "
           "bottom row: the upper ROI as the metrics score it")  # fmt: skip
    key = textwrap.fill(key, int(16 * fig.get_figwidth()))
    fig.text(0.5, 0.005, key, ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.012 + 0.022 * (key.count("\n") + 1), 1, 1))  # a 7 pt line: 0.022 of 6.4 in
    if warnings:
        _warned_under_the_title(fig, heading, warnings)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _warned_under_the_title(fig, heading, warnings: list[str]) -> None:
    """``warnings`` in red under a laid-out grid's title (``heading``), each wrapped to its width
    (16 characters an inch of 7 pt text, as its key): the figure grows by their lines (0.117 in
    each), its rows kept where they are from its bottom, so that the images keep their size."""
    width = int(16 * fig.get_figwidth())  # ("--rois" and "non-frontal" kept whole)
    warned = "\n".join(textwrap.fill(f"warning: {w}", width, break_on_hyphens=False) for w in warnings)
    height = fig.get_figheight()
    grown = height + 0.117 * (warned.count("\n") + 1) + 0.08
    top, bottom = fig.subplotpars.top * height, fig.subplotpars.bottom * height  # (inches from the bottom)
    fig.set_figheight(grown)
    fig.subplots_adjust(top=top / grown, bottom=bottom / grown)
    heading.set_y(1 - (1 - heading.get_position()[1]) * height / grown)  # where it was, from the top
    as_written(fig.text(0.5, 1 - 0.3 / grown, warned, ha="center", va="top", fontsize=7, color="#a00"))


def _html(run: EvalRun, markdown_table: str, grids: list[str]) -> str:
    def md_table_to_html(md: str) -> str:
        out, in_table, section = [], False, ""
        for line in md.splitlines():
            if line.startswith("|"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                if all(re.fullmatch(r"-+", c) for c in cells):
                    continue
                tag = "th" if not in_table else "td"
                if not in_table:
                    out.append("<table>")
                    in_table = True
                out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
                continue
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("## "):
                section = line[3:]
                out.append(f"<h2>{html.escape(section)}</h2>")
            elif line.startswith("# "):
                out.append(f"<h1>{html.escape(line[2:])}</h1>")
            elif line.startswith("- "):  # failed images in red; notes (a metric left out, a warning) plain
                kind = "fail" if section.startswith("Failed") else "note"
                text = html.escape(line[2:])
                if kind == "note":  # a note's `code` (a spec, a file's option) and the provenance's command and
                    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)  # digests as code, as in summary.md
                out.append(f"<p class='{kind}'>{text}</p>")
            elif line.strip():  # markdown's **bold** and `code`: "against **identity**" read like a mark
                text = re.sub(r"\*\*([^*`]+)\*\*", r"<strong>\1</strong>", html.escape(line))
                text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
                out.append(f"<p>{text}</p>")
        if in_table:
            out.append("</table>")
        return "\n".join(out)

    # a link is a URL: a file name's "#" or "?" would end its path there, so the picture went missing
    pictures = "\n".join(f"<figure><img src='{html.escape(urllib.parse.quote(g))}' alt='{html.escape(g)}'></figure>"
                         for g in grids)  # fmt: skip
    # (how much the ROIs overlap is said once, in the summary's paragraph above: md_table_to_html gives it)
    side_by_side = (f"<h2>Side by side</h2><p>Green boxes: the evaluation ROIs (512×290 at 1024 rows, scaled with the "
                    f"image). Bottom row: the upper ROI as the metrics see it (8-bit).</p>{pictures}"
                    if grids else "")  # (none asked for: --pictures 0)  # fmt: skip
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}"
             "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}.fail{color:#a00}")  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>xvertfast evaluation</title>"
            f"<style>{style}</style></head><body>{md_table_to_html(markdown_table)}"
            f"<h2>Distributions</h2><img src='boxplots.png' alt='box plots'>"
            f"{side_by_side}"
            f"<p>Files: <a href='scores.csv'>scores.csv</a>, <a href='summary.csv'>summary.csv</a>, "
            f"<a href='summary.md'>summary.md</a>, <a href='provenance.json'>provenance.json</a></p>"
            "</body></html>")  # fmt: skip


def write_report(run: EvalRun, out_dir: str, compare_to: str | None = None, *,
                 remove_unfinished: bool = False, provenance: dict | None = None,
                 call: str = "write_report()") -> dict[str, str]:  # fmt: skip
    """Writes every file of the module docstring into ``out_dir``, all or none; returns name -> path.
    Interrupted, raises :class:`ReportInterrupted` (a KeyboardInterrupt), saying which.
    ``remove_unfinished``: first removes what killed reports left there (see
    :func:`remove_unfinished_reports`; only for a caller that holds the folder's lock).
    ``provenance``: how the run was made, as :func:`~xvertfast.eval.evaluate.evaluate` records
    it (its settings, command, ...); the report adds its own part
    (:func:`~xvertfast.eval.provenance.provenance_record`). ``call``: the Python call that writes the
    report again, named by an error outside the CLI (evaluate gives its own: its caller never called this one)."""
    journal = _journal_named(run.journal, out_dir)
    return replace_report(out_dir, lambda folder: _draw(run, folder, compare_to, provenance, journal),
                          len(run.failed), remove_unfinished, call)  # fmt: skip


def _draw(run: EvalRun, folder: str, compare_to: str | None, provenance: dict | None = None,
          journal: str | None = None) -> list[str]:  # fmt: skip
    """Every file of the report into ``folder``; returns the grids' paths under it. ``journal``:
    how summary.md names the run's journal (:func:`_journal_named`)."""
    if run.pictures:  # (--pictures 0: no grid/ folder)
        os.makedirs(os.path.join(folder, "grid"), exist_ok=True)
    paths = {name: os.path.join(folder, name) for name in REPORT_FILES}
    fields = ["file", "roi", "method", "top", "left", "height", "width", *run.metrics]
    _write_csv(paths["scores.csv"], run.rows, fields)
    columns = _columns(run)
    pairs = _pairs(columns, compare_to)
    records = summarise(run, compare_to, columns, pairs)
    by_image = summarise_by_image(run, compare_to, columns, pairs)
    # the test by image in columns after the protocol's, on the same (method, metric) rows
    for_paper = summarise_differences(run, compare_to, by_image, columns, pairs)
    # then what a paper gives of that test: columns at the end, so a reader by column name is not disturbed
    # then which method does best a metric, on the rows of its methods (summary.md's table of it)
    best = summarise_best(run, records, columns, {compare_to: pairs})
    rows = [{**r, **i, **d, **b} for r, i, d, b in zip(records, by_image, for_paper, _best_columns(records, best))]
    _write_csv(paths["summary.csv"], rows, list(rows[0]) if rows else ["method", "metric"])
    # the method the others are tested against, if any can be paired with it: said so in the summary and in
    # its provenance (every other method scored on other ROIs: no test, whatever compare_to names)
    tested = compare_to if any(mine is not None for mine, _, _ in pairs.values()) else None
    md = _markdown(run, records, tested, by_image, pairs, for_paper, journal, best)
    made = provenance_record(run, tested, provenance)
    with atomic_write(paths["provenance.json"]) as tmp, open(tmp, "w", **_TEXT_FILE) as f:
        f.write(provenance_json(made))
    md += provenance_markdown(made)
    with atomic_write(paths["summary.md"]) as tmp, open(tmp, "w", **_TEXT_FILE) as f:
        f.write(md)
    _boxplots(run, paths["boxplots.png"], columns, tested)
    grids = []
    for k, (picture, title) in enumerate(zip(run.pictures, _picture_titles(run.pictures))):
        name = os.path.basename(picture["file"])
        stem = name[: len(name) - len(image_extension(name))]
        stem = utf8_shown(stem)  # a name the page can link
        rel = f"grid/{k:03d}_{stem}.png"
        _grid(picture, run.methods, os.path.join(folder, rel), title, _picture_warnings(run, picture))
        grids.append(rel)
    with atomic_write(paths["report.html"]) as tmp, open(tmp, "w", **_TEXT_FILE) as f:
        f.write(_html(run, md, grids))
    return grids
