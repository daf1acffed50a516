"""``python -m xvertfast`` is the ``xvertfast`` command."""

import sys

from xvertfast.cli import main

code = main()
# CPython 3.11 flags a KeyboardInterrupt (Ctrl-C, the CLI's SIGTERM) that left an exec() of a string,
# caught or not, and `python -m` then ends by SIGINT whatever the exit code; an exec resets the flag
exec("")
sys.exit(code)
