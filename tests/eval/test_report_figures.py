"""What the report's figures show a reader: labels that fit, metric directions, keys to the marks."""

from __future__ import annotations

import numpy as np
import pytest

LONG = ["a" * 40, "b" * 40]  # labels may have 40 characters (baselines.get_method)


def _drawn(monkeypatch):
    """The figures the report draws, kept instead of saved."""
    from matplotlib.figure import Figure

    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: figures.append(fig))
    return figures


def _boxes(fig):
    """Window extents of the figure's drawn texts, after a draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _picture(methods, size=(64, 40)):
    from xvertfast.eval.protocol import ORIGINAL_PICTURE

    thumb, crop = np.full((80, 80), 128, np.uint8), np.full(size, 128, np.uint8)
    names = [ORIGINAL_PICTURE, *methods]
    return {"file": "chest.png", "boxes": [(10, 20, 42, 38), (40, 20, 72, 38)], "scale": 1.0,
            "thumbs": dict.fromkeys(names, thumb), "crops": dict.fromkeys(names, crop)}  # fmt: skip


def test_the_grids_long_method_names_fit_their_columns(tmp_path, monkeypatch):
    # two 40-character labels side by side ran into each other and past the figure's right edge
    from xvertfast.eval.report import _grid

    figures = _drawn(monkeypatch)
    _grid(_picture(LONG), LONG, str(tmp_path / "g.png"))
    fig = figures[0]
    renderer = _boxes(fig)
    width = fig.get_figwidth() * fig.dpi
    titles = [ax.title for ax in fig.axes[:3]]
    assert [t.get_text().replace("\n", "") for t in titles] == ["original", *LONG]
    extents = [t.get_window_extent(renderer) for t in titles]
    assert all(0 <= e.x0 and e.x1 <= width for e in extents), [(e.x0, e.x1, width) for e in extents]
    assert all(left.x1 < right.x0 for left, right in zip(extents, extents[1:])), [(e.x0, e.x1) for e in extents]


def _run(methods, metrics, images=4):
    from xvertfast.eval.protocol import EvalRun

    run = EvalRun(list(methods), list(metrics), images=images)
    for i in range(images):
        run.rows += [{"file": f"f{i}", "roi": "upper", "method": m, **{k: 0.5 + 0.1 * i + j for k in metrics}}
                     for j, m in enumerate(methods)]  # fmt: skip
    return run


def test_each_box_plot_says_which_way_is_better(tmp_path, monkeypatch):
    # only BRISQUE's panel said its direction; entropy, Tenengrad, LPC-SI and TMQI left the reader to know
    from xvertfast.eval.report import HIGHER_IS_BETTER, _boxplots

    figures = _drawn(monkeypatch)
    _boxplots(_run(["identity", "clahe"], list(HIGHER_IS_BETTER)), str(tmp_path / "b.png"))
    titles = {metric: ax.get_title() for metric, ax in zip(HIGHER_IS_BETTER, figures[0].axes)}
    for metric, higher in HIGHER_IS_BETTER.items():
        said = "higher is better" if higher else "lower is better"
        assert titles[metric].count(said) == 1 and ("higher" in titles[metric]) == higher, titles[metric]


@pytest.mark.parametrize("metrics", [["entropy"], ["entropy", "tenengrad", "lpc_si", "tmqi"]])
def test_the_box_plots_keep_their_plots_and_labels_with_long_method_names(tmp_path, monkeypatch, metrics):
    # two 40-character labels, rotated on one line each, took the whole figure: the plots shrank to a
    # sliver, the labels ran off its left edge and into each other
    from xvertfast.eval.report import _boxplots

    figures = _drawn(monkeypatch)
    methods = ["identity", *LONG, "xvertnet_original_brightness"]
    _boxplots(_run(methods, metrics), str(tmp_path / "b.png"))
    fig = figures[0]
    renderer = _boxes(fig)
    width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    for ax in fig.axes:
        assert ax.get_window_extent(renderer).height > height / 3  # the plot, not its labels, fills the panel
        labels = [label.get_window_extent(renderer) for label in ax.get_xticklabels()]
        assert all(0 <= e.x0 and e.x1 <= width and 0 <= e.y0 for e in labels), [(e.x0, e.x1, e.y0) for e in labels]
        assert all(a.x1 < b.x0 for a, b in zip(labels, labels[1:])), [(e.x0, e.x1) for e in labels]
    assert [t.get_text().replace("\n", "") for t in fig.axes[0].get_xticklabels()] == [f"{m}n=4" for m in methods]


def test_summary_md_says_what_its_cells_and_marks_are(tmp_path):
    # a researcher pasting the table could not tell sd from standard error, nor that a mark (two-sided)
    # also stands beside a method significantly worse than the reference
    from xvertfast.eval.report import write_report

    run = _run(["identity", "clahe"], ["entropy", "brisque"], images=8)
    md = open(write_report(run, str(tmp_path / "r"), "identity")["summary.md"]).read()
    assert "Cells: mean ± sample standard deviation (n − 1) over the ROIs, n = how many ROIs have a value." in md
    assert "Higher is better, except for BRISQUE." in md
    assert "A mark says the method differs from identity, better or worse (compare the means)" in md
    alone = open(write_report(_run(["identity"], ["entropy"]), str(tmp_path / "alone"), None)["summary.md"]).read()
    assert "sample standard deviation" in alone and "A mark" not in alone and "BRISQUE" not in alone


def test_a_grid_says_what_its_boxes_and_bottom_row_are(tmp_path, monkeypatch):
    # opened alone (a slide, a paper's figure), a grid's green boxes and zoomed crops were unexplained,
    # and a small image's 70 x 40 ROI looked like any other
    from xvertfast.eval.report import _grid

    figures = _drawn(monkeypatch)
    _grid(_picture(["clahe"], size=(70, 40)), ["clahe"], str(tmp_path / "g.png"))
    fig = figures[0]
    said = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "green boxes: the two evaluation ROIs" in said and "bottom row: the upper ROI" in said, said
    assert [ax.get_title() for ax in fig.axes[2:]] == ["upper ROI, 70×40 px, 8-bit"] * 2
    renderer = _boxes(fig)
    assert all(t.get_window_extent(renderer).y0 >= 0 for t in fig.texts)


def test_a_grid_title_breaks_a_label_after_its_underscore(tmp_path, monkeypatch):
    # textwrap broke "xvertnet_original_brightness" inside a word: "xvertnet_original_brig" / "htness"
    from xvertfast.eval.report import _grid

    figures = _drawn(monkeypatch)
    methods = ["xvertnet_original_brightness", "vendor-method_v2.1-final-candidate"]
    _grid(_picture(methods), methods, str(tmp_path / "g.png"))
    titles = [ax.get_title() for ax in figures[0].axes[1:3]]
    assert titles == ["xvertnet_original_\nbrightness", "vendor-method_v2.1-\nfinal-candidate"], titles


def test_the_box_plots_stay_readable_on_the_report_page_with_many_methods_and_metrics(tmp_path, monkeypatch):
    # one row of panels: 6 methods and 5 metrics made a figure 29 in (3,200 px) wide, which report.html
    # (1,400 px at most) shrank to 44%, its 8 pt labels to under 4 pt
    from xvertfast.eval.report import HIGHER_IS_BETTER, _boxplots

    figures = _drawn(monkeypatch)
    metrics = [m for m in HIGHER_IS_BETTER if m != "tmqi_paper_compat"]
    methods = ["identity", "clahe", "farbman", "xvertnet", "xvertnet_original_brightness", "vendor"]
    _boxplots(_run(methods, metrics), str(tmp_path / "b.png"))
    fig = figures[0]
    assert fig.get_figwidth() <= 20  # 8 pt text stays over 5 pt at 1,400 px
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "Entropy (bits)", "Tenengrad, mean(Gx²+Gy²)", "LPC-SI", "TMQI Q", "BRISQUE"]  # every panel, no empty one
    renderer = _boxes(fig)
    extents = [ax.get_tightbbox(renderer) for ax in fig.axes]
    assert not any(a.overlaps(b) for i, a in enumerate(extents) for b in extents[i + 1:])


def test_the_box_plots_say_what_their_circles_are(tmp_path, monkeypatch):
    # the circles (matplotlib's points beyond 1.5 IQR) were unexplained under a title about outlier
    # removal: a reader took them for the protocol's ±1.96 σ outliers, another set
    from xvertfast.eval.report import _boxplots

    figures = _drawn(monkeypatch)
    _boxplots(_run(["identity", "clahe"], ["entropy"]), str(tmp_path / "b.png"))
    title = figures[0].get_suptitle().replace("\n", " ")
    said = "whiskers: the furthest values within 1.5 × IQR of it, circles: values beyond (not the ±1.96 σ outliers)"
    assert said in title, title


def test_the_box_plots_mark_the_method_the_others_are_tested_against(tmp_path, monkeypatch):
    """The tables' marks and differences are against one method (compare_to, the first xvertnet by default),
    and the box plots drew it as any other: which one it was, a reader of the figure could not tell. Its
    box is blue and labelled reference, the title says so; a report with no test marks none."""
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from xvertfast.eval.report import write_report

    figures, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kwargs: (figures.append(fig), save(fig, *args, **kwargs)))
    run = _run(["identity", "clahe", "farbman"], ["entropy", "tenengrad"])
    for compare_to in ("clahe", None):
        write_report(run, str(tmp_path / str(compare_to)), compare_to)
    (tested, untested) = figures
    said = "blue, labelled reference: clahe, the method the others are tested against"
    assert said in tested.get_suptitle().replace("\n", " ") and "reference" not in untested.get_suptitle()
    for fig, reference in ((tested, "clahe"), (untested, None)):
        for ax in fig.axes:
            labels = {t.get_text().split("\n")[0]: (t.get_text(), to_hex(t.get_color())) for t in ax.get_xticklabels()}
            assert [m for m, (text, _) in labels.items() if "\nreference\n" in text] == ([reference] if reference else [])
            blue = [line for line in ax.lines if to_hex(line.get_color()) == "#1f77b4"]  # (box, whiskers, caps)
            assert ({round(float(np.mean(line.get_xdata()))) for line in blue}, len(blue)) == (
                ({2}, 5) if reference else (set(), 0)), [line.get_xdata() for line in blue]
            assert [m for m, (_, colour) in labels.items() if colour == "#1f77b4"] == ([reference] if reference else [])


def test_summary_md_names_the_metrics_alike_in_every_table(tmp_path):
    # the p-value table's columns were the --metrics keys (lpc_si, tmqi), the tables above it the metrics' names
    from xvertfast.eval.report import write_report

    run = _run(["identity", "clahe"], ["lpc_si", "brisque"], images=8)
    md = open(write_report(run, str(tmp_path), "identity")["summary.md"]).read()
    wide = [line for line in md.splitlines() if line.startswith("| method |") and "| metric |" not in line]
    assert wide == ["| method | LPC-SI | BRISQUE (lower is better) |"] * 4, md  # means x 2, p-values x 2
    # the table for a paper, one test a row, names them alike in its metric column
    paper = md.split("| method | metric |")[1].split("\n\n")[0].splitlines()[2:]
    assert [row.split(" | ")[1] for row in paper] == ["LPC-SI", "BRISQUE (lower is better)"], md


def test_tenengrad_says_the_grey_scale_its_values_are_on(tmp_path, monkeypatch):
    # mean(Gx²+Gy²) is 65,025 times larger on 0..255 than on [0, 1]: 0.015 could not be compared with a
    # paper's value without knowing which
    from xvertfast.eval.report import _boxplots, write_report

    figures = _drawn(monkeypatch)
    _boxplots(_run(["identity", "clahe"], ["entropy", "tenengrad"]), str(tmp_path / "b.png"))
    entropy, tenengrad = (ax.get_title() for ax in figures[0].axes)
    assert "grey levels in [0, 1]" in tenengrad and "grey levels" not in entropy, (entropy, tenengrad)
    md = open(write_report(_run(["identity"], ["tenengrad"]), str(tmp_path / "r"), None)["summary.md"]).read()
    assert "Tenengrad is computed on the 8-bit ROI's grey levels scaled to [0, 1]." in md, md


def test_a_grid_says_under_its_title_what_the_run_warned_of_its_image(tmp_path, monkeypatch):
    # the grid of an image that looks inverted (cxr-dev's MONOCHROME1 PNG) showed its ROIs on a lung field and
    # said nothing of why: only summary.md's notes did. Its own warnings now stand under its title, in the room
    # the figure grows by, the images and their titles as large as without
    from xvertfast.eval.protocol import EvalRun, _image_notes, _missing_notes
    from xvertfast.eval.report import _grid, _picture_warnings

    inverted = "looks inverted (its central band is darker than the lung fields; a rotated or non-frontal view ...)"
    off = "its ROIs were placed by the spine search, ...; read it upright or give its centres (--rois FILE)"
    run = EvalRun(["clahe"], ["tmqi"])
    run.notes += _image_notes("chest.png", [f"chest.png: {inverted}", f"chest.png: {off}"])
    run.notes += _missing_notes("chest.png", [["upper", "tmqi: both sides must be at least 161 px", ["clahe"]],
                                              [None, "its output read as luminance", ["clahe"]]], ["clahe"], ["tmqi"])
    run.notes += _image_notes("b/chest.png", ["b/chest.png: RGB image converted to luminance (grayscale)"])
    picture = _picture(["clahe"])
    warnings = _picture_warnings(run, picture)
    assert warnings == [inverted, off]  # not a metric's note, nor a method's, nor another image's
    figures = _drawn(monkeypatch)
    _grid(picture, ["clahe"], str(tmp_path / "w.png"), None, warnings)
    _grid(picture, ["clahe"], str(tmp_path / "g.png"))
    warned, plain = figures
    red = [t for t in warned.texts if t.get_color() == "#a00"]
    assert [t.get_text().replace("\n", " ") for t in red] == [f"warning: {inverted} warning: {off}"]
    assert not [t for t in plain.texts if t.get_color() == "#a00"]
    renderer = _boxes(warned)
    said, title = red[0].get_window_extent(renderer), warned._suptitle.get_window_extent(renderer)
    columns = [ax.title.get_window_extent(renderer) for ax in warned.axes[:2]]
    assert 0 <= said.x0 and said.x1 <= warned.get_figwidth() * warned.dpi and said.y1 < title.y0
    assert all(said.y0 > column.y1 for column in columns), (said, columns)
    _boxes(plain)
    sizes = [[size for ax in fig.axes for size in (ax.get_position().width * fig.get_figwidth(),
                                                     ax.get_position().height * fig.get_figheight())]
             for fig in figures]  # (inches)  # fmt: skip
    assert sizes[0] == pytest.approx(sizes[1]) and warned.get_figheight() > plain.get_figheight()


@pytest.mark.parametrize("name", ["scan$1$.png", "a$_$b.png", "caf\udce9$\\x$.png"])
def test_a_grid_draws_a_file_name_with_two_dollar_signs_as_written(tmp_path, monkeypatch, name):
    # matplotlib reads what stands between two $ as mathtext: scan$1$.png was titled "scan1.png", and a$_$b.png
    # (or a share's \\srv\c$\x$.png) raised a ParseException, the report failing; a warning naming it alike
    from xvertfast.eval.report import _grid

    figures = _drawn(monkeypatch)
    _grid({**_picture(["clahe"]), "file": name}, ["clahe"], str(tmp_path / "g.png"), None, [f"{name} $_$"])
    fig = figures[0]
    _boxes(fig)  # drawn
    from matplotlib.cbook import is_math_text

    shown = name.replace("\udce9", "\ufffd")
    red = [t for t in fig.texts if t.get_color() == "#a00"]
    assert fig._suptitle.get_text() == shown and [t.get_text() for t in red] == [f"warning: {shown} $_$"]
    assert not any(t.get_parse_math() and is_math_text(t.get_text()) for t in [fig._suptitle, *red])  # as written
