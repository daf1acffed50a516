"""The two XVertNet losses (Eq. 8-14), built on the compiled ops.

- ``L1 = mean(1 - GC(out, Y))``: the output's Sobel gradients should correlate with the
  high-frequency guidance image Y (structure, boundaries).
- ``L2 = MSE(out, c*)``: c* is, per sample, the highest-entropy map of the last decoder
  level (network + guidance maps), min-max scaled to [0, 1] and detached: a target, not a
  path for gradients.

The schedule uses L1 alone for the first epochs, then L1 + L2 (DESIGN.md section 1).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F

from xvertfast.ops import DEFAULT_BINS, gradient_correlation_loss, select_max_entropy

__all__ = ["structure_loss", "feature_loss", "XVertNetLoss", "LossTerms"]


def structure_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 = mean over the batch of 1 - GC(out, Y); out and y are [B, 1, H, W]."""
    return gradient_correlation_loss(out, y)


def feature_loss(out: torch.Tensor, features: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """L2 = MSE(out, c*), c* the detached, min-max scaled highest-entropy feature map; out is
    [B, 1, H, W], features [B, C, H, W] of the same B, H and W (checked here: MSE would broadcast
    a mismatch, or fail with a message that names neither)."""
    if not (isinstance(out, torch.Tensor) and isinstance(features, torch.Tensor)):
        raise TypeError(f"feature_loss: out and features must be torch tensors, got {type(out).__name__} and "
                        f"{type(features).__name__}")  # fmt: skip
    if (out.dim() != 4 or out.shape[1] != 1 or features.dim() != 4 or not features.shape[1]
            or (out.shape[0], *out.shape[2:]) != (features.shape[0], *features.shape[2:])):  # fmt: skip
        raise ValueError(f"feature_loss: out must be [B, 1, H, W] and features [B, C, H, W] with the same B, H and W, "
                         f"got {tuple(out.shape)} and {tuple(features.shape)}")  # fmt: skip
    target = select_max_entropy(features, bins=bins, normalize=True).map.to(out.dtype)
    return F.mse_loss(out, target)


class LossTerms(NamedTuple):
    total: torch.Tensor
    structure: torch.Tensor
    feature: torch.Tensor  #: zero (and not computed) while the feature loss is off


class XVertNetLoss:
    """L1, or L1 + weight * L2 once ``use_feature_loss`` is set by the schedule."""

    def __init__(self, feature_weight: float = 1.0, bins: int = DEFAULT_BINS):
        # (a NaN weight gave NaN losses, for an optimiser to turn into NaN weights; a negative one
        # rewards moving away from the target)
        real = isinstance(feature_weight, numbers.Real) and not isinstance(feature_weight, bool)
        if not (real and math.isfinite(feature_weight) and feature_weight >= 0):
            raise ValueError(f"XVertNetLoss: feature_weight must be a finite number >= 0, got {feature_weight!r}")
        self.feature_weight = feature_weight
        self.bins = bins

    def __call__(self, out: torch.Tensor, y: torch.Tensor, features: torch.Tensor | None,
                 use_feature_loss: bool) -> LossTerms:  # fmt: skip
        l1 = structure_loss(out, y)
        if use_feature_loss:
            if features is None:
                raise ValueError("XVertNetLoss: the feature loss needs the last level's feature maps")
            l2 = feature_loss(out, features, self.bins)
        else:
            l2 = out.new_zeros(())
        return LossTerms(l1 + self.feature_weight * l2, l1, l2)
