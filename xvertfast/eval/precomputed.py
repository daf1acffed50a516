"""Another tool's outputs as a method of the evaluation: ``outputs=DIR``.

A vendor's processing, a published method's own code or ``xvertfast enhance --mode full``
writes its results into a folder; this method finds, for each input, the output that mirrors
its path there (the same path relative to the folder the input was found in, as ``xvertfast
enhance`` names its outputs, with any image extension) and hands it to the protocol, which
scores it on the same ROIs as the methods it runs itself.

An output is read on its own format's scale, not min-max stretched, so the tool's own
brightness and contrast are what the metrics see: an 8-bit value v as v / 255, a DICOM over
its BitsStored (:func:`xvertfast.io.read.full_range`), floats as stored (a float TIFF, a
DICOM's float pixel data) as they are (they must then lie in [0, 1], to within
:data:`~xvertfast.io.decode_common.FLOAT_SCALE_SLACK`), and a 16-bit PNG or TIFF
over the depth the file records (a PNG's sBIT chunk or the text chunk xvertfast's png16 writes,
a packed TIFF's BitsPerSample), else over the input's bit depth, where its values fit in it (a
tool that kept the input's depth, as ``xvertfast enhance`` does), else over the full 16 bits.
``inverted_outputs=DIR`` reads a tool's outputs stored bone dark (a vendor's that keep
MONOCHROME1's polarity in a PNG): each as above, then inverted (1 - v), so bone is bright as in the inputs.
"""

from __future__ import annotations

import bisect
import math
import os

import numpy as np

from xvertfast._pickled_errors import PickledAsRaised
from xvertfast._text import part_percent
from xvertfast.io import ImageReadError, read_image
from xvertfast.io.errors import failure_text
from xvertfast.io.files import InputFile, image_extension, same_file
from xvertfast.io.read import full_range, on_stored_scale, stored_as_floats
from xvertfast.io.write import same_format, same_format_extension

__all__ = ["PrecomputedOutputs", "FolderRefused"]

#: Below this correlation of its details with its input's an output is taken for an inverted one
#: (bone dark): scoring it against the others would compare unlike pictures. On the 18 cxr-dev
#: images an inverted output correlates at -1.00, blurred (sigma 12-16 px) at -0.27 to -0.80;
#: the default model's outputs at +0.40 to +0.67, blurred so at -0.03 to +0.50.
INVERTED_CORRELATION = -0.2


def detail_correlation(output: np.ndarray, source: np.ndarray) -> float:
    """Correlation of the two images' details (each minus its blur, on every fourth pixel: the
    sign is all that is asked). An output stored inverted has its details inverted too (about
    -1); an enhancement that flattens or even turns over the large-scale brightness keeps their
    sign: the default model's lung fields can come out brighter than the spine, a whole-image
    correlation below -0.5 on 5 of the 18 cxr-dev images (-0.49 on a sixth) in full mode, where
    their details correlate at +0.40 to +0.67. NaN where either has no detail (a constant image: not inverted)."""
    from scipy.ndimage import gaussian_filter

    def detail(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)[::4, ::4]
        return x - gaussian_filter(x, max(1.0, min(x.shape) / 64))  # ~1.5% of the image's side

    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(detail(output).ravel(), detail(source).ravel())[0, 1])


#: How many near misses (:meth:`PrecomputedOutputs._near_misses`) a missing output's refusal names.
NEAR_MISSES_SHOWN = 3


def _starting_with(names: list[str], prefix: str, keep=lambda name: True) -> list[str]:
    """Up to ``NEAR_MISSES_SHOWN + 1`` of the sorted ``names`` that start with ``prefix`` followed by no
    letter or digit (``a_gamma`` for ``a``, not ``a1_gamma``: another input's), and that ``keep``
    takes (counted among those shown: a folder's other inputs' outputs, left out). Bisected: a flat folder
    of 20 000 outputs, most of them missing under a tool's naming, is not scanned once an image; the
    names going on with a letter or digit are jumped over as a block, since they sort among the others
    (``im10_enh`` .. ``im19_enh`` before ``im1_enh``, '_' after the digits)."""
    at, found = bisect.bisect_left(names, prefix), []
    while at < len(names) and names[at].startswith(prefix) and len(found) <= NEAR_MISSES_SHOWN:
        after = names[at][len(prefix) : len(prefix) + 1]
        if after.isalnum():
            at = bisect.bisect_left(names, prefix + chr(ord(after) + 1), at)
        else:
            if keep(names[at]):
                found.append(names[at])
            at += 1
    return found


def _output_stem(rel: str) -> str:
    """An input's path relative to where it was found, without its image extension: its output's
    (as :meth:`PrecomputedOutputs.locate` joins it)."""
    rel_dir, name = os.path.split(rel)
    return os.path.join(rel_dir, name[: len(name) - len(image_extension(name))])


#: The spellings of one format's extension, each as the one it is counted as: a tool may write a.jpeg's
#: output as a.jpg, or a.dcm's as a.dicom (the extension is its format's, whichever spelling).
_SPELLINGS = {".tiff": ".tif", ".jpeg": ".jpg", ".dicom": ".dcm"}


def _one_spelling(ext: str) -> str:
    """An image extension in lower case, one spelling for each format (.tiff as .tif, .jpeg as .jpg,
    .dicom as .dcm)."""
    ext = ext.lower()
    return _SPELLINGS.get(ext, ext)


def _own_extensions_output(found: list[str], sharing: list[str], path: str) -> str | None:
    """Of the files ``found`` under the output path of several inputs (``sharing``), the one of
    ``path``'s, where each of them has one there of its own, and nothing else is there: by one rule
    for all, each input's own extension (a tool keeping it) or the one ``enhance --format same``
    gives it (in/a.jpg and in/a.tif as out/a.png and out/a.tif). Extensions are matched as spelt
    (in lower case) first, so in/a.jpg and in/a.jpeg take out/a.jpg and out/a.jpeg; only where that
    does not fit, each spelling of a format as one (in/a.jpeg and in/a.tif as out/a.jpg and out/a.tif).
    None where whose is whose cannot be told (two inputs of one extension, one without, a file of no
    input's, the two rules apart)."""
    for spelling in (str.lower, _one_spelling):
        rules = {tuple(spelling(image_extension(os.path.basename(p))) for p in sharing),
                 tuple(spelling(same_format_extension(p, same_format(p))) for p in sharing)}
        there = sorted(spelling(image_extension(name)) for name in found)
        fits = [kinds for kinds in rules
                if "" not in kinds and len(set(kinds)) == len(kinds) and sorted(kinds) == there]  # fmt: skip
        if len(fits) > 1:
            return None
        if fits:
            mine = fits[0][sharing.index(path)]
            return next(name for name in found if spelling(image_extension(name)) == mine)
    return None


class FolderRefused(PickledAsRaised, ValueError):
    """The refusal of the folder given as another tool's outputs, said "outputs=DIR: <problem>";
    ``problem`` is the words after the method, for a caller that names the method its own way
    (:func:`~xvertfast.eval.baselines.get_method`: "--methods mine:outputs=DIR: <problem>"), who
    took them from the message by its text."""

    def __init__(self, method: str, problem: str):
        super().__init__(f"{method}: {problem}")
        self.problem = problem


class PrecomputedOutputs:
    """The method reading each input's output from ``folder``; called with the input's
    :class:`~xvertfast.io.files.InputFile` as ``source``."""

    needs_source = True

    def __init__(self, folder: str, inverted: bool = False):
        """``inverted``: the tool stores its outputs bone dark: each is scored as 1 - its value (the
        method ``inverted_outputs=DIR``). Its refusal of an output that looked inverted was the only
        way: a vendor's processed images kept in MONOCHROME1's polarity could not be compared at all."""
        #: what the method is, as --methods names it (``outputs``, ``inverted_outputs``)
        self.kind = "inverted_outputs" if inverted else "outputs"
        if not os.path.isdir(folder):  # (a file was said to be no such folder)
            what = "a file, not a folder" if os.path.exists(folder) else "no such folder"
            raise FolderRefused(f"{self.kind}={folder}", f"{what}: give the folder another tool wrote its outputs "
                                "into, mirroring the inputs' paths")  # fmt: skip
        self.folder = folder
        self.inverted = bool(inverted)
        #: a folder -> its names, and those with an image extension by their stem: each input's output
        #: is looked up, not looked for among all of them (a flat folder of 20 000: quadratic)
        self._listings: dict[str, tuple[set[str], dict[str, list[str]]]] = {}
        #: a folder -> its image files' stems sorted, and each reversed sorted: a missing output's
        #: near misses (a suffix or prefix added to its name) are found by bisection, not by a scan
        self._stems: dict[str, tuple[list[str], list[str]]] = {}
        #: an input's output path but for its extension -> the inputs that share it, where several do
        self._shared: dict[str, list[str]] = {}
        #: every input's output path but for its extension: a file named so is no near miss of another's
        self._expected: set[str] = set()

    def expect(self, sources) -> None:
        """Takes the inputs whose outputs will be looked for (the protocol's files), to refuse those
        whose paths are one but for the extension (a.png and a.tif, or two inputs a.png of two
        folders given as files) unless each has an output of its own extension there (or each of the
        extension ``enhance --format same`` gives it): an output a.* is either's, and the one there
        was scored for both, one of them against another image, without a word; and to leave the
        inputs' own outputs out of another's near misses."""
        by_output: dict[str, list[str]] = {}
        for source in sources:
            by_output.setdefault(_output_stem(source.rel), []).append(source.path)
        self._shared = {key: paths for key, paths in by_output.items() if len(paths) > 1}
        self._expected = set(by_output)

    def locate(self, source: InputFile) -> str:
        """The output of ``source``: ``folder/<its relative path>`` with any image extension."""
        rel_dir, name = os.path.split(source.rel)
        stem = name[: len(name) - len(image_extension(name))]
        where = os.path.join(self.folder, rel_dir)
        sharing = self._shared.get(os.path.join(rel_dir, stem), [])
        others = [p for p in sharing if p != source.path]
        names, by_stem = self._listing(where)
        found = sorted({*by_stem.get(stem, ()), *((name,) if name in names else ())})
        if others:
            own = _own_extensions_output(found, sharing, source.path)
            if own is None:
                raise ImageReadError(source.path, f"its output {os.path.join(where, stem)}.* would also be the "
                                     f"output of {' and '.join(others)} (an output is named by its input's path "
                                     "without the extension), so whose it is cannot be told (unless each has one "
                                     "there of its own extension, or each of the one enhance --format same gives "
                                     "it: a.jpg and a.tif as a.png and a.tif): rename "
                                     "one, or evaluate them apart")  # fmt: skip
            found = [own]
        if not found:
            raise ImageReadError(source.path, f"its output {os.path.join(where, stem)}.* is missing"
                                 f"{self._near_misses(where, stem, source.rel)}")  # fmt: skip
        if len(found) > 1:
            raise ImageReadError(source.path, f"its output {os.path.join(where, stem)}.* is several files there: "
                                 f"{', '.join(found)}")  # fmt: skip
        path = os.path.join(where, found[0])
        if same_file(path, source.path):
            raise ImageReadError(source.path, f"its output {path} is the input itself: {self.kind}={self.folder} "
                                 "holds the inputs, not outputs of them")  # fmt: skip
        return path

    def _listing(self, where: str) -> tuple[set[str], dict[str, list[str]]]:
        """The names in ``where`` (none where it is no folder), and its image files by their stem."""
        if where not in self._listings:
            try:
                names = os.listdir(where)
            except OSError:
                names = []
            by_stem: dict[str, list[str]] = {}
            for n in names:
                ext = image_extension(n)
                if ext:
                    by_stem.setdefault(n[: len(n) - len(ext)], []).append(n)
            self._listings[where] = set(names), by_stem
        return self._listings[where]

    def _near_misses(self, where: str, stem: str, rel: str) -> str:
        """What the refusal of a missing output adds where ``where`` holds image files named as the
        input with something before or after it, from a character no letter or digit (``a_enhanced.png``,
        ``out-a.png``: a tool's own naming, each image failing 'no output' without a word of them;
        not ``a1.png`` for ``a.png``, nor ``a_lateral.png`` where ``a_lateral`` is an input: another
        input's), or where the outputs' folder holds it at its
        top (an input of a subfolder, or listed with its folder, ``rel``, its output written flat); '' else."""
        by_stem = self._listing(where)[1]
        if where not in self._stems:
            self._stems[where] = sorted(by_stem), sorted(s[::-1] for s in by_stem)
        stems, backwards = self._stems[where]
        rel_dir = os.path.dirname(rel)
        near = _starting_with(stems, stem, lambda s: os.path.join(rel_dir, s) not in self._expected)
        near += [s[::-1] for s in _starting_with(backwards, stem[::-1],
                                                  lambda s: os.path.join(rel_dir, s[::-1]) not in self._expected)]
        files = sorted({n for s in near if s != stem for n in by_stem[s]})
        if stem and files:
            shown = ", ".join(files[:NEAR_MISSES_SHOWN]) + (", ..." if len(files) > NEAR_MISSES_SHOWN else "")
            return (f"; {os.path.normpath(where)} holds {shown}, named after it: an output is named as its input, any "
                    "image extension")  # fmt: skip
        top = sorted(self._listing(self.folder)[1].get(stem, ()))
        if top and stem not in self._expected and os.path.normpath(where) != os.path.normpath(self.folder):
            return (f"; {self.folder} holds {', '.join(top)}: the output of an input found at {rel} (in a subfolder, "
                    "or listed by that path) goes at that path in the outputs' folder, as enhance writes it")  # fmt: skip
        return ""

    def __call__(self, pixels: np.ndarray, spine=None, source: InputFile | None = None, input_bits: int | None = None,
                 original=None, notes: list[str] | None = None) -> np.ndarray:  # fmt: skip
        """``source``'s output on [0, 1]. ``original``: the input's Radiograph as read, for the
        refusal of an output that looks inverted to say where the input is the one that does.
        ``notes``: a list given by the caller, to which what the report should say of how the
        output was read is added (a colour output scored as its luminance, a depth that looks
        like another's than the one it is read over), each starting "its output" (no path: the
        report counts alike notes of many images in one line)."""
        if source is None:
            raise ValueError("outputs=DIR needs the input file to find its output")
        path = self.locate(source)
        try:
            rad = read_image(path, warn=False)
        except (ImageReadError, OSError) as exc:  # (said as the input's failure, its output named after it)
            raise ImageReadError(source.path, f"its output {failure_text(path, exc)}") from exc
        if rad.shape != tuple(np.shape(pixels)):
            raise ImageReadError(source.path, f"its output {path} is {rad.shape[1]}x{rad.shape[0]}, the input "
                                 f"{np.shape(pixels)[1]}x{np.shape(pixels)[0]}: an output must keep the size")  # fmt: skip
        stored = on_stored_scale(rad, depth_hint=input_bits)
        if stored is None:
            raise ImageReadError(source.path, f"its output {path} holds float values in [{rad.values.min():.4g}, "
                                 f"{rad.values.max():.4g}], not in [0, 1]: their scale is unknown (write the output "
                                 "as [0, 1] floats or as integers)")  # fmt: skip
        out = stored.astype(np.float32)
        if self.inverted:
            out = 1.0 - out
        corr = detail_correlation(out, pixels)
        if corr < INVERTED_CORRELATION:
            read = f", read inverted as {self.kind}={self.folder} asks" if self.inverted else ""
            raise ImageReadError(source.path, f"its output {path} looks inverted against it{read} (its details "
                                 f"correlate at {corr:.2f}){self._inverted_said(original)}")  # fmt: skip
        if notes is not None:  # (read with warn=False: what decoding changed, a colour's luminance, said here)
            notes += [f"its output as read: {n.removeprefix(f'{path}: ')}" for n in rad.notes]
            depth = _depth_note(rad, *full_range(rad, depth_hint=input_bits), input_bits, self.inverted)
            if depth is not None:
                notes.append(depth)
        return out

    def _inverted_said(self, original) -> str:
        """How the refusal of an output that looks inverted ends. Where its input (``original``, as
        read) looks inverted itself, that and its fix: a MONOCHROME1 image stored as a PNG is read bone
        dark, and a tool's upright output of it was refused as inverted, the input not named as the
        cause. Where the input is MONOCHROME1, read inverted, that an output of its stored values is
        inverted too (a tool's natural slip). Else the method to give: ``inverted_outputs=DIR`` for a
        tool storing bone dark (the refusal said only that bone should be bright, leaving a vendor's
        outputs no way to be scored), ``outputs=DIR`` where they were read inverted and store it bright."""
        from xvertfast.preprocess.spine import inverted_reason

        reason = inverted_reason(original) if original is not None else None
        if reason is not None:
            return f"; but its input itself {reason}"
        if self.inverted:
            return (": its tool stores bone bright, as the inputs do (or its file records MONOCHROME1, read bone "
                    f"bright already): give the method as outputs={self.folder}")  # fmt: skip
        m1 = (" (its input is MONOCHROME1, stored bone dark and read inverted: an output made from its stored values "
              "is inverted)" if getattr(original, "photometric", None) == "MONOCHROME1" else "")  # fmt: skip
        return (f": bone should be bright, as in the inputs{m1}; if its tool stores its outputs bone dark (as "
                f"MONOCHROME1 does), give the method as inverted_outputs={self.folder} to score each inverted")


def _signed_note(rad, v: np.ndarray, lo: float, hi: float, input_bits: int | None, inverted: bool) -> str:
    """The note on an output of signed integers with no negative value (a TIFF of int16, numpy's
    way with a tool's 0..4095; a DICOM of PixelRepresentation 1 over its BitsStored): read over its
    type's whole range, as a signed file is, its values lie in the upper half, and it was scored
    with at most half the contrast they were meant to have, without a word (``inverted``: scored
    1 - v, in the lower half). A DICOM's fix names its input's depth as the BitsStored where the
    values fit in it and it is 2 bits or more below the file's (unsigned at BitsStored 16, 12-bit
    values were read over 0..65535, and noted as too dark: :func:`_depth_note`); else the depth
    they fit in, if its tool wrote them over it (the largest value alone says no depth: 12-bit
    values halved fit in 11 bits, and read over them would score up to white, not half)."""
    fits = max(1, int(v.max()).bit_length())
    if rad.source_format == "dicom":
        stored = f"PixelRepresentation 1, BitsStored {rad.bits_stored}"
        depth = _bits_stored_to_write(fits, input_bits, rad.bits_stored)
        fix = f"write the outputs with PixelRepresentation 0 (unsigned integers){f' and {depth}' if depth else ''}"
    else:
        stored, fix = str(v.dtype), "write the outputs as unsigned integers (or as floats in [0, 1])"
    scored = ("lie in the upper half of that range and, read inverted, are scored in the lower half of black to "
              "white" if inverted else "are scored in the upper half of that range")  # fmt: skip
    return (f"its output is stored as signed integers ({stored}) and holds no negative value, yet it is read over "
            f"their range ({int(lo)}..{int(hi)}), so its values, which fit in {fits} bits, {scored}, with at most "
            f"half its contrast: {fix}")


def _bits_stored_to_write(fits: int, input_bits: int | None, bits_stored: int) -> str | None:
    """The BitsStored a DICOM output's fix names (:func:`_signed_note`, :func:`_rescale_note`), the
    two notes wording it alike: the input's depth where its values, which fit in ``fits`` bits, fit
    in it and it is 2 bits or more below the file's ``bits_stored``; else the depth they fit in, if
    its tool wrote them over it (the largest value alone says no depth). None where they fit in no
    fewer than 2 bits below ``bits_stored``: no depth to name."""
    if input_bits and fits <= input_bits < bits_stored - 1:
        return f"BitsStored {input_bits}, its input's depth"
    if fits < bits_stored - 1:
        return f"BitsStored {fits} (if its tool wrote them over 0..{(1 << fits) - 1})"
    return None


def _rescale(meta) -> tuple[float, float] | None:
    """A DICOM's (RescaleSlope, RescaleIntercept) where pydicom applied them and they move its values
    (not 1 and 0); None else (no rescale, a Modality LUT Sequence, one of the two alone)."""
    if "ModalityLUTSequence" in meta or "RescaleSlope" not in meta or "RescaleIntercept" not in meta:
        return None
    try:
        slope, intercept = float(meta.RescaleSlope), float(meta.RescaleIntercept)
    except (TypeError, ValueError):
        return None
    return None if (slope, intercept) == (1.0, 0.0) else (slope, intercept)


def _fit_in(values: np.ndarray, bits: int) -> bool:
    """Whether ``values`` all lie in 0..2**bits - 1."""
    return float(values.min()) >= 0 and math.ceil(float(values.max())).bit_length() <= bits


def _rescale_note(rad, v: np.ndarray, lo: float, hi: float, input_bits: int | None) -> str | None:
    """The note on a DICOM output whose rescale moves the range it is read over (its BitsStored's,
    through RescaleSlope and RescaleIntercept) away from where its values lie, so that they fill at
    most a quarter of it: 12-bit values stored as 32768..36863 with RescaleIntercept -32768 were read
    over -32768..32767 and scored in a sixteenth of black to white, without a word (the depth note
    compares plain depths, and a rescale gives none). Only where the values, rescaled or stored, fit
    in 2 bits or more fewer than its BitsStored, as the depth note asks: a narrow spread of values
    high in 16 bits is the image's own, noted no more than the same values with no rescale. None
    where they fill more, or are one value. Its fix names the BitsStored to write (it said "the depth
    they fit in", no number): the input's depth where the values fit in it, as :func:`_signed_note`
    says, else the depth they fit in, if its tool wrote them over it."""
    low, top = float(v.min()), float(v.max())
    share = (top - low) / (hi - lo) if hi > lo else 1.0
    if share > 0.25 or top == low:
        return None
    slope, intercept = _rescale(rad.meta)
    bits = (rad.bits_stored or 0) - 2
    # the rescaled values are the ones to write as they are; else the stored ones, where the rescale moved them
    # out of the bits (computed only then: a pass over the whole output)
    if _fit_in(v, bits):
        meant, which = v, "them"
    elif slope and _fit_in(stored := np.round((v - intercept) / slope), bits):
        meant, which = stored, f"its stored values ({float(stored.min()):g}..{float(stored.max()):g})"
    else:
        return None
    depth = _bits_stored_to_write(max(1, math.ceil(float(meant.max())).bit_length()), input_bits, bits + 2)
    return (f"its output's values lie in {low:g}..{top:g} after its rescale (RescaleSlope {slope:g}, RescaleIntercept "
            f"{intercept:g}), which puts the range it is read over (what its BitsStored {rad.bits_stored} holds, "
            f"rescaled) at {lo:g}..{hi:g}: they fill {part_percent(share)} of it, so it is scored within that share "
            f"of black to white: if its tool meant {which} over their own range, write them with no rescale "
            f"(RescaleSlope 1, RescaleIntercept 0) and {depth}")  # fmt: skip


def _depth_note(rad, lo: float, hi: float, input_bits: int | None, inverted: bool = False) -> str | None:
    """The note on an integer output deeper than 8 bits whose values all fit in at least 2 bits fewer
    than the range it is read over (:func:`~xvertfast.io.read.full_range`), where that range is not
    one the file and the input agree on: a tool's 10-bit output of a 12-bit input, in a 16-bit PNG
    recording no depth, was read over 0..4095 and scored a quarter as bright as meant, without a
    word. It may be a dark output as meant (so a note, not a refusal; and none for one bit fewer,
    a brightest value past a quarter of the range, as a dark output's may be). A signed output with
    no negative value gets :func:`_signed_note`, a rescaled DICOM :func:`_rescale_note`. ``inverted``
    (scored 1 - v): such an output is scored as bright, not dark, as that makes it. None where
    nothing looks amiss."""
    v = rad.values  # (integers, or a DICOM's whole numbers as floats after its modality LUT)
    if stored_as_floats(rad) or not v.size:
        return None
    if rad.source_format == "dicom":  # (signed by its PixelRepresentation; a rescale moves its low: said below)
        signed = (int(rad.meta.get("PixelRepresentation", 0) or 0) == 1 and bool(rad.bits_stored)
                  and lo == -(1 << (rad.bits_stored - 1)))  # (an unsigned one rescaled by -32768 has that low too)
    else:
        signed = v.dtype.kind == "i" and lo < 0
    if signed and float(v.min()) >= 0:
        return _signed_note(rad, v, lo, hi, input_bits, inverted)
    if rad.source_format == "dicom" and _rescale(rad.meta) is not None:
        return _rescale_note(rad, v, lo, hi, input_bits)
    if lo != 0 or hi <= 255:
        return None
    bits, top = int(hi).bit_length(), float(v.max())
    if hi != (1 << bits) - 1 or top <= 0:  # (a DICOM's rescale: no plain depth to compare; a black output)
        return None
    fits = math.ceil(top).bit_length()
    recorded = rad.bits_stored if rad.source_format == "dicom" else (
        rad.meta.get("significant_bits") if isinstance(rad.meta, dict) else None)  # fmt: skip
    if fits > bits - 2 or (recorded == bits and bits == input_bits):  # (the file and its input agree: as meant)
        return None
    passed = input_bits and input_bits < bits  # (a float input's 32 bits: no depth of an integer output's)
    if recorded == bits:
        why = ("the depth its BitsStored records" if rad.source_format == "dicom" else "the depth the file records") + (
            f", its input's being {input_bits}" if passed else "")  # fmt: skip
    elif bits == input_bits:
        why = "its input's depth: the file records none"
    else:
        why = "its type's whole range: the file records no depth" + (
            f", and its values pass its input's {input_bits} bits" if passed else "")  # fmt: skip
    scored = ", read inverted, it is scored as bright" if inverted else " it is scored as dark"
    return (f"its output's values fit in {fits} bits (0..{(1 << fits) - 1}), but it is read over {bits} bits "
            f"(0..{int(hi)}, {why}), so{scored} as that makes it: if its tool wrote it over "
            f"0..{(1 << fits) - 1}, record that depth in the files (a PNG's sBIT chunk, a TIFF's MaxSampleValue, a "
            f"DICOM's BitsStored) or scale them to 0..{int(hi)}")  # fmt: skip
