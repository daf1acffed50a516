"""xvertfast: fast XVertNet, unsupervised contrast enhancement of the vertebrae in chest X-rays."""

__version__ = "0.1.0"

from xvertfast import ops  # noqa: E402
from xvertfast.ops.wls import wls  # noqa: E402

__all__ = ["__version__", "ops", "wls"]
