"""xvertfast._interrupts: a wait that a repeated Ctrl-C must not cut."""

from __future__ import annotations

import signal
import threading

from xvertfast._interrupts import interrupts_deferred


def test_ctrl_c_and_sigterm_are_noted_once_not_raised_and_the_handlers_come_back(capfd):
    def on_term(signum, frame):
        raise AssertionError("the SIGTERM handler ran inside")

    before_term = signal.signal(signal.SIGTERM, on_term)
    try:
        with interrupts_deferred():
            for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
                signal.raise_signal(sig)
        assert capfd.readouterr().err.count("already stopping") == 1
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGTERM, before_term)


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def body():
        with interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_a_signal_the_process_ignores_stays_ignored_and_unnoted(capfd):
    # a job started in the background of a non-interactive shell script ignores SIGINT (README):
    # in the final wait a Ctrl-C at the script said "already stopping" though nothing stopped
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert "already stopping" not in capfd.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
