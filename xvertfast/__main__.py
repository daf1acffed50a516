"""``python -m xvertfast`` is the ``xvertfast`` command."""

import sys

from xvertfast.cli import main

sys.exit(main())
