"""The command line's help: every option says what it does, and no default reads "None"."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys

import numpy as np
import pytest
from PIL import Image

from xvertfast.cli import COUNTERPARTS, DEVICE_AUTO, build_parser, main


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_has_help_and_no_empty_default():
    commands = subcommands()
    assert {"enhance", "evaluate", "train", "export", "demo"} <= commands.keys()
    for name, parser in commands.items():
        for action in parser._actions:
            said = re.sub(r"\(default: [^)]*\)", "", action.help or "").strip()
            assert said, f"xvertfast {name}: {action.option_strings or action.dest} does not say what it does"
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, name


def test_train_help_shows_set_defaults_once():
    text = " ".join(subcommands()["train"].format_help().split())
    assert "(default: 200)" in text  # --epochs-gc: appended by the formatter
    assert "(default: 0)" in text  # zero is a default to show, not an unset one
    said = "default: 64; with --init: the model's)"
    assert said in text and said + " (default" not in text  # the help said it: not appended again


def test_every_command_documents_its_exit_codes():
    assert set(subcommands()) == {"info", "preprocess", "enhance", "evaluate", "train", "export", "demo", "status", "cache"}
    # docs/guide/troubleshooting.md: every command's --help states its exit codes
    for name in subcommands():
        assert "Exit code" in " ".join(subcommands()[name].format_help().split()), name
    for name in subcommands():  # Ctrl-C, SIGTERM, SIGHUP stop any (main): status, info and cache said none
        said = " ".join(subcommands()[name].format_help().split())
        assert "130 interrupted" in said and "143 stopped by SIGTERM" in said, name  # (the top-level help alone said 143)
        assert "129 by SIGHUP" in said, name
    said = " ".join(subcommands()["train"].format_help().split())
    for code in ("0 model written", "1 no image found", "2 bad settings", "3 stopped by an error while training",
                 "130 interrupted"):  # fmt: skip
        assert code in said, code


def test_the_batch_commands_help_say_a_job_stopped_at_its_lost_log_exits_1():
    """enhance and preprocess exit 1 where their log is lost (stderr closed, `|& head -1`; its
    file's disk full) and the job stops with inputs left: preprocess's --help said so, enhance's
    named failures, the disk and --report alone, so a script could not tell from it what 1 meant."""
    for name in ("enhance", "preprocess"):
        said = " ".join(subcommands()[name].format_help().split())
        assert "the job's log lost (stderr closed)" in said.split("Exit code")[1].split(", 2 ")[0], name


def test_every_device_option_says_what_auto_picks_and_evaluate_says_what_pictures_counts(monkeypatch):
    """--device listed "auto, cpu, cuda, cuda:1, ..." without saying what auto is; evaluate's --pictures
    said "images shown side by side", not where."""
    import torch

    from xvertfast.infer.backends import resolve_device

    for name in ("enhance", "evaluate", "demo", "train"):
        (device,) = [a for a in subcommands()[name]._actions if "--device" in a.option_strings]
        assert DEVICE_AUTO in device.help, name
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # (DEVICE_AUTO's "else the CPU")
    assert resolve_device("auto") == torch.device("cpu")
    (pictures,) = [a for a in subcommands()["evaluate"]._actions if "--pictures" in a.option_strings]
    assert "grid/ and report.html" in pictures.help


def test_the_defaults_each_command_states_are_those_of_the_api_it_calls():
    """A default changed in the API (Enhancer, enhance_files, evaluate, export_model, TrainConfig)
    and not in the CLI would run the command with the old one, its --help saying so; an option
    left unset (None) for the API to decide must state the API's default in its help."""
    import dataclasses
    import inspect

    from xvertfast.eval.evaluate import evaluate
    from xvertfast.infer.batch import enhance_files
    from xvertfast.infer.enhancer import Enhancer
    from xvertfast.infer.export import export_model
    from xvertfast.train.loop import TrainConfig

    def defaults(*functions) -> dict:
        return {k: v.default for f in functions for k, v in inspect.signature(f).parameters.items()
                if v.default is not inspect.Parameter.empty}  # fmt: skip

    apis = {"enhance": (defaults(Enhancer.__init__, enhance_files), {"format": "fmt"}),
            "demo": (defaults(Enhancer.__init__), {}),
            "evaluate": (defaults(evaluate), {}),
            "export": (defaults(export_model), {"roi_size": "tile"}),
            "train": ({f.name: f.default for f in dataclasses.fields(TrainConfig)}, {})}  # fmt: skip
    compared = 0
    for command, (api, renamed) in apis.items():
        for action in subcommands()[command]._actions:
            name = renamed.get(action.dest, action.dest)
            if not action.option_strings or action.nargs == 0 or name not in api:  # (flags: off unless given)
                continue
            expected = ",".join(api[name]) if isinstance(api[name], tuple) else api[name]
            if action.default is None and expected is not None:
                assert f"default: {expected}" in " ".join(action.help.split()), (command, action.dest)
            else:
                assert action.default == expected, (command, action.dest, action.default, expected)
            compared += 1
    assert compared >= 25, compared  # (the options that match the API's names were found)


@pytest.mark.parametrize("argv, option", [
    (["enhance", "x", "-o", "o", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["enhance", "x", "-o", "o", "--workers", "65"], "--workers: must be from 1 to 64, got 65"),
    (["enhance", "x", "-o", "o", "--device", "meta"], "--device: must be auto, cpu, cuda, cuda:N or another device of "
                                                     "torch's (mps, xpu, ...; not meta, which holds no data), got 'meta'"),
    (["train", "x", "-o", "o", "--threads", "-1"], "--threads/--workers: must be at least 0, got -1"),
    (["evaluate", "x", "-o", "o", "--pictures", "-1"], "--pictures: must be at least 0, got -1"),
    (["export", "default", "-o", "o", "--max-batch", "0"], "--max-batch: must be at least 1, got 0"),
    (["export", "default", "-o", "o", "--roi-size", "x"], "--roi-size: must be a whole number, got 'x'"),
    (["train", "x", "-o", "o", "--val-fraction", "20"], "--val-fraction: must be a number from 0 up to 1, not 1 "
                                                        "itself (0.2: a fifth of the images held out for validation), "
                                                        "got '20'"),
    (["train", "x", "-o", "o", "--val-fraction", "nan"], "--val-fraction: must be a number from 0 up to 1"),
])  # fmt: skip
def test_bad_option_values_are_one_line_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err


COMMANDS = "info, preprocess, enhance, evaluate, status, demo, export, cache, train"


@pytest.mark.parametrize("argv, said", [
    (["enhanse", "a.png", "-o", "out"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["Train", "scans", "-o", "run"], f"'Train': did you mean train? (the commands: {COMMANDS})"),
    (["-o", "out", "enhance", "a.png"], "'out': -o out goes after the command: xvertfast enhance ... -o out"),
    (["help"], "'help': xvertfast --help lists the commands, xvertfast COMMAND --help shows one's options and exit "
               "codes"),
    (["xyzzy"], "'xyzzy' (choose from 'info', 'preprocess', "),  # (nothing to tell: argparse's words)
    (["--threads", "enhanse", "in", "-o", "out"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["--batch-size", "enhanse", "in"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["--mode", "enhanse", "in"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["--format", "enhanse", "in"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["--precision", "enhanse", "in"], f"'enhanse': did you mean enhance? (the commands: {COMMANDS})"),
    (["-o", "enhanse", "in"], "'enhanse': did you mean enhance? (or: -o enhanse goes after the command: xvertfast "
                              f"COMMAND ... -o enhanse; the commands: {COMMANDS})"),  # (no such folder: -o makes it)
    (["-o", "enhanced", "in"], "'enhanced': did you mean enhance? (or: -o enhanced goes after the command: xvertfast "
                               f"COMMAND ... -o enhanced; the commands: {COMMANDS})"),
    (["-o", "trained", "data"], "'trained': did you mean train? (or: -o trained goes after the command: xvertfast "
                                f"COMMAND ... -o trained; the commands: {COMMANDS})"),
    (["--output", "demo_out", "in"], "'demo_out': did you mean demo? (or: --output demo_out goes after the command: "
                                     f"xvertfast COMMAND ... --output demo_out; the commands: {COMMANDS})"),
    # (--epochs begins train's --epochs-gc and --epochs-joint, so argparse took it for no option: '3' alone)
    (["--epochs", "3", "in"], "'3': --epochs is not an option; train has --epochs-gc and --epochs-joint, which go "
                              "after the command: xvertfast train ... --epochs-gc 3 (options are given whole, not "
                              "abbreviated)"),
    (["--epochs", "3", "train", "in"], "'3': --epochs is not an option; train has --epochs-gc and --epochs-joint"),
    # (a command named only where the options that take the word are one command's: every command has --output)
    (["--out", "o", "in"], "'o': --out is not an option; it begins --output (preprocess, enhance, evaluate, demo, "
                           "export, train), which goes after the command: xvertfast COMMAND ... --output o (options "
                           "are given whole, not abbreviated)"),
    (["--thr", "2", "in"], "'2': --thr is not an option; it begins --threads (preprocess, enhance, evaluate, train), "
                           "which goes after the command: xvertfast COMMAND ... --threads 2 ("),
    (["--mod", "x", "in"], "'x': --mod is not an option; it begins --model (enhance, demo) and --mode (enhance), "
                           "which go after the command: xvertfast COMMAND ... --model x ("),  # (x: no --mode choice)
])  # fmt: skip
def test_a_word_that_is_no_command_says_what_was_meant(argv, said, capsys):
    """A misspelt command (enhanse), -o given before the command (its value taken for the command)
    and help got argparse's "invalid choice: 'out' (choose from 'info', ...)" alone. A misspelt
    command after an option that takes a value (--threads enhanse in) was said to be the option's
    value, to go after the command (3b7ed99): it is "did you mean enhance?" again, and after one
    with choices that hold no enhanse (--mode, --format, --precision). But -o makes its
    folder, so a new one named like a command (-o enhanced in) may be -o's value: 76e7fde said
    "did you mean enhance?" alone; both are said."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"xvertfast: error: argument COMMAND: invalid choice: {said}" in err, err


@pytest.mark.parametrize("argv, made, said", [
    (["in", "-o", "out"], ["in/"], f"'in': a folder, not a command: the command goes before it: xvertfast COMMAND "
                                   f"in ... (the commands: {COMMANDS})"),
    (["train/", "-o", "run"], ["train/"], "'train/': a folder, not a command: the command goes before it: xvertfast "
                                          "COMMAND train/ ..."),
    (["./train", "-o", "run"], [], "'./train': a path, not a command: "),
    (["enhanced", "-o", "out"], ["enhanced/"], "'enhanced': a folder, not a command: "),
    (["info.json"], ["info.json"], "'info.json': a file, not a command: the command goes before it: xvertfast COMMAND "
                                   "info.json ..."),
    (["train.csv", "-o", "run"], [], "'train.csv': a path, not a command: "),
    (["demo.dcm"], [], "'demo.dcm': a path, not a command: "),
    (["-o", "out", "enhance", "in"], ["out/", "in/"], "'out': -o out goes after the command: xvertfast enhance ... "
                                                      "-o out"),  # (an option's value first, present or not)
    (["in", "-o", "out"], [], f"'in': did you mean info? (the commands: {COMMANDS})"),  # (no such path: a word)
    (["-q", "out", "enhance", "in"], [], "'out' (choose from 'info', "),  # (-q takes no value: out is not its)
    (["--mode", "full", "enhance", "in", "-o", "out"], [], "'full': --mode full goes after the command: xvertfast "
                                                           "enhance ... --mode full"),  # (--mode, not --model)
    (["-o", "out", "in"], ["out/", "in/"], f"'out': -o out goes after the command: xvertfast COMMAND ... -o out "
                                           f"(the commands: {COMMANDS})"),  # (out is -o's: no command follows)
    (["--mode", "full", "in"], ["in/"], "'full': --mode full goes after the command: xvertfast enhance ... --mode "
                                        "full ("),  # (enhance alone has --mode)
    (["--mod", "full", "in"], ["in/"], "'full': --mod is not an option; it begins --model (enhance, demo) and --mode "
                                       "(enhance), which go after the command: xvertfast enhance ... --mode full ("),
    # (abbreviations are refused: --mod is none; the example is of the option whose choices hold full)
    (["-o", "enhanced", "in"], ["enhanced/", "in/"], "'enhanced': -o enhanced goes after the command: xvertfast "
                                                     "COMMAND ... -o enhanced ("),  # (a folder: -o's, not a typo)
])  # fmt: skip
def test_a_path_where_the_command_goes_is_said_to_be_one(argv, made, said, tmp_path, monkeypatch, capsys):
    """A folder, file or path given where the command goes (the command left out) got "did you mean"
    for a command it resembles: `xvertfast in -o out`, with in/ there, said "'in': did you mean info?".
    An option's value given before it is said to go after the command: `-o out in` (out/ there) was
    called a folder where the command goes, `--mode full enhance` got argparse's words alone (--mode
    taken for a prefix of --model too). `--mod full in` named demo, whose --model alone --mod
    begins, though enhance has --mode and --model; options are now taken whole, so --mod is said to
    be none, with the options it begins."""
    monkeypatch.chdir(tmp_path)
    for path in made:
        (tmp_path / path).mkdir() if path.endswith("/") else (tmp_path / path).write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"xvertfast: error: argument COMMAND: invalid choice: {said}" in err, err
    assert "did you mean" not in err or not made, err


@pytest.mark.parametrize("argv, said", [
    (["enhance", "x", "-o", "o", "--overwirte"], "unrecognized arguments: --overwirte (did you mean --overwrite?)"),
    (["enhance", "x", "-o", "o", "--batchsize", "3"], "unrecognized arguments: --batchsize 3 (did you mean "
                                                       "--batch-size?)"),
    (["info", "--jsn"], "unrecognized arguments: --jsn (did you mean --json?)"),
    (["export", "default", "-o", "o", "-q"], "unrecognized arguments: -q (-q is an option of preprocess, enhance, "
                                              "evaluate and train, not of export)"),
    (["evaluate", "x", "-o", "o", "--mode", "full"], "unrecognized arguments: --mode full (--mode is an option of "
                                                      "enhance, not of evaluate)"),
    (["evaluate", "x", "-o", "o", "--batch-size=4"], "unrecognized arguments: --batch-size=4 (--batch-size is an "
                                                      "option of enhance and train, not of evaluate)"),
    (["evaluate", "x", "-o", "o", "--model", "m"], "unrecognized arguments: --model m (evaluate has no --model: give "
                                                    "the model as a method, --methods xvertnet=MODEL_DIR)"),
    (["evaluate", "x", "-o", "o", "--overwrite"], "unrecognized arguments: --overwrite (evaluate has no --overwrite: "
                                                   "--restart scores every image again)"),
    (["enhance", "x", "-o", "o", "--zzz"], "unrecognized arguments: --zzz\n"),  # (nothing to suggest: none invented)
])  # fmt: skip
def test_an_unknown_option_is_refused_by_its_command_saying_what_was_meant(argv, said, capsys):
    """argparse refused it in the top level's words ("usage: xvertfast [-h] [--version] COMMAND ...",
    "xvertfast: error: unrecognized arguments: --overwirte"), suggesting nothing."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"usage: xvertfast {argv[0]} ")
    assert f"xvertfast {argv[0]}: error: {said}" in err


@pytest.mark.parametrize("argv, said", [
    (["--overwrite", "enhance", "x", "-o", "o"], "unrecognized arguments: --overwrite (--overwrite goes after the "
                                                 "command: xvertfast enhance ... --overwrite)"),
    (["--verison", "enhance", "x", "-o", "o"], "unrecognized arguments: --verison (--verison: did you mean "
                                               "--version?)"),
    (["-q", "enhance", "x", "-o", "o"], "unrecognized arguments: -q (-q goes after the command: xvertfast enhance ... "
                                        "-q)"),  # (a short option was said "unrecognized arguments: -q" alone)
    (["-qq", "enhance", "x", "-o", "o"], "unrecognized arguments: -qq (-qq goes after the command: xvertfast enhance "
                                         "... -qq)"),  # (short flags grouped were said "unrecognized arguments: -qq" alone)
])  # fmt: skip
def test_an_option_given_before_the_command_is_refused_by_the_top_level_saying_where_it_goes(argv, said, capsys):
    """It was enhance's to refuse: "xvertfast enhance: error: unrecognized arguments: --overwrite (did
    you mean --overwrite?)", the option "corrected" to itself, and --verison blamed on enhance."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: xvertfast [-h]")
    assert f"xvertfast: error: {said}\n" in err and "did you mean --overwrite" not in err


def test_the_words_after_a_double_dash_are_not_taken_for_misspelt_options(capsys):
    """`-- --overwirte` was hinted "(--overwirte: did you mean --overwrite?)": after -- it is no option."""
    with pytest.raises(SystemExit) as exit_:
        main(["enhance", "x", "-o", "o", "--", "--overwirte"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.endswith("xvertfast enhance: error: unrecognized arguments: -- --overwirte\n")


WHOLE = "options are given whole, not abbreviated"


@pytest.mark.parametrize("argv, said", [
    (["enhance", "x", "-o", "o", "--prev", "look.png"], "xvertfast enhance: error: unrecognized arguments: --prev "
                                                         f"look.png (did you mean --preview? {WHOLE})"),
    (["enhance", "x", "-o", "o", "--pre", "look.png"], "xvertfast enhance: error: unrecognized arguments: --pre "
                                                        f"look.png (did you mean --precision or --preview? {WHOLE})"),
    (["enhance", "x", "-o", "o", "--ov"], f"unrecognized arguments: --ov (did you mean --overwrite? {WHOLE})"),
    (["train", "x", "-o", "o", "--res", "--epochs-g=3"], f"--res --epochs-g=3 (--res: did you mean --resume? {WHOLE}; "
                                                         f"--epochs-g: did you mean --epochs-gc? {WHOLE})"),
    (["status", "--js", "o"], f"xvertfast status: error: unrecognized arguments: --js (did you mean --json? {WHOLE})"),
    (["enhance", "x", "--out", "o"], "xvertfast enhance: error: the following arguments are required: -o/--output "
                                     f"(--out: did you mean --output? {WHOLE})"),  # (-o missing, said first)
    (["--vers"], f"xvertfast: error: unrecognized arguments: --vers (did you mean --version? {WHOLE})"),
    (["--over", "enhance", "x", "-o", "o"], f"xvertfast: error: unrecognized arguments: --over (--over: did you mean "
                                            f"--overwrite? {WHOLE}, and go after the command: xvertfast enhance ... "
                                            "--overwrite)"),
    (["--out", "o", "enhance", "x"], "invalid choice: 'o': --out is not an option; enhance has --output, which goes "
                                     f"after the command: xvertfast enhance ... --output o ({WHOLE})"),
])  # fmt: skip
def test_an_abbreviated_option_is_refused_naming_the_options_it_begins(argv, said, capsys):
    """argparse took any unique prefix of an option: `--prev look.png` ran as --preview, until an
    option more of that prefix came (--precision), when a saved batch script stopped with "ambiguous
    option", or another option came to own it. Options are taken whole; an abbreviation is refused
    with the options it begins, wherever it stands (after the command, before it, in place of -o)."""
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and said in err, err


def test_the_resume_commands_of_runs_recorded_with_abbreviated_options_give_them_whole():
    """A job or training run started by an xvertfast that took abbreviations recorded them: status
    gave back `--out=run --res` and `--prev p.png`, which this xvertfast refuses. They are written
    whole (--overwrite still left out, --resume not added twice)."""
    from types import SimpleNamespace

    from xvertfast.cli import _resume_command, _train_resume_command

    led = SimpleNamespace(command="xvertfast enhance in --out /x/out --ov --prev p.png --shard=1/2 -- --ov", cwd=None)
    assert _resume_command(led) == "xvertfast enhance in --output /x/out --preview p.png --shard=1/2 -- --ov"
    run = SimpleNamespace(command="xvertfast train data --out=/x/run --res --epochs-g 3", cwd=None, run_dir="/x/run")
    command = _train_resume_command(run)
    assert command == "xvertfast train data --output=/x/run --resume --epochs-gc 3"
    assert build_parser().parse_args(command.split()[1:]).resume


def test_the_commands_printed_to_run_are_quoted_for_the_system_s_shell(monkeypatch):
    """A command printed for the user to run (the trained model's enhance line, status's resume
    command) is quoted for their shell: on Windows shlex gave `--model 'runs\\model'`, single quotes
    and a backslash cmd.exe reads as they are, so the command failed there. Double quotes where needed."""
    import shlex
    from types import SimpleNamespace

    from xvertfast.cli import _enhance_with, _resume_command

    words = ["xvertfast", "enhance", "C:\\scans\\in", "-o", "C:\\my out", "--overwrite"]
    led = SimpleNamespace(command=shlex.join(words), cwd="D:\\work dir")  # (a ledger records it so: shlex)
    assert _enhance_with("runs/my model") == "enhance with `xvertfast enhance INPUT -o OUT --model 'runs/my model'`"
    assert _resume_command(led) == "cd 'D:\\work dir' && xvertfast enhance 'C:\\scans\\in' -o 'C:\\my out'"
    with monkeypatch.context() as windows:  # (os.name put back before any assert: pytest's report needs it)
        windows.setattr(os, "name", "nt")
        said = _enhance_with("runs\\model"), _enhance_with("my runs\\model"), _resume_command(led)
    assert said == ("enhance with `xvertfast enhance INPUT -o OUT --model runs\\model`",
                    'enhance with `xvertfast enhance INPUT -o OUT --model "my runs\\model"`',
                    'cd /d "D:\\work dir" && xvertfast enhance C:\\scans\\in -o "C:\\my out"'), said


def as_cmd_exe_runs(line: str, env: dict[str, str]) -> list[list[str]]:
    """What cmd.exe makes of ``line`` typed at its prompt, as the words each program it runs is given: its
    percent phase (``%NAME%`` of a variable in ``env`` replaced, else kept, scanning on from the second %),
    then quotes (a " toggles them) and carets (outside quotes ``^`` takes the next character as it is), the
    line cut into commands at & and | outside quotes (< and > too: a redirection is a cut here); then each
    command split as a Windows program splits its command line (CommandLineToArgvW, the C runtime's rules)."""
    expanded, i = "", 0
    while i < len(line):
        end = line.find("%", i + 1) if line[i] == "%" else -1
        if end > 0 and line[i + 1:end] in env:
            expanded, i = expanded + env[line[i + 1:end]], end + 1
        else:
            expanded, i = expanded + line[i], i + 1
    commands, current, quoted, i = [], "", False, 0
    while i < len(expanded):
        c = expanded[i]
        if c == "^" and not quoted:
            current, i = current + expanded[i + 1:i + 2], i + 2
            continue
        if c in "&|<>" and not quoted:
            commands.append(current)
            current, i = "", i + (2 if expanded[i + 1:i + 2] == c else 1)
            continue
        quoted ^= c == '"'
        current, i = current + c, i + 1
    return [_argv_of(command) for command in [*commands, current]]


def _argv_of(command: str) -> list[str]:
    """``command`` split into words as a Windows program's C runtime splits its command line: spaces
    outside quotes split, 2n backslashes before a quote are n and the quote is one, 2n + 1 are n and a
    quote as it is; "" inside quotes is a quote."""
    words, word, quoted, i = [], None, False, 0
    while i < len(command):
        c = command[i]
        if c == "\\":
            n = len(command[i:]) - len(command[i:].lstrip("\\"))
            if command[i + n:i + n + 1] == '"':
                word, i = (word or "") + "\\" * (n // 2) + ('"' if n % 2 else ""), i + n + n % 2
            else:
                word, i = (word or "") + "\\" * n, i + n
        elif c == '"':
            if quoted and command[i + 1:i + 2] == '"':
                word, i = (word or "") + '"', i + 2
            else:
                word, quoted, i = word or "", not quoted, i + 1
        elif c in " \t" and not quoted:
            if word is not None:
                words.append(word)
            word, i = None, i + 1
        else:
            word, i = (word or "") + c, i + 1
    return words + ([word] if word is not None else [])


def test_the_commands_printed_for_cmd_exe_run_with_their_words_whole(monkeypatch):
    """On Windows a printed command quoted only a space (subprocess.list2cmdline): a folder
    ``C:\\R&D`` split the pasted line at the &, ``(``, ``)``, ``|``, ``<``, ``>`` and ``^`` were cmd.exe's
    too, and ``%TEMP%`` in a path was expanded. Each word now comes back whole, as typed."""
    import shlex
    from types import SimpleNamespace

    from xvertfast.cli import _enhance_with, _resume_command

    env = {"TEMP": "C:\\Users\\me\\Temp", "R": "expanded", "D\\": "expanded"}
    words = ["xvertfast", "enhance", "C:\\R&D\\scans (2024)", "-o", "C:\\out\\100%\\%TEMP%\\", "--report",
             "a|b<c>d^e.csv", "--preview", "%R%&%D\\%", "--", 'odd "name" ', ""]  # fmt: skip
    led = SimpleNamespace(command=shlex.join(words), cwd="D:\\R&D 50%")
    with monkeypatch.context() as windows:  # (os.name put back before any assert: pytest's report needs it)
        windows.setattr(os, "name", "nt")
        resume, model = _resume_command(led), _enhance_with("C:\\runs\\R&D (b)\\")
    assert as_cmd_exe_runs(resume, env) == [["cd", "/d", "D:\\R&D 50%"], words], resume
    assert resume == ('cd /d "D:\\R&D 50"^% && xvertfast enhance "C:\\R&D\\scans (2024)" -o C:\\out\\100^%\\^%TEMP^%\\ '
                      '--report "a|b<c>d^e.csv" --preview ^%R^%"&"^%D\\^% -- "odd "\\^"name\\^"" " ""'), resume
    said = model.removeprefix("enhance with `").removesuffix("`")
    assert as_cmd_exe_runs(said, env) == [["xvertfast", "enhance", "INPUT", "-o", "OUT", "--model",
                                           "C:\\runs\\R&D (b)\\"]], model  # fmt: skip


def test_the_counterparts_suggested_for_another_command_s_option_are_true():
    commands = subcommands()
    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in commands.items()}
    for (command, option), suggestion in COUNTERPARTS.items():
        assert option not in options[command] and any(option in o for o in options.values()), (command, option)
        suggested = re.findall(r"--[a-z-]+", suggestion)
        assert suggested and set(suggested) <= options[command], (command, suggestion)


def _png(path, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, 200)
    img = np.exp(-(x[None, :] ** 2) / 0.02) * 0.6 + 0.2 + 0.05 * rng.random((200, 200))
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("command", ["enhance", "preprocess", "train", "demo"])
def test_an_output_folder_that_is_a_file_is_said_so(tmp_path, monkeypatch, capsys, command):
    """-o naming the input image itself (`enhance a.png -o a.png`) said "a.png is inside /.../a.png, a
    folder of outputs": it is no folder; the demo's -o a file said "cannot write into the output folder
    a.png/enhanced: Not a directory". Each now says the output folder is a file, and what to give."""
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    argv = ["demo", "-o", "a.png"] if command == "demo" else [command, "a.png", "-o", "a.png", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    if command == "demo":
        assert err == ("error: output folder a.png is a file: the demo writes the folders enhanced/ and report/ into "
                       "OUT; give a folder (-o, made where missing)\n")  # fmt: skip
    else:
        assert err == ("error: a.png is an input file and also given as the output folder, which must be a folder: "
                       "give the outputs a folder of their own (e.g. a_out)\n")  # fmt: skip
    assert (tmp_path / "a.png").read_bytes() == before and os.listdir(tmp_path) == ["a.png"], image


def test_evaluate_of_outputs_in_a_file_says_it_is_a_file(tmp_path, capsys):
    """evaluate --methods outputs=a.png (an image where the folder of another tool's outputs goes)
    said "outputs=a.png: no such folder", though it is there."""
    image = _png(tmp_path / "a.png")
    args = ["evaluate", image, "-o", str(tmp_path / "report"), "--metrics", "entropy", "-q", "--methods"]
    for given, said in ((image, "a file, not a folder"), (str(tmp_path / "missing"), "no such folder")):
        assert main([*args, f"outputs={given}"]) == 2
        assert capsys.readouterr().err == (f"error: --methods outputs={given}: {said}: give the folder another tool "
                                           "wrote its outputs into, mirroring the inputs' paths\n")  # fmt: skip


def test_evaluate_methods_refused_name_the_option(tmp_path, capsys):
    """--methods xvertnet=nothere said "nothere: no such folder (a model is ...)", naming neither the
    method nor the option; x=nothere, "unknown method 'x=nothere'". From Python they name the method."""
    from xvertfast.eval.evaluate import evaluate

    image = _png(tmp_path / "a.png")
    args = ["evaluate", image, "-o", str(tmp_path / "report"), "--metrics", "entropy", "-q", "--methods"]
    missing = str(tmp_path / "nothere")
    assert main([*args, f"identity,mine:xvertnet={missing}"]) == 2
    assert capsys.readouterr().err == (f"error: --methods mine:xvertnet={missing}: {missing}: no such folder (a model is "
                                       "a directory from `xvertfast train`, its RUN_DIR/model, or 'default')\n")  # fmt: skip
    assert main([*args, "x=nothere"]) == 2
    assert capsys.readouterr().err.startswith("error: --methods x=nothere: unknown method: choose from identity, ")
    assert main([*args, "a/b:clahe"]) == 2
    assert capsys.readouterr().err.startswith("error: --methods a/b:clahe: expected [LABEL:]METHOD[=ARGUMENT]")
    with pytest.raises(FileNotFoundError, match=f"^method 'xvertnet={re.escape(missing)}': {re.escape(missing)}: no "):
        evaluate([image], str(tmp_path / "report"), [f"xvertnet={missing}"], ["entropy"], progress=False)
    with pytest.raises(ValueError, match="^unknown method 'x=nothere': choose from identity, "):
        evaluate([image], str(tmp_path / "report"), ["x=nothere"], ["entropy"], progress=False)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", ["enhance", "preprocess", "train", "evaluate"])
def test_a_roi_file_that_is_a_folder_or_missing_is_said_so_naming_the_option(tmp_path, capsys, command):
    """--rois naming a folder (the one the CSV is in) said "ROI centres file rois: Is a directory"; and
    both that and a missing one said "ROI centres file ...", naming no option (from Python, still so)."""
    from xvertfast.preprocess.centres import load_roi_centres

    image = _png(tmp_path / "a.png")
    (tmp_path / "rois").mkdir()
    assert main([command, image, "-o", str(tmp_path / "out"), "-q", "--rois", str(tmp_path / "rois")]) == 2
    assert capsys.readouterr().err == (f"error: --rois {tmp_path / 'rois'} is a folder: give the CSV file of the "
                                       "centres in it\n")  # fmt: skip
    missing = str(tmp_path / "nothere.csv")
    assert main([command, image, "-o", str(tmp_path / "out"), "-q", "--rois", missing]) == 2
    assert capsys.readouterr().err == f"error: --rois {missing}: No such file or directory\n"
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=f"^ROI centres file {re.escape(missing)}: No such file or directory$"):
        load_roi_centres(missing)


@pytest.mark.parametrize("marker", [".xvertfast-train.lock", "checkpoint/state.json", None])
@pytest.mark.parametrize("name", ["checkpoint", "cache"])
def test_a_training_runs_checkpoint_given_as_the_model_names_the_runs_model(tmp_path, capsys, name, marker):
    """--model RUN/checkpoint (or cache) said "not an xvertfast model directory (no config.json)" alone,
    where RUN itself is told "did you mean RUN/model". A folder where no run began (no lock file, no
    checkpoint/state.json: a model kept beside a cache/ of one's own) is not said to be a run's."""
    from xvertfast.model import load_model, persistence, save_model
    from xvertfast.train.run_folder import LOCK_FILE

    assert persistence._RUN_LOCK_FILE == LOCK_FILE  # (model/persistence names it itself: model cannot import train)
    assert marker in (LOCK_FILE, "checkpoint/state.json", None)
    run = tmp_path / "run"
    save_model(load_model("default"), run / "model")
    (run / name).mkdir()
    if marker:
        (run / marker).parent.mkdir(exist_ok=True)
        (run / marker).write_text("{}")
    assert main(["export", str(run / name), "-o", str(tmp_path / "out")]) == 2
    said = (f"it is the {name}/ of a training run: did you mean {run / 'model'}, the run's model?" if marker
            else f"did you mean {run / 'model'}, the model beside it?")  # fmt: skip
    err = capsys.readouterr().err
    assert err == f"error: {run / name}: not an xvertfast model directory (no config.json); {said}\n"


def test_evaluate_of_no_metrics_says_so(tmp_path, capsys):
    """--metrics "" (an unset variable) or "," said "unknown metric(s) (none given)", as if some were unknown."""
    image = _png(tmp_path / "a.png")
    for metrics in ("", ","):
        assert main(["evaluate", image, "-o", str(tmp_path / "report"), "--metrics", metrics, "-q"]) == 2
        assert capsys.readouterr().err == ("error: no metrics to score: choose from entropy, tenengrad, lpc_si, tmqi, "
                                           "brisque, tmqi_paper_compat\n")  # fmt: skip


def test_evaluate_refuses_unusable_report_folders_without_a_traceback(tmp_path, capsys):
    image = _png(tmp_path / "a.png")
    args = ["--methods", "identity", "--metrics", "entropy", "-q"]
    (tmp_path / "afile").write_text("x")
    assert main(["evaluate", image, "-o", str(tmp_path / "afile"), *args]) == 2  # was a FileExistsError traceback
    assert "is a file" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.md").write_text("my own notes")
    assert main(["evaluate", image, "-o", str(mine), *args]) == 2
    assert "holds files and no evaluation" in capsys.readouterr().err
    assert (mine / "summary.md").read_text() == "my own notes"
    browsed = tmp_path / "browsed"  # what file browsers leave in an empty folder does not count
    browsed.mkdir()
    (browsed / ".DS_Store").write_bytes(b"x")
    (browsed / "Thumbs.db").write_bytes(b"x")
    assert main(["evaluate", image, "-o", str(browsed), *args]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "-o", str(tmp_path / "r"), *args]) == 1
    assert "no image files found" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["evaluate", image, "-o", str(tmp_path / "r"), *args]) == 0
    assert main(["evaluate", image, "-o", str(tmp_path / "r"), *args]) == 0  # its own report folder: resumed


def test_train_refuses_what_would_not_train_without_a_traceback(tmp_path, capsys):
    image = _png(tmp_path / "a.png")
    (tmp_path / "afile").write_text("x")
    small = ["--width", "4", "--depth", "2", "--roi-size", "64", "--stages", "1", "-q", "--device", "cpu"]
    assert main(["train", image, "-o", str(tmp_path / "afile"), *small, "--epochs-gc", "1", "--epochs-joint", "0"]) == 2
    assert "error:" in capsys.readouterr().err  # was a NotADirectoryError traceback
    assert main(["train", image, "-o", str(tmp_path / "run"), *small, "--epochs-gc", "0", "--epochs-joint", "0"]) == 2
    assert "trains nothing" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "-o", str(tmp_path / "run2"), *small]) == 1
    assert "no image files found" in capsys.readouterr().err and not (tmp_path / "run2").exists()
    assert main(["train", str(tmp_path / "empty"), "-o", str(tmp_path / "new" / "run"), *small]) == 1
    assert "no image files found" in capsys.readouterr().err and not (tmp_path / "new").exists()
    missing, garbage = str(tmp_path / "missing.png"), tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    assert main(["train", missing, str(garbage), "-o", str(tmp_path / "run3"), *small]) == 2
    err = capsys.readouterr().err
    assert f"skipped: {missing}: no such file or folder" in err and "[Errno" not in err
    assert "no readable training image" in err


@pytest.mark.parametrize("command", ["enhance", "preprocess", "evaluate", "train"])
def test_a_mistyped_input_folder_is_nothing_found_before_any_output_folder(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = ["--methods", "identity", "--metrics", "entropy"] if command == "evaluate" else []
    extra += ["--device", "cpu"] if command in ("enhance", "train") else []
    assert main([command, "nosuchdir", "-o", "out", "-q", *extra]) == 1
    err = capsys.readouterr().err
    assert "error: nosuchdir: no such file or folder" in err and not (tmp_path / "out").exists()
    assert main([command, "nosuchdir", "nosuch.png", "-o", "out", "-q", *extra]) == 1  # every INPUT missing
    assert "no such file or folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()  # an existing folder without images: as before
    assert main([command, "empty", "-o", "out", "-q", *extra]) == 1
    assert "no image files found in empty" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main([command, "@nolist.txt", "-o", "out", "-q", *extra]) == 2  # a list that is not there: a bad argument
    err = capsys.readouterr().err
    assert "error: @nolist.txt: the input list file nolist.txt does not exist" in err and "Errno" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["enhance", "preprocess", "evaluate", "train"])
def test_a_mistyped_input_is_said_before_torch_loads(command, tmp_path, capsys, monkeypatch):
    """Torch was loaded first (seconds; more on a busy node) before a missing input was said."""
    monkeypatch.chdir(tmp_path)
    loaded = []
    monkeypatch.setattr("xvertfast.cli._load_torch", lambda: loaded.append(command))
    assert main([command, "nosuchdir", "-o", "out", "-q"]) == 1
    assert "error: nosuchdir: no such file or folder" in capsys.readouterr().err
    assert main([command, "@nolist.txt", "-o", "out", "-q"]) == 2
    assert "error: @nolist.txt: the input list file nolist.txt does not exist" in capsys.readouterr().err
    assert not loaded and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["enhance", "preprocess", "evaluate", "train"])
def test_an_input_list_that_names_no_file_is_said_so(command, tmp_path, capsys, monkeypatch):
    """An empty @list (or one of blank lines and comments alone: a find that found nothing, a
    script's list left unwritten) said "no image files found in @list.txt", as if the files it named
    were not images."""
    monkeypatch.chdir(tmp_path)
    extra = ["--methods", "identity", "--metrics", "entropy"] if command == "evaluate" else []
    extra += ["--device", "cpu"] if command in ("enhance", "train") else []
    (tmp_path / "empty").mkdir()
    (tmp_path / "none.txt").write_text("")
    (tmp_path / "notes.txt").write_text("# the scans of 2026-12-06\n\n   \n")
    why = "empty or holds only blank lines and # comments (a list gives image files or folders, one a line)"
    assert main([command, "@none.txt", "-o", "out", "-q", *extra]) == 1
    assert f"error: @none.txt names no file: it is {why}" in capsys.readouterr().err
    assert main([command, "@none.txt", "@notes.txt", "-o", "out", "-q", *extra]) == 1
    assert f"error: @none.txt, @notes.txt name no file: each is {why}" in capsys.readouterr().err
    assert main([command, "empty", "@notes.txt", "-o", "out", "-q", *extra]) == 1
    assert (f"error: no image files found in empty, @notes.txt (PNG, TIFF, JPEG, DICOM, JSRT .IMG); @notes.txt names "
            f"no file: it is {why}") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["enhance", "a.png"], ["preprocess", "a.png"], ["evaluate", "a.png"],
                                  ["train", "a.png"], ["export", "default"], ["demo"]])  # fmt: skip
def test_an_empty_output_folder_is_a_usage_error_naming_the_option(argv, tmp_path, capsys, monkeypatch):
    # -o "" (an unset shell variable) read "cannot write into the run folder : No such file or directory"
    # (train), after the images were searched for; now one rule, as argparse says any bad option
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "-o", ""])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"xvertfast {argv[0]}: error: argument -o/--output: is empty: give the folder to write into" in err, err
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(image)]  # nothing written


@pytest.mark.parametrize("argv", [["enhance", "a.png"], ["preprocess", "a.png"], ["evaluate", "a.png"],
                                  ["train", "a.png"], ["export", "default"], ["demo"]])  # fmt: skip
def test_a_new_output_folder_named_like_an_image_file_is_a_usage_error(argv, tmp_path, capsys, monkeypatch):
    """`enhance a.png -o result.png` (-o taken for the output file) enhanced into a new folder named
    result.png, holding result.png/a.png, without a word; a folder of that name made first is taken.
    main runs enhance and preprocess whole (quick); the other four are parsed only (the check is -o's
    argparse type), so without it the test fails at once instead of training, evaluating, exporting."""
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    run = main if argv[0] in ("enhance", "preprocess") else build_parser().parse_args
    with pytest.raises(SystemExit) as stopped:
        run([*argv, "-o", "result.PNG"])
    assert stopped.value.code == 2
    assert (f"xvertfast {argv[0]}: error: argument -o/--output: result.PNG would be a new folder named like an "
            "image file: -o names the folder the outputs are written into, each named after its input, not an "
            "output file; give a folder (-o result), or make the folder first to use this name"
            ) in capsys.readouterr().err  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(image)]  # nothing written
    parse = build_parser().parse_args
    for taken in ("result", "result.v2", "results/", ".png"):  # (no image extension; a hidden folder)
        assert parse([*argv, "-o", taken]).output == taken
    (tmp_path / "scans.dcm").mkdir()
    assert parse([*argv, "-o", "scans.dcm"]).output == "scans.dcm"


def test_a_model_path_that_does_not_exist_is_no_such_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    said = "nosuchmodel: no such folder (a model is a directory from `xvertfast train`"
    # the option is named where one gave the path (enhance and demo said only "error: nosuchmodel: ...")
    for argv, option in ((["enhance", image, "-o", "out", "-q", "--device", "cpu", "--model", "nosuchmodel"], "--model: "),
                         (["demo", "-o", "out", "--device", "cpu", "--model", "nosuchmodel"], "--model: "),
                         (["export", "nosuchmodel", "-o", "out"], ""),
                         (["train", image, "-o", "out", "-q", "--device", "cpu", "--init", "nosuchmodel"], "--init: ")):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"error: {option}{said}") and "no config.json" not in err, argv
        assert not (tmp_path / "out").exists()
    (tmp_path / "notamodel").mkdir()  # a folder that is there but holds no model: said as before
    assert main(["export", "notamodel", "-o", "out"]) == 2
    assert "notamodel: not an xvertfast model directory (no config.json)" in capsys.readouterr().err


@pytest.mark.parametrize("lr", ["inf", "nan", "1e38", "3.5e37", "0", "-1e-3", "1e-40"])
def test_train_refuses_a_learning_rate_float32_weights_cannot_take(lr, tmp_path, capsys):
    """--lr inf trained and diverged with the advice "--lr inf (a tenth of it)"; 1e38 overflowed in
    Adam's first step (lr / (1 - beta1)) with a bare RuntimeError."""
    image = _png(tmp_path / "a.png")
    small = ["--width", "4", "--depth", "2", "--roi-size", "64", "--stages", "1", "-q", "--device", "cpu",
             "--epochs-gc", "1", "--epochs-joint", "0"]  # fmt: skip
    assert main(["train", image, "-o", str(tmp_path / "run"), *small, f"--lr={lr}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --lr must be a finite number from 1.2e-38 to 3.4e+37") and "got" in err
    assert not (tmp_path / "run").exists()


def test_an_input_missing_from_the_roi_file_names_the_roi_file(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    _png(src / "b.png", seed=1)
    rois = tmp_path / "centres.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,60,100,140,100\n")
    args = ["--methods", "identity", "--metrics", "entropy", "--pictures", "0", "-q", "--rois", str(rois)]
    assert main(["evaluate", str(src), "-o", str(tmp_path / "r"), *args]) == 1  # b.png failed, a.png scored
    err = capsys.readouterr().err
    assert f"b.png: no ROI centres for this file in the ROI file {rois}" in err, err
    assert "a.png" not in err
    rois.write_text("a.png,60,100,140,100\n")  # no header row: its first row was taken for one
    assert main(["evaluate", str(src), "-o", str(tmp_path / "r2"), *args]) == 2
    assert "named in a header row (its first line is 'a.png,60,100,140,100')" in capsys.readouterr().err
    assert "header row" in " ".join(subcommands()["evaluate"].format_help().split())


def test_export_leaves_files_it_finds_alone_without_overwrite(tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from xvertfast.model import XVertNet, XVertNetStage, save_model

    # two stages as small as they come: the shipped model's export took twice as long, for nothing checked here
    model = str(save_model(XVertNet([XVertNetStage(2, 1), XVertNetStage(2, 1)]).eval(), tmp_path / "model"))
    out = tmp_path / "x"
    out.mkdir()
    (out / "stage1.onnx").write_text("my precious")
    assert main(["export", model, "-o", str(out)]) == 2
    assert "already holds stage1.onnx: add --overwrite (overwrite=True in Python)" in capsys.readouterr().err
    assert (out / "stage1.onnx").read_text() == "my precious" and not (out / "stage2.onnx").exists()
    other = tmp_path / "y"
    other.mkdir()
    (other / "stage3.onnx").write_text("mine too")  # a 2-stage export would remove a deeper model's stage3
    assert main(["export", model, "-o", str(other)]) == 2
    assert "already holds stage3.onnx" in capsys.readouterr().err and (other / "stage3.onnx").exists()
    assert main(["export", model, "-o", str(out), "--overwrite"]) == 0
    assert (out / "stage1.onnx").read_bytes() != b"my precious"


def test_train_workers_is_threads_by_its_old_name(capsys):
    assert build_parser().parse_args(["train", "x", "-o", "y", "--workers", "2"]).threads == 2
    assert "train --workers is now --threads" in capsys.readouterr().err
    assert build_parser().parse_args(["train", "x", "-o", "y", "--threads", "3"]).threads == 3
    assert "now --threads" not in capsys.readouterr().err


def test_output_into_a_pipe_closed_early_ends_without_a_traceback():
    # `xvertfast info | head -3`: the reader stops before everything is written
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "xvertfast", "info"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_help_examples_name_a_model_folder_not_a_run_folder():
    """A trained model is RUN_DIR/model; evaluate's example `mine:xvertnet=runs/mine` (a run folder)
    is refused when followed ("did you mean runs/mine/model")."""
    for name, parser in subcommands().items():
        for path in re.findall(r"xvertnet=([\w./-]+)", parser.format_help()):
            assert path == "MODEL_DIR" or path.endswith("/model"), f"xvertfast {name} --help: xvertnet={path}"


def test_enhance_help_sets_the_format_paragraph_apart_from_the_exit_codes():
    text = subcommands()["enhance"].format_help()
    assert "\n\n--format same keeps each input's kind" in text  # it ran on from "130 interrupted."


def test_enhance_help_says_where_a_file_named_on_the_command_line_goes():
    """`enhance a/x.png b/x.png` writes OUT/x.png once and fails the second; the help said only
    "mirroring the input folders"."""
    assert "a file named on the command line goes to OUT_DIR/NAME" in " ".join(
        subcommands()["enhance"].format_help().split())


def test_enhance_help_says_report_and_preview_replace_a_file_there(tmp_path, monkeypatch):
    """Unlike the outputs in OUT, --report and --preview are rewritten on every run (the same
    command resumes), so a file already at that path is replaced: the help must say so."""
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    (tmp_path / "notes.json").write_text("my own notes")
    assert main(["enhance", image, "-o", "out", "-q", "--device", "cpu", "--report", "notes.json"]) == 0
    assert (tmp_path / "notes.json").read_text() != "my own notes"  # what the help must warn of
    said = " ".join(subcommands()["enhance"].format_help().split())
    assert "to this JSON file, replacing a file there" in said and "into this PNG (replacing a file there)" in said


def test_enhance_help_says_overwrite_with_a_new_format_replaces_the_old_files(tmp_path, monkeypatch):
    """`--overwrite --format tiff` after a PNG job replaces the .png outputs with .tiff ones (they
    stayed beside them, and `evaluate outputs=OUT` found two outputs for one input): the help says so."""
    monkeypatch.chdir(tmp_path)
    image = _png(tmp_path / "a.png")
    args = ["enhance", image, "-o", "out", "-q", "--device", "cpu"]
    assert main(args) == 0
    assert main([*args, "--format", "tiff", "--overwrite"]) == 0
    assert "a.tiff" in os.listdir("out") and "a.png" not in os.listdir("out")
    said = " ".join(subcommands()["enhance"].format_help().split())
    assert "after a change of --format each new output replaces the input's earlier one" in said


def test_enhance_with_the_compile_backend_says_the_first_batch_waits(tmp_path, monkeypatch, capsys):
    # the bar sat at 0% for a minute with nothing said; then the note said "about half a minute",
    # where a user's first compile on a busy core took 69 s (81 s here, one thread, one NIH image)
    from xvertfast import infer

    class Stop(Exception):
        pass

    def no_model(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(infer, "Enhancer", no_model)
    image = _png(tmp_path / "a.png")
    for backend, said in (("compile", True), ("torch", False)):
        with pytest.raises(Stop):
            main(["enhance", image, "-o", str(tmp_path / "out"), "--backend", backend, "-q"])
        err = capsys.readouterr().err
        assert ("torch.compile compiles the stages on the first batch" in err) is said
        assert ("on a CPU a minute or more" in err) is said and "about half a minute" not in err


def test_sigterm_stops_a_command_as_ctrl_c_does_and_main_puts_the_handler_back(monkeypatch, capsys):
    import signal

    from xvertfast import cli

    before = signal.getsignal(signal.SIGTERM)

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread before kill returns
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(cli, "_cmd_info", terminated)
    assert cli.main(["info"]) == 143
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before
    monkeypatch.setattr(cli, "_cmd_info", lambda args: 130)  # a command's own 130 without a SIGTERM stays 130
    assert cli.main(["info"]) == 130


@pytest.mark.parametrize("stderr", ["a log", "a pipe whose reader died"])
def test_a_disks_eio_during_a_stop_with_a_terminal_hung_up_is_said_on_the_log(monkeypatch, capsys, stderr):
    """An EIO during a SIGTERM's stop with a terminal hung up was taken for that terminal's and said
    nothing: a disk's EIO then (stdout on the closed terminal, stderr on a log file) left the log
    without a word of it, exit 143. main now says "interrupted (then OSError: ...)" there too
    (lost on the terminal, which is then the null device), exit 143 still. Where stderr is a pipe
    whose reader died of the same SIGHUP (`2> >(tee err.log >&2)`), saying it raised
    BrokenPipeError: a traceback and exit 1; the line is lost there, exit 143."""
    import errno
    import signal

    from xvertfast import cli

    if stderr != "a log":
        read_end, write_end = os.pipe()
        os.close(read_end)
        pipe = os.fdopen(write_end, "w", buffering=1)  # (line-buffered, as sys.stderr is)
        monkeypatch.setattr(sys, "stderr", pipe)

    sent = []
    monkeypatch.setattr(cli, "_terminals", lambda: [1])  # stdout a terminal ...
    monkeypatch.setattr(cli, "_hung_up", lambda fd, strict=False: True)  # ... that hung up
    monkeypatch.setattr(cli, "_to_the_null_device", sent.extend)

    def disk_fails_during_the_stop(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread before kill returns
        except KeyboardInterrupt:
            raise OSError(errno.EIO, "Input/output error", "out/a.png") from None
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(cli, "_cmd_info", disk_fails_during_the_stop)
    try:
        assert cli.main(["info"]) == 143
    finally:
        if stderr != "a log":
            with contextlib.suppress(BrokenPipeError):  # (the line its buffer still holds)
                pipe.close()
    if stderr == "a log":
        assert capsys.readouterr().err == "\ninterrupted (then OSError: [Errno 5] Input/output error: 'out/a.png')\n"
    assert sent and set(sent) == {1}


#: Where the EIO during a stop comes from, and what the log that stderr goes to then says of it.
TERMINAL_CLOSED = "the terminal closed: the lines printed there since are lost"
DISKS_EIO = "OSError: [Errno 5] Input/output error"


@pytest.mark.skipif(sys.platform == "win32", reason="no pty")
@pytest.mark.parametrize("whose, then", [
    ("the terminal's", TERMINAL_CLOSED),  # a line the CLI printed to it
    ("a disk's", DISKS_EIO),  # a write of the command's, naming no file, as a ledger's
    ("a disk's, read in cli.py", DISKS_EIO),  # (as demo's f.read() of its summary: no file named)
    ("a disk's, naming its file in cli.py", f"{DISKS_EIO}: 'summary.md'"),  # (as an open() there)
    ("the log's", DISKS_EIO),  # stderr no terminal, its write failing: the error line cli printed there
    ("the terminal's, around the bar", TERMINAL_CLOSED),  # stderr the terminal: a job's line around its bar
    ("the terminal's, a warning", TERMINAL_CLOSED),  # (a warning is written around the bar too)
])  # fmt: skip
def test_an_eio_during_a_stop_says_whether_it_was_the_terminal_closing_or_a_disk(monkeypatch, capsys, whose, then):
    """`xvertfast info --json 2>err.log`, stopped by SIGTERM, its terminal closing as the stop prints
    to it: err.log said "interrupted (then OSError: [Errno 5] Input/output error)", as for a disk
    failing then. The terminal's own EIO (a line the CLI printed there) is now said as the terminal
    closing; any other (a disk's, one cli.py met reading a file, a log's on stderr failing as the CLI
    printed to it) still as the OSError: cb9fbcb took every EIO raised in cli.py naming no file
    for the terminal's, and a line written around the progress bar (tqdm.write: raised in tqdm's
    code) for a disk's. (With stderr the terminal the line is lost there; it is read here on a log.)"""
    import errno
    import pty
    import signal
    import warnings

    import xvertfast.info
    from xvertfast import cli

    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", buffering=1)  # (line-buffered, as sys.stdout on a terminal is)
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(cli, "_hung_up", lambda fd, strict=False: True)  # (poll's POLLHUP, as Linux says it)
    failing, log = None, sys.stderr
    if whose.startswith("the terminal's, "):  # stderr the terminal too, as a job's progress bar is shown
        monkeypatch.setattr(sys, "stderr", terminal)
    if whose == "the log's":  # a real write's EIO on stderr, a pty whose other end is closed, taken for no terminal
        log_master, log_slave = pty.openpty()
        failing = os.fdopen(log_slave, "w", buffering=1)
        monkeypatch.setattr(sys, "stderr", failing)
        monkeypatch.setattr(cli, "_terminals", lambda: [terminal.fileno()])
        os.close(log_master)
    if sys.stderr is not log:
        say = cli._say_interrupted

        def said_on_a_log_that_works(*args, **kwargs):  # (the failing one, or the terminal, would lose it)
            monkeypatch.setattr(sys, "stderr", log)
            return say(*args, **kwargs)

        monkeypatch.setattr(cli, "_say_interrupted", said_on_a_log_that_works)

    def in_cli(code: str) -> None:  # raised by a line of cli.py's own (its frame's file is cli.py)
        exec(compile(code, cli.__file__, "exec"), {"errno": errno})

    def stopped(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (the main) thread before kill returns
        except KeyboardInterrupt:  # a job stops so, then prints its summary
            os.close(master)  # the terminal closes meanwhile: a write to it fails with EIO
            if whose == "a disk's":
                raise OSError(errno.EIO, "Input/output error") from None
            if whose == "a disk's, read in cli.py":
                in_cli("raise OSError(errno.EIO, 'Input/output error')")
            if whose == "a disk's, naming its file in cli.py":
                in_cli("raise OSError(errno.EIO, 'Input/output error', 'summary.md')")
            if whose == "the log's":  # a callee that swallowed the SIGTERM, its error said on stderr
                cli._nothing_found(ValueError("no images found"))
            if whose == "the terminal's, around the bar":  # a job's error line for an image
                cli._say_around_the_bar("error: in/a.png: not an image")
            if whose == "the terminal's, a warning":
                warnings.warn("in/a.png: 16-bit, read as 12", UserWarning)
            return {"summary": "stopped"}
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(xvertfast.info, "collect", stopped)
    try:
        assert cli.main(["info", "--json"]) == 143
    finally:
        for stream in (terminal, failing):
            with contextlib.suppress(OSError, AttributeError):
                stream.close()
    assert capsys.readouterr().err == f"\ninterrupted (then {then})\n"


def test_an_eio_during_a_stop_is_the_terminal_lost_only_where_poll_says_it_hung_up(monkeypatch):
    """macOS's poll answers POLLNVAL for any terminal, open or not, which _hung_up counted as gone: a
    disk's EIO during a stop was then taken for the terminal lost, said nowhere. With no SIGHUP to
    say so, only POLLHUP or POLLERR count (no poll, or poll failing, neither); after a SIGHUP, as before,
    POLLNVAL and a poll that cannot tell count as gone."""
    import errno
    import select
    import signal

    from xvertfast import cli

    class Poll:  # the answer macOS gives for a terminal, open or closed
        answer = select.POLLNVAL

        def register(self, fd, mask):
            self.fd = fd

        def poll(self, timeout):
            if self.answer is None:
                raise OSError(errno.EINVAL, "Invalid argument")
            return [(self.fd, self.answer)]

    sent = []
    monkeypatch.setattr(select, "poll", Poll)
    monkeypatch.setattr(cli, "_terminals", lambda: [1])
    monkeypatch.setattr(cli, "_to_the_null_device", sent.extend)
    terminated, restore, lost_terminal = cli._stop_on_signals()
    restore()
    terminated[0] = signal.SIGTERM  # a stop under way
    eio = OSError(errno.EIO, "Input/output error")
    for answer, gone in ((select.POLLNVAL, False), (None, False), (select.POLLHUP, True), (select.POLLERR, True)):
        Poll.answer = answer
        assert bool(lost_terminal(eio)) == gone, answer  # (alone first: 019f6b7's fix, where _hung_up had no strict)
        assert cli._hung_up(1, strict=True) == gone, answer
        assert cli._hung_up(1), answer  # (a SIGHUP's: anything but an open terminal's POLLOUT alone is gone)
    assert sent == [1, 1]  # (sent to the null device where it hung up, not otherwise)
    Poll.answer = select.POLLOUT
    assert not cli._hung_up(1) and not cli._hung_up(1, strict=True)
    monkeypatch.delattr(select, "poll")
    assert not lost_terminal(eio) and cli._hung_up(1)  # no poll here: only a SIGHUP takes it to be gone


HUNG_UP = """
import os, signal, sys
from xvertfast import cli
if sys.argv[1] == "nohup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
def hung_up(args):
    os.kill(os.getpid(), signal.SIGHUP)  # delivered to this (the main) thread before kill returns
    print("went on", file=sys.stderr)
    return 0
cli._cmd_info = hung_up
sys.exit(cli.main(["info"]))
"""


@pytest.mark.parametrize("how, code, said", [("plain", 129, "\ninterrupted\n"), ("nohup", 0, "went on\n")])
def test_sighup_stops_a_command_as_sigterm_does_and_nohup_still_keeps_it_going(how, code, said):
    """SIGHUP (a terminal closed, an SSH session dropped without nohup) killed any command at once: a
    training run unrecorded (status said it was killed), a batch job without its summary. It stops
    one as SIGTERM does now, exit code 129; under nohup (SIGHUP ignored) the command goes on."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", HUNG_UP, how], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (code, said), done.stderr


HUNG_UP_INTO_TEE = """
import os, signal, sys
from xvertfast import cli
def stopped_then_summarised(args):
    try:
        os.kill(os.getpid(), signal.SIGHUP)  # delivered to this (the main) thread before kill returns
    except KeyboardInterrupt:  # a batch job stops so, then writes its summary into the pipe
        while True:
            print("summary", flush=True)
cli._cmd_info = stopped_then_summarised
sys.exit(cli.main(["info"]))
"""


def test_a_command_hung_up_whose_pipe_reader_died_too_exits_129():
    """`xvertfast enhance ... | tee log` with the terminal closed: tee dies of the same SIGHUP, the
    job's summary then finds no reader (BrokenPipeError), and the job exited 1, not 129."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HUNG_UP_INTO_TEE], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # tee, gone with the terminal
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 129, err
    assert "Traceback" not in err, err


ON_A_TERMINAL = """
import fcntl, os, sys, termios, time
own, when, stop = sys.argv[1:]
if own == "own":  # its own session's terminal: closing it sends this process SIGHUP
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
from xvertfast import cli
def on_the_null_device(fd):
    return os.path.samestat(os.fstat(fd), os.stat(os.devnull))
def waits_for_the_signal(args):
    try:
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    except KeyboardInterrupt:  # a batch job stops so, then writes its summary
        if when == "during the stop":  # the terminal closes now (its own: a second SIGHUP says so)
            print("stopping", flush=True)
            deadline = time.monotonic() + 10  # (its own: poll may say hung up before the SIGHUP comes)
            while not (own != "own" and cli._hung_up(1) or on_the_null_device(1)) and time.monotonic() < deadline:
                time.sleep(0.01)
            if own == "own" and not on_the_null_device(1):  # the second SIGHUP left it on the closed terminal
                return 3
        if stop == "raise":  # (main says "interrupted")
            raise
        print("summary", flush=True)
        return 130
cli._cmd_info = waits_for_the_signal
sys.exit(cli.main(["info"]))
"""


def _stopped_on_a_terminal(own: str, stop: str, sig: int | None, close_after: bytes | None) -> tuple[int, bytes]:
    """Runs ON_A_TERMINAL on a pty (``own``: as its session's terminal), sends it ``sig`` once ready
    (None: none), closes the terminal once ``close_after`` is read (None: once the child is done, or
    at once where no signal is sent): its exit code and what the terminal showed."""
    import contextlib
    import pty
    import select
    import subprocess

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", ON_A_TERMINAL, own,
                             "during the stop" if close_after else "at the end", stop], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        while b"ready" not in seen and select.select([master], [], [], 120)[0]:
            seen += os.read(master, 4096)
        assert b"ready" in seen, seen
        if sig is not None:
            proc.send_signal(sig)
            with contextlib.suppress(OSError):  # (EIO once the child has exited and the terminal is gone)
                while (close_after is None or close_after not in seen) and select.select([master], [], [], 120)[0]:
                    if not (chunk := os.read(master, 4096)):
                        break
                    seen += chunk
    finally:
        os.close(master)  # the terminal hangs up; where it is the child's session's, the child gets SIGHUP
    return proc.wait(timeout=120), seen


@pytest.mark.parametrize("terminal", [pytest.param("open", marks=pytest.mark.skipif(
    sys.platform != "linux", reason="poll says an open terminal is one on Linux (macOS: POLLNVAL)")),
    "closed"])  # fmt: skip
def test_a_sighup_sent_by_hand_leaves_the_summary_on_the_terminal_and_one_that_closed_it_still_exits_129(terminal):
    """After any SIGHUP the CLI sent stdout and stderr, where a terminal, to the null device: with
    `kill -HUP` sent by hand the terminal was still open and the stop's summary was lost. Now only a
    terminal that hung up loses them; closed, the command still exits 129 (its writes there would fail
    with EIO: a traceback, exit 1)."""
    import signal

    code, seen = _stopped_on_a_terminal("own", "summary", signal.SIGHUP if terminal == "open" else None, None)
    assert code == 129, seen
    if terminal == "open":
        assert b"summary" in seen and b"Traceback" not in seen, seen


def test_a_terminal_closed_after_a_sighup_that_found_it_open_goes_to_the_null_device_on_the_second_sighup():
    """The session's terminal closing during the stop of a `kill -HUP` sent by hand sends a second
    SIGHUP; the handler took it for a repeat and returned before anything else, leaving stdout on the
    closed terminal, where the summary's print failed (EIO). Each SIGHUP now sends a terminal that
    hung up to the null device."""
    import signal

    code, seen = _stopped_on_a_terminal("own", "summary", signal.SIGHUP, b"stopping")
    assert code == 129, seen  # (3: stdout left on the closed terminal)


@pytest.mark.parametrize("sig, stop", [("SIGHUP", "summary"), ("SIGHUP", "raise"), ("SIGTERM", "summary")])
def test_a_terminal_that_closes_during_the_stop_loses_its_lines_and_the_command_still_exits_128_plus_the_signal(
        sig, stop):  # fmt: skip
    """A SIGHUP that found the terminal open (the shell's to its jobs as it exits with huponexit, a
    window's before it closes the pty), or a SIGTERM, then the terminal closing with no second SIGHUP
    to say so: the summary's print (or main's "interrupted" line) failed with EIO, a traceback and
    exit 1. Now those lines are lost (the terminal is gone) and the exit code is 129 (143)."""
    import signal

    if not hasattr(signal, sig):
        pytest.skip(f"no {sig} here")
    if sys.platform != "linux":  # (with no SIGHUP to say so, only poll's POLLHUP tells it closed)
        pytest.skip("poll says a closed terminal hung up on Linux (macOS: POLLNVAL, open or closed)")
    code, seen = _stopped_on_a_terminal("not its own", stop, getattr(signal, sig), b"stopping")
    assert code == 128 + getattr(signal, sig), seen


def _wrapped_interrupt(*args, **kwargs):
    """What Python 3.11 raises where a Ctrl-C lands in an import's class creation (torch's, mid-job)."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling __set_name__ on 'cached_property' instance 'x' of 'Y'") from exc


def test_an_interrupt_wrapped_in_another_error_is_an_interruption_in_every_command(tmp_path, monkeypatch, capsys):
    """A command's handler of RuntimeError took such an error for its failure (exit 2, "error: ...");
    one no handler caught gave a traceback."""
    import xvertfast.eval.evaluate as evaluate_module
    import xvertfast.pipeline.preprocess_files as preprocess_module
    from xvertfast import cli

    image = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(image)
    monkeypatch.setattr(preprocess_module, "preprocess_files", _wrapped_interrupt)
    assert main(["preprocess", str(image), "-o", str(tmp_path / "pre"), "-q"]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"
    monkeypatch.setattr(evaluate_module, "evaluate", _wrapped_interrupt)
    assert main(["evaluate", str(image), "-o", str(tmp_path / "report"), "-q"]) == 130
    assert "interrupted: the images scored so far are kept" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_cmd_info", _wrapped_interrupt)  # no handler of its own
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"


def _disk_full_as_interrupted(*args, **kwargs):
    """A ledger write failing with the disk full in a job's handler of Ctrl-C."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        full = OSError(28, "No space left on device", "ledger.json")
        if kwargs.get("hidden"):
            raise full from None
        raise full


def test_an_error_an_interruption_raised_is_said_after_interrupted(tmp_path, monkeypatch, capsys):
    """The error (its first line) was lost: a bare "interrupted". One raised ``from None``, its
    interrupt hidden by its raiser, is the job's error, not an interruption."""
    import xvertfast.eval.evaluate as evaluate_module
    import xvertfast.pipeline.preprocess_files as preprocess_module
    from xvertfast import cli

    then = " (then OSError: [Errno 28] No space left on device: 'ledger.json')"
    image = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(image)
    monkeypatch.setattr(preprocess_module, "preprocess_files", _disk_full_as_interrupted)
    assert main(["preprocess", str(image), "-o", str(tmp_path / "pre"), "-q"]) == 130
    assert capsys.readouterr().err == f"\ninterrupted{then}\n"
    monkeypatch.setattr(evaluate_module, "evaluate", _disk_full_as_interrupted)
    assert main(["evaluate", str(image), "-o", str(tmp_path / "report"), "-q"]) == 130
    assert f"interrupted{then}: the images scored so far are kept" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_cmd_info", _disk_full_as_interrupted)  # no handler of its own
    assert main(["info"]) == 130
    assert capsys.readouterr().err == f"\ninterrupted{then}\n"
    monkeypatch.setattr(cli, "_cmd_info", lambda args: _disk_full_as_interrupted(hidden=True))
    with pytest.raises(OSError, match="No space left"):
        main(["info"])


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_hang_as_the_command_s_process_exits_is_still_stopped_by_ctrl_c_and_sigterm(signame):
    """The process ignored both signals once it exited (an atexit callback of the CLI's), so a hang in
    a library's teardown after it (torch, CUDA: the callbacks registered before it) could only be
    ended by kill -9. The last atexit callback here stands for one; either signal ends it now."""
    import signal
    import subprocess
    import sys

    child = """
import atexit, sys, time
def teardown_that_hangs():
    print("hanging", flush=True)
    time.sleep(60)
atexit.register(teardown_that_hangs)
from xvertfast import cli
cli._cmd_info = lambda args: 0
sys.argv = ["xvertfast", "info"]
sys.exit(cli.main())
"""
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "hanging\n"
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.communicate()


def test_a_sigterm_handler_set_outside_python_or_ignored_is_left_alone(monkeypatch):
    """A SIGTERM handled outside Python (getsignal None: a host program's C handler) was replaced
    for the command and then set to the default, which kills the host on its next SIGTERM; one
    ignored was made to stop the command. Both are left as they are, as the wait that ends a
    batch job leaves them (xvertfast._interrupts)."""
    import signal

    from xvertfast import cli

    def host_handler(signum, frame):
        raise AssertionError("not called here")

    before = signal.signal(signal.SIGTERM, host_handler)  # stands for the C handler getsignal cannot name
    real_getsignal = signal.getsignal
    monkeypatch.setattr(signal, "getsignal", lambda sig: None if sig == signal.SIGTERM else real_getsignal(sig))
    during = []
    monkeypatch.setattr(cli, "_cmd_info", lambda args: during.append(real_getsignal(signal.SIGTERM)) or 0)
    try:
        assert cli.main(["info"]) == 0
        assert during == [host_handler] and real_getsignal(signal.SIGTERM) is host_handler
        monkeypatch.setattr(signal, "getsignal", real_getsignal)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        assert cli.main(["info"]) == 0
        assert during[1] is signal.SIG_IGN and real_getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.parametrize("command, times", [("enhance", 1), ("preprocess", 1), ("train", 1), ("evaluate", 1),
                                            ("export", 1), ("demo", 1), ("enhance", 2)])  # fmt: skip
def test_a_sigterm_while_torch_loads_stops_the_job_after_it_loaded(tmp_path, command, times):
    """A SIGTERM (or Ctrl-C) raised inside torch's import, seconds long, left torch half made: the
    job went on and every image failed ('maximum recursion depth exceeded', exit 1, the ledger
    said finished), or Python ended by SIGINT after saying interrupted. It is held until torch
    and the ops are loaded, then stops the job before it begins: 143, no output folder."""
    import subprocess
    import sys

    image = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(image)
    out = tmp_path / "out"
    argv = {"enhance": ["enhance", str(image), "-o", str(out), "-q"],
            "preprocess": ["preprocess", str(image), "-o", str(out), "-q"],
            "train": ["train", str(image), "-o", str(out), "--epochs-gc", "1", "--epochs-joint", "0"],
            "evaluate": ["evaluate", str(image), "-o", str(out), "--methods", "identity", "--metrics", "entropy"],
            "export": ["export", "default", "-o", str(out)],
            "demo": ["demo", "-o", str(out)]}[command]  # fmt: skip
    child = f"""
import atexit, os, signal, sys
class SigtermInsideTorch:  # as torch's import reaches a module deep inside it
    def find_spec(self, name, path=None, target=None):
        if name == "torch._subclasses.fake_tensor":
            sys.meta_path.remove(self)
            for sig in (signal.SIGTERM, signal.SIGINT)[:{times}]:  # (two of one kind may merge into one)
                os.kill(os.getpid(), sig)
sys.meta_path.insert(0, SigtermInsideTorch())
atexit.register(lambda: print("torch loaded:", "torch._subclasses.fake_tensor" in sys.modules))
from xvertfast.cli import main
sys.exit(main({argv!r}))
"""
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    # a second one is said as what it waits for (it said 'the outputs in flight are being finished')
    said = ["already stopping: once torch has loaded (seconds), before anything is written"] if times == 2 else []
    lines = [line for line in proc.stderr.splitlines() if line]
    # (train says that its run had not started: a Ctrl-C in a run's folder gives the --resume hint)
    stopped = "interrupted: the run had not started; nothing was written" if command == "train" else "interrupted"
    assert "torch loaded: True" in proc.stdout and lines == [*said, stopped]
    assert not out.exists()


@pytest.mark.parametrize("how", ["xvertfast", "python -m xvertfast"])
def test_the_command_exits_143_after_a_sigterm_that_stopped_code_run_by_exec(tmp_path, how):
    """CPython 3.11 marks a KeyboardInterrupt that leaves an exec() of a string (dataclass and
    namedtuple methods, made as a module is imported) as unhandled, even once caught, and
    ``python -m`` then ends by SIGINT after the command returned: a SIGTERM landing in such an
    import mid-job exited -2 (a shell's 130), not the 143 `--help` gives.
    The "python -m xvertfast" row checks __main__.run's exec("") reset of that mark: without it,
    it fails. The "xvertfast" row (the script pip writes, built here from pyproject's line: the
    venv's may be stale) checks that the command runs the same entry point and exits 143: it
    cannot check the reset, the script ending in sys.exit(), whose SystemExit ends Python before
    the mark is read."""
    import subprocess
    import sys

    from tests.test_cli_entry import _console_script

    (tmp_path / "sitecustomize.py").write_text(
        "import xvertfast.cli as cli\n"
        "def info(args):  # a SIGTERM while a module imported now makes a dataclass\n"
        "    exec('import os, signal; os.kill(os.getpid(), signal.SIGTERM)')\n"
        "cli._cmd_info = info\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-c", _console_script()] if how == "xvertfast" else [sys.executable, "-m", "xvertfast"]
    proc = subprocess.run([*argv, "info"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip() == "interrupted"


def test_a_repeated_sigterm_does_not_cut_the_first_ones_stop_short(monkeypatch):
    import signal

    from xvertfast import cli

    stopped_cleanly = []

    def command(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:  # the job's own stop: finishing the outputs in flight, say
            os.kill(os.getpid(), signal.SIGTERM)  # the scheduler again (SIGKILL would follow its grace period)
            stopped_cleanly.append(True)
            return 130
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(cli, "_cmd_info", command)
    assert cli.main(["info"]) == 143 and stopped_cleanly == [True]


def test_durations_read_in_the_unit_people_use():
    # a dry run over a large archive said "120.5 h"; status's ages and the estimates now share one rule
    from xvertfast.cli import _ago, _duration

    assert _duration(45) == "45 s" and _duration(600) == "10 min" and _duration(5 * 3600) == "5.0 h"
    assert _duration(120.5 * 3600) == "5.0 days" and _ago(3 * 86400) == "3.0 days ago" and _ago(-5) == "0 s ago"
    # a small model's epochs of 0.025 s: "about 1 s at 0 s an epoch"
    assert _duration(0.025) == "0.025 s" and _duration(0.5) == "0.5 s" and _duration(0.004) == "under 0.01 s"
    assert _duration(0) == "0 s" and _duration(1.4) == "1 s" and _ago(0.3) == "0 s ago"


def test_info_help_names_every_optional_package_info_reports():
    """`xvertfast info --help` lists the optional packages whose import `info` reports."""
    from xvertfast.info import OPTIONAL

    said = " ".join(subcommands()["info"].format_help().split())
    names = {"skimage": "scikit-image"}
    assert [p for p in OPTIONAL if names.get(p, p) not in re.findall(r"[\w-]+", said)] == []


def test_enhance_help_says_outputs_are_bone_bright_whatever_the_input_stored(tmp_path, monkeypatch):
    """--format same keeps an input's kind, not its polarity: a PNG listed as MONOCHROME1 (bone
    dark) comes back bone bright, its stored values inverted, as a MONOCHROME1 DICOM comes back
    MONOCHROME2. The help said only "keeps each input's kind"."""
    monkeypatch.chdir(tmp_path)
    bright = np.asarray(Image.open(_png(tmp_path / "bright.png")), dtype=float)
    Image.fromarray((255 - bright).astype(np.uint8)).save("dark.png")
    (tmp_path / "list.txt").write_text("dark.png\tMONOCHROME1\n")
    assert main(["enhance", "@list.txt", "-o", "out", "-q", "--device", "cpu"]) == 0
    out = np.asarray(Image.open("out/dark.png"), dtype=float)
    assert np.corrcoef(out[:, :30].ravel(), bright[:, :30].ravel())[0, 1] > 0.99  # outside the spine tiles
    said = " ".join(subcommands()["enhance"].format_help().split())
    assert "bone bright (MONOCHROME2) whatever the input's polarity" in said


def test_an_at_list_of_whole_paths_runs_from_a_folder_that_was_deleted(tmp_path, monkeypatch, capsys):
    """An @list counts as relative (its lines may be), so the job's command line was recorded with
    os.getcwd(), unguarded: run from a deleted folder, `enhance @/abs/list.txt -o /abs/out` exited 2
    with "error: [Errno 2] No such file or directory", naming nothing. The folder is now unknown."""
    (tmp_path / "list.txt").write_text(_png(tmp_path / "a.png") + "\n")
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    os.rmdir(tmp_path / "gone")
    code = main(["enhance", f"@{tmp_path / 'list.txt'}", "-o", str(tmp_path / "out"), "-q", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").rglob("*.png")] == ["a.png"]  # (a listed whole path is mirrored)
    from xvertfast.io.job_folder import LEDGER_FILE, RUN, RUN_START

    lines = [json.loads(line) for line in (tmp_path / "out" / LEDGER_FILE).read_text().splitlines()]
    start = [line for line in lines if line.get(RUN) == RUN_START]
    assert len(start) == 1 and "enhance @" in start[0]["command"], lines
    assert start[0].get("cwd") is None, start  # the folder it started in: unknown (null, left out)


def test_evaluate_of_whole_paths_runs_from_a_folder_that_was_deleted(tmp_path, monkeypatch, capsys):
    """provenance.json's ``cwd`` was os.getcwd(), unguarded: run from a deleted folder, evaluate of
    whole paths scored the images, then exited 2 with "error: [Errno 2] No such file or directory",
    naming nothing. The folder is now unknown (null), as enhance's report says it."""
    image = _png(tmp_path / "a.png")
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    os.rmdir(tmp_path / "gone")
    out = tmp_path / "report"
    code = main(["evaluate", image, "-o", str(out), "--methods", "identity", "--metrics", "entropy", "-q"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "provenance.json").read_text())["cwd"] is None


def test_evaluate_with_a_relative_roi_file_records_its_folder_deleted_while_the_images_are_scored(
        tmp_path, monkeypatch, capsys):
    """provenance.json's ROI file (os.path.abspath of --rois) and ``cwd`` were read after the
    scoring: a relative --rois whose folder was deleted meanwhile scored the images, then exited 2
    naming nothing. Both are read as the run starts, and recorded as they were then."""
    import shutil

    import xvertfast.eval.evaluate as evaluate_module

    image = _png(tmp_path / "a.png")
    work = tmp_path / "work"
    work.mkdir()
    (work / "centres.csv").write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,60,100,140,100\n")
    monkeypatch.chdir(work)
    scoring = evaluate_module.run_protocol

    def deleting_the_folder_first(*args, **kwargs):
        shutil.rmtree(work)
        return scoring(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "run_protocol", deleting_the_folder_first)
    out = tmp_path / "report"
    code = main(["evaluate", image, "-o", str(out), "--methods", "identity", "--metrics", "entropy", "--pictures", "0",
                 "-q", "--rois", "centres.csv"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert not work.exists()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["cwd"] == str(work)
    assert provenance["rois"] == {"source": "file", "file": str(work / "centres.csv"), "as_given": "centres.csv"}


def test_evaluate_help_says_what_each_metric_measures_and_which_way_is_better():
    """The help listed the metrics by their code names alone (tenengrad, lpc_si, tmqi): a reader
    of the report could not tell what a column measures nor whether higher is better."""
    said = " ".join(subcommands()["evaluate"].format_help().split())
    assert "higher is better, except brisque" in said
    for gloss in ("grey levels", "Sobel gradient", "sharpness", "tone-mapped image quality", "no-reference"):
        assert gloss in said, gloss


def test_status_help_states_the_rate_rule_that_status_applies():
    """The help said "finished a minute lately (over the last 100, back to a pause of over 10
    minutes)" after the rule had changed (at least 30 s too, the first batch left out, no rate from
    under 5 outputs): the help must give the numbers job_folder's rate uses."""
    from xvertfast.io.job_folder import RATE_MIN_OUTPUTS, RATE_MIN_SPAN_S, RATE_OUTPUTS, RATE_PAUSE_S

    said = " ".join(subcommands()["status"].format_help().split())
    assert f"at least its latest {RATE_OUTPUTS} outputs and {RATE_MIN_SPAN_S:.0f} s" in said
    assert f"not back past a pause of over {RATE_PAUSE_S / 60:.0f} minutes" in said
    assert "first batch is left out" in said
    assert f"under {RATE_MIN_OUTPUTS} outputs after it, or under {RATE_MIN_SPAN_S:.0f} s, give no rate" in said
    # a training run's phases as `status RUN_DIR` names them: structure loss alone, then joint
    assert "(structure loss alone, or joint," in said and "feature-loss or joint" not in said


def test_status_help_says_the_job_is_complete_once_every_shard_of_one_count_has_finished():
    """It said "not complete until every shard of one count has run": false where all ran and one
    stopped. Status counts the runs that finished."""
    said = " ".join(subcommands()["status"].format_help().split())
    assert ("Shards with no ledger here, of a count N that some shard ran with, are listed: the job is complete "
            "once every shard of one N, or a run without --shard, has finished.") in said  # fmt: skip
    assert "has run" not in said


def test_enhance_help_fits_an_80_column_screen(monkeypatch):
    """The --mode spine entry of its description ran to 81 and 83 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    wide = [line for line in subcommands()["enhance"].format_help().splitlines() if len(line) > 80]
    assert wide == []


@pytest.mark.parametrize("command", ["xvertfast", "preprocess", "enhance", "evaluate"])
def test_a_batch_command_s_help_ends_with_examples_that_parse_and_fit_80_columns(command, monkeypatch):
    """No --help gave an example of the command's commonest use: a new user read 60 lines of
    options to write `xvertfast enhance scans -o enhanced`, and `xvertfast --help` did not say
    where to start (`xvertfast demo`)."""
    import shlex

    monkeypatch.setenv("COLUMNS", "80")
    text = (build_parser() if command == "xvertfast" else subcommands()[command]).format_help()
    examples = text.split("\nExamples:\n")[1].splitlines()
    commands = [shlex.split(line.partition("#")[0]) for line in examples if line.startswith("  xvertfast ")]
    assert commands and [len(line) for line in examples if len(line) > 80] == []
    assert commands[0][1] == ("demo" if command == "xvertfast" else command)
    for words in commands:
        build_parser().parse_args(words[1:])  # (an unknown option or a bad value: SystemExit)


def test_enhance_precision_help_gives_a_line_to_each_choice_and_what_it_costs():
    """--precision's help was one 14-line paragraph with the CPU's and the GPU's cases run together;
    then it gave them a line each but sent the reader to "docs/guide/backends.md in the source",
    which a pip install has not: each choice now has its line, with what it gives and costs."""
    cases = {a.dest: a.help for a in subcommands()["enhance"]._actions}["precision"].split("\n")
    assert [case.split(":")[0] for case in cases[:4]] == ["auto", "fp32", "bf16", "fp16"]
    text = subcommands()["enhance"].format_help()
    lines = [line.strip() for line in text.splitlines()]
    for case in cases:  # each begins a line of the help shown, not run on after the one before
        assert any(line and case.startswith(line) for line in lines), case
    said = " ".join(text.split())
    for fact in ("torch and compile backends only", "about 1.2x (the WLS solves are not sped up)", "~1e-3",
                 "onnxruntime runs bf16 as fp32 and tensorrt as fp16", "fp32 runs without TF32", "fp16: GPUs only"):
        assert fact in said, fact


def test_precision_offers_the_precisions_the_backends_take():
    """enhance's and evaluate's --precision spell their choices in cli.py (infer.backends, which
    holds PRECISIONS, imports torch, which building the parser does not load), once since both
    spelled them apart: a precision added to PRECISIONS and not offered here fails this."""
    from xvertfast.cli import PRECISION_CHOICES
    from xvertfast.infer.backends import PRECISIONS

    assert PRECISION_CHOICES == ("auto", *PRECISIONS)
    for command in ("enhance", "evaluate"):
        assert {a.dest: a.choices for a in subcommands()[command]._actions}["precision"] == PRECISION_CHOICES


def test_no_help_sends_the_reader_to_a_file_a_pip_install_lacks():
    """enhance --precision said "More: docs/guide/backends.md in the source", --threads "the user
    guide, docs/guide/enhancing.md in the source", and --precision and train --amp cited
    bench/RESULTS.md: none of them is in the wheel (its package data is the model, its card and
    the sample). The help says what it means itself."""
    texts = {"xvertfast": build_parser().format_help(), **{n: p.format_help() for n, p in subcommands().items()}}
    outside = re.compile(r"\b(?:docs|bench|tests|tools|csrc)/|README|DESIGN\.md|RESULTS\.md|in the source")
    assert {name: outside.findall(" ".join(text.split())) for name, text in texts.items()
            if outside.search(" ".join(text.split()))} == {}  # fmt: skip


def test_train_help_says_workers_is_the_deprecated_name_of_threads():
    """train --workers is an old name of --threads (it warns), while enhance --workers means reader
    threads: the help said only "(--workers is the old name)"."""
    options = {a.dest: a.help for a in subcommands()["train"]._actions}
    assert "--workers: the deprecated old name of --threads" in " ".join(options["threads"].split())


def test_train_help_ties_the_epoch_options_to_early_stopping_and_the_loss_named_above():
    """The description speaks of the gradient-correlation loss and early stopping, the options of
    a "structure loss" and a bare "early-stopping patience": which epochs --patience counts, and
    that --epochs-joint is a most, were left to guess."""
    options = {a.dest: a.help for a in subcommands()["train"]._actions}
    assert "gradient correlation" in options["epochs_gc"]
    assert "at most" in options["epochs_joint"] and "--patience" in options["epochs_joint"]
    assert "without a better validation loss" in options["patience"]


def test_evaluate_help_says_a_hand_placed_roi_crossing_the_edge_is_moved_inside(tmp_path):
    """A centre 10 px below the top of a 200-row image: its 100-row ROI is scored from row 0, not
    about the centre given, and the help said nothing of it."""
    image = _png(tmp_path / "a.png")
    rois = tmp_path / "centres.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,10,100,140,100\n")
    out = tmp_path / "report"
    assert main(["evaluate", image, "-o", str(out), "--methods", "identity", "--metrics", "entropy", "--pictures", "0",
                 "-q", "--rois", str(rois)]) == 0  # fmt: skip
    upper = next(line for line in (out / "scores.csv").read_text().splitlines() if ",upper," in line)
    assert upper.split(",")[3] == "0"  # top: moved down from 10 - 50
    said = " ".join(subcommands()["evaluate"].format_help().split())
    assert "crosses the image's edge is moved inside it" in said and "scores.csv gives where each was scored" in said


def test_demo_scores_what_its_sample_allows_without_notes_said_twice(tmp_path, capsys):
    """The demo scored TMQI, which the sample's 125 px wide ROIs cannot hold: its first report
    showed a TMQI column of n/a and the same two notes on stderr and again in the summary."""
    assert main(["demo", "-o", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "note:" not in err and "TMQI" not in out
    # each step said as it starts: the README's first command ran a minute or more on a CPU in silence
    steps = ("enhancing the sample radiograph, cr_chest_pa_mono1.dcm ...\nevaluating it: identity, CLAHE, Farbman "
             "and the model run on the whole image, their spine ROIs scored ...\n")
    assert steps in err, err
    # one note, in the summary alone: the sample is a 10-bit DICOM, so identity is stretched over each ROI
    notes = out.split("## Notes")[1].split("\nTime: ")[0]
    assert [line[:60] for line in notes.splitlines() if line.startswith("- ")] == [
        "- identity: every original (10-bit: 1) is deeper than 8 bits"]
    assert "| LPC-SI |" in out and "xvertnet_original_brightness" in out


def test_the_demo_report_names_the_demo_command(tmp_path, capsys):
    """The demo's report said 'called from Python (no command line)' of a run of `xvertfast demo`."""
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--device", "cpu"]) == 0
    summary = (out / "report" / "summary.md").read_text()
    assert f"- this run's command: `xvertfast demo -o {out} --device cpu`" in summary.splitlines()
    assert "called from Python" not in summary


def test_demo_says_an_enhance_error_once(tmp_path, monkeypatch, capsys):
    """An image the demo could not enhance was said twice on stderr: once as the job logged it, again
    from the error the demo raised to end itself."""
    import xvertfast.samples

    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a dicom" * 20)
    monkeypatch.setattr(xvertfast.samples, "SAMPLE_DICOM", str(bad))
    assert main(["demo", "-o", str(tmp_path / "demo"), "--device", "cpu"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 2 and lines[0] == "enhancing the sample radiograph, bad.dcm ..."  # (its step, said first)
    assert lines[1].startswith(f"error: {bad}: not DICOM")


def test_demo_interrupted_while_enhancing_ends_there(tmp_path, monkeypatch, capsys):
    """A Ctrl-C while the demo enhanced its sample went on to evaluate the sample with nothing
    enhanced, and said that the same command resumes, which the demo does not."""
    from xvertfast.infer import Enhancer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Enhancer, "run_tiles", interrupted)
    assert main(["demo", "-o", str(tmp_path / "demo"), "--device", "cpu"]) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert lines == ["enhancing the sample radiograph, cr_chest_pa_mono1.dcm ...",
                     "stopped early: interrupted, before the demo's sample was enhanced; run the demo again"]
    assert not (tmp_path / "demo" / "report").exists()  # not evaluated


def test_status_of_a_folder_it_cannot_read_says_which_one_it_can(tmp_path, capsys):
    """`xvertfast status` of a training run's model/, checkpoint/ or cache/, of the demo's output folder, of an
    evaluate report or of an export said only 'holds no output of an xvertfast enhance or preprocess
    job, nor a training run', of folders xvertfast had written itself."""
    from tests.train.test_loop import CONFIG, write_images
    from xvertfast.eval.journal import JOURNAL_FILE
    from xvertfast.io.job_folder import job_files
    from xvertfast.train import train

    run = tmp_path / "run"
    train([str(write_images(tmp_path / "data"))], str(run), CONFIG, stop_after_epochs=1, progress=False,
          log=lambda m: None)  # fmt: skip
    demo = tmp_path / "demo"
    (demo / "enhanced").mkdir(parents=True)
    (demo / "enhanced" / job_files("enhance")[0]).write_text("{}")
    (demo / "report").mkdir()
    (demo / "report" / JOURNAL_FILE).write_text("")
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "stage1.onnx").write_bytes(b"")
    none = "holds no output of an xvertfast enhance or preprocess job, nor a training run"
    for folder, hint in [(run / "checkpoint", f"it is the checkpoint/ of the training run {run}: xvertfast status {run}"),
                         (run / "cache", f"it is the cache/ of the training run {run}: xvertfast status {run}"),
                         (demo, f"the folders in it that status reads: {demo / 'enhanced'}"),
                         (demo / "report", "it is the report folder of an xvertfast evaluate, which status does not "
                          "read: the same evaluate command scores only the images not yet scored"),
                         (tmp_path / "exported", "it holds the stage files of an xvertfast export, which status does "
                          "not read")]:  # fmt: skip
        assert main(["status", str(folder)]) == 2
        assert capsys.readouterr().err == f"error: {folder} {none}; {hint}\n"
    (tmp_path / "other").mkdir()
    assert main(["status", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'other'} {none}\n"


def test_status_of_a_runs_folder_through_a_link_and_its_dotdot_names_the_run_the_system_reaches(tmp_path, capsys):
    """`xvertfast status latest/../run2/checkpoint` (latest -> runs/c1) is runs/run2's checkpoint/, but the hint
    looked for a run in ./run2 (normpath drops latest/.. as text) and said nothing of it."""
    from xvertfast.train.run_folder import LOCK_FILE

    runs = tmp_path / "runs"
    (runs / "c1").mkdir(parents=True)
    (runs / "run2" / "checkpoint").mkdir(parents=True)
    (runs / "run2" / LOCK_FILE).write_text("")  # (a run that began: preparing)
    (tmp_path / "latest").symlink_to(runs / "c1", target_is_directory=True)
    given = os.path.join(tmp_path, "latest", "..", "run2", "checkpoint")
    assert main(["status", given]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"; it is the checkpoint/ of the training run {runs / 'run2'}: xvertfast status "
                        f"{runs / 'run2'}\n"), err


def test_status_names_the_settings_file_it_could_not_read(tmp_path, capsys):
    """status said 'settings unreadable' alone, leaving the user to guess which hidden file it meant."""
    from xvertfast.io.job_folder import job_files

    settings_name, ledger_name, _ = job_files("enhance")
    for name, content, why in [("damaged", "{not json", "is not valid JSON"), ("empty", "{}", "holds no settings"),
                               ("ledger-only", None, "is missing")]:  # fmt: skip
        folder = tmp_path / name
        folder.mkdir()
        if content is None:
            (folder / ledger_name).write_text("")  # (a job's ledger without its settings file)
        else:
            (folder / settings_name).write_text(content)
        assert main(["status", str(folder)]) == 0
        said = [line for line in capsys.readouterr().out.splitlines() if "settings" in line and "unreadable" in line]
        assert said and said[0].startswith(f"  settings unreadable: {folder / settings_name} {why}"), said


def test_status_says_why_it_shows_no_settings_where_each_is_a_list(tmp_path, capsys):
    """Settings that are lists are left out of status's line; where all were, it printed a bare
    'settings: ', as if none were recorded."""
    import json

    from xvertfast.io.job_folder import job_files

    settings_name, ledger_name, _ = job_files("enhance")
    (tmp_path / settings_name).write_text(json.dumps({"settings": {"rois": ["spine"], "sizes": [512, 1024]}}))
    (tmp_path / ledger_name).write_text("")
    assert main(["status", str(tmp_path)]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  settings")]
    assert said == ["  settings: none shown (each is a list: rois, sizes)"], said


@pytest.mark.parametrize("report", ["a file", "a folder of other files"])
def test_a_demo_whose_report_folder_is_refused_enhances_nothing(tmp_path, capsys, report):
    """The demo enhanced its sample into OUT/enhanced, and only then was its OUT/report refused (a
    folder of the user's files, a file): it failed (exit 2) and left half its output."""
    out = tmp_path / "demo"
    out.mkdir()
    if report == "a file":
        (out / "report").write_text("mine")
    else:
        (out / "report").mkdir()
        (out / "report" / "report.html").write_text("mine")
    assert main(["demo", "-o", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out / "report") in err
    assert sorted(os.listdir(out)) == ["report"]
