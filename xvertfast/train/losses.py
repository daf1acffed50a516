"""The two XVertNet losses (Eq. 8-14), built on the compiled ops.

- ``L1 = mean(1 - GC(out, Y))``: the output's Sobel gradients should correlate with the
  high-frequency guidance image Y (structure, boundaries).
- ``L2 = MSE(out, c*)``: c* is, per sample, the highest-entropy map of the last decoder
  level (network + guidance maps), min-max scaled to [0, 1] and detached: a target, not a
  path for gradients.

The schedule uses L1 alone for the first epochs, then L1 + L2 (DESIGN.md section 1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from xvertfast.ops import DEFAULT_BINS, gradient_correlation_loss, select_max_entropy

__all__ = ["structure_loss", "feature_loss", "XVertNetLoss", "LossTerms"]


def structure_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 = mean over the batch of 1 - GC(out, Y); out and y are [B, 1, H, W]."""
    return gradient_correlation_loss(out, y)


def feature_loss(out: torch.Tensor, features: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """L2 = MSE(out, c*), c* the detached, min-max scaled highest-entropy feature map."""
    target = select_max_entropy(features, bins=bins, normalize=True).map.to(out.dtype)
    return F.mse_loss(out, target)


class LossTerms(NamedTuple):
    total: torch.Tensor
    structure: torch.Tensor
    feature: torch.Tensor  #: zero (and not computed) while the feature loss is off


class XVertNetLoss:
    """L1, or L1 + weight * L2 once ``use_feature_loss`` is set by the schedule."""

    def __init__(self, feature_weight: float = 1.0, bins: int = DEFAULT_BINS):
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
