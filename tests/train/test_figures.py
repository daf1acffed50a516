"""Training pictures: the kept epoch follows the loop's rule; curves and previews are written whole or not at all."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.train.test_loop import CONFIG, weights, write_images
from xvertfast.train import TrainConfig, train
from xvertfast.train.figures import JOINT_PHASE, kept_epoch, plot_curves, plot_preview, read_metrics
from xvertfast.train.loop import _load_checkpoint


def rows(stage, phases, train_losses, val_losses):
    return [{"stage": stage, "epoch": e + 1, "phase": p, "train_loss": t, "val_loss": v, "images_per_s": 10.0,
             "seconds": 1.0} for e, (p, t, v) in enumerate(zip(phases, train_losses, val_losses))]  # fmt: skip


def test_kept_epoch_is_the_first_best_of_the_joint_phase():
    phases = ["gc", "gc", JOINT_PHASE, JOINT_PHASE, JOINT_PHASE, JOINT_PHASE]
    # the GC phase's lower losses do not count: its loss has no feature term
    assert kept_epoch(rows(1, phases, [1] * 6, [0.1, 0.1, 0.5, 0.3, 0.4, 0.3])) == 4
    # no validation images: the training loss decides
    nan = float("nan")
    assert kept_epoch(rows(1, phases, [9, 9, 0.5, 0.6, 0.2, 0.4], [nan] * 6)) == 5


def test_kept_epoch_without_a_joint_phase_is_the_last_and_none_without_rows():
    assert kept_epoch(rows(2, ["gc"] * 3, [3, 1, 2], [3, 1, 2])) == 3
    assert kept_epoch([]) is None


def test_kept_epoch_names_the_weights_the_training_loop_kept(tmp_path):
    """Epoch by epoch (resumed runs), the final model's stages equal the checkpoints of the epochs
    kept_epoch names."""
    data = write_images(tmp_path / "data")
    config = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 1, "epochs_joint": 4, "patience": 10, "seed": 5})
    run = tmp_path / "run"
    per_epoch = {}
    for _ in range(2 * 5):
        train([str(data)], str(run), config, resume=True, progress=False, stop_after_epochs=1, log=lambda m: None)
        history = read_metrics(run / "metrics.csv")
        last = history[-1]
        per_epoch[(last["stage"], last["epoch"])] = _load_checkpoint(str(run / "checkpoint"), "cpu")["stage"]
    model = train([str(data)], str(run), config, resume=True, progress=False, log=lambda m: None)
    history = read_metrics(run / "metrics.csv")
    kept = {k: kept_epoch([r for r in history if r["stage"] == k]) for k in (1, 2)}
    assert any(kept[k] < 5 for k in (1, 2)), "premise: some stage keeps an epoch before its last"
    final = weights(model)
    for k in (1, 2):
        for name, value in per_epoch[(k, kept[k])].items():
            assert torch.equal(final[f"{k - 1}.{name}"], value), (k, name)


def test_plot_curves_draws_one_panel_per_stage(tmp_path):
    pytest.importorskip("matplotlib")
    phases = ["gc", "gc", JOINT_PHASE, JOINT_PHASE]
    history = rows(1, phases, [1, 0.5, 0.6, 0.4], [1, 0.6, 0.7, 0.5]) + rows(2, phases, [0.9, 0.3, 0.4, 0.3],
                                                                            [float("nan")] * 4)  # fmt: skip
    path = tmp_path / "curves.png"
    assert plot_curves(history, str(path), "run")
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] > 1.8 * im.size[1]  # two panels side by side
    assert os.listdir(tmp_path) == ["curves.png"]  # nothing else left behind


@pytest.mark.parametrize("run", ["run$1$", "a$_$b\udce9"])
def test_plot_curves_titles_a_run_folder_named_with_dollar_signs_as_written(tmp_path, monkeypatch, run):
    # the curves' title is the run folder's name: one with two $ was read as mathtext (run$1$ titled "run1",
    # a$_$b raised a ParseException in the middle of training), and one not UTF-8 stopped the drawing
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from matplotlib.cbook import is_math_text

    titles, savefig = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (titles.append(fig._suptitle), savefig(fig, *a, **k)))
    assert plot_curves(rows(1, ["gc"], [1.0], [math.nan]), str(tmp_path / "curves.png"), run)
    assert [t.get_text() for t in titles] == [run.replace("\udce9", "\ufffd")]
    assert not (titles[0].get_parse_math() and is_math_text(titles[0].get_text()))  # drawn as its characters
    with Image.open(tmp_path / "curves.png") as im:
        assert im.format == "PNG"


def test_plot_curves_without_matplotlib_draws_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    history = rows(1, ["gc"], [1.0], [math.nan])
    assert not plot_curves(history, str(tmp_path / "curves.png"))
    assert os.listdir(tmp_path) == []


def test_plot_preview_draws_a_row_per_roi(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    xp, out = rng.random((2, 32, 32)), rng.random((2, 32, 32))
    y = rng.normal(0, 0.05, (2, 32, 32))
    assert plot_preview(xp, y, out, str(tmp_path / "preview.png"), "stage 1")
    with Image.open(tmp_path / "preview.png") as im:
        assert im.format == "PNG" and 1.0 < im.size[0] / im.size[1] < 2.0  # three columns, two rows
    assert not plot_preview(xp[:0], y[:0], out[:0], str(tmp_path / "none.png"))
    assert sorted(os.listdir(tmp_path)) == ["preview.png"]


def test_plot_preview_without_matplotlib_draws_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    ones = np.ones((1, 8, 8))
    assert not plot_preview(ones, ones, ones, str(tmp_path / "preview.png"))
    assert os.listdir(tmp_path) == []


def test_training_draws_the_curves_and_a_preview_of_every_stage(tmp_path):
    pytest.importorskip("matplotlib")
    data = write_images(tmp_path / "data")
    train([str(data)], str(tmp_path / "run"), CONFIG, progress=False, log=lambda m: None)
    with Image.open(tmp_path / "run" / "curves.png") as im:
        assert im.size[0] > 1.8 * im.size[1]
    for k in (1, 2):
        with Image.open(tmp_path / "run" / f"preview_stage{k}.png") as im:
            assert im.format == "PNG"


def test_plot_curves_ticks_whole_epochs_and_plain_loss_values(tmp_path, monkeypatch):
    """A short run's axes read 1.2, 1.4, ... epochs and '8x10^-1' losses (matplotlib's log-axis
    labels over a narrow range): epochs are whole numbers, losses plain decimals."""
    pytest.importorskip("matplotlib")
    from xvertfast.train import figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda plt, fig, path, title: (fig.canvas.draw(), drawn.append(fig)))
    phases = ["gc", JOINT_PHASE, JOINT_PHASE]
    assert plot_curves(rows(1, phases, [0.95, 0.8, 0.7], [0.9, 0.85, 0.75]), str(tmp_path / "c.png"))
    ax = drawn[0].axes[0]
    lo, hi = ax.get_xlim()
    assert all(float(t).is_integer() for t in ax.get_xticks() if lo <= t <= hi)
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels() if t.get_text()]
    assert labels and not any("times" in s or "^" in s or "×" in s for s in labels), labels
    assert all(float(s.replace("\N{MINUS SIGN}", "-")) for s in labels)  # plain numbers


def test_training_on_patches_counts_patches_per_second_in_the_curves_titles(tmp_path, monkeypatch):
    """A run on patches drew "ROIs/s": its steps' samples are patches cut from the ROIs."""
    pytest.importorskip("matplotlib")
    from xvertfast.train import figures

    titles = []
    monkeypatch.setattr(figures, "_save", lambda plt, fig, path, title: titles.extend(ax.get_title() for ax in fig.axes))
    data = write_images(tmp_path / "data")
    quick = {**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0}
    train([str(data)], str(tmp_path / "patches"), TrainConfig(**{**quick, "patch_size": 16}), progress=False,
          log=lambda m: None)  # fmt: skip
    rates = [t for t in titles if t.startswith("stage ")]  # (the previews' panels have titles too)
    assert rates and all(t.endswith("patches/s") for t in rates), titles
    titles.clear()
    train([str(data)], str(tmp_path / "rois"), TrainConfig(**quick), progress=False, log=lambda m: None)
    rates = [t for t in titles if t.startswith("stage ")]
    assert rates and all(t.endswith("ROIs/s") for t in rates), titles


def test_plot_preview_shows_the_input_and_output_on_one_stated_window(tmp_path, monkeypatch):
    """On a fixed 0 to 1 a briefly trained model's output (and its input, 0.4 to 0.6 here) looked flat
    grey: both are shown on their 1st to 99th percentile together, which each panel's title says."""
    pytest.importorskip("matplotlib")
    from xvertfast.train import figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda plt, fig, path, title: drawn.append(fig))
    ramp = np.linspace(0, 1, 32 * 32).reshape(1, 32, 32)
    xp, out, y = 0.4 + 0.2 * ramp, 0.3 + 0.4 * ramp, ramp - 0.5
    assert plot_preview(xp, y, out, str(tmp_path / "preview.png"))
    lo, hi = np.percentile(np.concatenate([xp.ravel(), out.ravel()]), [1, 99])
    shown = f"shown {lo:.3g} (black) to {hi:.3g} (white)"
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes] == [f"input X_p\n{shown}", "guidance Y (±0.495)", f"output\n{shown}"]
    np.testing.assert_allclose([axes[0].images[0].get_clim(), axes[2].images[0].get_clim()], [[lo, hi]] * 2)
    assert 0.3 < lo < hi < 0.7
    flat = np.full((1, 8, 8), 0.5)  # (one value: no window to stretch to)
    assert plot_preview(flat, flat - 0.5, flat, str(tmp_path / "flat.png"))
    flat_input = drawn[1].axes[0]
    assert flat_input.images[0].get_clim() == (0.0, 1.0) and "shown 0 (black) to 1 (white)" in flat_input.get_title()
