"""Keeping Ctrl-C (or SIGTERM) out of a wait that must not be cut.

A batch job waits for its reader and writer threads at its end, and after a Ctrl-C, so that
the outputs in flight are finished. A Ctrl-C during that wait raised inside ``Thread.join``,
where CPython 3.11 marks the thread it waited for as finished although it still runs; the
interpreter then shut down under a thread inside torch's C++, which aborted the process
('terminate called without an active exception', exit 134) instead of printing the summary.
While :func:`interrupts_deferred` holds, the two signals are held back: a repeat, when the job
is stopping already, is said and dropped; a first one is kept for :func:`deliver` after the wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass

__all__ = ["interrupts_deferred", "deliver", "Deferred", "left_alone"]

NOTE = ("\nalready stopping: the outputs in flight are being finished (kill -9 stops at once; the same "
        "command then redoes them)\n")  # fmt: skip


@dataclass
class Deferred:
    """What :func:`interrupts_deferred` held back: the first signal that came, if any."""

    signal: int | None = None


def left_alone(sig: int) -> bool:
    """Whether ``sig``'s handler is to be left as it is, not replaced for a while: ignored (a job in
    a script's background ignores SIGINT) or set outside Python (getsignal None: a host program's C
    handler, which could not be put back)."""
    handler = signal.getsignal(sig)
    return handler is signal.SIG_IGN or handler is None


@contextlib.contextmanager
def interrupts_deferred(stopping: bool, note: str = NOTE):
    """Holds Ctrl-C and SIGTERM back in the body. ``stopping`` (the job stops already): they are
    said once (``note``: what the wait is for) and dropped; else the first is kept in the
    :class:`Deferred` yielded, for :func:`deliver` once the wait is over, and the next ones are
    said and dropped. The handlers in place before are put back after; a signal ignored (a job in
    a script's background) or handled outside Python is left as it is. Outside the main thread
    (which alone receives signals) it changes nothing."""
    deferred = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield deferred
        return
    told = [False]

    def hold(signum, frame):
        if not stopping and deferred.signal is None:  # the first, held; a second is said below
            deferred.signal = signum
            return
        if told[0]:
            return
        told[0] = True
        try:  # a raw write: a print could land inside a print the main thread is making (reentrant call)
            os.write(sys.stderr.fileno(), note.encode())
        except (AttributeError, ValueError, OSError):  # stderr is not a file (a test's capture)
            pass

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if left_alone(sig):
                continue
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, hold)
        yield deferred
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def deliver(deferred: Deferred) -> None:
    """Hands the signal held back to the handler in place now, as its arrival would have (Ctrl-C:
    KeyboardInterrupt; the CLI's SIGTERM: its flag, then KeyboardInterrupt; SIGTERM's default:
    the process ends)."""
    if deferred.signal is None:
        return
    handler = signal.getsignal(deferred.signal)
    if callable(handler):
        handler(deferred.signal, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(deferred.signal)
