"""A contact sheet of a batch job: a few inputs beside their outputs, to look at before trusting the rest.

An archive job writes thousands of files; opening them one by one is how a
problem (a wrong polarity, a model that greys everything out) goes unseen.
:func:`write_preview` draws up to ``count`` input/output pairs spread evenly over
the job into one PNG, each pair labelled with its file name, each output on its file's own
scale, as a viewer shows it (a greyed-out output looks grey); those whose image the job warned
of come first, as they are the ones to look at. Pillow only: it
works wherever the batch job does.
"""

from __future__ import annotations

import math
import os
import unicodedata

import numpy as np

from xvertfast._checks import whole_number
from xvertfast.io import Radiograph, read_image
from xvertfast.io.files import first_same_file
from xvertfast.io.read import on_stored_scale
from xvertfast.io.write import atomic_write

__all__ = ["write_preview", "is_preview", "sheet_name_problem", "PREVIEW_COUNT", "THUMB_HEIGHT"]

#: The PNG ``Software`` text of a contact sheet: how a rerun knows its own sheet from an input.
PREVIEW_SOFTWARE = "xvertfast enhance --preview"

#: Pairs drawn by default.
PREVIEW_COUNT = 8
#: Height of each thumbnail in pixels.
THUMB_HEIGHT = 320
_PAIRS_PER_ROW = 2
_GAP, _LABEL = 8, 18
#: Widest a label may make its cell, in pixels, where its pair of thumbnails is narrower: a longer
#: one is cut in the middle (:func:`_fitted`), keeping the file name.
_LABEL_WIDTH = 480


def _spread(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)}) if count > 1 else [0]


def _chosen(warned: list[bool], count: int) -> list[int]:
    """The pairs to draw, in their order: those warned of first (spread evenly over them where there
    are more than ``count``: the first ``count`` showed a job's start alone), the places left spread
    evenly over the others. Spread over them all, a sheet of 8 from a job of 9 left out the one
    image that looked inverted, the problem the sheet is there to show."""
    flagged = [k for k, w in enumerate(warned) if w]
    first = [flagged[i] for i in _spread(len(flagged), count)] if flagged else []
    others = [k for k, w in enumerate(warned) if not w]
    left = count - len(first)
    return sorted(first + ([others[i] for i in _spread(len(others), left)] if left and others else []))


#: Letters NFKD leaves whole, spelled as their languages spell them without the letter (German,
#: the Nordic languages, Polish, Croatian, Icelandic, Turkish): "Ærø Łódź" read "\xc6r\xf8 \u0141odz".
_SPELLED = str.maketrans({"ß": "ss", "ẞ": "SS", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
                          "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i"})


def _drawable(label: str, exact: bool = False) -> str:
    """``label`` in the characters Pillow's built-in font draws (printable ASCII): it has no others
    and drew each as a box, so "Ünïcødé scan é.png" read "□n□c□d□ scan □.png". An accented letter
    loses its accent (é -> e), a letter of :data:`_SPELLED` is spelled out (ß -> ss, ø -> o); any other
    character is escaped by its code point (中 -> \\u4e2d, é -> \\u00e9 where drawn ``exact``; a name's
    undecodable byte, held as a surrogate, as that byte: \\xe9), so the file can still be told: Python
    writes é and the byte 0xe9 alike (\\xe9), two files drawn as one. A name
    written decomposed (macOS's "e" + U+0301) is composed first: its accent was escaped, not dropped.
    A backslash of the name is doubled (\\\\), as Python writes it: "caf\\xe9.png" (a backslash, x, e,
    9) was drawn as the byte's escape; Windows' separator is not (no name holds one there).
    ``exact``: every character escaped, none composed nor its accent dropped, for a label drawn as
    another's ("scan é.png" beside "scan e.png", :func:`_distinct`)."""
    out = []
    for ch in label if exact else unicodedata.normalize("NFC", label):
        bare = ch if exact else "".join(
            c for c in unicodedata.normalize("NFKD", ch.translate(_SPELLED)) if not unicodedata.combining(c))
        if all(" " <= c <= "~" for c in bare):  # (an accent with no composed letter, q + U+0301: "", dropped too)
            out.append(bare if ch == os.sep else bare.replace("\\", "\\\\"))  # (Windows' separator kept)
        elif "\udc80" <= ch <= "\udcff":  # os.fsdecode's surrogateescape of a byte not in the file system's encoding
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:  # (a tab too: \\t); \\x is a byte's alone: Python writes é (U+00E9) as the byte 0xe9 is, \\xe9
            escaped = ch.encode("unicode_escape").decode("ascii")
            out.append(f"\\u{ord(ch):04x}" if escaped.startswith("\\x") else escaped)
    return "".join(out)


def _shown(text: str, kept: set[int]) -> str:
    """``text`` with each run of the characters not ``kept`` (indices) written as "..."."""
    out = []
    for i, ch in enumerate(text):
        if i in kept:
            out.append(ch)
        elif not out or out[-1] != "...":
            out.append("...")
    return "".join(out)


def _could_read(shown: str, label: str) -> bool:
    """Whether ``shown``, a label as :func:`_shown` cuts it ("..." where characters were left out),
    could be ``label`` cut: its kept parts are ``label``'s, in their order, first and last at its ends."""
    parts = shown.split("...")
    if len(parts) == 1:
        return shown == label
    head, *middle, tail = parts
    if len(head) + len(tail) > len(label) or not label.startswith(head) or not label.endswith(tail):
        return False
    at, stop = len(head), len(label) - len(tail)
    for part in middle:
        at = label.find(part, at, stop)
        if at < 0:
            return False
        at += len(part)
    return True


def _end_first(start: int, stop: int) -> list[int]:
    """The indices of ``range(start, stop)`` in the order a cut keeps them: two from the end for
    each one from the start, so the last folders (series, study) stay and the path's start shows."""
    order, low, high = [], start, stop - 1
    while low <= high:
        order.append(high)
        high -= 1
        if low <= high and len(order) % 3 == 2:
            order.append(low)
            low += 1
    return order


def _parts(label: str, exact: bool = False) -> tuple[str, str]:
    """``label``'s folder part and file name, each :func:`_drawable`: split before, as on Windows
    (os.sep "\\") the escapes' backslashes (\\u4e2d) were taken for a separator."""
    cut = max(label.rfind("/"), label.rfind(os.sep)) + 1
    return _drawable(label[:cut], exact), _drawable(label[cut:], exact)


def _fitted(label: str, suffix: str, width: float, length, differs=(), exact: bool = False) -> str:
    """``label + suffix``, its label cut in the middle ("...") where ``length`` (pixels) of it passes
    ``width`` (``label`` as given, drawn as :func:`_drawable` writes it): a path 40 folders deep made
    a cell thousands of pixels wide, the sheet mostly white.
    The file name is kept whole, then the folder part's end (two characters for one of its start:
    archives repeat IM-0001-0001.dcm in each series, and the folders just above it tell them
    apart); a file name that does not fit alone is cut too, its end (numbers, extension) kept.
    ``differs``: indices of the label drawn kept before all else (where it differs from another label
    that was cut alike, :func:`_distinct`); ``exact``: as :func:`_drawable`'s."""
    head, name = _parts(label, exact)
    label, cut = head + name, len(head)
    if length(label + suffix) <= width:
        return label + suffix
    order = list(dict.fromkeys([*differs, *_end_first(cut, len(label)), *_end_first(0, cut)]))

    def fits(n: int) -> bool:
        return length(_shown(label, set(order[:n])) + suffix) <= width

    low, high = 0, len(order)  # the most characters kept that fit ("..." alone fits)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return _shown(label, set(order[:low])) + suffix


def _distinct(labels: list[str], suffixes: list[str], width: float, length) -> list[str]:
    """The labels of one sheet, each :func:`_fitted` to ``width``, cut again where two different
    labels were cut to a text the other could be (:func:`_could_read`): each then keeps first, around
    where it differs from the others, the characters that tell it from them (a sheet of two "...IM-0001-0001.dcm" told
    nothing of which was which). Two different labels drawn alike (an accent dropped: "scan é.png",
    "scan e.png") are drawn ``exact``, each character the font lacks escaped ("scan \\u00e9.png")."""
    drawn = ["".join(_parts(label)) for label in labels]
    exact = [any(d == drawn[k] and other != label for d, other in zip(drawn, labels)) for k, label in enumerate(labels)]
    drawn = ["".join(_parts(label, strict)) for label, strict in zip(labels, exact)]
    fitted = [_fitted(*given, width, length, exact=strict) for given, strict in zip(zip(labels, suffixes), exact)]
    bare = [text[: len(text) - len(suffix)] for text, suffix in zip(fitted, suffixes)]
    for k, label in enumerate(drawn):
        # (not by the texts drawn alone: a label "warned of" has less room, so is cut at another point than
        # its twin, and the two texts differed with neither showing where the labels do)
        twins = [other for other in drawn if other != label and _could_read(bare[k], other)]
        if twins:
            differs = []
            for other in twins:
                at = next((i for i, (a, b) in enumerate(zip(label, other)) if a != b), min(len(label), len(other)))
                differs += sorted(range(max(0, at - 6), min(len(label), at + 7)), key=lambda i: abs(i - at))
            fitted[k] = _fitted(labels[k], suffixes[k], width, length, differs, exact[k])
    return fitted


def _as_stored(rad: Radiograph, depth_hint: int | None) -> np.ndarray:
    """``rad`` on its file's own scale (:func:`~xvertfast.io.read.on_stored_scale`: 0 and 255 black and
    white in an 8-bit PNG, 0 and 4095 in a 12-bit one, [0, 1] in a float TIFF), as a viewer shows
    it: min-max scaled, an output that the model greyed out (full mode's 51..186 of 255) was drawn
    with all the contrast of its input, the problem the sheet is there to show hidden. Floats past
    [0, 1] have no known scale: min-max. ``depth_hint``: the input's bits, for a file that records none."""
    stored = on_stored_scale(rad, depth_hint)
    return rad.pixels if stored is None else stored


def _thumb(path: str, height: int, photometric: str | None = None, stored: bool = False,
           depth_hint: int | None = None):  # fmt: skip
    """``path``'s image ``height`` px high, and its bit depth: as read (min-max scaled, as the model
    is given it), or ``stored``: on its file's own scale (:func:`_as_stored`), as an output is seen."""
    from PIL import Image

    rad = read_image(path, photometric=photometric, warn=False)
    pixels = _as_stored(rad, depth_hint) if stored else rad.pixels
    img = Image.fromarray(np.round(pixels * 255).astype(np.uint8))
    width = max(1, round(img.width * height / img.height))
    return img.resize((width, height), Image.Resampling.BILINEAR), rad.bits_stored


def _wrapped(text: str, width: float, length) -> list[str]:
    """``text`` in lines of at most ``width`` (``length`` measures a line), broken at spaces; a word
    longer than a line is a line of its own."""
    lines: list[str] = []
    for word in text.split():
        if lines and length(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _is_pair(pair) -> bool:
    """Whether ``pair`` is one (input, output): a tuple, a list, or a row of a NumPy array (as
    ``df[["in", "out"]].values`` gives), but no path, whose characters would be taken for a pair."""
    return not isinstance(pair, (str, bytes, os.PathLike)) and hasattr(pair, "__len__") and len(pair) == 2


def sheet_name_problem(path) -> str | None:
    """What is wrong with ``path`` as a contact sheet's name, or None where it ends in .png (any case)
    or has no extension, which says no format. The sheet is a PNG, and a rerun knows its own by the
    PNG's text (:func:`is_preview`): under look.jpg a PNG lay where viewers and tools took it for a
    JPEG by its name. Text after the last dot is an extension where it has a letter: run_v1.5 and
    look.2026-12-06 say no format (they were refused, the suggestion dropping .5). The name
    suggested is the one given with .png for its extension, a .png before it not doubled
    (look.png.jpg: look.png)."""
    stem, extension = os.path.splitext(os.path.basename(os.fsdecode(os.fspath(path))))
    if extension.lower() == ".png" or not any(character.isalpha() for character in extension):
        return None
    if os.path.splitext(stem)[1].lower() == ".png":
        stem = os.path.splitext(stem)[0]
    return f"the contact sheet is a PNG, not to be written under a name ending in {extension}: name it {stem}.png"


def write_preview(pairs: list[tuple[str, str]], path: str, count: int = PREVIEW_COUNT,
                  height: int = THUMB_HEIGHT, labels: list[str] | None = None,
                  photometrics: list[str | None] | None = None,
                  warned: list[bool] | None = None, caption: str | None = None) -> list[str]:  # fmt: skip
    """Draws up to ``count`` of ``pairs`` (input path, output path), spread evenly, into the PNG ``path``.

    Each pair is the input (as read: bright = bone, min-max scaled, as the model is given it) beside
    the output on its file's own scale (0 black, 255 white in an 8-bit PNG; a 12-bit source's 4095),
    as a viewer shows it, so an output the model greyed out looks grey; under its label
    (``labels``, one a pair: the batch job gives the input's path below the folder it was found in,
    as p1/IM1.dcm and p2/IM1.dcm differ; else the input's file name; one wider than 480 px and than
    the widest pair is cut in the middle, its file name and last folders kept; two cut alike are cut
    again where they differ).
    ``photometrics``, one a pair, is each input's polarity as an @list gives it (None: as its
    file records it), so a PNG listed as MONOCHROME1 is drawn bone bright, as the job read it.
    ``warned``, one a pair: those to draw first, labelled "warned of" (the batch job flags those whose
    image it warned of: looks inverted, a spine in doubt; not a note of how it was read): all of
    them up to ``count``, else ``count`` spread evenly over them; the places left are spread over the others.
    ``caption``: what the sheet shows, drawn under the pairs, wrapped at spaces to the sheet's width
    (in the characters of :func:`_drawable`): the batch job gives how it made the outputs (model, mode,
    brightness, ...), so a sheet passed on says what it shows.
    Returns the inputs drawn. A pair that cannot be read is left out; no pair at all raises
    ``ValueError``, as does a ``path`` with an extension other than .png (:func:`sheet_name_problem`)
    or that is one of the pairs' images (an input would be written over). The PNG is written atomically.
    """
    from PIL import Image, ImageDraw

    # (2.5 and '3' failed in range() or '<', None in '<', naming nothing; height 2.5 or 0 as no image read)
    count = whole_number(count, "count", "preview", low=1, meaning="pairs drawn")
    height = whole_number(height, "height", "preview", low=1, meaning="of each thumbnail, in pixels")
    if (problem := sheet_name_problem(path)) is not None:
        raise ValueError(f"preview: {os.fsdecode(os.fspath(path))}: {problem}")
    # checked before the reads, whose failures leave a pair out: a labels list one short, or one
    # (input, output) pair not in a list, was "none of the images could be read back"
    pairs = list(pairs)
    if not pairs:
        raise ValueError("preview: there are no (input, output) pairs to draw")
    bad = next((k for k, pair in enumerate(pairs) if not _is_pair(pair)), None)
    if bad is not None:
        raise ValueError(f"preview: pairs must be (input, output) pairs, got {pairs[bad]!r} at {bad}: one pair is "
                         "[(input, output)]")  # fmt: skip
    # (a longer list was taken before 1a15020)
    for name, given in (("labels", labels), ("photometrics", photometrics), ("warned", warned)):
        if given is not None and len(given) < len(pairs):
            raise ValueError(f"preview: {len(given)} {name} for {len(pairs)} pairs: give one a pair")
    cells, drawn, unread = [], [], None
    flagged = [bool(w) for w in warned[: len(pairs)]] if warned is not None else [False] * len(pairs)
    for k in _chosen(flagged, count):
        src, out = pairs[k]
        try:
            label = labels[k] if labels is not None else os.path.basename(src)
            suffix = ": input | output" + (" (warned of: see the job's log)" if flagged[k] else "")
            polarity = photometrics[k] if photometrics is not None else None
            before, bits = _thumb(src, height, polarity)
            cells.append(((str(label), suffix), before, _thumb(out, height, stored=True, depth_hint=bits)[0]))
        except Exception as exc:  # noqa: BLE001 - a preview is a convenience: it leaves a bad pair out
            unread = unread or exc
            continue
        drawn.append(src)
    if not cells:  # (the first reason: read_image's names its file)
        raise ValueError(f"preview: none of the images could be read back ({unread})")
    # as wide as its label too: a narrow image's label (a long path, "warned of: ...") ran into the next cell's;
    # up to _LABEL_WIDTH (or the widest pair), a longer label cut to that
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    bound = max(_LABEL_WIDTH, *(a.width + _GAP + b.width for _, a, b in cells))
    names = _distinct([label for (label, _), _, _ in cells], [suffix for (_, suffix), _, _ in cells], bound,
                      measure.textlength)
    cells = [(name, a, b) for name, (_, a, b) in zip(names, cells)]
    cell_w = max(max(a.width + _GAP + b.width, math.ceil(measure.textlength(name))) for name, a, b in cells) + 2 * _GAP
    cell_h = height + _LABEL + 2 * _GAP
    cols = min(_PAIRS_PER_ROW, len(cells))
    rows = -(-len(cells) // cols)
    below = _wrapped(_drawable(caption), cols * cell_w - 2 * _GAP, measure.textlength) if caption else []
    sheet = Image.new("L", (cols * cell_w, rows * cell_h + (len(below) * _LABEL + _GAP if below else 0)), 255)
    draw = ImageDraw.Draw(sheet)
    for i, (name, before, after) in enumerate(cells):
        x, y = (i % cols) * cell_w + _GAP, (i // cols) * cell_h + _GAP
        draw.text((x, y), name, fill=0)
        sheet.paste(before, (x, y + _LABEL))
        sheet.paste(after, (x + before.width + _GAP, y + _LABEL))
    for k, line in enumerate(below):
        draw.text((_GAP, rows * cell_h + k * _LABEL), line, fill=0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PREVIEW_SOFTWARE)
    # (looked at as it is written: a link swapped while the pairs were read counts too)
    if (same := first_same_file(path, [p for pair in pairs for p in pair], replaced=True)) is not None:
        raise ValueError(f"preview: {os.fsdecode(os.fspath(path))} is {os.fsdecode(os.fspath(same))}, an image of "
                         "the pairs drawn: it would be written over; give the contact sheet a file of its own")  # fmt: skip
    with atomic_write(path) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=info)
    return drawn


def is_preview(path: str) -> bool:
    """Whether ``path`` is a contact sheet :func:`write_preview` made (a rerun's, not an input)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == PREVIEW_SOFTWARE
    except OSError:
        return False
