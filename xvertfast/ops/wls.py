"""``xvertfast.wls``: exact edge-preserving smoothing (Farbman et al. 2008), on CPU or GPU.

XVertNet solves this weighted-least-squares system three times per image
(preprocessing, the HFC guidance image, and between stages), so it is the
heart of throughput. The system, its weights and boundary are defined in
:mod:`xvertfast.ops.wls_reference`; every method solves that same system.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, field

import torch

from xvertfast._checks import number_of, whole_number
from xvertfast._extension import (
    cuda_glue_error,
    cuda_kernels_available,
    cuda_kernels_problem,
    cuda_kernels_run_on,
    extension,
    has_extension,
)
from xvertfast._pixels import batch_shape_hint, not_finite, strips_or_one_image
from xvertfast._stacklevel import image_name, reading_file, solved_part, warn_user
from xvertfast.ops import wls_reference
from xvertfast.ops._inputs import as_tensor, compute_dtype, dtype_given
from xvertfast.ops.wls_direct import solve_direct
from xvertfast.ops.wls_pcg import wls_cupy

__all__ = ["wls", "WlsInfo", "METHODS", "DEFAULT_MAXITER", "FLOAT32_MAX_COUPLING", "FLOAT64_MAX_COUPLING",
           "release_workspace"]

#: Methods of :func:`wls`; see its docstring.
METHODS = ("auto", "cpu", "torch", "direct", "cupy", "cuda")
#: Iteration cap of the multigrid-preconditioned CG (it typically needs 6 to 50).
DEFAULT_MAXITER = 200
#: Largest lam / eps solved in float32 (see :func:`wls`); the default 0.8 / 1e-4 is 8e3.
FLOAT32_MAX_COUPLING = 1e7
#: Largest lam / eps solved at all. On quantised images (8-bit X-rays: 16% of neighbours equal)
#: equal neighbours take the full coupling lam / eps and the system's condition number grows
#: with it; measured 2026-12-06 on 48 x 48 images of 2 to 256 grey levels (24) against a float64
#: direct solve at lam / eps 8e9: at 5e15 the direct solve was up to 4e15 off, at 1e16 the cpu
#: method gave NaN on 14 of them, while up to 5e15 it stayed within rtol; 1e15 keeps a factor
#: of 5 from both. (8 x 8 continuous images, with no equal neighbours, showed none of it.)
FLOAT64_MAX_COUPLING = 1e15
#: Error per unit of lam / eps of the float64 "direct" and "torch" solves on quantised images
#: (~float64's epsilon times the condition number): the direct solve's max abs error measured
#: 0.03e-16 to 0.44e-16 of lam / eps from 8e12 to 8e14 on two 64 x 64 crops of an NIH X-ray and
#: random 15- and 255-level images; at 1e15 on 12 random 255-level 32 x 32 images 3e-3 to 2e-2,
#: torch's 8e-3 to 3e-2. Where it exceeds rtol they warn (see wls).
FLOAT64_ROUNDING_PER_COUPLING = 1e-16


@dataclass
class WlsInfo:
    """How each image was solved."""

    method: str
    iterations: list[int] = field(default_factory=list)  #: CG iterations per image (0 for direct)
    #: final ||b - A g|| / ||b|| per image, of the solver's float64 iterate (rounding the
    #: result to float32 alone leaves a residual of ~1e-4 through couplings up to 1/eps);
    #: for method="cupy", the CG's recursively updated residual
    residual: list[float] = field(default_factory=list)
    #: the precision each image was solved in, "float32" or "float64": a float32 solve that
    #: stopped before maxiter with its true residual above rtol is solved again in float64
    precision: list[str] = field(default_factory=list)


def _check(x: torch.Tensor, from_numpy: bool = False) -> None:
    """Refuses what wls cannot smooth, naming the dtype as the caller gave it (``from_numpy``:
    a NumPy array's, not the torch view's: 'got torch.uint8' puzzled a NumPy user)."""
    if x.dim() not in (2, 3):
        hint = batch_shape_hint(x.shape, "image")
        raise ValueError(f"wls: image must be [H, W] or [B, H, W], got shape {tuple(x.shape)}{hint}")
    if looks := strips_or_one_image(x.shape, "image"):  # (else H images 1 to 4 pixels wide, each apart)
        raise ValueError(f"wls: image of shape {tuple(x.shape)} looks like {looks}")
    if not x.is_floating_point():
        # (complex: no grey levels to scale; bool: no stored values to scale, a mask's 0 and 1)
        scale = "" if x.is_complex() else " (scale integer images by their real maximum first)"
        if x.dtype == torch.bool:
            scale = (": a mask, not grey levels; to smooth its 0 and 1, give them as floats "
                     f"({'mask.astype(np.float32)' if from_numpy else 'mask.float()'})")
        got = dtype_given(x, from_numpy)
        raise TypeError(f"wls: image must be floating point with values in [0, 1], got {got}{scale}")
    if x.device.type == "meta":  # (else torch's "Tensor.item() cannot be called on meta tensors")
        raise ValueError("wls: image is on the meta device, which holds no values to smooth")
    if x.numel() == 0:
        return
    # one reduction, no image-sized temporary: NaN and +-inf show in the extremes
    low, high = (float(v) for v in torch.aminmax(x))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(not_finite("wls", int((~torch.isfinite(x)).sum()), "image"))
    if low < 0:
        raise ValueError(
            f"wls: image has negative values (min {low:.3g}); the log guide needs values >= 0 "
            "(min-max scale to [0, 1] first)"
        )


_host_round_trip_warned = False


def _warn_host_round_trip(device: torch.device) -> None:
    """Says once that method='auto' solves through the host on a GPU, where the extension has no
    CUDA kernels at all. Where it has them but they cannot serve this GPU (built against another
    build of torch, or for other architectures), xvertfast._extension has already said why and
    what wls does then: one warning, not two."""
    global _host_round_trip_warned
    if _host_round_trip_warned:
        return
    _host_round_trip_warned = True  # (decided once: what the extension has does not change in a process)
    if cuda_kernels_available() or cuda_glue_error() is not None:
        return
    warn_user(f"wls: the CUDA kernels cannot run on {device} (the extension was built without them); "
              "method='auto' solves its images with "
              "the C++ CPU solver, copying each batch to the host and back (the PyTorch solver, "
              "method='torch', is many times slower on the GPU). See `xvertfast info`; said once",
              RuntimeWarning)  # fmt: skip


def _resolve(method: str, x: torch.Tensor, who: str = "wls") -> str:
    check_method(method, who)
    if method == "auto":
        if x.device.type == "cpu":
            return "cpu" if has_extension() else "torch"
        if x.device.type == "cuda":
            if cuda_kernels_run_on(x.device):
                return "cuda"
            if has_extension():  # the C++ solver through the host beats PyTorch's on the GPU
                _warn_host_round_trip(x.device)
                return "cpu"
        return "torch"
    if method == "cpu":
        if not has_extension():
            raise RuntimeError(f"{who}: method='cpu' needs the compiled extension (see `xvertfast info`)")
        if x.device.type != "cpu":
            raise ValueError(f"{who}: method='cpu' needs a CPU tensor, got one on {x.device}")
    if method in ("cuda", "cupy"):
        if x.device.type != "cuda":
            raise ValueError(f"{who}: method={method!r} needs a CUDA tensor, got one on {x.device}")
        problem = cuda_kernels_problem(x.device)
        if problem is not None:
            raise RuntimeError(f"{who}: method={method!r} on {x.device}: {problem}; see `xvertfast info`")
    return method


_PRECISION = {torch.float32: "float32", torch.float64: "float64"}


def _again_in_float64(batch, out, info: WlsInfo, lam, alpha, eps, rtol, cap):
    """Solves again in float64 the images whose float32 solve stopped before ``cap`` with the
    true residual above rtol. The CG stops on its recursively updated float32 residual; with
    couplings ``lam * a_pq`` of ~1e3 and more (lam >= ~1e3, or eps large enough that the
    weights stay near 1 / eps everywhere) float32 rounding makes it drift from the true one
    (lam=1e4, eps=1e-2: stopped after 8 iterations at a true residual of 1.7e-3). More
    iterations cannot help there; float64 can."""
    redo = [k for k, (it, rel) in enumerate(zip(info.iterations, info.residual)) if it < cap and not rel <= rtol]
    if not redo:
        return out
    index = torch.tensor(redo, device=batch.device)
    again, iters, resid = torch.ops.xvertfast.wls(batch.index_select(0, index).double(), lam, alpha, eps, rtol, cap)
    for j, k in enumerate(redo):
        info.iterations[k], info.residual[k], info.precision[k] = int(iters[j]), float(resid[j]), "float64"
    return out.index_copy(0, index, again.to(out.dtype))


#: A float64 residual within this factor of FLOAT64_ROUNDING_PER_COUPLING * lam / eps is taken as
#: rounding: the cpu method stopped at 0.1 to 10 times it on quantised images, 1e-4 or less off.
_NEAR_FLOOR = 20


def _warn_rounding_error(method: str, lam, eps, rtol) -> None:
    """Says that the direct and torch solves may be off by more than rtol: their float64 error grows
    with lam / eps on quantised images (direct 8e-4 off at 8e13 on an X-ray, torch 1.2e-3 with a
    residual below rtol), silently before this warning."""
    expected = FLOAT64_ROUNDING_PER_COUPLING * lam / eps
    if method not in ("direct", "torch") or not expected > rtol:
        return
    warn_user(f"wls: lam / eps = {lam / eps:.3g} (lam={lam:g}, eps={eps:g}): the result of method={method!r} may "
              f"be off by about {FLOAT64_ROUNDING_PER_COUPLING:g} * lam / eps = {expected:.1g}, more than "
              f"rtol={rtol:g}, on images with "
              "equal neighbouring values (quantised, as 8-bit X-rays are): float64 rounding at that "
              "conditioning; method='cpu' stayed within rtol there, or lower lam or raise eps",
              RuntimeWarning)  # fmt: skip


def _not_converged(who: str, it: int, rel: float, precision: str, cap: int, lam, eps, rtol) -> str:
    """The warning for the image ``who`` ("image 3" of a batch), worded by why its residual stayed above rtol."""
    head = f"wls: {who} did not reach rtol={rtol:g}"
    if math.isnan(rel):
        return f"{head} in {it} iterations (relative residual nan); check the input (values too large?)"
    if it >= cap:
        return f"{head} in {it} iterations (relative residual {rel:.2e}), maxiter; raise maxiter or check the input"
    floor = FLOAT64_ROUNDING_PER_COUPLING * lam / eps
    if precision == "float64" and rel <= _NEAR_FLOOR * floor:
        # the solver stopped on its own residual reaching rtol; the true one, evaluated in float64,
        # cannot go below rounding here (cpu at lam / eps 8e12 on an X-ray: 3.3e-3, 1.3e-7 off)
        return (f"wls: {who}: its relative residual {rel:.2e}, above rtol={rtol:g}, is float64 rounding, "
                f"not a failed solve: at couplings up to lam / eps = {lam / eps:.3g} (lam={lam:g}, eps={eps:g}) "
                f"the residual cannot be evaluated closer than about {FLOAT64_ROUNDING_PER_COUPLING:g} * lam / eps = "
                f"{floor:.1g}, so it cannot "
                f"confirm rtol; the solver's own residual reached rtol after {it} iterations and more iterations "
                "cannot help. To confirm the result, compare with a solve at a smaller lam / eps")  # fmt: skip
    return (f"{head}: the solver stopped after {it} iterations at a relative residual of {rel:.2e}, the "
            f"limit of {precision} rounding at these couplings (lam={lam:g}, eps={eps:g}); more iterations "
            "cannot help: raise rtol, or lower the couplings (lam, or 1 / eps)")  # fmt: skip


def release_workspace() -> int:
    """Frees the CPU solver's workspace kept by the calling thread; returns the bytes freed.

    ``method="cpu"`` keeps its last workspace (up to ``XVF_WLS_CACHE_MB`` megabytes,
    default 256, enough for 2048^2 float32; ``0`` keeps none) for the next solve of the
    same shape: fresh memory costs page faults and the kernel's zeroing on every call.
    Call this to return that memory after a batch, e.g. before a memory-hungry step.
    """
    ext = extension()
    if ext is None:
        return 0
    held = int(ext.wls_cached_workspace_bytes())
    ext.wls_release_workspace()
    return held


def check_parameters(lam, alpha, eps, rtol=1e-4, maxiter=None, who: str = "wls") -> tuple:
    """The system's parameters, checked for every method (the compiled op checks them too; the
    torch and direct methods would otherwise solve a meaningless system, or divide by 0), and by
    XVertNet, TrainConfig and preprocess for the ones they keep. ``who`` names the function the
    caller called, which passes them on (preprocess's lam=-1 was refused as wls's); ``rtol=None``:
    one it does not take. Returns ``(lam, alpha, eps, rtol)`` as Python numbers, a 0-dim tensor
    or array read as its number (:func:`~xvertfast._checks.number_of`) for every caller alike:
    wls took ``torch.tensor(1.2)`` where XVertNet and preprocess refused it (config files, which
    these keep their values in, hold the number)."""
    values = {"lam": lam, "alpha": alpha, "eps": eps, "rtol": rtol}
    if rtol is None:
        del values["rtol"]
    values = {name: number_of(value, name, who) for name, value in values.items()}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    lam, alpha, eps, rtol = values["lam"], values["alpha"], values["eps"], values.get("rtol")
    if lam < 0 or alpha <= 0 or eps <= 0 or (rtol is not None and rtol <= 0):
        need = ["lam >= 0", "alpha > 0", "eps > 0"] + (["rtol > 0"] if rtol is not None else [])
        got = ", ".join(f"{name}={value!r}" for name, value in values.items())
        raise ValueError(f"{who}: need {', '.join(need[:-1])} and {need[-1]}, got {got}")
    if lam / eps > FLOAT64_MAX_COUPLING:  # (lam=1e300 warned of a NaN residual, blaming the input image)
        raise ValueError(f"{who}: lam / eps = {lam / eps:.3g} (lam={lam!r}, eps={eps!r}) is beyond what float64 can "
                         f"solve (FLOAT64_MAX_COUPLING = {FLOAT64_MAX_COUPLING:g}): on images with equal neighbouring "
                         "values the result would be wrong or NaN; lower lam or raise eps")  # fmt: skip
    if maxiter is not None:  # (the one rule for counts: a 0-dim tensor or array read as its number)
        whole_number(maxiter, "maxiter", who, low=1)
    return lam, alpha, eps, rtol


def check_method(method, who: str = "wls", x: torch.Tensor | None = None) -> None:
    """Refuses a ``method`` that is none of :data:`METHODS`, or (given the tensor ``x`` it will
    solve) one that cannot solve it there, in the name of the function called."""
    if method not in METHODS:
        raise ValueError(f"{who}: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if x is not None and method != "auto":  # (auto always finds one)
        _resolve(method, x, who)


def wls(
    image,
    lam: float = wls_reference.DEFAULT_LAM,
    alpha: float = wls_reference.DEFAULT_ALPHA,
    eps: float = wls_reference.DEFAULT_EPS,
    rtol: float = 1e-4,
    maxiter: int | None = None,
    method: str = "auto",
    return_info: bool = False,
):
    """Edge-preserving WLS smoothing: the solution g of ``(I + L_a) g = image``.

    Args:
        image: NumPy array or torch tensor, ``[H, W]`` or a batch ``[B, H, W]``, values >= 0
            (XVertNet feeds [0, 1]); ``[H, W, C]``, C = 1 to 4 (channels last), is refused.
            float32 (default) or float64; float16/bfloat16 are solved and returned in
            float32. With ``lam / eps`` above ``FLOAT32_MAX_COUPLING`` (1e7) a
            float32 image is solved in float64 (twice the memory), since float32 can no
            longer hold the system's small row sums beside couplings that large; and methods
            "cpu" and "cuda" solve again in float64 an image whose float32 solve stopped before
            maxiter with its true residual above rtol (float32 rounding at couplings
            ``lam * a_pq`` of ~1e3 and more, e.g. lam=1e4 with eps=1e-2). The result is still
            returned in the input's precision.
        lam, alpha, eps: smoothness, edge sensitivity and the weight guard of
            ``a_pq = lam / (|log(x_q + 1e-4) - log(x_p + 1e-4)|^alpha + eps)``.
            ``lam / eps`` above ``FLOAT64_MAX_COUPLING`` (1e15) is refused: no float64 solve holds it
            on quantised images. Methods "direct" and "torch" warn where their float64 error, about
            ``1e-16 * lam / eps`` on such images, exceeds rtol (lam / eps above 1e12 at rtol 1e-4).
            Each (and rtol) is a number, or a 0-dim tensor or array of one that requires no grad
            (the solve has no gradient in them).
        rtol: stop when the relative residual ``||b - A g|| / ||b||`` is below it; since the
            smallest eigenvalue of ``A`` is at least 1, the relative error is at most about rtol.
        maxiter: CG iteration cap (default 200); not converging is a RuntimeWarning.
        method: ``"auto"`` (fastest available for the device: for a CUDA tensor ``"cuda"`` where
            the CUDA kernels run on its GPU, else ``"cpu"`` with a copy to the host and back, said
            once in a RuntimeWarning; ``"torch"`` only without the extension), ``"cpu"`` (the C++
            multigrid-PCG solver), ``"cuda"`` (the same solver's code as CUDA kernels, a batch solved
            together on the GPU), ``"cupy"`` (CG driven from Python on CuPy arrays with the same CUDA
            operator and V-cycle; its residual is the CG's recursive one), ``"torch"`` (the same
            algorithm in PyTorch, any device; slow, for tests), ``"direct"`` (SciPy sparse LU
            in float64: the reference).
        return_info: also return a :class:`WlsInfo` with iterations and residuals.

    Returns:
        The smoothed image(s), same type (NumPy or torch), shape and device as ``image``, in
        float32 or float64 (see ``image``; detached: the solve
        carries no gradient); with ``return_info``, ``(smoothed, info)``.
    """
    x, from_numpy = as_tensor(image, "wls: image", image="an image ([H, W] or [B, H, W] array or tensor)")
    x = x.detach()  # the solve is not differentiable: no gradient flows through wls
    _check(x, from_numpy)
    lam, alpha, eps, rtol = check_parameters(lam, alpha, eps, rtol, maxiter)  # (a 0-dim tensor: its number)
    chosen = _resolve(method, x)
    squeeze = x.dim() == 2
    batch = x.unsqueeze(0) if squeeze else x
    out_dtype = compute_dtype(x)
    # float32 carries the system while the couplings lam / eps stay well under 1 / float32
    # epsilon; beyond that (eps <= ~1e-8 at lam 0.8) the solve runs in float64
    solve_dtype = torch.float64 if lam / eps > FLOAT32_MAX_COUPLING else out_dtype
    # "auto" on a GPU the CUDA kernels cannot run on: the CPU solver, through the host
    host = chosen == "cpu" and batch.device.type != "cpu"
    batch = batch.to(device="cpu" if host else batch.device, dtype=solve_dtype).contiguous()
    cap = DEFAULT_MAXITER if maxiter is None else operator.index(maxiter)
    info = WlsInfo(chosen)

    if batch.numel() == 0:
        out = batch.clone()
    elif chosen in ("cpu", "cuda"):
        out, iters, resid = torch.ops.xvertfast.wls(batch, lam, alpha, eps, rtol, cap)
        info.iterations, info.residual = iters.tolist(), resid.tolist()
        info.precision = [_PRECISION[batch.dtype]] * len(batch)
        if batch.dtype == torch.float32:
            out = _again_in_float64(batch, out, info, lam, alpha, eps, rtol, cap)
    elif chosen == "cupy":
        out, info.iterations, info.residual = wls_cupy(batch, lam, alpha, eps, rtol, cap)
        info.precision = [_PRECISION[batch.dtype]] * len(batch)
    elif chosen == "torch":
        outs = []
        for img in batch:
            g, it, rel = wls_reference.solve_reference(img.double(), lam, alpha, eps, rtol, cap)
            outs.append(g.to(out_dtype))
            info.iterations.append(it)
            info.residual.append(rel)
            info.precision.append("float64")
        out = torch.stack(outs)
    else:  # direct
        outs = []
        for img in batch:
            g = solve_direct(img, lam, alpha, eps)
            outs.append(g.to(out_dtype))
            info.iterations.append(0)
            info.residual.append(wls_reference.relative_residual(img.double(), g, lam, alpha, eps))
            info.precision.append("float64")
        out = torch.stack(outs)

    if batch.numel():
        _warn_rounding_error(chosen, lam, eps, rtol)
    # a batch job's reader solves one image, its file's, which the job names: not "image 0" of a batch
    one_file = reading_file() is not None and len(info.iterations) == 1
    part = solved_part()  # (preprocessing solves twice: which solve missed)
    for k, (it, rel) in enumerate(zip(info.iterations, info.residual)):
        if chosen != "direct" and not rel <= rtol:  # a NaN residual warns too
            file, who = (None, "the image") if one_file else image_name(k) or (None, f"image {k}")
            who = who if part is None else f"{who} ({part})"
            warn_user(_not_converged(who, it, rel, info.precision[k], cap, lam, eps, rtol), RuntimeWarning,
                      of_the_image=True, file=file)  # fmt: skip
    out = out.to(device=x.device, dtype=out_dtype)
    if squeeze:
        out = out[0]
    result = out.numpy() if from_numpy else out
    return (result, info) if return_info else result
