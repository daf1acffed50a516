"""Enhancement with a trained model: the in-memory :class:`Enhancer`, the batch job, the backends."""

from xvertfast.infer.backends import BACKENDS
from xvertfast.infer.batch import OUTPUT_FORMATS, BatchSummary, enhance_files
from xvertfast.infer.enhancer import MODES, EnhanceResult, Enhancer

__all__ = ["BACKENDS", "MODES", "OUTPUT_FORMATS", "BatchSummary", "EnhanceResult", "Enhancer", "enhance_files"]
