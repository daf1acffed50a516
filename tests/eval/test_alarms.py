"""The evaluate bar's step alarm (xvertfast.eval._alarms, protocol._StepShown.timer): one thread for
every image's, the real one firing and cancelled (the bar tests in test_evaluate.py fake it)."""

from __future__ import annotations

import threading
import types

import pytest

from xvertfast.eval import protocol


def _bar(refresh=lambda: None):
    return types.SimpleNamespace(disable=False, set_postfix_str=lambda *a, **k: None, refresh=refresh,
                                 update=lambda n: None)  # fmt: skip


def test_a_run_of_many_quick_images_does_not_start_a_thread_an_image(monkeypatch):
    """Each quick image armed a threading.Timer of its own, a thread started (about 0.8 ms) and
    cancelled as the image was done: 8 s of a 10,000-image run. One thread serves them all now."""
    started, start = [], threading.Thread.start

    def counted(thread):
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    step = protocol._StepShown(_bar(), 300)
    step.slow = False  # (the first image's steps are drawn as they come: no timer)
    for index in range(300):
        step.of(index, f"{index}.png")("reading")
        assert step._armed is not None  # (each quick image waits for its alarm)
        step.done()
    step.close()
    assert started in ([], ["xvertfast-alarms"])  # (the process's one, where no run started it before)


def test_the_alarm_draws_a_quick_images_step_once_it_turns_slow_and_not_once_cancelled(monkeypatch):
    monkeypatch.setattr(protocol, "STEP_SLOW_S", 0.02)
    drawn = threading.Event()
    step = protocol._StepShown(_bar(refresh=drawn.set), 3)
    step.slow = False
    step.of(0, "a.png")("reading")
    assert drawn.wait(30)  # drawn by the alarm, the image still running
    step.done()
    from xvertfast.eval._alarms import Alarms

    alarms, called = Alarms(), []
    cancelled = alarms(0.0, lambda: called.append("cancelled"))
    with alarms._lock:  # (not due before it is cancelled)
        cancelled.start()
        cancelled.cancel()
    last = threading.Event()
    alarms(0.01, last.set).start()
    assert last.wait(30) and called == []


def test_cancelling_an_alarm_whose_call_is_under_way_returns_once_it_ended():
    """threading.Timer's cancel() did not wait for a draw under way (the bar's _disarm joined the
    thread): an Alarm's waits, so no draw lands after the image's count moved, or the run's last line.
    The draw ends only once cancel() has returned, or 0.1 s after it was asked: a cancel that does
    not wait returns first every time (the draw had raced it, and was caught only by luck)."""
    from xvertfast.eval._alarms import Alarms

    alarms, running, asked, returned, order = Alarms(), threading.Event(), threading.Event(), threading.Event(), []

    def draw():
        running.set()
        asked.wait(30)
        returned.wait(0.1)
        order.append("drawn")

    alarm = alarms(0.0, draw)
    alarm.start()
    assert running.wait(30)
    asked.set()
    alarm.cancel()
    order.append("cancel returned")
    returned.set()
    assert order == ["drawn", "cancel returned"]


def test_an_alarm_that_raises_is_said_and_the_next_ones_still_come(monkeypatch):
    said, next_one = [], threading.Event()
    monkeypatch.setattr(threading, "excepthook", lambda args: said.append((args.exc_type, args.thread.name)))
    from xvertfast.eval._alarms import Alarms

    alarms = Alarms()
    alarms(0.0, lambda: 1 / 0).start()
    alarms(0.01, next_one.set).start()
    assert next_one.wait(30)
    assert said == [(ZeroDivisionError, "xvertfast-alarms")]


def _exit():
    raise SystemExit(3)


@pytest.mark.parametrize("ended", ["excepthook raised", "SystemExit"])
def test_alarms_still_come_after_what_ended_their_thread(monkeypatch, ended):
    """A threading.excepthook that raises, or a call's SystemExit (not an Exception), ended the
    alarms' thread, and no alarm came again in the process: the bar's step was never drawn. Another
    thread takes over, for the alarms already started and the later ones."""
    from xvertfast.eval._alarms import Alarms

    said = []

    def hook(args):  # (the SystemExit ending a thread is said to it too, as pytest would warn of it)
        said.append(args.exc_type)
        if ended == "excepthook raised":
            raise RuntimeError("the hook failed")

    monkeypatch.setattr(threading, "excepthook", hook)
    fails = (lambda: 1 / 0) if ended == "excepthook raised" else _exit
    alarms, waiting, later = Alarms(), threading.Event(), threading.Event()
    with alarms._lock:  # (both started before the first is called)
        alarms(0.0, fails).start()
        alarms(0.01, waiting.set).start()
        ended_thread = alarms._thread
    assert waiting.wait(30)  # (started before the thread ended)
    ended_thread.join(30)
    assert not ended_thread.is_alive()
    alarms(0.0, fails).start()
    alarms(0.01, later.set).start()
    assert later.wait(30)
    assert said[:1] == [ZeroDivisionError if ended == "excepthook raised" else SystemExit]
