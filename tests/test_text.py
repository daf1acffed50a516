"""The caller's words: whether the CLI runs the command is one fact, its options being set."""

from __future__ import annotations

from xvertfast import cli
from xvertfast._text import CLI_OPTIONS, asked, cli_running, from_cli, middle_cut, offers


def test_a_command_the_cli_runs_is_known_by_its_options_alone(tmp_path, monkeypatch):
    """FROM_CLI was a second variable beside CLI_OPTIONS, set and reset with it, and could say
    otherwise (a test set it alone); from_cli() is now CLI_OPTIONS being set."""
    assert not from_cli() and CLI_OPTIONS.get() is None
    assert asked("device", "cuda") == "device='cuda'" and offers("backend")
    seen = []

    def status(args):
        seen.append((from_cli(), CLI_OPTIONS.get(), asked("device", "cuda"), offers("backend"), offers("folder")))
        return 0

    monkeypatch.setattr(cli, "_cmd_status", status)
    assert cli.main(["status", str(tmp_path)]) == 0
    assert seen and seen[0][0] and "folder" in seen[0][1] and "backend" not in seen[0][1], seen
    assert seen[0][2:] == ("--device cuda", False, True), seen
    assert not from_cli() and CLI_OPTIONS.get() is None  # (reset once the command ends)
    with cli_running({"rois"}):
        assert from_cli() and asked("rois") == "--rois" and not offers("backend")
    assert not from_cli() and asked("rois") == "rois"


def test_a_part_under_one_percent_is_not_said_as_none():
    """A model trained at --roi-size 32 fills 0.7% of the evaluation ROIs: enhance and evaluate said "0%"."""
    from xvertfast._text import part_percent

    assert [part_percent(s) for s in (0.0069, 0.007, 0.00012345, 0.0625, 0.29, 0.5, 0.996)] == [
        "0.69%", "0.7%", "0.012%", "6%", "29%", "50%", "99%"]  # (rounded down: a part never reads as the whole)


def test_a_long_text_is_cut_in_its_middle_keeping_more_of_its_end():
    """The ledger's failure reasons and evaluate's bar cut their texts alike (one helper, not two
    copies): a third of what is kept from the start, the rest from the end, the cut marked."""
    assert middle_cut("short.png", 10) == "short.png"
    name = "a" * 30 + "-IM-0001-0042.dcm"
    cut = middle_cut(name, 40)
    assert len(cut) == 40 and cut == "a" * 12 + "..." + name[-25:]
    reason = "/data/" + "d" * 700 + ".png: cannot be read: truncated"
    cut = middle_cut(reason, 500, " ... ")
    assert len(cut) == 500 and cut.startswith("/data/ddd") and cut.endswith(".png: cannot be read: truncated")
