"""Finding a batch job's inputs and naming its outputs (xvertfast.io.files)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from xvertfast.io import ImageReadError
from xvertfast.io.files import NothingFound, discover, image_extension, list_files, output_path, read_input


def test_discover_lists_and_duplicates(tmp_path):
    for name in ("a.png", "b.dcm", "c", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'a.png'}\n# comment\n\n{tmp_path / 'b.dcm'}\n")
    found = discover([str(tmp_path), f"@{listing}"])
    assert [f.rel for f in found] == ["a.png", "b.dcm", "c"]  # .txt skipped, listed duplicates dropped
    assert len({os.path.abspath(f.path) for f in found}) == len(found)


def test_output_paths_cannot_escape(tmp_path):
    assert output_path(str(tmp_path), "sub/x.png", "_xp.png") == str(tmp_path / "sub" / "x_xp.png")
    with pytest.raises(ValueError, match="outside"):
        output_path(str(tmp_path), "../../etc/x.png", "_xp.png")


def test_dicom_named_by_uid_is_found_and_keeps_its_whole_name(tmp_path):
    # PACS exports name DICOM files by their SOP instance UID: the digits after the last dot
    # are not an extension, and two files of a series must not share an output
    series = tmp_path / "series"
    series.mkdir()
    for name in ("1.2.840.113619.2.55.320", "1.2.840.113619.2.55.321", "DICOMDIR", "notes.txt"):
        (series / name).write_bytes(b"x")
    found = [f.rel for f in discover([str(tmp_path)])]
    assert found == [os.path.join("series", "1.2.840.113619.2.55.320"), os.path.join("series", "1.2.840.113619.2.55.321")]
    outs = {output_path(str(tmp_path / "o"), rel, ".dcm") for rel in found}
    assert outs == {str(tmp_path / "o" / "series" / f"1.2.840.113619.2.55.32{k}.dcm") for k in (0, 1)}
    assert output_path(str(tmp_path), "scan.v2.PNG", ".png") == str(tmp_path / "scan.v2.png")


def test_a_dicomdir_under_any_name_it_is_saved_with_is_not_searched_as_an_image(tmp_path):
    # only the exact name DICOMDIR was passed over: DICOMDIR.DCM was found and failed as "not an image"
    for name in ("DICOMDIR", "DICOMDIR.DCM", "dicomdir.dcm", "DicomDir.dicom", "IM0001", "DICOMDIR2.dcm"):
        (tmp_path / name).write_bytes(b"x")
    assert sorted(f.rel for f in discover([str(tmp_path)])) == ["DICOMDIR2.dcm", "IM0001"]


@pytest.mark.parametrize(("name", "ext"), [("a.png", ".png"), ("A.TIF", ".TIF"), ("b", ""), ("1.2.3.40", ""),
                                           ("c.txt", ""), ("d.tar.dcm", ".dcm")])  # fmt: skip
def test_image_extension(name, ext):
    assert image_extension(name) == ext


def test_listed_files_keep_their_folders_apart(tmp_path, monkeypatch):
    # a PACS export reuses names across folders: a listed file mirrors its whole path (relative
    # as written, absolute without its root), whatever else the list holds
    for d in ("arch/p1", "arch/p2"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "IM0001.png").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'arch/p1/IM0001.png'}\r\n{tmp_path / 'arch/p2/IM0001.png'}\tMONOCHROME1\r\n")
    found = discover([f"@{listing}"])
    whole = str(tmp_path).lstrip(os.sep)
    assert [(f.rel, f.photometric) for f in found] == [(os.path.join(whole, "arch/p1/IM0001.png"), None),
                                                        (os.path.join(whole, "arch/p2/IM0001.png"), "MONOCHROME1")]  # fmt: skip
    single = tmp_path / "one.txt"
    single.write_text(f"{tmp_path / 'arch/p1/IM0001.png'}\n")
    assert [f.rel for f in discover([f"@{single}"])] == [found[0].rel]  # the same name in any list
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel.txt").write_text("arch/p2/IM0001.png\n./arch/p1/IM0001.png\n")
    assert [f.rel for f in discover(["@rel.txt"])] == ["arch/p2/IM0001.png", "arch/p1/IM0001.png"]


def test_excluded_folders_are_not_searched(tmp_path):
    (tmp_path / "out" / "deeper").mkdir(parents=True)
    for name in ("a.png", "out/a.png", "out/deeper/b.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [f.rel for f in discover([str(tmp_path)], exclude=[str(tmp_path / "out")])] == ["a.png"]
    assert len(discover([str(tmp_path)])) == 3


def test_a_link_to_a_folder_inside_does_not_rename_it(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "in" / "sub", tmp_path / "in" / "a_link")  # sorts before sub
    assert [f.rel for f in discover([str(tmp_path / "in")])] == [os.path.join("sub", "a.png")]


def test_a_link_to_a_file_inside_does_not_rename_it(tmp_path):
    """As a link to a folder inside: the file was one input by the first path reached, the link's
    where it sorted first (b/latest.png before ward/a.png), so its output was OUT/b/latest.png and
    OUT/ward/ held no a.png, though the folder mirrored has one. A link alone, or to a file the
    search does not reach otherwise, stays an input by its own name."""
    (tmp_path / "in" / "ward").mkdir(parents=True)
    (tmp_path / "in" / "ward" / "a.png").write_bytes(b"x")
    (tmp_path / "in" / "b").mkdir()
    os.symlink(os.path.join("..", "ward", "a.png"), tmp_path / "in" / "b" / "latest.png")
    (tmp_path / "elsewhere.png").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere.png", tmp_path / "in" / "b" / "outside.png")
    assert [f.rel for f in discover([str(tmp_path / "in")])] == [os.path.join("b", "outside.png"),
                                                                 os.path.join("ward", "a.png")]  # fmt: skip
    given = [str(tmp_path / "in" / "b" / "latest.png"), str(tmp_path / "in" / "ward")]  # the link named first
    assert [f.path for f in discover(given)] == [str(tmp_path / "in" / "ward" / "a.png")]
    assert [f.rel for f in discover([str(tmp_path / "in" / "b" / "latest.png")])] == ["latest.png"]


def test_a_file_reached_by_a_link_and_its_own_path_keeps_the_polarity_listed(tmp_path, monkeypatch):
    """The path kept for a file reached twice (its own, rather than a link's) lost the MONOCHROME1 an
    @list gave the other, so the image was enhanced with its polarity reversed. Two different
    polarities for one file are refused, naming both paths."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in" / "ward").mkdir(parents=True)
    (tmp_path / "in" / "ward" / "a.png").write_bytes(b"x")
    (tmp_path / "in" / "b").mkdir()
    os.symlink(os.path.join("..", "ward", "a.png"), tmp_path / "in" / "b" / "latest.png")
    (tmp_path / "list.txt").write_text(f"{os.path.join('in', 'b', 'latest.png')}\tMONOCHROME1\n")
    for given in (["@list.txt", "in"], ["in", "@list.txt"]):
        found = discover(given)
        assert [(f.path, f.photometric) for f in found] == [(os.path.join("in", "ward", "a.png"), "MONOCHROME1")]
    (tmp_path / "other.txt").write_text(f"{os.path.join('in', 'ward', 'a.png')}\tMONOCHROME2\n")
    with pytest.raises(ValueError, match="MONOCHROME1 and as MONOCHROME2") as refused:
        discover(["@list.txt", "@other.txt"])
    assert os.path.join("in", "b", "latest.png") in str(refused.value)
    assert os.path.join("in", "ward", "a.png") in str(refused.value)
    (tmp_path / "same.txt").write_text(f"{os.path.join('in', 'ward', 'a.png')}\tMONOCHROME1\n")
    assert [f.photometric for f in discover(["@list.txt", "@same.txt", "in"])] == ["MONOCHROME1"]


def test_the_output_folder_as_an_input_folder_is_refused(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="is a folder of outputs"):
        discover([str(tmp_path)], exclude=[str(tmp_path)])


def test_the_same_folder_given_as_input_and_output_is_said_so(tmp_path, monkeypatch):
    """``preprocess in2 -o in2`` said "in2 is a folder of outputs (the job's own, or another method's
    that evaluate scores)", puzzling to one who gave the same folder twice, and suggested in2/enhanced
    whatever the command. It says the folder is both, and suggests one beside it or inside it."""
    (tmp_path / "in2").mkdir()
    (tmp_path / "in2" / "a.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    for given in ("in2", "in2/", os.path.join(str(tmp_path), "in2")):
        with pytest.raises(ValueError) as err:
            discover([given], exclude=["in2"])
        said = str(err.value)
        assert said.startswith(f"{given} is an input folder and also the output folder"), said
        assert "enhanced" not in said
        beside = os.path.join(os.path.dirname(os.path.abspath(given)), "in2_out")
        if not os.path.isabs(given):
            beside = os.path.relpath(beside)
        assert f"(e.g. {beside})" in said and f"(e.g. {os.path.join(given, 'out')})" in said, said


def test_linked_folders_are_followed_once_and_loops_end(tmp_path):
    (tmp_path / "arch" / "s").mkdir(parents=True)
    (tmp_path / "arch" / "s" / "a.png").write_bytes(b"x")
    (tmp_path / "in").mkdir()
    os.symlink(tmp_path / "arch", tmp_path / "in" / "linked")
    os.symlink(tmp_path / "in", tmp_path / "arch" / "s" / "back")  # a loop
    assert [f.rel for f in discover([str(tmp_path / "in")])] == [os.path.join("linked", "s", "a.png")]


def _deny_listing(monkeypatch, name: str) -> None:
    """Folders called ``name`` cannot be listed (chmod 000 does not stop root: fail as it would)."""
    scandir = os.scandir

    def denied(path="."):
        if os.path.basename(os.fspath(path)) == name:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)


def test_a_folder_that_cannot_be_searched_is_reported(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "1.png").write_bytes(b"x")
    (tmp_path / "b" / "2.png").write_bytes(b"x")
    _deny_listing(monkeypatch, "b")
    found = discover([str(tmp_path)])
    assert [f.rel for f in found] == [os.path.join("a", "1.png"), "b"]
    assert found[1].problem.startswith("folder cannot be searched (Permission denied)")
    with pytest.raises(ImageReadError, match="folder cannot be searched"):
        read_input(found[1])


def test_a_folder_that_cannot_be_searched_is_reported_from_an_at_list_too(tmp_path, monkeypatch):
    """A listed folder's entries lost the problem its search found: the unlistable subfolder
    came back as a file to read, failing as a folder read as an image (or, with a tab's
    polarity, as that), not as a folder that could not be searched."""
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "in" / "b").mkdir()
    (tmp_path / "in" / "a" / "1.png").write_bytes(b"x")
    _deny_listing(monkeypatch, "b")
    for tag in ("", "\tMONOCHROME1"):
        listing = tmp_path / "list.txt"
        listing.write_text(f"{tmp_path / 'in'}{tag}\n")
        found = discover([f"@{listing}"])
        assert [f.rel for f in found] == [os.path.join("a", "1.png"), "b"]
        assert found[1].problem is not None and found[1].problem.startswith("folder cannot be searched")
        assert found[0].photometric == (tag.strip() or None)
        with pytest.raises(ImageReadError, match="folder cannot be searched"):
            read_input(found[1])


def test_the_output_folders_of_other_jobs_are_not_inputs(tmp_path):
    # outputs of an earlier enhancement (or a report, a training run) inside the input folder
    # are results: a search of the folder above passes them over; given directly, they are searched
    for sub, marker in (("enhanced", ".xvertfast-enhance.json"), ("pp", ".xvertfast-preprocess.json"),
                        ("report", ".xvertfast-evaluate.jsonl"), ("run", os.path.join("checkpoint", "state.json"))):  # fmt: skip
        (tmp_path / sub / os.path.dirname(marker)).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / marker).write_text("{}")
        (tmp_path / sub / "out.png").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    assert [f.rel for f in discover([str(tmp_path)])] == ["a.png"]
    assert [f.rel for f in discover([str(tmp_path / "enhanced")])] == ["out.png"]


def test_the_job_folder_markers_are_the_jobs_own_file_names():
    # io.files cannot import the jobs (imports go one way; io.job_folder imports io.files): the names it looks for are written out, and
    # must stay those the jobs write
    from xvertfast.eval.journal import JOURNAL_FILE
    from xvertfast.io.files import JOB_FOLDER_MARKERS
    from xvertfast.io.job_folder import JOB_FILE, job_files

    assert JOB_FOLDER_MARKERS == (JOB_FILE, job_files("preprocess")[0], JOURNAL_FILE,
                                  os.path.join("checkpoint", "state.json"))  # fmt: skip


def test_inputs_that_all_do_not_exist_are_nothing_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    # an empty list (from Python): it said "no image files found in  (PNG, ...)", naming nothing
    assert discover([]) == [] and str(NothingFound([])).startswith("no inputs were given: name image files, ")
    with pytest.raises(NothingFound, match=r"^nosuchdir: no such file or folder$"):
        discover(["nosuchdir"])
    with pytest.raises(NothingFound, match="no such file or folder"):
        discover(["nosuchdir", "nosuch.png"])
    # one that exists: the job goes on and reports the missing one as a failed file
    assert [f.path for f in discover(["a.png", "nosuch.png"])] == ["a.png", "nosuch.png"]
    with pytest.raises(ImageReadError, match="nosuch.png: no such file or folder"):
        read_input(discover(["a.png", "nosuch.png"])[1])
    (tmp_path / "list.txt").write_text("nosuch.png\n")  # a list that exists: its entries are the job's to report
    assert [f.path for f in discover(["@list.txt"])] == ["nosuch.png"]


def test_an_input_given_twice_is_named_once_by_nothing_found(tmp_path, monkeypatch):
    """The same empty list given twice was named twice ("@c.txt, @c.txt name no file"), and beside a
    folder found empty, said "no image files found in @c.txt, @c.txt, empty; @c.txt, @c.txt name ..."."""
    from xvertfast.io.files import InputLists

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.txt").write_text("# none yet\n")
    (tmp_path / "empty").mkdir()
    why = "empty or holds only blank lines and # comments (a list gives image files or folders, one a line)"
    lists = InputLists()
    assert str(NothingFound(["@c.txt", "@c.txt"], lists=lists)) == f"@c.txt names no file: it is {why}"
    assert str(NothingFound(["@c.txt", "empty", "@c.txt", "empty"], lists=lists)) == (
        f"no image files found in @c.txt, empty (PNG, TIFF, JPEG, DICOM, JSRT .IMG); @c.txt names no file: it is {why}")
    assert str(NothingFound(["nosuch", "nosuch"], missing=True)) == "nosuch: no such file or folder"


def test_an_input_list_that_cannot_be_read_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^@nolist.txt: the input list file nolist.txt does not exist$") as exc:
        discover(["@nolist.txt"])
    assert not isinstance(exc.value, NothingFound) and "Errno" not in str(exc.value)
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="input list file d is a folder"):
        discover(["@d"])
    (tmp_path / "outer.txt").write_text("@inner.txt\n")  # a list of lists naming a missing list
    with pytest.raises(ValueError, match="input list file inner.txt does not exist"):
        discover(["@outer.txt"])


def test_what_a_search_and_a_list_pass_over_is_what_the_guide_says(tmp_path, monkeypatch):
    # docs/guide/enhancing.md, "Finding inputs": hidden files and folders are passed over; a list
    # skips blank and '#' lines and drops the spaces around a path; a listed folder's files keep
    # their paths below it
    for rel in ("a/x.png", "a/.x.png", "a/.hidden/y.png", "b/x.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [f.rel for f in discover([str(tmp_path / "a")])] == ["x.png"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l.txt").write_text("# a comment\n\n  b/x.png  \na\n")
    assert [(f.path, f.rel) for f in discover(["@l.txt"])] == [("b/x.png", "b/x.png"), ("a/x.png", "x.png")]


def test_a_folder_without_images_beside_others_is_said_and_left_out(tmp_path):
    # a mistyped one of several folders, or a folder of .txt, was left out without a word
    for name in ("in1/a.png", "notes/a.txt", "empty/.keep"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    inputs = [str(tmp_path / "in1"), str(tmp_path / "notes"), str(tmp_path / "empty")]
    with pytest.warns(UserWarning) as said:
        found = discover(inputs)
    assert [f.rel for f in found] == ["a.png"]
    texts = [str(w.message) for w in said]
    assert [t.split(":")[0] for t in texts] == inputs[1:], texts
    assert all("no image files found in it" in t and t.endswith("left out") for t in texts), texts
    with warnings.catch_warnings():  # alone, such a folder is the caller's NothingFound: said once, there
        warnings.simplefilter("error")
        assert discover(inputs[1:]) == []


def test_a_listed_folder_without_images_is_said_with_its_line(tmp_path):
    # a list of one folder per patient: one of them empty (or mistyped into another folder) went without a word
    for name in ("p1/a.png", "p2/notes.txt"):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'p1'}\n\n{tmp_path / 'p2'}\n")
    with pytest.warns(UserWarning) as said:
        found = discover([f"@{listing}"])
    assert [f.rel for f in found] == ["a.png"]
    assert [str(w.message) for w in said] == [f"{listing}, line 3: {tmp_path / 'p2'}: no image files found in it "
                                              "(PNG, TIFF, JPEG, DICOM, JSRT .IMG); left out"]  # fmt: skip


def test_a_listed_polarity_after_spaces_says_a_tab_is_needed(tmp_path, monkeypatch):
    """``a.png  MONOCHROME1`` (spaces where the tab goes) failed as "no such file or folder" alone,
    which left the user looking for a missing file. It says the polarity needs a tab before it; a
    path that holds spaces and exists is read as it is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b MONOCHROME1").write_bytes(b"x")  # a real name, spaces and all
    (tmp_path / "list.txt").write_text("a.png  MONOCHROME1\na.png monochrome2\nb MONOCHROME1\nnosuch.png\n")
    spaced, lower, real, missing = discover(["@list.txt"])
    for f in (spaced, lower):
        with pytest.raises(ImageReadError) as err:
            read_input(f)
        assert str(err.value).startswith(f"{f.path}: no such file or folder"), err.value
        assert "separated from the path by a tab, not spaces" in str(err.value)
    assert real.path == "b MONOCHROME1" and real.problem is None and real.photometric is None
    assert missing.problem is None  # said by the reader, without a hint that does not apply
    # after the tab it is taken in capitals only: the hint gives it so, or the line fixed as it says is refused
    assert "written MONOCHROME2" in lower.problem and "written" not in spaced.problem


def test_a_listed_path_a_shell_would_have_expanded_says_what_to_write(tmp_path, monkeypatch):
    """``~/scans/a.png``, ``$DATA/a.png`` or ``"a.png"`` in an @list failed as "no such file or folder"
    alone: no shell reads the list, and the user saw the path they meant named missing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XVF_TEST_DATA", str(tmp_path / "data"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "l.txt").write_text("nosuch.png\n")
    (tmp_path / "list.txt").write_text('~/a.png\n$XVF_TEST_DATA/a.png\n"a.png"\nnosuch.png\n')
    home, var, quoted, missing = discover(["@list.txt"])
    said = {}
    for f in (home, var, quoted):
        with pytest.raises(ImageReadError) as err:
            read_input(f)
        said[f.path] = str(err.value)
    assert said["~/a.png"] == ("~/a.png: no such file or folder (list.txt, line 1); an @list's lines are read as "
                               "written, not by a "
                               f"shell, so ~ does not mean a home folder there: write {tmp_path / 'home' / 'a.png'}")
    assert said["$XVF_TEST_DATA/a.png"].endswith(
        f"so $XVF_TEST_DATA is not expanded there: write {tmp_path / 'data' / 'a.png'}")
    assert said['"a.png"'].endswith("the quotes around it are part of its name: remove them")
    assert missing.problem is None  # nothing a shell would change: the reader's words alone
    with pytest.raises(ValueError) as err:  # the list itself: bash expands no ~ after the @
        discover(["@~/l.txt"])
    assert str(err.value) == ("@~/l.txt: the input list file ~/l.txt does not exist (a shell expands ~ only at the "
                              f"start of a word, not after @: write @{tmp_path / 'home' / 'l.txt'})")
    (tmp_path / "~").mkdir()  # a folder really named ~ here: the list in it is read, as written
    (tmp_path / "~" / "l.txt").write_text("nosuch.png\n")
    assert [f.path for f in discover(["@~/l.txt"])] == ["nosuch.png"]


def test_a_listed_file_that_is_not_there_names_its_list_and_line(tmp_path, monkeypatch, capsys):
    """A missing path of an @list failed naming the path alone ("~/x.png: no such file or folder; ..."):
    in a list of thousands of lines, the one to mend was left to be searched for. The failure names
    the list and line that give it (a nested list's own), in the Python API's records and in the
    CLI's lines; a file that is there, and a listed folder's images, are said as before."""
    from xvertfast.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ward").mkdir()
    (tmp_path / "ward" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "gone.png").symlink_to("nowhere.png")
    (tmp_path / "semi.png").symlink_to("old; v2.png")  # (a "; " in the reader's words, not before a hint)
    (tmp_path / "inner.txt").write_text("gone.png\nsemi.png\n")
    (tmp_path / "list.txt").write_text("bad.png\nward\n~/x.png\n@inner.txt\nnosuch.png\n")
    said = {}
    for f in discover(["@list.txt"]):
        with pytest.raises(ImageReadError) as err:
            read_input(f)
        said[f.path] = str(err.value)
    assert said["nosuch.png"] == "nosuch.png: no such file or folder (list.txt, line 5)"
    assert said["~/x.png"].startswith("~/x.png: no such file or folder (list.txt, line 3); an @list's lines are ")
    assert said["gone.png"] == ("gone.png: a broken symbolic link: what it points to (nowhere.png) does not exist "
                                "(inner.txt, line 1)")  # fmt: skip
    assert said["semi.png"] == ("semi.png: a broken symbolic link: what it points to (old; v2.png) does not exist "
                                "(inner.txt, line 2)")  # fmt: skip
    assert "line" not in said["bad.png"] and "line" not in said[os.path.join("ward", "bad.png")]
    assert main(["preprocess", "@list.txt", "-o", "out", "-q"]) == 1
    printed = capsys.readouterr()
    failed = [line.strip() for line in (printed.out + printed.err).splitlines() if line.strip().startswith("failed: ")]
    assert "failed: nosuch.png: no such file or folder (list.txt, line 5)" in failed
    assert any(line.startswith("failed: ~/x.png: no such file or folder (list.txt, line 3); ") for line in failed)


def test_a_listed_windows_variable_that_is_not_there_is_named_not_a_crash(tmp_path, monkeypatch):
    """Windows' os.path.expandvars expands %NAME% too, where the $NAME searched for then found
    nothing: a listed %DATA%\\a.png that does not exist raised AttributeError ('NoneType' object has
    no attribute 'group'). It is named as $NAME is; a variable expanded in a way not searched for
    (ntpath's ${A B}) is said so, unnamed."""
    import ntpath

    from xvertfast.io.files import _shell_words_in

    monkeypatch.setattr(os.path, "expandvars", ntpath.expandvars)
    monkeypatch.setenv("XVF_TEST_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XVF TEST", "D:")
    said = "an @list's lines are read as written, not by a shell, so {} is not expanded there: write {}"
    assert _shell_words_in("%XVF_TEST_DATA%\\a.png") == said.format("%XVF_TEST_DATA%", f"{tmp_path / 'data'}\\a.png")
    assert _shell_words_in("$XVF_TEST_DATA\\a.png") == said.format("$XVF_TEST_DATA", f"{tmp_path / 'data'}\\a.png")
    assert _shell_words_in("${XVF TEST}\\a.png") == said.format("a variable", "D:\\a.png")
    assert _shell_words_in("%XVF_TEST_NOT_SET%\\a.png") is None  # (not set: as written)
    monkeypatch.setenv("XVF-TEST-DATA", "E:")  # (ntpath expands a name with a - in it too)
    assert _shell_words_in("%XVF-TEST-DATA%\\a.png") == said.format("%XVF-TEST-DATA%", "E:\\a.png")
    assert _shell_words_in("scan_100%%.png") is None  # (ntpath's %% is a %: no variable, whatever it says)
    assert _shell_words_in("$XVF_TEST_NOT_SET\\%XVF_TEST_DATA%") == said.format(  # the one set is named
        "%XVF_TEST_DATA%", f"$XVF_TEST_NOT_SET\\{tmp_path / 'data'}")


def test_one_path_given_alone_is_one_input_not_its_characters(tmp_path, monkeypatch):
    # enhance_files("/data/cxr", out) in Python: iterating the string searched "/" (its first
    # character) and made each other character a missing input; a pathlib.Path raised
    # "'PosixPath' object has no attribute 'startswith'"
    from pathlib import Path

    from xvertfast.io.files import check_inputs, unsearched_image

    monkeypatch.chdir(tmp_path)
    for folder in ("ab", "a"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes(b"x")
    for given in ("ab", Path("ab"), [Path("ab")], b"ab"):
        check_inputs(given)
        assert [f.path for f in discover(given)] == [os.path.join("ab", "x.png")], given
    (tmp_path / "ab" / "out").mkdir()
    (tmp_path / "ab" / "out" / "y.png").write_bytes(b"x")
    assert unsearched_image(str(tmp_path / "ab" / "out"), Path("ab")) is not None
    with pytest.raises(NothingFound, match="^missing: no such file or folder$"):
        check_inputs(Path("missing"))
    with pytest.raises(TypeError, match=r"^inputs must be a path \(str or pathlib.Path\) or a list of paths, got int$"):
        discover(3)
    with pytest.raises(TypeError, match=r"^inputs must be a path \(str or pathlib.Path\) or a list of paths, got NoneType "
                                        r"None in the list$"):  # fmt: skip
        discover(["ab", None])


def test_lists_that_list_each_other_are_refused_by_line(tmp_path, monkeypatch):
    """A list naming itself, or one naming another that names it, was read until Python's limit:
    'error: maximum recursion depth exceeded while calling a Python object', naming no file. The
    same list reached twice without a loop is read, its files kept once."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "self.txt").write_text("a.png\n@self.txt\n")
    with pytest.raises(ValueError, match=r"^self\.txt, line 2: @self\.txt is a list this line is read from"):
        discover(["@self.txt"])
    (tmp_path / "one.txt").write_text("@two.txt\n")
    (tmp_path / "two.txt").write_text("a.png\n@./one.txt\n")
    with pytest.raises(ValueError, match=r"^two\.txt, line 2: @\./one\.txt is a list this line is read from"):
        discover(["@one.txt"])
    (tmp_path / "leaf.txt").write_text("a.png\n")
    (tmp_path / "both.txt").write_text("@leaf.txt\n@leaf.txt\n")
    assert [f.path for f in discover(["@both.txt", "@leaf.txt"])] == ["a.png"]
    assert list_files(["@both.txt"]) == [str(tmp_path / "both.txt"), str(tmp_path / "leaf.txt")]


def test_an_output_folder_holding_images_inside_a_listed_folder_is_found(tmp_path, monkeypatch):
    """Only folders given as such were looked at: with the archive named in an @list (or a list
    it names) and -o inside it, an image already in OUT was passed over by the search and left out
    without a word, where the folder given itself was refused."""
    from xvertfast.io.files import unsearched_image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "out").mkdir(parents=True)
    (tmp_path / "data" / "a.png").write_bytes(b"x")
    (tmp_path / "data" / "out" / "foreign.png").write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# the archive\ndata\tMONOCHROME2\n")
    (tmp_path / "lists.txt").write_text("@list.txt\n")
    for given in (["data"], ["@list.txt"], ["@lists.txt"]):
        assert unsearched_image("data/out", given) == os.path.join("data/out", "foreign.png"), given
    (tmp_path / "list.txt").write_text("data/a.png\n")  # a file listed: its folder is not searched
    assert unsearched_image("data/out", ["@list.txt"]) is None


def test_a_list_saved_with_a_byte_order_mark_or_as_utf16_is_read_or_said_so(tmp_path, monkeypatch):
    """Notepad's 'UTF-8 with BOM' put U+FEFF before the first path, which then 'does not exist'
    (said with the mark invisible in it); Windows PowerShell's ``>`` writes UTF-16, refused with
    the codec's words alone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfa.png\r\nb.png\r\n")
    found = discover(["@bom.txt"])
    assert [f.path for f in found] == ["a.png", "b.png"] and not any(f.problem for f in found)
    (tmp_path / "wide.txt").write_text("a.png\n", encoding="utf-16")
    with pytest.raises(ValueError, match=r"^@wide\.txt: the input list file wide\.txt is UTF-16 text: save it as UTF-8"):
        discover(["@wide.txt"])


def test_a_list_not_in_utf8_is_said_to_be_so_naming_the_file_and_line(tmp_path, monkeypatch):
    """A list saved in Latin-1 (a Windows editor's default) was refused as "cannot be read ('utf-8'
    codec can't decode byte 0xe4 in position 31: invalid continuation byte)": the codec's words,
    and a position in the reader's chunk. It says what the file is and what to do, and the line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bild.png").write_bytes(b"x")
    (tmp_path / "latin1.txt").write_bytes("bild.png\n# Aufnahmen März\nbild.png\n".encode("latin-1"))
    with pytest.raises(ValueError) as exc:
        discover(["@latin1.txt"])
    assert str(exc.value) == ("@latin1.txt: the input list file latin1.txt is not UTF-8 text (line 2 has byte 0xe4): "
                              "save it as UTF-8 (or plain ASCII), one path a line"), exc.value
    far = b"".join(b"bild.png\n" for _ in range(3000)) + "# März\n".encode("latin-1")  # past the reader's first chunk
    (tmp_path / "long.txt").write_bytes(far)
    with pytest.raises(ValueError, match=r"^@long\.txt: the input list file long\.txt is not UTF-8 text \(line 3001 "):
        discover(["@long.txt"])


def test_a_list_is_read_as_utf8_in_any_locale_and_one_with_nul_bytes_is_named(tmp_path):
    """A list was read in the locale's encoding: under LANG=C (ASCII) a UTF-8 list with a comment
    line 'Aufnahmen für März' could not be read ('ascii' codec can't decode byte 0xc3). A UTF-16
    list without a byte order mark decodes as UTF-8 with a NUL after every character, and failed
    as a bare 'embedded null byte' naming no file."""
    (tmp_path / "bild.png").write_bytes(b"x")
    (tmp_path / "umlaut.txt").write_bytes("\ufeff# Aufnahmen für März\nbild.png\n".encode())
    (tmp_path / "wide.txt").write_bytes("bild.png\n".encode("utf-16-le"))
    code = ("from xvertfast.io.files import discover\n"
            "print([f.path for f in discover(['@umlaut.txt'])])\n"
            "try:\n    discover(['@wide.txt'])\nexcept ValueError as exc:\n    print(exc)\n")  # fmt: skip
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    said = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=True).stdout.splitlines()  # fmt: skip
    assert said == ["['bild.png']", "@wide.txt: the input list file wide.txt holds NUL bytes (UTF-16 text without "
                    "a byte order mark, or not text): save it as UTF-8 (or plain ASCII), one path a line"], said


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="a pipe is named by /dev/fd/N")
def test_a_list_piped_in_is_read_once_for_the_search_and_the_checks_after_it(tmp_path, monkeypatch):
    """``@<(find data ...)`` and ``@/dev/stdin`` are pipes, whose text one read takes. The list was
    opened for its first two bytes (a UTF-16 mark?), then again for its text, which the first read's
    buffer had taken: nothing was found ('no image files found in @/dev/fd/63'). Each check after the
    search (an output folder in a listed folder, the lists a --report must not replace) read it again."""
    from xvertfast.io.files import InputLists, unsearched_image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "out").mkdir(parents=True)
    (tmp_path / "data" / "a.png").write_bytes(b"x")
    (tmp_path / "data" / "out" / "foreign.png").write_bytes(b"x")
    (tmp_path / "more.txt").write_text("data/a.png\tMONOCHROME1\n")
    read, write = os.pipe()
    os.write(write, b"# the archive\ndata\n@more.txt\n")
    os.close(write)
    try:
        piped, lists = f"@/dev/fd/{read}", InputLists()
        found = discover([piped], exclude=["data/out"], lists=lists)
        assert [(f.path, f.photometric) for f in found] == [(os.path.join("data", "a.png"), "MONOCHROME1")]
        assert unsearched_image("data/out", [piped], lists) == os.path.join("data", "out", "foreign.png")
        assert list_files([piped], lists) == [os.path.realpath(piped[1:]), str(tmp_path / "more.txt")]
    finally:
        os.close(read)


def test_a_file_written_where_a_search_of_an_input_folder_would_find_it_is_named_by_that_folder(tmp_path, monkeypatch):
    """What enhance asks of its --report and --preview (a sheet written in an input folder was enhanced
    by the next job given that folder): a folder listed in an @list is searched as one given."""
    from xvertfast.io.files import searched_input_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "done").mkdir(parents=True)
    (tmp_path / "data" / "done" / ".xvertfast-enhance.json").write_text("{}")  # another job's output folder
    (tmp_path / "list.txt").write_text("# the archive\ndata\n")
    for given in (["data"], ["@list.txt"]):
        assert searched_input_folder("data/sub/look.png", given) == "data", given
        assert searched_input_folder("data/1.2.840.5", given) == "data", given  # (a UID-named DICOM)
        for not_found in ("data/run.json", "data/.look.png", "data/.cache/look.png", "data/done/look.png",
                          "look.png", "data"):
            assert searched_input_folder(not_found, given) is None, (not_found, given)
        assert searched_input_folder("data/out/look.png", given, exclude=["data/out"]) is None, given


def test_a_list_line_of_a_polarity_without_a_path_is_refused_by_line(tmp_path, monkeypatch):
    """'<TAB>MONOCHROME1' (the path left out, or lost to an editor) was an input named '': the job
    said 'error: : no such file or folder', naming neither the list nor the line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "l.txt").write_text("a.png\n  \tMONOCHROME1\n")
    with pytest.raises(ValueError) as exc:
        discover(["@l.txt"])
    assert str(exc.value) == ("l.txt, line 2: MONOCHROME1 with no path before the tab: give the file's path, then a tab "
                              "and its polarity"), exc.value


def test_files_on_a_file_system_giving_every_inode_0_are_one_only_where_their_paths_are(tmp_path, monkeypatch):
    """same_file trusted st_ino and st_dev: where a file system gives every file the inode 0
    (sshfs-win, some SMB and WebDAV mounts) any two files were one, so write_image refused to write
    a new output as 'the input image'. The paths, their links resolved, decide there."""
    import numpy as np

    from xvertfast.io import files, read_image, write_image
    from xvertfast.io.errors import ImageWriteError

    real_stat = os.stat

    def stat_without_inodes(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((st.st_mode, 0, *st[2:]))  # (st_ino is the second field)

    write_image(tmp_path / "a.png", np.full((32, 32), 0.5))
    write_image(tmp_path / "b.png", np.full((32, 32), 0.5))
    os.symlink(tmp_path / "a.png", tmp_path / "link.png")
    pairs = [("a.png", "b.png"), ("a.png", "link.png"), ("link.png", "a.png"), ("a.png", "a.png"), ("a.png", "no.png")]
    as_is = [files.same_file(str(tmp_path / x), str(tmp_path / y)) for x, y in pairs]
    assert as_is == [False, True, True, True, False]
    monkeypatch.setattr(files.os, "stat", stat_without_inodes)
    assert os.stat(tmp_path / "b.png").st_ino == 0 and os.path.samefile(tmp_path / "a.png", tmp_path / "b.png")
    assert [files.same_file(str(tmp_path / x), str(tmp_path / y)) for x, y in pairs] == as_is
    like, was = read_image(tmp_path / "a.png"), (tmp_path / "a.png").read_bytes()
    write_image(tmp_path / "b.png", np.full((32, 32), 0.25), like=like, overwrite=True)  # another file: written
    assert (tmp_path / "b.png").read_bytes() != was
    with pytest.raises(ImageWriteError, match="refusing to overwrite the input image"):
        write_image(tmp_path / "link.png", np.full((32, 32), 0.25), like=like, overwrite=True)
    assert (tmp_path / "a.png").read_bytes() == was


def mount_without_inodes(monkeypatch, ignoring_case: bool) -> None:
    """Makes os.stat and os.lstat (first_same_file's for a path to be replaced) answer as a mount
    that gives every file the inode 0 (sshfs-win, SMB, WebDAV) and, ``ignoring_case``, finds a name
    in any case, as an SMB share from Linux or macOS does."""

    def answering(real_stat):
        def stat(path, *args, **kwargs):
            try:
                st = real_stat(path, *args, **kwargs)
            except FileNotFoundError:
                if not ignoring_case:
                    raise
                spelled = os.sep
                for name in os.path.abspath(path).split(os.sep)[1:]:  # (each folder's entry in its own case)
                    spelled = os.path.join(spelled, next((n for n in os.listdir(spelled)
                                                          if n.casefold() == name.casefold()), name))  # fmt: skip
                st = real_stat(spelled, *args, **kwargs)
            return os.stat_result((st.st_mode, 0, *st[2:]))  # (st_ino is the second field)

        return stat

    monkeypatch.setattr(os, "stat", answering(os.stat))
    monkeypatch.setattr(os, "lstat", answering(os.lstat))


def test_a_name_in_another_case_is_the_file_on_a_mount_ignoring_case_without_inodes(tmp_path, monkeypatch):
    """Where inodes are all 0, same_file compares the paths with their links resolved, and realpath
    keeps the case as given off Windows: on an SMB share mounted on Linux or macOS, OUT/A.PNG and
    OUT/a.png were two files, so an output spelled so was written over its input. Where the file
    system tells case apart the two names are two files, there or not."""
    from xvertfast.io.files import same_file

    (tmp_path / "Scans").mkdir()
    (tmp_path / "Scans" / "a.png").write_bytes(b"a")
    (tmp_path / "Scans" / "b.png").write_bytes(b"b")
    a = str(tmp_path / "Scans" / "a.png")
    with monkeypatch.context() as patched:
        mount_without_inodes(patched, ignoring_case=True)
        assert os.path.exists(tmp_path / "Scans" / "A.PNG") and os.stat(a).st_ino == 0
        assert same_file(str(tmp_path / "Scans" / "A.PNG"), a) and same_file(a, str(tmp_path / "Scans" / "A.PNG"))
        assert same_file(str(tmp_path / "SCANS" / "A.png"), a)  # (a folder spelled in another case too)
        assert not same_file(str(tmp_path / "Scans" / "B.PNG"), a)
    (tmp_path / "Scans" / "A.PNG").write_bytes(b"A")  # (a file system telling case apart: another file)
    with monkeypatch.context() as patched:
        mount_without_inodes(patched, ignoring_case=False)
        assert not same_file(str(tmp_path / "Scans" / "A.PNG"), a) and same_file(a, a)
