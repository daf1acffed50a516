"""Unsupervised training of XVertNet: data (cached preprocessing, spine ROIs), losses, the staged loop.

The names below are imported on first use (PEP 562), as the package's top level does: they load
torch, which :mod:`xvertfast.train.status` and :mod:`xvertfast.train.run_folder` do without.
"""

import importlib as _importlib

# name -> the module that defines it
_PUBLIC = {
    "XVertNetLoss": "xvertfast.train.losses", "feature_loss": "xvertfast.train.losses",
    "structure_loss": "xvertfast.train.losses",
    "DiskFull": "xvertfast.train.loop", "TrainConfig": "xvertfast.train.loop",
    "TrainingDiverged": "xvertfast.train.loop", "has_finished_epochs": "xvertfast.train.run_folder",
    "train": "xvertfast.train.loop",
}  # fmt: skip

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'xvertfast.train' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({name for name in globals() if not name.startswith("_") or name.startswith("__")} | set(_PUBLIC))
