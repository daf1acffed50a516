"""Functions called once their seconds have passed, all from one thread: the evaluate bar's step
(:class:`xvertfast.eval.protocol._StepShown`) is drawn so once a quick image turns slow. A
``threading.Timer`` an image started a thread each, about 0.8 ms, 8 s of a 10,000-image run, to
draw nothing for most of them (each cancelled as its image was done)."""

from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["Alarm", "Alarms"]


class Alarm:
    """One call due ``seconds`` after :meth:`start`, unless :meth:`cancel` comes first (threading.Timer's face)."""

    def __init__(self, alarms: Alarms, seconds: float, function):
        self._alarms, self.seconds, self.function = alarms, seconds, function

    def start(self) -> None:
        self._alarms._start(self)

    def cancel(self) -> None:
        """The call dropped if it has not begun; returns once one under way has ended, unlike
        threading.Timer's cancel (a draw could land after the image's count moved, or the run's
        last line)."""
        self._alarms._cancel(self)


class Alarms:
    """Makes :class:`Alarm` s (called as ``alarms(seconds, function)``) and calls them from one
    daemon thread, started with the first and kept for the process's next ones (it waits, idle,
    on a condition). A call that raises is said as a thread's is (:func:`threading.excepthook`);
    the others still come."""

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads, its lock maybe held
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._due: dict[Alarm, float] = {}  # each started alarm's time.monotonic() deadline
        self._calling: Alarm | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, seconds: float, function) -> Alarm:
        return Alarm(self, seconds, function)

    def _start(self, alarm: Alarm) -> None:
        with self._lock:
            self._due[alarm] = time.monotonic() + alarm.seconds
            if self._thread is None:
                self._watcher()
            self._lock.notify()

    def _watcher(self) -> None:
        """Starts the thread that calls the alarms (the lock held)."""
        self._thread = threading.Thread(target=self._watch, name="xvertfast-alarms", daemon=True)
        self._thread.start()

    def _cancel(self, alarm: Alarm) -> None:
        with self._lock:
            self._due.pop(alarm, None)
            while self._calling is alarm and threading.current_thread() is not self._thread:
                self._lock.wait()

    def _watch(self) -> None:
        lock = self._lock
        with lock:
            try:
                self._call_when_due()
            finally:  # ended by what no thread survives (threading.excepthook raised, a call's SystemExit):
                # another thread calls the alarms started (else none came again in the process)
                self._thread = None
                if self._due:
                    self._watcher()

    def _call_when_due(self) -> None:
        """Calls each alarm once due, forever (the lock held but while a call runs)."""
        lock = self._lock
        while True:
            alarm = min(self._due, key=self._due.__getitem__, default=None)
            wait = None if alarm is None else self._due[alarm] - time.monotonic()
            if wait is None or wait > 0:
                lock.wait(wait)
                continue
            del self._due[alarm]
            self._calling = alarm
            lock.release()
            try:
                alarm.function()
            except Exception:
                threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), threading.current_thread())))
            finally:
                lock.acquire()
                self._calling = None
                lock.notify_all()
