"""Unsupervised training of XVertNet: losses (and, to come, data, schedule, checkpoints)."""

from xvertfast.train.losses import XVertNetLoss, feature_loss, structure_loss

__all__ = ["XVertNetLoss", "feature_loss", "structure_loss"]
