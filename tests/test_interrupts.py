"""xvertfast._interrupts: a wait that a Ctrl-C must not cut."""

from __future__ import annotations

import signal
import threading

import pytest

from xvertfast._interrupts import deliver, interrupts_deferred


def test_while_stopping_ctrl_c_and_sigterm_are_said_once_and_dropped_and_the_handlers_come_back(capfd):
    def on_term(signum, frame):
        raise AssertionError("the SIGTERM handler ran inside")

    before_term = signal.signal(signal.SIGTERM, on_term)
    try:
        with interrupts_deferred(stopping=True) as deferred:
            for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
                signal.raise_signal(sig)
        assert capfd.readouterr().err.count("already stopping") == 1
        assert deferred.signal is None
        deliver(deferred)  # nothing held: nothing happens
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGTERM, before_term)


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def body():
        with interrupts_deferred(stopping=True):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_a_signal_the_process_ignores_stays_ignored_and_unnoted(capfd):
    # a job started in the background of a non-interactive shell script ignores SIGINT
    # (docs/guide/troubleshooting.md):
    # in the final wait a Ctrl-C at the script said "already stopping" though nothing stopped
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred(stopping=True):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert "already stopping" not in capfd.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_not_stopping_the_first_signal_is_held_until_the_wait_is_over_then_handled(capfd):
    """A Ctrl-C or SIGTERM in the wait that ends a job running normally was said as 'already
    stopping' and dropped: the job then exited 0 after a scheduler's SIGTERM. It is held and
    handed to the handler in place once the wait is over."""
    handled = []

    def on_term(signum, frame):
        handled.append(signum)
        raise KeyboardInterrupt

    before_term = signal.signal(signal.SIGTERM, on_term)
    try:
        with interrupts_deferred(stopping=False) as deferred:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)  # (the first one is kept)
            assert not handled
        assert deferred.signal == signal.SIGTERM
        assert capfd.readouterr().err.count("already stopping") == 1  # the second one is said
        with pytest.raises(KeyboardInterrupt):
            deliver(deferred)
        assert handled == [signal.SIGTERM]
        with interrupts_deferred(stopping=False) as deferred:
            signal.raise_signal(signal.SIGINT)
        assert "already stopping" not in capfd.readouterr().err  # one alone is not said
        with pytest.raises(KeyboardInterrupt):  # Python's own Ctrl-C handler
            deliver(deferred)
    finally:
        signal.signal(signal.SIGTERM, before_term)


def test_inside_the_body_deliver_hands_the_signal_to_the_handler_replaced_then_drops_the_repeats(capfd):
    """A batch job's loop holds Ctrl-C and SIGTERM and delivers a held one where it can stop (one
    raised inside a thread pool's code could leave a lock of the pool's held: the job hung). The
    handler the hold replaced gets it; once it raised (the job stops) the next ones are said and
    dropped; where it returned (the job goes on) the next one is held again."""
    handled = []

    def on_term(signum, frame):
        handled.append(signum)

    before_term = signal.signal(signal.SIGTERM, on_term)
    try:
        with interrupts_deferred(stopping=False) as held:
            signal.raise_signal(signal.SIGTERM)
            deliver(held)  # the caller's handler, which lets the job go on
            assert handled == [signal.SIGTERM] and held.signal is None
            signal.raise_signal(signal.SIGINT)  # held again, not said
            assert held.signal == signal.SIGINT and "already stopping" not in capfd.readouterr().err
            with pytest.raises(KeyboardInterrupt):  # Python's own Ctrl-C handler, replaced by the hold
                deliver(held)
            signal.raise_signal(signal.SIGINT)  # the job stops: a repeat is said and dropped
            signal.raise_signal(signal.SIGTERM)
            assert held.signal is None and handled == [signal.SIGTERM]
            deliver(held)  # nothing held: nothing happens
        assert capfd.readouterr().err.count("already stopping") == 1
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGTERM, before_term)


def _raised(body) -> BaseException:
    """What ``body`` raises."""
    try:
        body()
    except BaseException as exc:  # noqa: BLE001 (KeyboardInterrupt included: it is what is looked at)
        return exc
    raise AssertionError("nothing raised")


def _while_interrupted(then) -> None:
    """Runs ``then`` in the handler of a KeyboardInterrupt, where a ledger write or a cleanup runs."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        then()


def _disk_full() -> None:
    raise OSError(28, "No space left on device", "ledger.json")


def _replaced_by_its_own_error() -> None:
    raise ValueError("the run folder is locked") from None


def _replaced_by_a_cause() -> None:
    raise ValueError("bad value") from TypeError("no int")


def test_an_error_is_of_an_interrupt_by_its_cause_or_a_context_its_raiser_did_not_hide():
    """``raise ... from None`` (or ``from`` another error) in a KeyboardInterrupt's handler hides that
    interrupt: the error is the job's own. It was taken for an interruption, said as a bare
    "interrupted"."""
    from xvertfast._interrupts import came_of_an_interrupt

    assert came_of_an_interrupt(_raised(lambda: _while_interrupted(_disk_full)))
    assert not came_of_an_interrupt(_raised(lambda: _while_interrupted(_replaced_by_its_own_error)))
    assert not came_of_an_interrupt(_raised(lambda: _while_interrupted(_replaced_by_a_cause)))
    wrapped = RuntimeError("Error calling __set_name__")  # as CPython wraps one in an import
    wrapped.__cause__ = KeyboardInterrupt()
    assert came_of_an_interrupt(wrapped)


def test_the_error_an_interruption_raised_is_said_in_one_line():
    """A ledger write failing with the disk full as a Ctrl-C unwound was said as a bare "interrupted"."""
    from xvertfast._interrupts import then_line

    disk_full = _raised(lambda: _while_interrupted(_disk_full))
    said = " (then OSError: [Errno 28] No space left on device: 'ledger.json')"
    assert then_line(disk_full) == said
    reraised = KeyboardInterrupt()  # the CLI's handlers raise one from the error
    reraised.__cause__ = disk_full
    assert then_line(reraised) == said
    assert then_line(_raised(lambda: _while_interrupted(lambda: _raise(OSError("first\nsecond"))))) == \
        " (then OSError: first)"  # fmt: skip
    assert then_line(KeyboardInterrupt()) == ""
    wrapped = RuntimeError("Error calling __set_name__")  # CPython's wrapping: the interrupt itself
    wrapped.__cause__ = KeyboardInterrupt()
    assert then_line(wrapped) == ""


def _raise(exc: BaseException) -> None:
    raise exc
