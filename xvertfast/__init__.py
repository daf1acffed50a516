"""xvertfast: fast XVertNet, unsupervised contrast enhancement of the vertebrae in chest X-rays.

The public names, and the subpackages (``xvertfast.io.read_image``), are imported on first use
(PEP 562): ``import xvertfast`` and the ``xvertfast``
command start without torch, so ``xvertfast --help`` answers at once and a Ctrl-C while torch
loads is the command's own interrupt, not a traceback from an import. The compiled ops register
as ``torch.ops.xvertfast.*`` when :mod:`xvertfast.ops` is imported, as any of these names does.
"""

from xvertfast._lazy import lazy_names as _lazy_names
from xvertfast._version import __version__

# name -> (module, attribute or None for the module itself). The package is callable as its
# function (``xvertfast.preprocess(pixels)``, as the API reads), and stays the package:
# ``from xvertfast.preprocess import E_FLOOR``, ``import xvertfast.preprocess.spine``.
_PUBLIC = {
    "ops": ("xvertfast.ops", None),
    "wls": ("xvertfast.ops.wls", "wls"),
    "preprocess": ("xvertfast.preprocess", None),
    "find_spine": ("xvertfast.preprocess.spine", "find_spine"),
    "load_model": ("xvertfast.model.persistence", "load_model"),
}
# The subpackages, reached as attributes too: ``import xvertfast; xvertfast.io.read_image(path)`` (as
# the Enhancer's example reads) said "module 'xvertfast' has no attribute 'io'" until something had
# imported xvertfast.io. Not in __all__: ``from xvertfast import *`` would load them all.
_SUBPACKAGES = {name: (f"xvertfast.{name}", None) for name in ("io", "infer", "model", "train", "eval", "pipeline")}

__all__ = ["__version__", "ops", "wls", "preprocess", "find_spine", "load_model"]


__getattr__, __dir__ = _lazy_names(globals(), {**_PUBLIC, **_SUBPACKAGES})
