"""xvertfast: fast XVertNet, unsupervised contrast enhancement of the vertebrae in chest X-rays."""

from xvertfast._version import __version__

from xvertfast import ops  # noqa: E402
from xvertfast.ops.wls import wls  # noqa: E402

# The package is callable as its function (``xvertfast.preprocess(pixels)``, as the API reads), and
# stays the package: ``from xvertfast.preprocess import E_FLOOR``, ``import xvertfast.preprocess.spine``.
from xvertfast import preprocess  # noqa: E402
from xvertfast.preprocess.spine import find_spine  # noqa: E402
from xvertfast.model.persistence import load_model  # noqa: E402

__all__ = ["__version__", "ops", "wls", "preprocess", "find_spine", "load_model"]
