"""Enhancement with a trained model: the in-memory :class:`Enhancer`, the batch job, the backends."""

from xvertfast.infer.backends import BACKENDS
from xvertfast.infer.batch import OUTPUT_FORMATS, BatchSummary, enhance_files
from xvertfast.infer.enhancer import BRIGHTNESS, MODES, EnhanceResult, Enhancer
from xvertfast.infer.preview import write_preview

__all__ = ["BACKENDS", "BRIGHTNESS", "MODES", "OUTPUT_FORMATS", "BatchSummary", "EnhanceResult", "Enhancer",
           "enhance_files", "write_preview"]
