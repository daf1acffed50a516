"""Evaluation: the papers' metrics, the baselines, the protocol and its report.

Import order: ``metrics`` and ``stats`` (NumPy/SciPy only); ``journal`` <- ``protocol`` <-
``provenance`` (with ``stats`` and ``baselines``' parameters) <- ``report`` (with ``stats``, and
``_report_files``, which puts its files in place) <- ``evaluate``; ``baselines`` uses
:mod:`xvertfast.ops` and, for XVertNet, :mod:`xvertfast.infer`; ``precomputed`` (another tool's
outputs as a method) only :mod:`xvertfast.io`.
"""

from xvertfast._lazy import lazy_names as _lazy_names

#: Nothing at the package level: its modules are imported by name (xvertfast.eval.evaluate, ...), so
#: that importing one loads no other.
__all__: list[str] = []

# Its modules, reached as attributes too, each imported on first use (PEP 562): ``import xvertfast;
# xvertfast.eval.metrics.entropy(roi)`` said "module 'xvertfast.eval' has no attribute 'metrics'".
__getattr__, __dir__ = _lazy_names(globals(), {name: (f"{__name__}.{name}", None) for name in (
    "baselines", "evaluate", "journal", "metrics", "precomputed", "protocol", "provenance", "report", "stats")})
