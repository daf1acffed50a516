"""Words of the messages the commands print, shared so that every count reads alike."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

__all__ = ["count", "first_listed", "WARNED_LISTED", "FAILED_LISTED", "CLI_OPTIONS", "from_cli", "cli_running",
           "asked", "option_said", "offers", "part_percent", "middle_cut", "dtype_name",
           "shell_word", "shell_line"]

#: How many warned files (or notes), and how many failed files, a job's end summary lists on the
#: console; it counts the rest and says where each is. Listed whole, a 20,000-file job repeated
#: thousands of lines already said as each image finished. Failures get more room than warnings:
#: each is an input left without an output, to fix and run again, where a warning asks for a look.
WARNED_LISTED = 20
FAILED_LISTED = 50

#: The options (argparse's names: ``backend``, ``dry_run``) of the command the CLI runs, set while
#: it runs (:func:`cli_running`); None outside the CLI. Messages name a setting in the caller's own
#: words by it (:func:`from_cli`, :func:`asked`): a Python user was told to use '--device cpu', an
#: option they never typed. And ``demo`` and ``evaluate`` build an Enhancer with the default
#: backend and offer no --backend, yet its warning said "--backend auto" (:func:`offers`).
CLI_OPTIONS: ContextVar[frozenset[str] | None] = ContextVar("xvertfast_cli_options", default=None)


def from_cli() -> bool:
    """Whether the CLI runs the command: its options are set (:data:`CLI_OPTIONS`). One variable,
    not a second flag beside it that could say otherwise."""
    return CLI_OPTIONS.get() is not None


@contextlib.contextmanager
def cli_running(options: Iterable[str]) -> Iterator[None]:
    """Within it, a command the CLI runs, whose options (argparse's names) are ``options``: what
    main() sets around a command, and tests where they check the CLI's words."""
    token = CLI_OPTIONS.set(frozenset(options))
    try:
        yield
    finally:
        CLI_OPTIONS.reset(token)


def offers(name: str) -> bool:
    """Whether the caller could have set ``name``: a Python caller any argument, the CLI's command
    only the options it has (:data:`CLI_OPTIONS`). Where not, a message says the setting ran, not
    an option to have typed: "backend auto (the default)"."""
    options = CLI_OPTIONS.get()
    return options is None or name in options


_NAME_ALONE = object()


def asked(name: str, value=_NAME_ALONE) -> str:
    """``device='cuda'`` from Python, ``--device cuda`` from the CLI (see :func:`from_cli`); without
    a value the name alone (``rois``, ``--rois``), with True a flag (``dry_run=True``, ``--dry-run``)."""
    if from_cli():
        flag = f"--{name.replace('_', '-')}"
        return flag if value is _NAME_ALONE or value is True else f"{flag} {value}"
    if value is _NAME_ALONE:
        return name
    return f"{name}={value!r}" if isinstance(value, (bool, int, float)) else f"{name}={str(value)!r}"


def option_said(option: str, words: str) -> str:
    """``-o, made where missing`` from the CLI, ``made where missing`` from Python (see
    :func:`from_cli`): ``words`` that say what an option does, named only where it was typable."""
    return f"{option}, {words}" if from_cli() else words


def part_percent(share: float) -> str:
    """A part of a whole, ``0 < share < 1``, as a percentage that reads as neither: whole percents,
    rounded down (0.996 is "99%", not "100%"), under 1% two significant digits (0.0069 is
    "0.69%": rounded down to whole percents it read "0%" of something there)."""
    percent = round(share * 100, 9)  # (0.29 * 100 is 28.999999999999996)
    if percent >= 1 or percent <= 0:
        return f"{math.floor(percent)}%"
    digits = 1 - math.floor(math.log10(percent))
    return f"{math.floor(percent * 10**digits) / 10**digits:.{digits}f}".rstrip("0") + "%"


def middle_cut(text: str, most: int, mark: str = "...") -> str:
    """``text`` itself, or where longer than ``most`` characters, cut in its middle to ``most`` of them,
    the cut marked ``mark``: a third of the rest kept from its start, two thirds from its end. What
    tells a path or a failure apart is mostly at its end (a file name's numbers and extension, the
    problem after a path): a cut at the end (a ledger line of a 600-character path) said none of it."""
    if len(text) <= most:
        return text
    keep = most - len(mark)
    head = keep // 3
    return f"{text[:head]}{mark}{text[len(text) - (keep - head):]}"


def dtype_name(dtype) -> str:
    """``float32`` for torch.float32: a dtype as a user writes it, as NumPy names it ("torch." is
    torch's own prefix); a NumPy dtype is its name already."""
    return str(dtype).removeprefix("torch.")


#: What cmd.exe reads as its own outside double quotes (and a space or tab, which ends a word), and
#: what it reads even inside them: the characters a Windows word is quoted or escaped for.
_CMD_SPECIAL = r"\s&|<>^()"
_CMD_QUOTED = re.compile(f"[{_CMD_SPECIAL}]")
_CMD_READS = re.compile(f"[{_CMD_SPECIAL}\"%]")


def shell_word(word: str) -> str:
    """``word`` as one word of a command line printed for the user to paste (:func:`shell_line`)."""
    if os.name != "nt":
        return shlex.quote(word)
    if word and not _CMD_READS.search(word):
        return word
    out = []
    pieces = [piece for piece in re.split(r'(["%])', word) if piece]
    for i, piece in enumerate(pieces):
        if piece in ('"', "%"):  # (escaped by a caret outside quotes; a quote for the program too: \")
            out.append('\\^"' if piece == '"' else "^%")
            continue
        before_a_quote = i + 1 < len(pieces) and pieces[i + 1] == '"'
        quoted = _CMD_QUOTED.search(piece) is not None
        if quoted or before_a_quote:  # (backslashes before a quote are halved by the program)
            piece = re.sub(r"(\\+)$", r"\1\1", piece)
        out.append(f'"{piece}"' if quoted else piece)
    return "".join(out) or '""'


def shell_line(words: Iterable[str]) -> str:
    """``words`` as a command line printed for the user to run, quoted for their shell. Elsewhere than
    Windows a POSIX shell's (shlex). On Windows cmd.exe's, which reads single quotes and backslashes
    as they are (shlex's ``--model 'run\\model'`` failed there): a word holding a space or what cmd.exe
    reads (``& | < > ^ ( )``: ``C:\\R&D`` split the line at the ``&``) in double quotes, where the
    program reads them as Windows programs do (backslashes before a quote doubled); ``%`` and ``"``, which
    cmd.exe reads inside quotes too (``%TEMP%`` is expanded), outside them after a caret (``^%``), as
    a prompt reads it (a batch file wants ``%%``). ``!`` is left as it is (read only where delayed
    expansion is on, not the default). Not for the command line a ledger records, which xvertfast itself
    splits back (shlex)."""
    return " ".join(shell_word(word) for word in words)


def count(n: int, noun: str) -> str:
    """``"1 image"``, ``"2 images"``: ``n`` and ``noun``, plural (an ``s``) unless ``n`` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def first_listed(lines: list[str], most: int, noun: str, where: str, indent: str = "  ") -> list[str]:
    """``lines`` (one a file, or note) up to ``most`` of them, then ``"... and 3 more <noun>s:
    <where>"`` for those left out: a console summary stays a screen long however big the job."""
    if len(lines) <= most:
        return list(lines)
    return [*lines[:most], f"{indent}... and {count(len(lines) - most, 'more ' + noun)}: {where}"]
