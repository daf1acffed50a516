"""Tensor ops of XVertNet backed by the compiled extension (pure-PyTorch fallback).

- :func:`gradient_correlation`, :func:`gradient_correlation_loss`: the structural loss L1.
- :func:`feature_entropy`, :func:`select_max_entropy`: the feature-loss target c*.
- :func:`wls`: the exact edge-preserving WLS smoothing of the preprocessing
  (:func:`release_workspace` frees the memory its CPU solver keeps between solves).
- :func:`guided_pool`: the guidance layer's conv + max-pool, fused for inference.

``xvertfast.ops.reference`` holds the pure-PyTorch definitions the kernels are tested against.
"""

from xvertfast.ops.entropy import DEFAULT_BINS, MaxEntropyMap, feature_entropy, select_max_entropy
from xvertfast.ops.guided_pool import guided_pool
from xvertfast.ops.gradient_correlation import GC_EPS, gradient_correlation, gradient_correlation_loss
from xvertfast.ops.wls import WlsInfo, release_workspace, wls

__all__ = [
    "GC_EPS",
    "DEFAULT_BINS",
    "MaxEntropyMap",
    "gradient_correlation",
    "gradient_correlation_loss",
    "feature_entropy",
    "select_max_entropy",
    "guided_pool",
    "wls",
    "WlsInfo",
    "release_workspace",
]
