"""Unsupervised training of XVertNet: data (cached preprocessing, spine ROIs), losses, the staged loop.

The names below are imported on first use (PEP 562), as the package's top level does: they load
torch, which :mod:`xvertfast.train.status` and :mod:`xvertfast.train.run_folder` do without.
"""

from xvertfast._lazy import lazy_names as _lazy_names

# name -> the module that defines it
_PUBLIC = {
    "XVertNetLoss": "xvertfast.train.losses", "feature_loss": "xvertfast.train.losses",
    "structure_loss": "xvertfast.train.losses",
    "DiskFull": "xvertfast.train.loop", "TrainConfig": "xvertfast.train.loop",
    "TrainingDiverged": "xvertfast.train.loop", "has_finished_epochs": "xvertfast.train.run_folder",
    "train": "xvertfast.train.loop",
}  # fmt: skip

__all__ = list(_PUBLIC)


__getattr__, __dir__ = _lazy_names(globals(), {name: (module, name) for name, module in _PUBLIC.items()})
