"""The XVertNet network: a U-Net with internal guidance layers, stacked into stages."""

from xvertfast.model.persistence import DEFAULT_MODEL_DIR, load_model, model_tile, save_model
from xvertfast.model.stage import GuidanceLayer, XVertNetStage
from xvertfast.model.xvertnet import XVertNet

__all__ = ["DEFAULT_MODEL_DIR", "GuidanceLayer", "XVertNetStage", "XVertNet", "load_model", "model_tile", "save_model"]
