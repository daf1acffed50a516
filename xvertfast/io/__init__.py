"""Reading and writing radiographs: PNG, TIFF, JPEG, DICOM and raw JSRT, with atomic writes.

- :func:`read_image` decodes a file into a :class:`Radiograph` (pixels in [0, 1], bright = bone).
- :func:`write_image` writes an image next to nothing it could damage: a temporary file in
  the destination folder, renamed when complete; it never overwrites an input.
"""

from xvertfast.io.errors import DamagedFileError, ImageReadError, ImageWriteError, NotAnImage
from xvertfast.io.radiograph import Radiograph
from xvertfast.io.read import DEFAULT_MAX_PIXELS, MIN_SIDE, read_image, require_content
from xvertfast.io.write import WRITE_FORMATS, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DamagedFileError",
    "MIN_SIDE",
    "NotAnImage",
    "ImageReadError",
    "ImageWriteError",
    "Radiograph",
    "WRITE_FORMATS",
    "read_image",
    "require_content",
    "write_image",
]
