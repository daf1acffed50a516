"""Unsupervised training of XVertNet: data (cached preprocessing, spine ROIs), losses, the staged loop."""

from xvertfast.train.losses import XVertNetLoss, feature_loss, structure_loss
from xvertfast.train.loop import DiskFull, TrainConfig, TrainingDiverged, has_finished_epochs, train

__all__ = ["XVertNetLoss", "feature_loss", "structure_loss", "DiskFull", "TrainConfig", "TrainingDiverged", "has_finished_epochs", "train"]
