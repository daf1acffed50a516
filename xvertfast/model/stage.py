"""One XVertNet stage: a U-Net on X_p whose decoder is guided by Y at every level (paper Fig. 2).

Encoder level k (k = 0 .. depth-1) has ``width * 2^k`` channels (two 3x3 conv +
batch norm + ReLU, then 2x2 max-pool); the bottleneck has ``width * 2^depth``.
Decoder level k upsamples (``upsample``, below), concatenates the encoder skip,
applies two 3x3 convs to ``width * 2^k`` maps, and concatenates the guidance
layer ``GL_k(Y) = MaxPool_{2^k}(Conv3x3(LeakyReLU(Y)))`` with ``width * 2^k``
maps. The last level therefore holds ``width`` network maps + ``width`` GL maps
(128 for the paper's width 64): the feature set of the entropy loss. A 1x1
conv and a sigmoid give the output image in [0, 1] (the next stage's WLS needs
values >= 0). Inputs of any size are reflect-padded to a multiple of 2^depth
and the output cropped back.

Upsampling: ``"bilinear"`` (the default) is a 1x1 conv followed by bilinear 2x
interpolation; ``"transposed"``, a 2x2 stride-2 transposed conv, is the form of
models trained before it (the first default model among them). The structure
loss cannot see a pattern of period 2 pixels: the Sobel kernels' central
differences cancel it. A transposed conv has its own weights for each of the
four pixel phases, so it produces such patterns, and the feature loss amplified
them. In side-by-side runs (width 8, 40 + 20 epochs, bench/RESULTS.md) the
output's second differences reached 1.4-6x the input's with transposed
upsampling and 0.8x with bilinear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xvertfast._checks import whole_number
from xvertfast.ops.guided_pool import guided_pool

__all__ = ["XVertNetStage", "GuidanceLayer", "DoubleConv", "BilinearUp", "UPSAMPLING", "checked_inputs", "padded_inputs",
           "upsample2x"]

#: The decoder's upsampling kinds; see the module docstring.
UPSAMPLING = ("bilinear", "transposed")


def checked_inputs(who: str, xp: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None):
    """A stage's inputs checked (tensors, [B, 1, H, W], floating point) and brought to the
    weights' ``dtype``: float64 is what NumPy gives, and torch's own mismatch error ("expected
    scalar type Double but found Float") names neither the input nor the model. Integer images
    are refused, not scaled: X_p and Y are :func:`xvertfast.preprocess`'s floats, and an 8-bit
    image here is most likely one that skipped it. Inputs already of ``dtype`` (any, for None)
    are returned as they are (an exported graph records no conversion)."""
    if not (isinstance(xp, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"{who}: xp and y must be torch tensors, got {type(xp).__name__} and {type(y).__name__}")
    if xp.dim() != 4 or xp.shape[1] != 1 or xp.shape != y.shape or not (xp.shape[2] and xp.shape[3]):
        raise ValueError(f"{who}: xp and y must both be [B, 1, H, W] with H, W >= 1, got {tuple(xp.shape)} and "
                         f"{tuple(y.shape)}")  # fmt: skip
    converted = "" if dtype is None else f", converted to the model's {dtype}"
    for name, t in (("xp", xp), ("y", y)):
        if not t.is_floating_point():
            raise TypeError(f"{who}: {name} holds {t.dtype} values; it takes floating point (X_p and Y as "
                            f"xvertfast.preprocess gives them){converted}")  # fmt: skip
    if dtype is None:
        return xp, y
    return (xp if xp.dtype == dtype else xp.to(dtype)), (y if y.dtype == dtype else y.to(dtype))


def padded_inputs(who: str, xp: torch.Tensor, y: torch.Tensor, depth: int, dtype: torch.dtype | None = None):
    """Checks a stage's inputs (:func:`checked_inputs`, converted to ``dtype`` unless None) and pads
    both to a multiple of 2^depth (reflect; replicate where an image is too small to reflect);
    returns them and the original (H, W) to crop back to. ``dtype`` is optional: callers from
    before it was added keep working."""
    xp, y = checked_inputs(who, xp, y, dtype)
    h, w = xp.shape[-2:]
    m = 2**depth
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        xp, y = (F.pad(t, (0, pw, 0, ph), mode=mode) for t in (xp, y))
    return xp, y, (h, w)


class DoubleConv(nn.Sequential):
    """(3x3 conv, batch norm, ReLU) x 2."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def upsample2x(t: torch.Tensor) -> torch.Tensor:
    """The bilinear 2x interpolation of the ``"bilinear"`` decoder (shared with FoldedStage)."""
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)


class BilinearUp(nn.Module):
    """1x1 conv, then bilinear 2x upsampling. Both are linear and the conv mixes channels only,
    so this equals upsampling first, at a quarter of the conv's cost; the interpolation has
    no per-phase weights (and no response at the period-2 frequency)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return upsample2x(self.conv(t))


class GuidanceLayer(nn.Module):
    """``MaxPool_{2^level}(Conv3x3(LeakyReLU(Y)))``: the HFC image brought to a decoder level."""

    def __init__(self, channels: int, level: int, negative_slope: float = 0.2):
        super().__init__()
        self.level = level
        self.act = nn.LeakyReLU(negative_slope)
        self.conv = nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """The guidance maps of ``y`` [B, 1, H, W] at this level: [B, channels, H / 2^level, W / 2^level]."""
        # the fused conv + pool on the CPU (never writes the full-resolution maps)
        return guided_pool(self.act(y), self.conv.weight, self.conv.bias, 2**self.level)


class XVertNetStage(nn.Module):
    """One stage ``phi(X_p, Y)``; see the module docstring."""

    def __init__(self, width: int = 64, depth: int = 4, upsample: str = "bilinear"):
        super().__init__()
        width = whole_number(width, "width", "XVertNetStage", low=1)  # (a NumPy integer: a plain int)
        depth = whole_number(depth, "depth", "XVertNetStage", low=1)
        if upsample not in UPSAMPLING:
            raise ValueError(f"XVertNetStage: upsample must be one of {UPSAMPLING}, got {upsample!r}")
        self.width, self.depth, self.upsample = width, depth, upsample
        chans = [width * 2**k for k in range(depth + 1)]
        self.encoders = nn.ModuleList([DoubleConv(1 if k == 0 else chans[k - 1], chans[k]) for k in range(depth)])
        self.bottleneck = DoubleConv(chans[depth - 1], chans[depth])
        self.ups, self.decoders, self.guides = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin = chans[depth]
        for k in reversed(range(depth)):
            self.ups.append(BilinearUp(cin, chans[k]) if upsample == "bilinear"
                            else nn.ConvTranspose2d(cin, chans[k], 2, stride=2))  # fmt: skip
            self.decoders.append(DoubleConv(2 * chans[k], chans[k]))
            self.guides.append(GuidanceLayer(chans[k], k))
            cin = 2 * chans[k]
        self.head = nn.Conv2d(2 * width, 1, 1)

    @property
    def feature_maps(self) -> int:
        """Maps of the last decoder level (network + guidance): the entropy loss's candidates."""
        return 2 * self.width

    def forward(self, xp: torch.Tensor, y: torch.Tensor, return_features: bool = False):
        """The enhanced image [B, 1, H, W] in (0, 1) of ``xp`` and its guidance ``y`` (both [B, 1, H, W]);
        with ``return_features`` also the last decoder level's maps (the entropy loss's candidates)."""
        xp, y, (h, w) = padded_inputs("XVertNetStage", xp, y, self.depth, self.head.weight.dtype)
        skips, t = [], xp
        for enc in self.encoders:
            t = enc(t)
            skips.append(t)
            t = F.max_pool2d(t, 2)
        t = self.bottleneck(t)
        for up, dec, guide, skip in zip(self.ups, self.decoders, self.guides, reversed(skips)):
            t = dec(torch.cat([up(t), skip], dim=1))
            t = torch.cat([t, guide(y)], dim=1)
        out = torch.sigmoid(self.head(t))[..., :h, :w]
        if return_features:
            return out, t[..., :h, :w]
        return out
