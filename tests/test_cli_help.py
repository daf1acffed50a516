"""What an option's --help says where the documents are not at hand (a pip install has no docs/):
train's epoch counts are per stage, and what --stages, --val-fraction, --patch-size and status
--json mean, not only their names."""

from __future__ import annotations

import argparse

from xvertfast.cli import build_parser


def _helps(command: str) -> dict[str, str]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest: " ".join((a.help or "").split()) for a in sub.choices[command]._actions}


def test_train_help_says_the_epoch_counts_are_per_stage():
    """--epochs-gc 200 read as 200 epochs in all: the run trained twice as long as planned, one
    count a stage; the description said so, the options did not."""
    helps = _helps("train")
    assert "epochs of each stage" in helps["epochs_gc"]
    assert "epochs of each stage" in helps["epochs_joint"]


def test_train_help_says_what_stages_validation_and_patches_are():
    """--stages said "number of stages", --val-fraction "share of images held out for validation"
    (not what it is for, nor what 0 does) and --patch-size not its unit."""
    helps = _helps("train")
    assert "each on the outputs of the one before" in helps["stages"]
    assert "early stopping" in helps["val_fraction"] and "0: none" in helps["val_fraction"]
    assert "training loss" in helps["val_fraction"]
    assert "side in pixels" in helps["patch_size"]


def test_status_and_evaluate_options_say_more_than_their_names():
    """status --json said "as JSON"; evaluate's --methods and --metrics did not say where their
    names are listed."""
    assert _helps("status")["json"] != "as JSON" and "JSON" in _helps("status")["json"]
    evaluate = _helps("evaluate")
    assert "of the methods above" in evaluate["methods"] and "of those above" in evaluate["metrics"]


def test_descriptions_printed_as_written_are_wrapped_evenly():
    """A description printed as written (RawDescriptionHelpFormatter) kept a stub line, "image (a PACS
    export's", after a rewrap, and lines of 83-131 characters that a terminal of 80 folds mid-word; an
    indented line (an example command) is kept whole."""
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in sub.choices.items():
        if not issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
            continue  # (argparse wraps it)
        lines = (parser.description or "").split("\n")
        prose = [line for line in lines if line and not line.startswith(" ")]
        assert all(len(line) <= 80 for line in prose), (name, [line for line in prose if len(line) > 80])
        stubs = [line for line, after in zip(lines, lines[1:]) if line in prose and after in prose
                 and len(line) < 40 and not line.endswith((".", ":"))]  # (a sentence going on in the next line)
        assert not stubs, (name, stubs)
