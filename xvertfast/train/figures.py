"""Pictures of a training run, for judging it by eye rather than from tables.

- ``RUN_DIR/curves.png`` (from the rows of ``metrics.csv``): per stage, the training and
  validation loss on a log scale, the joint phase shaded (its loss adds the feature term, so
  the curve jumps where it starts) and the epoch whose weights the stage kept marked.
- ``RUN_DIR/preview_stage{k}.png``: a few validation ROIs through the finished stage: its
  input X_p and its output on one grey window (their 1st to 99th percentile, said in the panels'
  titles), and the guidance image Y centred on mid-grey.

matplotlib is optional (``xvertfast[eval]``): without it nothing is drawn.
"""

from __future__ import annotations

import csv
import math

import numpy as np

from xvertfast._plotting import as_written, pyplot
from xvertfast.io.write import atomic_write

__all__ = ["JOINT_PHASE", "kept_epoch", "plot_curves", "plot_preview", "read_metrics"]

#: The ``phase`` of the epochs that train with the structure and the feature loss.
JOINT_PHASE = "gc+entropy"


def read_metrics(path: str) -> list[dict]:
    """The rows of a run's ``metrics.csv``, numbers as numbers."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints, text = ("stage", "epoch"), ("phase",)
    return [{k: (int(v) if k in ints else v if k in text else float(v)) for k, v in r.items()} for r in rows]


def _score(row: dict) -> float:
    val = row["val_loss"]
    return row["train_loss"] if math.isnan(val) else val


def kept_epoch(rows: list[dict]) -> int | None:
    """The epoch whose weights one stage keeps, by the training loop's rule.

    In the joint phase the loop keeps the first epoch with the lowest validation loss (the
    training loss where there are no validation images); a stage that never reached the
    joint phase keeps its last epoch. ``rows``: that stage's rows, in epoch order.
    """
    if not rows:
        return None
    joint = [r for r in rows if r["phase"] == JOINT_PHASE]
    if not joint:
        return rows[-1]["epoch"]
    best = joint[0]
    for r in joint[1:]:
        if _score(r) < _score(best):
            best = r
    return best["epoch"]


def _pyplot():
    """matplotlib's pyplot on the file-only backend, or None where it is not installed."""
    try:
        return pyplot()
    except ImportError:
        return None


def _save(plt, fig, path: str, title: str) -> None:
    """The figure, titled (``title`` as written: a run folder's name), as a PNG written atomically (never a partial file), then freed."""
    if title:
        as_written(fig.suptitle(title, fontsize=9))
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_curves(rows: list[dict], path: str, title: str = "", samples: str = "ROIs") -> bool:
    """Draws the curves of ``rows`` (metrics.csv rows, any number of stages) into the PNG
    ``path``, written atomically; ``samples``: what a training step's samples are, for the rate in
    each title ("patches" in a run on patches). Returns False, drawing nothing, without matplotlib."""
    plt = _pyplot()
    if plt is None or not rows:
        return False
    from matplotlib import ticker

    stages = sorted({r["stage"] for r in rows})
    fig, axes = plt.subplots(1, len(stages), figsize=(4.6 * len(stages) + 0.4, 3.6), squeeze=False)
    for ax, k in zip(axes[0], stages):
        mine = sorted((r for r in rows if r["stage"] == k), key=lambda r: r["epoch"])
        epochs = [r["epoch"] for r in mine]
        ax.plot(epochs, [r["train_loss"] for r in mine], color="#1f77b4", lw=1.2, label="training")
        val = [r["val_loss"] for r in mine]
        has_val = not all(math.isnan(v) for v in val)
        if has_val:
            ax.plot(epochs, val, color="#ff7f0e", lw=1.2, ls="--", label="validation")
        joint = [r["epoch"] for r in mine if r["phase"] == JOINT_PHASE]
        if joint:
            ax.axvspan(joint[0] - 0.5, joint[-1] + 0.5, color="#2ca02c", alpha=0.08, lw=0,
                       label="structure + feature loss")  # fmt: skip
        kept = kept_epoch(mine)
        at = next(r for r in mine if r["epoch"] == kept)
        ax.plot([kept], [_score(at)], marker="*", ms=11, color="#d62728", ls="none", label=f"kept: epoch {kept}")
        losses = [r["train_loss"] for r in mine] + ([v for v in val if not math.isnan(v)] if has_val else [])
        if min(losses) > 0:
            ax.set_yscale("log")
            plain = ticker.FuncFormatter(lambda v, _: f"{v:.3g}")  # 0.8, not matplotlib's 8x10^-1
            ax.yaxis.set_major_formatter(plain)
            if np.log10(max(losses) / min(losses)) < 1:  # within a decade: the minor ticks are the labels
                ax.yaxis.set_minor_formatter(plain)
            else:
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # whole epochs, not 1.2, 1.4, ...
        rate = sorted(r["images_per_s"] for r in mine)[len(mine) // 2]
        ax.set_title(f"stage {k}: {len(mine)} epochs, {rate:.1f} {samples}/s", fontsize=9)  # images_per_s counts samples
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    _save(plt, fig, path, title)
    return True


def plot_preview(xp: np.ndarray, y: np.ndarray, out: np.ndarray, path: str, title: str = "") -> bool:
    """Draws ROIs [N, S, S] side by side into the PNG ``path``, one row each: X_p and the output
    on one grey window, their 1st to 99th percentile together (:func:`_window`), said in each
    title; Y centred on 0 (mid-grey) and scaled to its 99th percentile of |Y|. On [0, 1], where
    the output lies, a briefly trained model's output and its input looked alike and flat; the
    shared window keeps them comparable. Written atomically; False, drawing nothing, without
    matplotlib or ROIs."""
    plt = _pyplot()
    if plt is None or len(xp) == 0:
        return False
    n = len(xp)
    fig, axes = plt.subplots(n, 3, figsize=(7.8, 2.7 * n + 0.4), squeeze=False)
    for row in range(n):
        span = float(np.percentile(np.abs(y[row]), 99)) or 1.0
        lo, hi = _window(xp[row], out[row])
        shown = f"shown {lo:.3g} (black) to {hi:.3g} (white)"
        panels = ((xp[row], lo, hi, f"input X_p\n{shown}"), (y[row], -span, span, f"guidance Y (±{span:.3g})"),
                  (out[row], lo, hi, f"output\n{shown}"))  # fmt: skip
        for ax, (img, black, white, name) in zip(axes[row], panels):
            ax.imshow(img, cmap="gray", vmin=black, vmax=white, interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    _save(plt, fig, path, title)
    return True


def _window(xp: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """The grey window (black, white) X_p and the output are shown on: the 1st to 99th percentile of
    both together, so neither is stretched apart from the other; [0, 1] where that is a single value."""
    lo, hi = (float(v) for v in np.percentile(np.concatenate([xp.ravel(), out.ravel()]), [1, 99]))
    return (lo, hi) if hi > lo else (0.0, 1.0)
