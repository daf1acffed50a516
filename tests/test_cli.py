"""The command line's help: every option says what it does, and no default reads "None"."""

from __future__ import annotations

import argparse
import re

from xvertfast.cli import build_parser


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
