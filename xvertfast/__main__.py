"""``python -m xvertfast`` and the ``xvertfast`` command (pyproject's [project.scripts]: ``run``)."""

import sys


def run() -> int:
    """The command, :func:`xvertfast.cli.main`, with a Ctrl-C that comes before main handles it
    (Python loading the CLI's modules, the command line being read: its first tenth of a second)
    said as an interruption, exit code 130, where it printed a traceback (the entry point imported
    xvertfast.cli unguarded)."""
    try:
        from xvertfast.cli import main

        code = main()
    except KeyboardInterrupt:
        code = _interrupted()
    except Exception as exc:  # (CPython 3.11 wraps one landing in an import's class creation: a RuntimeError)
        from xvertfast._interrupts import came_of_an_interrupt

        if not came_of_an_interrupt(exc):
            raise
        code = _interrupted()
    # CPython 3.11 flags a KeyboardInterrupt (Ctrl-C, the CLI's SIGTERM) that left an exec() of a string,
    # caught or not, and `python -m` then ends by SIGINT whatever the exit code; an exec resets the flag
    exec("")
    return code


def _interrupted() -> int:
    """Says so as main does for a command interrupted; 130. A second Ctrl-C, or stderr gone, loses the line."""
    try:
        print("\ninterrupted", file=sys.stderr)
    except (KeyboardInterrupt, OSError):
        pass
    return 130


if __name__ == "__main__":
    sys.exit(run())
