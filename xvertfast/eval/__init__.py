"""Evaluation: the papers' metrics, the baselines, the protocol and its report.

Import order: ``metrics`` and ``stats`` (NumPy/SciPy only); ``journal`` <- ``protocol`` <-
``provenance`` (with ``stats`` and ``baselines``' parameters) <- ``report`` (with ``stats``, and
``_report_files``, which puts its files in place) <- ``evaluate``; ``baselines`` uses
:mod:`xvertfast.ops` and, for XVertNet, :mod:`xvertfast.infer`; ``precomputed`` (another tool's
outputs as a method) only :mod:`xvertfast.io`.
"""

#: Nothing at the package level: its modules are imported by name (xvertfast.eval.evaluate, ...), so
#: that importing one loads no other.
__all__: list[str] = []
