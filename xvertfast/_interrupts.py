"""Keeping Ctrl-C (or SIGTERM, SIGHUP) out of a wait that must not be cut.

A batch job waits for its reader and writer threads at its end, and after a Ctrl-C, so that
the outputs in flight are finished. A Ctrl-C during that wait raised inside ``Thread.join``,
where CPython 3.11 marks the thread it waited for as finished although it still runs; the
interpreter then shut down under a thread inside torch's C++, which aborted the process
('terminate called without an active exception', exit 134) instead of printing the summary.
While :func:`interrupts_deferred` holds, these signals are held back: a repeat, when the job
is stopping already, is said and dropped; a first one is kept for :func:`deliver` after the wait.

A batch job's pipeline loop holds them too, and delivers a held one at points of its own where it
can stop: a KeyboardInterrupt raised at any moment could land inside a thread pool's own code
(``submit``, ``Future.result``) between a ``with lock:`` body and the lock's release, CPython's
with statement being no shield against signals; the lock then stayed held, a pool thread waited
on it for good, and so did the job's final wait: ``xvertfast enhance`` hung until kill -9 (a user's
audit: 1 Ctrl-C in 16 at an unlucky moment).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field

__all__ = ["interrupts_deferred", "deliver", "Deferred", "left_alone", "came_of_an_interrupt", "then_line",
           "STOPPING_SIGNALS"]

#: The signals the CLI takes as a Ctrl-C (besides SIGINT itself), held with it here: SIGTERM (a
#: scheduler's time limit, kill, docker stop) and, where the system has it, SIGHUP (the terminal
#: closed, an SSH session dropped without nohup), which killed a run unrecorded, said by status as
#: killed. nohup, which sets SIGHUP to be ignored, still keeps it running (:func:`left_alone`).
STOPPING_SIGNALS = (signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))

#: (a batch job's: it may wait for an image being read alone, whose WLS solve cannot be cut; "the outputs
#: in flight are being finished" said so where none was)
NOTE = ("\nalready stopping: waiting for what is in flight, outputs being written or images being read "
        "(kill -9 stops at once; the same command then redoes them)\n")  # fmt: skip


@dataclass
class Deferred:
    """What :func:`interrupts_deferred` held back: the first signal that came, if any."""

    signal: int | None = None
    #: a signal now is said and dropped, not held: the job stops already (the body sets it once it does)
    stopping: bool = False
    #: the handlers the hold replaced while it is in place, the ones :func:`deliver` hands a signal to there
    replaced: dict = field(default_factory=dict)


def left_alone(sig: int) -> bool:
    """Whether ``sig``'s handler is to be left as it is, not replaced for a while: ignored (a job in
    a script's background ignores SIGINT) or set outside Python (getsignal None: a host program's C
    handler, which could not be put back)."""
    handler = signal.getsignal(sig)
    return handler is signal.SIG_IGN or handler is None


@contextlib.contextmanager
def interrupts_deferred(stopping: bool, note: str = NOTE):
    """Holds Ctrl-C, SIGTERM and SIGHUP back in the body. ``stopping`` (the job stops already): they are
    said once (``note``: what the wait is for) and dropped; else the first is kept in the
    :class:`Deferred` yielded, for :func:`deliver` once the wait is over (or at a point of the
    body's where it can stop), and the next ones are said and dropped. The body may set the
    Deferred's ``stopping`` once it stops. The handlers in place before are put back after; a
    signal ignored (a job in a script's background) or handled outside Python is left as it is.
    Outside the main thread (which alone receives signals) it changes nothing."""
    deferred = Deferred(stopping=stopping)
    if threading.current_thread() is not threading.main_thread():
        yield deferred
        return
    told = [False]

    def hold(signum, frame):
        if not deferred.stopping and deferred.signal is None:  # the first, held; a second is said below
            deferred.signal = signum
            return
        if told[0]:
            return
        told[0] = True
        try:  # a raw write: a print could land inside a print the main thread is making (reentrant call)
            os.write(sys.stderr.fileno(), note.encode())
        except (AttributeError, ValueError, OSError):  # stderr is not a file (a test's capture)
            pass

    previous = deferred.replaced
    try:
        for sig in (signal.SIGINT, *STOPPING_SIGNALS):
            if left_alone(sig):
                continue
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, hold)
        yield deferred
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        previous.clear()  # (put back: deliver now hands a signal to the handler in place)


def deliver(deferred: Deferred) -> None:
    """Hands the signal held back, if any, to the handler in place now, or inside the body to the one
    the hold replaced, as its arrival would have (Ctrl-C: KeyboardInterrupt; the CLI's SIGTERM: its
    flag, then KeyboardInterrupt; SIGTERM's default: the process ends). The signal is taken: where
    the handler raises (the job stops), the next ones are said and dropped; where it returns (a
    handler of the caller's that lets the job go on), the next one is held again."""
    sig = deferred.signal
    if sig is None:
        return
    # stopping before the signal is taken: one arriving in between is a repeat, said and dropped, not
    # held again for a later deliver
    was_stopping, deferred.stopping = deferred.stopping, True  # (a repeat while the handler runs is one)
    deferred.signal = None
    handler = deferred.replaced.get(sig)
    if handler is None:
        handler = signal.getsignal(sig)
    if callable(handler):
        handler(sig, None)
    elif handler == signal.SIG_DFL:
        signal.signal(sig, signal.SIG_DFL)  # (inside the body the hold is in place)
        signal.raise_signal(sig)
    deferred.stopping = was_stopping


def came_of_an_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt (Ctrl-C, the CLI's SIGTERM) or was raised because of one:
    its ``__cause__`` / ``__context__`` chain holds one. CPython 3.11 wraps a KeyboardInterrupt that
    lands in an import's class creation in a RuntimeError ("Error calling __set_name__ on
    'cached_property' instance ..."), which a handler of errors would report as the job's failure.
    A context its raiser hid (``raise ... from``, ``__suppress_context__``) is not followed: an error
    raised in place of an interrupt it handled is that error, not the interrupt."""
    seen, todo = set(), [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        todo += [link.__cause__, None if link.__suppress_context__ else link.__context__]
    return False


def then_line(exc: BaseException) -> str:
    """``" (then OSError: ...)"``, the first line of the error an interruption raised (a ledger write
    failing with the disk full while a KeyboardInterrupt unwound) for the CLI's "interrupted" line:
    ``exc`` being that error, or a KeyboardInterrupt raised from it. Empty for a plain interrupt and
    for an error raised *from* one, which stands for it (CPython's RuntimeError around an interrupt
    in an import: its "Error calling __set_name__ ..." says nothing of the job)."""
    error = exc.__cause__ if isinstance(exc, KeyboardInterrupt) else exc
    if error is None or isinstance(error, KeyboardInterrupt) or isinstance(error.__cause__, KeyboardInterrupt):
        return ""
    first = (str(error).strip().splitlines() or [""])[0]
    return f" (then {type(error).__name__}{': ' + first if first else ''})"
