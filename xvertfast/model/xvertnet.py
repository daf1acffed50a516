"""The multi-stage XVertNet (Eq. 7): each stage enhances the previous one's output.

``enhance(xp, y)``: out_1 = phi_1(X_p, Y); then for k > 1: Y_k = out_{k-1} - WLS(out_{k-1}),
out_k = phi_k(out_{k-1}, Y_k). Two stages is the default (the paper found three over-enhance).
"""

from __future__ import annotations

import operator
import sys

import torch
from torch import nn

from xvertfast import _text
from xvertfast.model.stage import XVertNetStage, checked_inputs
from xvertfast.ops.wls import check_parameters, wls
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM

__all__ = ["XVertNet", "uncompiled"]


class XVertNet(nn.Module):
    """The stages of Eq. 7 and the WLS parameters (``lam``, ``alpha``, ``eps``) of the guidance
    between them; :meth:`enhance` runs them on X_p and Y (:func:`xvertfast.load_model` gives
    one)."""

    def __init__(self, stages: list[XVertNetStage], lam: float = DEFAULT_LAM, alpha: float = DEFAULT_ALPHA,
                 eps: float = DEFAULT_EPS):
        super().__init__()
        if not stages:
            raise ValueError("XVertNet needs at least one stage")
        # those every wls call of the model will get (a 0-dim tensor as its number: config.json keeps it)
        lam, alpha, eps, _ = check_parameters(lam, alpha, eps, rtol=None, who="XVertNet")
        self.stages = nn.ModuleList(stages)
        # floats: 1 and 1.0 are one model (and one fingerprint)
        self.lam, self.alpha, self.eps = float(lam), float(alpha), float(eps)
        #: config.json of a loaded model (provenance, training config), which save_model writes again
        self.metadata: dict = {}

    def forward(self, xp: torch.Tensor, y: torch.Tensor, stages: int | None = None) -> torch.Tensor:
        """:meth:`enhance`, so that ``model(xp, y)`` works as with any torch module. The model is
        trained stage by stage (:mod:`xvertfast.train` trains each :class:`XVertNetStage`, the
        WLS guidance between them has no gradient), never as a whole: its one use is inference,
        so its forward is enhance's, without gradient and in eval mode. The exports trace the
        stages, not this."""
        return self.enhance(xp, y, stages)

    def guidance(self, image: torch.Tensor, method: str = "auto") -> torch.Tensor:
        """The HFC image ``image - WLS(image)`` of a [B, 1, H, W] batch (no gradient); ``method``
        picks the WLS solver (see :func:`xvertfast.wls`). An integer image is refused: WLS took it
        as floats, but the difference was cast back to its integers, 0 or 1 without a word."""
        if not isinstance(image, torch.Tensor):  # (else "'numpy.ndarray' object has no attribute 'dim'")
            raise TypeError(f"guidance: image must be a torch tensor [B, 1, H, W], got {type(image).__name__}")
        if image.dim() != 4 or image.shape[1] != 1:
            raise ValueError(f"guidance: image must be [B, 1, H, W], got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise TypeError(f"guidance: image must be floating point (a stage's output, in [0, 1]), got {image.dtype}")
        image = image.detach()  # (a graph through the image alone, WLS detached, would be a wrong one)
        smooth = wls(image[:, 0].float().contiguous(), self.lam, self.alpha, self.eps, method=method)
        return (image[:, 0] - smooth.to(image.dtype)).unsqueeze(1)

    @torch.no_grad()
    def enhance(self, xp: torch.Tensor, y: torch.Tensor, stages: int | None = None) -> torch.Tensor:
        """Runs the first ``stages`` stages (all by default) on a [B, 1, H, W] batch, in eval mode
        whatever the model's mode (batch norm in train mode would normalise by the batch, so an
        image's output would depend on its batch, and update the running statistics); the
        model's mode is left as it was.

        ``xp`` and ``y`` are X_p and its guidance Y (:func:`xvertfast.preprocess` gives them, as
        ``[H, W]``: add the two leading dims), any H and W (padded inside, cropped back), on the
        model's device, floating point (converted to the model's dtype, float32 as loaded).
        Returns the last stage's output, [B, 1, H, W] in [0, 1] (a sigmoid), in the model's dtype.

        Raises ValueError naming the input and the samples where xp or y holds NaN or infinite
        values (the WLS between the stages refused the whole batch, naming itself, not the input)
        or finite values beyond the range of the model's dtype (1e300 into a float32 model, 7e4
        into a half one: infinite once converted); TypeError where either holds integers."""
        count = len(self.stages) if stages is None else stages
        whole = not isinstance(count, bool) and hasattr(count, "__index__")
        if not whole or not 1 <= operator.index(count) <= len(self.stages):
            raise ValueError(f"enhance: stages must be 1 to {len(self.stages)}, got {stages!r}")
        count = operator.index(count)  # (a NumPy integer too)
        weight = next(self.parameters(), None)  # (the model's dtype; a stage may be any module)
        dtype = torch.get_default_dtype() if weight is None else weight.dtype
        given = {"xp": xp, "y": y}
        xp, y = checked_inputs("enhance", xp, y, dtype)
        for name, converted in (("xp", xp), ("y", y)):
            # the input as given first: a finite value the conversion overflows is no NaN of the caller's
            if said := _samples_not_finite(given[name]):
                raise ValueError(f"enhance: {name} holds NaN or infinite values ({said})")
            if converted is not given[name] and (said := _samples_not_finite(converted)):
                raise ValueError(f"enhance: {name} holds values beyond the range of the model's dtype "
                                 f"{_text.dtype_name(dtype)} ({said})")  # fmt: skip
        modes = [module.training for module in self.modules()]
        self.eval()
        try:
            out = xp
            for k, stage in enumerate(list(self.stages)[:count]):
                if k > 0:
                    y = self.guidance(out)
                out = stage(out, y)
            return out
        finally:
            for module, mode in zip(self.modules(), modes):
                module.training = mode


def _samples_not_finite(t: torch.Tensor) -> str:
    """The samples of a [B, ...] batch holding values that are not finite, and how many each
    (the first three), or "" where all are finite: the sample to look at, not the batch."""
    bad = (~torch.isfinite(t)).flatten(1).sum(1).tolist()
    said = [f"sample {i}: {_text.count(n, 'value')}" for i, n in enumerate(bad) if n]
    return "; ".join(said[:3]) + ("; ..." if len(said) > 3 else "")


def uncompiled(model):
    """The module ``torch.compile(model)`` wraps, else ``model`` itself: save_model and Enhancer
    take the model the user compiled (its weights are the wrapped model's), where "must be an
    XVertNet, got OptimizedModule" refused it. torch._dynamo is looked up, not imported: where it
    is not loaded, nothing was compiled."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    optimized = getattr(eval_frame, "OptimizedModule", None)
    if optimized is not None and isinstance(model, optimized):
        return getattr(model, "_orig_mod", model)
    return model
