"""The decoded radiograph: normalised pixels plus what is needed to write results back faithfully."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xvertfast._pixels import describe_array
from xvertfast._text import count

__all__ = ["Radiograph"]


@dataclass
class Radiograph:
    """A decoded frontal radiograph.

    Attributes:
        pixels: float32 [H, W] in [0, 1], min-max scaled over the image's real values,
            bright = bone (MONOCHROME1 sources are inverted). A constant image is all 0.
        values: the decoded values before scaling ([H, W], after DICOM rescale and
            polarity correction), so outputs can be written at the input's bit depth.
        bits_stored: significant bits of the source (8, 10, 12, 16); for a float TIFF its
            floats' width (16, 32 or 64), for an integer TIFF wider than 16 bits its width.
        photometric: "MONOCHROME2" (bright = high) or "MONOCHROME1" as stored at the source.
        source_format: "png", "tiff", "jpeg", "dicom" or "jsrt".
        path: the file it came from.
        meta: the pydicom Dataset for DICOM, otherwise a dict of file information.
        notes: what decoding changed or chose, each naming the file (a colour image
            converted to luminance, the first page of a multi-page TIFF): batch jobs
            report them with the file's other warnings.
    """

    pixels: np.ndarray
    values: np.ndarray
    bits_stored: int
    photometric: str
    source_format: str
    path: str
    meta: Any = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """The image's (height, width), as ``pixels.shape``."""
        return tuple(self.pixels.shape)

    def __repr__(self) -> str:
        """One line: the file, its size, depth and polarity, its pixels' and values' ranges and how
        many notes (the notes are in ``.notes``); the dataclass's repr printed both arrays whole."""
        return (f"Radiograph({self.path!r}, {describe_array(self.pixels)}, {self.source_format} "
                f"{self.bits_stored}-bit {self.photometric}, values {describe_array(self.values, shape=False)}, "
                f"{count(len(self.notes), 'note')})")  # fmt: skip
