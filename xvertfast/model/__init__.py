"""The XVertNet network: a U-Net with internal guidance layers, stacked into stages."""

from xvertfast.model.persistence import load_model, save_model
from xvertfast.model.stage import GuidanceLayer, XVertNetStage
from xvertfast.model.xvertnet import XVertNet

__all__ = ["GuidanceLayer", "XVertNetStage", "XVertNet", "load_model", "save_model"]
