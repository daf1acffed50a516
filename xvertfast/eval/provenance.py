"""How an evaluation report was made, said in the report itself.

The scores of a report depend on settings its tables do not show: xvertfast's code, each
XVertNet model's weights and the device and precision it ran in, the baselines' parameters,
the metrics, where the ROIs came from. Those are recorded in the report folder's hidden journal
(:mod:`xvertfast.eval.journal`) so that a rerun resumes; a reader of ``summary.md`` or
``report.html`` (a co-author, a reviewer) never sees it. :func:`provenance_record` gathers them,
as the run recorded them, with what the report itself decided (the statistics, the images it
holds), for ``provenance.json``; :func:`provenance_markdown` gives them in short, as the last
section of ``summary.md`` (and so of the page, which is drawn from it).
"""

from __future__ import annotations

import datetime

from xvertfast._text import count
from xvertfast.eval.baselines import parse_method
from xvertfast.eval.protocol import EvalRun
from xvertfast.eval.stats import Z_LIMIT

__all__ = ["PROVENANCE_HEADING", "provenance_record", "provenance_markdown"]

#: The title of summary.md's provenance section (and of the page's).
PROVENANCE_HEADING = "Provenance: how this report was made"


def provenance_record(run: EvalRun, compare_to: str | None, given: dict | None = None) -> dict:
    """``given`` (what :func:`~xvertfast.eval.evaluate.evaluate` recorded of the run: the
    journal's settings, the ROI file, the command, ...) with the report's own part: when it was
    written, its statistics and the images it holds. A report written from Python without
    ``given`` still says its methods, metrics and statistics."""
    record = dict(given or {})
    record.setdefault("methods", [{"label": method} for method in run.methods])
    record.setdefault("metrics", list(run.metrics))
    tested = compare_to if compare_to in run.methods and len(run.methods) > 1 else None  # (as summary.md decides)
    bits: dict[str, int] = {}
    for original in run.originals.values():
        if isinstance(original, dict) and isinstance(original.get("bits"), int):
            bits[str(original["bits"])] = bits.get(str(original["bits"]), 0) + 1
    record["statistics"] = {
        "outliers": f"values outside mean +/- {Z_LIMIT:g} sample standard deviations (n - 1) of a method's ROIs; "
                    "a method tested against the reference loses the union of both's",
        "z_limit": Z_LIMIT,
        "compared_to": tested,
        "test": "Wilcoxon signed-rank, two-sided, paired by ROI and by image" if tested else None,
    }  # fmt: skip
    record["images"] = {"evaluated": run.images, "failed": len(run.failed), "from_earlier_runs": run.from_journal,
                        "original_bits": dict(sorted(bits.items(), key=lambda kv: -int(kv[0]))),
                        "identity_stretched": sum(1 for o in run.originals.values()
                                                  if isinstance(o, dict) and o.get("stretched"))}  # fmt: skip
    record["written"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return record


def _value(value) -> str:
    """A parameter as the block gives it: numbers short (0.0078125, 2), a list's items with /."""
    if isinstance(value, (list, tuple)):
        return "/".join(_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _method_line(method: dict) -> str:
    """One method of the block: what it is and what its scores depend on (the model's digest, the
    device and precision it ran in; a baseline's parameters; another tool's folder)."""
    said = f"`{method.get('spec', method.get('label'))}`"
    if "model" in method:
        runs = method.get("runs", {})
        where = runs.get("device", "?") + (f" ({runs['device_name']})" if runs.get("device_name") else "")
        asked = [f"{k} {_value(v)}" for k, v in method.items() if k not in ("spec", "label", "model", "runs")]
        return (f"{said}: model sha256 `{method['model']}`, run on {where} in {runs.get('precision', '?')} "
                f"({runs.get('backend', '?')} backend{''.join(', ' + a for a in asked)})")  # fmt: skip
    if "folder" in method:
        return f"{said}: another tool's outputs, read from {method['folder']}"
    if method.get("parameters"):
        return f"{said}: " + ", ".join(f"{k} {_value(v)}" for k, v in method["parameters"].items())
    if "spec" in method and parse_method(method["spec"])[1] == "identity":  # its conversion, which scores differ by
        return f"{said}: the original, an 8-bit one as stored, a deeper or float one min-max stretched over each ROI"
    return said


def provenance_markdown(record: dict) -> str:
    """:func:`provenance_record` in short, as summary.md's last section (a blank line, then its
    heading and a list)."""
    lines = ["", f"## {PROVENANCE_HEADING}", ""]
    code = f" (code sha256 `{record['code_sha256']}`)" if record.get("code_sha256") else ""
    when = f"started {record['started']}, " if record.get("started") else ""
    threads = f"; {count(record['threads'], 'CPU thread')}" if record.get("threads") else ""
    lines.append(f"- xvertfast {record.get('xvertfast', '(version not recorded)')}{code}; {when}report written "
                 f"{record['written']}{threads}")  # fmt: skip
    if record.get("command"):
        lines.append(f"- command: `{record['command']}`" + (f" (in {record['cwd']})" if record.get("cwd") else ""))
    elif "arguments" in record:
        lines.append("- called from Python (no command line): its arguments are in provenance.json")
    lines += [f"- method {_method_line(m)}" for m in record["methods"]]
    lines.append(f"- metrics: {', '.join(record['metrics'])}")
    rois = record.get("rois")
    if isinstance(rois, dict) and rois.get("source") == "auto":
        upper, lower = rois["centre_rows"]
        lines.append(f"- ROIs: found automatically, their centres at {upper:g} and {lower:g} of the image height on "
                     "the spine's centre line, whose column is searched in each image")  # fmt: skip
    elif isinstance(rois, dict) and rois.get("source") == "file":
        lines.append(f"- ROIs: centres given by hand in {rois['file']}")
    stats = record["statistics"]
    tests = (f"; Wilcoxon signed-rank tests against {stats['compared_to']}" if stats["compared_to"]
             else "; no significance test")  # fmt: skip
    lines.append(f"- outlier removal: {stats['outliers']}{tests}")
    images = record["images"]
    earlier = (f" ({images['from_earlier_runs']} of them scored, wholly or but for methods or metrics added, by an "
               "earlier run into this folder)" if images["from_earlier_runs"] else "")  # fmt: skip
    depths = ", ".join(f"{bits}-bit {n}" for bits, n in images["original_bits"].items())
    lines.append(f"- images: {images['evaluated']} evaluated{earlier}, {images['failed']} failed"
                 + (f"; originals: {depths}" if depths else ""))  # fmt: skip
    lines += ["- every value, with the call's arguments: provenance.json", ""]
    return "\n".join(lines)
