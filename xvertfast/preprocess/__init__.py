"""The XVertNet preprocessing (Eq. 1-6): the network's inputs X_p and Y from a radiograph."""

from xvertfast.preprocess.inputs import E_FLOOR, NORMALISE_PERCENTILES, Preprocessed, preprocess
from xvertfast.preprocess.spine import (
    LOWER_LEVEL,
    UPPER_LEVEL,
    WORKING_HEIGHT,
    Box,
    Spine,
    find_spine,
    image_warnings,
    inverted_warning,
    looks_inverted,
    polarity_score,
)

__all__ = [
    "E_FLOOR",
    "NORMALISE_PERCENTILES",
    "Preprocessed",
    "preprocess",
    "find_spine",
    "Spine",
    "Box",
    "WORKING_HEIGHT",
    "UPPER_LEVEL",
    "LOWER_LEVEL",
    "polarity_score",
    "looks_inverted",
    "inverted_warning",
    "image_warnings",
]
