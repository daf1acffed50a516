"""Keeping a repeated Ctrl-C (or SIGTERM) out of a wait that must not be cut.

A batch job stopped by Ctrl-C still waits for its reader and writer threads, so that the outputs
in flight are finished. A second Ctrl-C during that wait raised inside ``Thread.join``, where
CPython 3.11 marks the thread it waited for as finished although it still runs; the interpreter
then shut down under a thread inside torch's C++, which aborted the process ('terminate called
without an active exception', exit 134) instead of printing the summary. While
:func:`interrupts_deferred` holds, the two signals are noted on stderr and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = ["interrupts_deferred"]

NOTE = ("\nalready stopping: the outputs in flight are being finished (kill -9 stops at once; the same "
        "command then redoes them)\n")  # fmt: skip


@contextlib.contextmanager
def interrupts_deferred():
    """Ignores Ctrl-C and SIGTERM in the body, saying so once (a signal ignored already stays
    so, unsaid); the handlers in place before are put back after it. Outside the main thread
    (which alone receives signals) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    told = [False]

    def note(signum, frame):
        if told[0]:
            return
        told[0] = True
        try:  # a raw write: a print could land inside a print the main thread is making (reentrant call)
            os.write(sys.stderr.fileno(), NOTE.encode())
        except (AttributeError, ValueError, OSError):  # stderr is not a file (a test's capture)
            pass

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            if handler is signal.SIG_IGN:  # ignored already (a job in a script's background): left so
                continue
            previous[sig] = handler
            signal.signal(sig, note)
        yield
    finally:
        for sig, handler in previous.items():  # (None: set outside Python; the default is the nearest)
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
