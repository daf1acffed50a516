"""The XVertNet preprocessing (Eq. 1-6): the network's inputs X_p and Y from a radiograph.

The package is callable: ``xvertfast.preprocess(pixels)`` is :func:`preprocess`, while
``import xvertfast.preprocess.spine`` and ``xvertfast.preprocess.find_spine`` still reach the package.
"""

import importlib
import inspect
import sys
import types

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


class _CallablePackage(types.ModuleType):
    """This package, callable as its :func:`preprocess`: exported as a function under the package's
    name, it hid the package (``import xvertfast.preprocess.spine as sp``: "cannot import name
    'spine' from 'preprocess'"; ``import xvertfast.preprocess as pp; pp.find_spine``: no attribute)."""

    __signature__ = inspect.signature(preprocess)

    def __call__(self, *args, **kwargs) -> Preprocessed:
        return preprocess(*args, **kwargs)

    def __reduce__(self):
        # pickled by name, as the function was: Pool(...).map(xvertfast.preprocess, images) and
        # copy.deepcopy ("cannot pickle '_CallablePackage' object" otherwise). torch.compile takes
        # only functions: give it xvertfast.preprocess.preprocess
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _CallablePackage
