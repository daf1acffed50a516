"""A trained stage rewritten into fewer operations for inference: the same function, faster.

:class:`FoldedStage` computes what ``XVertNetStage.forward(xp, y)`` computes in eval mode
(equal to float rounding) with three exact rewrites:

- Batch norm is folded into the convolution before it (eval mode: a per-channel affine map).
- No concatenation is materialised. A convolution of ``cat([a, b])`` is the sum of
  convolutions of ``a`` and ``b`` with the two halves of its weight, so the decoder's
  up-convolutions (transposed, or the 1x1 ahead of bilinear upsampling) and the head take
  the network maps and the guidance maps apart.
  (The skip concatenation ahead of each decoder's first 3x3 convolution is kept: by the
  profiled op times, one convolution of the joined maps costs less than two and their sum.)
- The finest guidance layer has no pooling, and the 1x1 head after it is linear, so
  ``head_g(Conv3x3(LeakyReLU(Y)))`` is a single 3x3 convolution from one map to one: the
  ``width`` guidance maps at full resolution are never computed.

It runs in channels_last, which oneDNN's CPU convolutions prefer. Measured on two CPU cores,
a width-16 stage on two 512 x 512 tiles: 0.80 s eager, 0.39-0.42 s folded (bench/RESULTS.md).
Inference only: no features for the entropy loss, no gradients of the original parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xvertfast.model.stage import XVertNetStage, padded_inputs, upsample2x
from xvertfast.ops.guided_pool import guided_pool

__all__ = ["FoldedStage", "fold_stage"]


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` in eval mode as one convolution."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * scale[:, None, None, None], (bias - bn.running_mean) * scale + bn.bias


def _conv_pair(double_conv: nn.Sequential) -> nn.ModuleList:
    """The two (conv, batch norm, ReLU) of a DoubleConv as two biased convolutions."""
    convs = nn.ModuleList()
    for conv, bn in ((double_conv[0], double_conv[1]), (double_conv[3], double_conv[4])):
        w, b = _fold_bn(conv, bn)
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding,
                           device=w.device, dtype=w.dtype)  # fmt: skip
        folded.weight.data.copy_(w)
        folded.bias.data.copy_(b)
        convs.append(folded)
    return convs


class FoldedStage(nn.Module):
    """See the module docstring; build it with :func:`fold_stage`."""

    def __init__(self, stage: XVertNetStage):
        super().__init__()  # reads the batch norms' running statistics: the stage's mode is left as it is
        self.width, self.depth, self.upsample = stage.width, stage.depth, stage.upsample
        self.negative_slope = stage.guides[0].act.negative_slope
        self.encoders = nn.ModuleList([_conv_pair(enc) for enc in stage.encoders])
        self.bottleneck = _conv_pair(stage.bottleneck)
        self.decoders = nn.ModuleList([_conv_pair(dec) for dec in stage.decoders])
        # up-convolution k reads cat([network maps, guidance maps]) of the level below
        # (k > 0); split its weight along the input channels: [in, out, 2, 2] (transposed)
        # or [out, in, 1, 1] (the 1x1 conv ahead of the bilinear upsampling)
        self.up_net, self.up_guide = nn.ParameterList(), nn.ParameterList()
        self.up_bias = nn.ParameterList()
        for k, up in enumerate(stage.ups):
            conv = up.conv if self.upsample == "bilinear" else up
            w = conv.weight.detach()
            axis = 1 if self.upsample == "bilinear" else 0
            n_in = w.shape[axis]
            half = n_in // 2 if k > 0 else n_in
            net, guide = w.split([half, n_in - half], dim=axis)
            self.up_net.append(nn.Parameter(net.clone(), requires_grad=False))
            self.up_guide.append(nn.Parameter(guide.clone(), requires_grad=False))
            self.up_bias.append(nn.Parameter(conv.bias.detach().clone(), requires_grad=False))
        self.guide_weight = nn.ParameterList([nn.Parameter(g.conv.weight.detach().clone(), requires_grad=False)
                                              for g in stage.guides[:-1]])  # fmt: skip
        self.guide_bias = nn.ParameterList([nn.Parameter(g.conv.bias.detach().clone(), requires_grad=False)
                                            for g in stage.guides[:-1]])  # fmt: skip
        self.guide_pool = [2 ** g.level for g in stage.guides[:-1]]
        # the head: network half as a 1x1 conv; guidance half merged into the finest GL's conv
        hw = stage.head.weight.detach()[:, :, 0, 0]  # [1, 2 * width]
        finest = stage.guides[-1]
        if finest.level != 0:
            raise ValueError("FoldedStage: the last guidance layer must be the unpooled one (level 0)")
        head_guide = hw[:, self.width :]  # [1, width]
        self.head_net = nn.Parameter(stage.head.weight.detach()[:, : self.width].clone(), requires_grad=False)
        self.head_guide_conv = nn.Parameter(torch.einsum("oc,cikl->oikl", head_guide, finest.conv.weight.detach()),
                                            requires_grad=False)  # fmt: skip
        self.head_bias = nn.Parameter(stage.head.bias.detach() + head_guide @ finest.conv.bias.detach(),
                                      requires_grad=False)  # fmt: skip
        self.requires_grad_(False)

    @staticmethod
    def _double(convs: nn.ModuleList, t: torch.Tensor) -> torch.Tensor:
        return F.relu(convs[1](F.relu(convs[0](t), inplace=True)), inplace=True)

    def _up(self, k: int, t: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
        """Up-convolution k of cat([t, guide]) (guide None at the bottleneck)."""
        if self.upsample == "bilinear":
            u = F.conv2d(t, self.up_net[k], self.up_bias[k])
            if guide is not None:
                u = u + F.conv2d(guide, self.up_guide[k], None)
            return upsample2x(u)
        u = F.conv_transpose2d(t, self.up_net[k], self.up_bias[k], stride=2)
        if guide is not None:
            u = u + F.conv_transpose2d(guide, self.up_guide[k], None, stride=2)
        return u

    def forward(self, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xp, y, (h, w) = padded_inputs("FoldedStage", xp, y, self.depth, self.head_bias.dtype)
        xp = xp.contiguous(memory_format=torch.channels_last)
        y_act = F.leaky_relu(y, self.negative_slope).contiguous()
        skips, t = [], xp
        for enc in self.encoders:
            t = self._double(enc, t)
            skips.append(t)
            t = F.max_pool2d(t, 2)
        t = self._double(self.bottleneck, t)
        guide = None
        for k, (dec, skip) in enumerate(zip(self.decoders, reversed(skips))):
            t = self._double(dec, torch.cat([self._up(k, t, guide), skip], dim=1))
            if k < len(self.guide_weight):
                guide = guided_pool(y_act, self.guide_weight[k], self.guide_bias[k], self.guide_pool[k])
                guide = guide.contiguous(memory_format=torch.channels_last)
        logits = F.conv2d(t, self.head_net, self.head_bias) + F.conv2d(y_act, self.head_guide_conv, None, padding=1)
        return torch.sigmoid(logits)[..., :h, :w].contiguous()


def fold_stage(stage: XVertNetStage) -> FoldedStage:
    """The inference form of a trained stage (see :class:`FoldedStage`); the stage is not changed."""
    return FoldedStage(stage).to(memory_format=torch.channels_last)
