"""--threads of preprocess, enhance and evaluate: jobs side by side on one machine each take their
share of the cores, including the WLS solves that enhance runs in its reader threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import xvertfast.preprocess.inputs as preprocess_inputs
from xvertfast.cli import build_parser, main

COMMANDS = ("preprocess", "enhance", "evaluate")


@pytest.fixture
def torch_threads():
    """torch's thread count is process-wide state: put back what the tests found."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def _png(path) -> str:
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 200)
    img = np.exp(-(x[None, :] ** 2) / 0.02) * 0.6 + 0.2 + 0.05 * rng.random((200, 200))
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("command", COMMANDS)
def test_threads_parses_zero_and_a_count_and_defaults_to_torchs_own(command):
    parse = build_parser().parse_args
    assert parse([command, "x", "-o", "o"]).threads == 0
    assert parse([command, "x", "-o", "o", "--threads", "0"]).threads == 0
    assert parse([command, "x", "-o", "o", "--threads", "3"]).threads == 3


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value, said", [("-1", "must be at least 0, got -1"), ("two", "must be a whole number, got 'two'")])
def test_a_bad_thread_count_is_refused_naming_the_option(command, value, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "x", "-o", "o", "--threads", value])
    assert exit_.value.code == 2 and f"argument --threads: {said}" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_the_command_sets_torchs_threads_and_zero_leaves_them(command, tmp_path, monkeypatch, capsys):
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    monkeypatch.chdir(tmp_path)
    # a folder with no image in it ends each command at once, after the thread count is set (a missing
    # one is said before torch loads, and sets nothing: fca0da7)
    (tmp_path / "empty").mkdir()
    assert main([command, "empty", "-o", "out", "-q", "--threads", "3"]) == 1
    assert set_to == [3]
    assert main([command, "empty", "-o", "out", "-q"]) == 1
    assert set_to == [3]  # 0, the default: torch's own count is left alone


def test_help_tells_enhances_threads_from_its_workers():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "enhance" in a.choices)
    helps = {a.dest: a.help for a in sub.choices["enhance"]._actions}
    assert "using --threads CPU threads" in helps["workers"]
    assert "each --workers thread's solve" in helps["threads"] and "0: torch's default" in helps["threads"]


def test_enhances_reader_threads_solve_on_the_threads_given(tmp_path, monkeypatch, torch_threads):
    """The WLS solves of enhance run in its reader threads, where torch's count is the thread's own
    (OpenMP's is per thread): they must run on --threads too, not on torch's default."""
    wanted = torch_threads + 1  # a count the process would not have by itself
    solved_on = []
    real_wls = preprocess_inputs.wls

    def recording_wls(*args, **kwargs):
        solved_on.append((threading.current_thread().name, torch.get_num_threads()))
        return real_wls(*args, **kwargs)

    monkeypatch.setattr(preprocess_inputs, "wls", recording_wls)
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    assert main(["enhance", image, "-o", "out", "-q", "--device", "cpu", "--workers", "1",
                 "--threads", str(wanted)]) == 0  # fmt: skip
    assert solved_on and all(name.startswith("xvf-read") for name, _ in solved_on), solved_on
    assert {threads for _, threads in solved_on} == {wanted}
