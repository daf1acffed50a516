"""``xvertfast evaluate``: the protocol and the report in one call."""

from __future__ import annotations

import os

from xvertfast.eval.baselines import get_method
from xvertfast.eval.protocol import DEFAULT_METRICS, EvalRun, load_roi_centres, run_protocol
from xvertfast.eval.report import write_report

__all__ = ["evaluate", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("identity", "clahe", "farbman", "xvertnet")


def evaluate(inputs: list[str], out_dir: str, methods=DEFAULT_METHODS, metrics=DEFAULT_METRICS,
             rois: str = "auto", compare_to: str | None = None, pictures: int = 6, progress: bool = True,
             log=print, **enhancer_kwargs) -> tuple[EvalRun, dict[str, str]]:  # fmt: skip
    """Scores ``methods`` on the spine ROIs of ``inputs`` and writes the report into ``out_dir``.

    Args:
        methods: names from identity, clahe, farbman, xvertnet[=MODEL_DIR].
        metrics: names from entropy, tenengrad, lpc_si, tmqi, brisque.
        rois: ``auto`` (find the spine) or a CSV of hand-placed centres
            (see :func:`xvertfast.eval.protocol.load_roi_centres`).
        compare_to: the method the others are tested against; default xvertnet when it is
            evaluated, else identity.
        pictures: images shown side by side in the report.
        enhancer_kwargs: device, backend, batch_size... for xvertnet.
    """
    built = dict(get_method(spec, **enhancer_kwargs) for spec in methods)
    if len(built) != len(methods):
        raise ValueError(f"each method may appear once, got {', '.join(methods)}")
    if compare_to is None:
        compare_to = "xvertnet" if "xvertnet" in built else ("identity" if "identity" in built else None)
    elif compare_to not in built:
        raise ValueError(f"--compare-to {compare_to} is not among the methods ({', '.join(built)})")
    centres = None if rois == "auto" else load_roi_centres(rois)
    run = run_protocol(inputs, built, list(metrics), centres, pictures=pictures, progress=progress, log=log)
    os.makedirs(out_dir, exist_ok=True)
    return run, write_report(run, out_dir, compare_to)
