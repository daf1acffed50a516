"""``xvertfast preprocess``: outputs, resumability, and every bad-input case of issue #4."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.conftest import ClosedPipe, folder_state, said_around_the_bar
from xvertfast.cli import main
from xvertfast.io.job_folder import job_files
from xvertfast.pipeline.preprocess_files import OVERLAY_KEY, SUFFIXES, overlay, preprocess_files
from xvertfast.preprocess import find_spine

JOB_STATE = job_files("preprocess")


def radiograph_like(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, size)
    body = np.exp(-(x[None, :] ** 2) / 0.02) * 0.6 + 0.2 + 0.05 * rng.random((size, size))
    return np.round(np.clip(body, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(radiograph_like(0)).save(src / "good1.png")
    Image.fromarray(radiograph_like(1)).save(src / "sub" / "good2.png")
    (src / "empty.png").write_bytes(b"")
    (src / "text.png").write_text("not an image")
    Image.fromarray(np.full((1, 1), 9, np.uint8)).save(src / "one.png")
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(src / "flat.png")
    full = (src / "good1.png").read_bytes()
    (src / "cut.png").write_bytes(full[: len(full) // 2])
    (src / "notes.txt").write_text("ignored: not an image extension")
    return src


def test_outputs_errors_and_resume(folder, tmp_path):
    out = tmp_path / "out"
    logs = []
    summary = preprocess_files([str(folder)], str(out), progress=False, log=logs.append)
    assert sorted(os.path.basename(p) for p in summary.done) == ["good1.png", "good2.png"]
    failed = {os.path.basename(p): reason for p, reason in summary.failed}
    assert set(failed) == {"empty.png", "text.png", "one.png", "flat.png", "cut.png"}
    assert "empty file" in failed["empty.png"] and "not one" in failed["text.png"]
    assert "too small" in failed["one.png"] and "constant image" in failed["flat.png"]
    assert "truncated or corrupt" in failed["cut.png"]
    assert all(str(folder) in r for r in failed.values())  # each error names its file
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name not in JOB_STATE)
    assert made == sorted([f"good1{s}" for s in SUFFIXES] + [f"sub/good2{s}" for s in SUFFIXES])
    xp = np.asarray(Image.open(out / "good1_xp.png"))
    assert xp.dtype == np.uint16 and xp.max() == 65535
    # NAME_y.png is Y scaled by its own 99.5th percentile of |Y|: the picture said not by how much,
    # so its greys could neither be read as values nor compared with another image's
    y = tifffile.imread(out / "good1_y.tiff")
    with Image.open(out / "good1_y.png") as im:
        said = im.text["Description"]
    scale = float(np.percentile(np.abs(y), 99.5))
    assert f"mid-grey is 0, white +{scale:.4g} and black -{scale:.4g}" in said
    assert said.endswith("its values are in good1_y.tiff")
    again = preprocess_files([str(folder)], str(out), progress=False, log=logs.append)
    assert len(again.skipped) == 2 and not again.done
    stale = out / "sub" / f".good2{SUFFIXES[1]}.q7x_3k2a.part"  # what a killed run's atomic write leaves
    stale.write_bytes(b"half")
    preprocess_files([str(folder)], str(out), progress=False, log=logs.append)
    assert not stale.exists()


def test_a_y_that_is_0_almost_everywhere_is_said_to_be_drawn_at_a_fixed_scale(tmp_path, monkeypatch):
    """Y 0 at its 99.5th percentile of |Y| (one pixel not): NAME_y.png is drawn with white +1, and its
    Description said that was "the 99.5th percentile of |Y|", which is 0."""
    from dataclasses import replace

    from xvertfast.pipeline import preprocess_files as module

    real = module.preprocess

    def one_pixel_y(pixels):
        pp = real(pixels)
        y = np.zeros_like(pp.y)
        y[5, 7] = 0.5
        return replace(pp, y=y)

    monkeypatch.setattr(module, "preprocess", one_pixel_y)
    Image.fromarray(radiograph_like(0, 32)).save(tmp_path / "a.png")
    summary = preprocess_files([str(tmp_path / "a.png")], str(tmp_path / "out"), progress=False, log=lambda m: None)
    assert len(summary.done) == 1, summary.failed
    with Image.open(tmp_path / "out" / "a_y.png") as im:
        said, grey = im.text["Description"], np.asarray(im)
    assert said == ("Y, the guidance image, for viewing: mid-grey is 0, white +1 and black -1 (a fixed scale: the "
                    "99.5th percentile of |Y|, which sets it otherwise, is 0; values past them clipped); its values "
                    "are in a_y.tiff"), said  # fmt: skip
    assert grey[5, 7] == round(0.75 * 255) and grey[0, 0] in (127, 128)  # +0.5 three quarters up: white is +1


def test_cli_exit_code_and_summary(folder, tmp_path, capsys):
    code = main(["preprocess", str(folder / "good1.png"), str(folder / "empty.png"), "-o", str(tmp_path / "o"), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 done, 0 skipped, 1 failed" in captured.out
    assert "empty.png: empty file" in captured.err
    assert main(["preprocess", str(folder / "good1.png"), "-o", str(tmp_path / "o"), "-q"]) == 0  # skipped: fine


@pytest.mark.parametrize("size", [96, 700])
def test_the_overlay_has_a_key_naming_what_each_colour_marks(size):
    """An overlay opened on its own (a viewer, a slide, one of hundreds) showed a yellow line, orange
    circles and blue and green boxes with nothing in it saying which is which: the key was only in
    --help. A strip below the image (which keeps its pixel coordinates) now draws each mark beside
    its name."""
    pixels = (np.asarray(Image.fromarray(radiograph_like(0)).resize((size, size))) / 255).astype(np.float32)
    rgb = overlay(pixels, find_spine(pixels))
    assert rgb.shape[1] == size and rgb.shape[0] > size
    key = rgb[size:]
    for colour, _ in OVERLAY_KEY:
        assert (key == colour).all(axis=-1).any(), f"the key has no {colour} mark"
    assert (key.min(axis=-1) > 200).sum() > 20  # its names, written light on dark


@pytest.fixture
def fresh_key_font():
    """The key's fonts loaded anew in the test, and its fonts not kept for the tests after it."""
    from xvertfast.pipeline.preprocess_files import _key_font

    _key_font.cache_clear()
    yield
    _key_font.cache_clear()


def test_the_overlay_key_is_drawn_with_pillow_10_0s_font(monkeypatch, fresh_key_font):
    # Pillow 10.0, which the requirements' pillow>=10 allows, has no load_default(size=...): every
    # image of a preprocess job failed at its overlay with "unexpected keyword argument 'size'"
    from PIL import ImageFont

    real, calls = ImageFont.load_default, []
    monkeypatch.setattr(ImageFont, "load_default", lambda: calls.append(1) or real())
    pixels = (radiograph_like(0) / 255).astype(np.float32)
    key = overlay(pixels, find_spine(pixels))[pixels.shape[0] :]
    for colour, _ in OVERLAY_KEY:
        assert (key == colour).all(axis=-1).any(), f"the key has no {colour} mark"
    assert (key.min(axis=-1) > 200).sum() > 20
    assert calls == [1]  # its font, not one loaded before this test


def test_the_overlay_key_loads_its_font_once_per_size_not_once_per_image(monkeypatch, fresh_key_font):
    """Each overlay loaded the key's font anew (a TrueType load): once per image of a batch job."""
    from PIL import ImageFont

    real, sizes = ImageFont.load_default, []

    def counted(**kwargs):
        sizes.append(kwargs.get("size"))
        return real(**kwargs)

    monkeypatch.setattr(ImageFont, "load_default", counted)
    pixels = (np.asarray(Image.fromarray(radiograph_like(0)).resize((900, 900))) / 255).astype(np.float32)
    spine = find_spine(pixels)
    first = overlay(pixels, spine)
    for _ in range(2):
        np.testing.assert_array_equal(overlay(pixels, spine), first)
    assert sizes == [20]


def _key_mark(strip: np.ndarray, colour) -> str:
    """What the key drew in ``colour``: a vertical line, a circle or a box (by its bounding box)."""
    ys, xs = np.nonzero((strip == colour).all(axis=-1))
    assert len(xs), f"the key has no {colour} mark"
    if xs.max() - xs.min() < 4:
        return "line"
    corner = (strip[ys.min(), xs.min()] == colour).all()
    return "box" if corner else "circle"


def test_the_overlay_key_draws_each_mark_by_what_it_marks_not_by_its_colour(monkeypatch):
    """The key chose a line or a circle by comparing the entry's colour with the spine line's and
    the band's: with the two colours swapped in OVERLAY_KEY, the spine line's entry showed a circle."""
    from xvertfast.pipeline import preprocess_files as pf

    (line, line_name), (band, band_name), *rest = OVERLAY_KEY
    monkeypatch.setattr(pf, "OVERLAY_KEY", ((band, line_name), (line, band_name), *rest))
    strip = np.asarray(pf._overlay_key(1000, 20, 2))
    assert _key_mark(strip, band) == "line"  # the spine line's entry, now in the band's colour
    assert _key_mark(strip, line) == "circle"
    assert [_key_mark(strip, colour) for colour, _ in rest] == ["box", "box"]


def test_the_summary_counts_and_repeats_the_warnings(tmp_path, capsys):
    """An image that looks inverted (or whose spine was found at the edge) is the one whose overlay
    to look at: the summary counts such images and lists the warnings after it, as enhance's does
    (they were said once, mid-job, and scrolled away on a job of hundreds)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(radiograph_like(0)).save(src / "a.png")
    Image.fromarray(255 - radiograph_like(1)).save(src / "b.png")  # stored bone-dark
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert "2 done (1 with warnings), 0 skipped, 0 failed" in captured.out
    said_after = captured.err.split("looks inverted", 1)[1]  # said during the job, then again
    assert f"  warning: {src / 'b.png'}: looks inverted" in said_after
    summary = preprocess_files([str(src)], str(tmp_path / "api"), progress=False, log=lambda m: None)
    assert [path for path, _ in summary.warned] == [str(src / "b.png")]


def test_the_summary_lists_a_screenful_of_warned_and_failed_images_then_counts_the_rest(tmp_path, capsys):
    """Listed whole, a job of thousands repeated thousands of lines at its end, each said already
    as its image finished (preprocess keeps no file of them: those lines are where they are)."""
    from xvertfast._text import FAILED_LISTED, WARNED_LISTED

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(WARNED_LISTED + 1):
        Image.fromarray(255 - radiograph_like(k)).save(src / f"dark{k:02d}.png")  # stored bone-dark
    for k in range(FAILED_LISTED + 2):
        (src / f"text{k:02d}.png").write_text("not an image")
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 1
    captured = capsys.readouterr()
    assert f"{WARNED_LISTED + 1} done ({WARNED_LISTED + 1} with warnings), 0 skipped, {FAILED_LISTED + 2} failed" in captured.out
    err = captured.err
    assert len(re.findall(r"(?m)^warning: .*looks inverted", err)) == WARNED_LISTED + 1  # each as it finished
    assert len(re.findall(r"(?m)^error: .*text", err)) == FAILED_LISTED + 2
    assert len(re.findall(r"(?m)^  warning: .*looks inverted", err)) == WARNED_LISTED  # the end summary's
    assert "\n  ... and 1 more warned file: each was said above as it finished\n" in err
    assert len(re.findall(r"(?m)^  failed: .*text", err)) == FAILED_LISTED
    assert "\n  ... and 2 more failed files: each was said above as it finished\n" in err


def test_errors_and_warnings_start_their_own_line_under_the_progress_bar(folder, tmp_path, capsys):
    # printed after the bar's text, which ends without a newline: "...[00:00<?, ?img/s]error: ..."
    assert main(["preprocess", str(folder), "-o", str(tmp_path / "out")]) == 1
    said_around_the_bar(capsys.readouterr().err)


def test_directory_named_like_an_image_and_missing_files(tmp_path):
    (tmp_path / "dir.png").mkdir()
    Image.fromarray(radiograph_like(2)).save(tmp_path / "dir.png" / "inside.png")
    summary = preprocess_files([str(tmp_path / "dir.png"), str(tmp_path / "missing.png")], str(tmp_path / "o"),
                               progress=False, log=lambda m: None)  # fmt: skip
    assert [os.path.basename(p) for p in summary.done] == ["inside.png"]  # a folder is searched
    assert "no such file" in summary.failed[0][1]


def test_an_output_outside_the_folder_fails_that_file_only(tmp_path, monkeypatch):
    from xvertfast.io.files import InputFile
    from xvertfast.pipeline import preprocess_files as module

    for name, seed in (("secret.png", 0), ("fine.png", 1)):
        Image.fromarray(radiograph_like(seed)).save(tmp_path / name)
    # discover() never gives such a relative path; the guard behind it must hold anyway
    found = [InputFile(str(tmp_path / "secret.png"), "../secret.png"), InputFile(str(tmp_path / "fine.png"), "fine.png")]
    monkeypatch.setattr(module, "discover", lambda inputs, exclude=(), lists=None, real_paths=None: found)
    summary = preprocess_files(["ignored"], str(tmp_path / "out"), progress=False, log=lambda m: None)
    assert [os.path.basename(p) for p in summary.done] == ["fine.png"]
    ((path, reason),) = summary.failed
    assert path.endswith("secret.png") and "outside" in reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine.png", "out", "secret.png"]  # nothing beside it


def test_an_input_whose_outputs_name_would_pass_255_bytes_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A 250-byte 'x...x.png' was read and preprocessed, then failed with a bare '[Errno 36] File name too
    long' naming a temporary: its _overlay.png is 258 bytes, and its three other outputs were written and
    abandoned. It is refused as the job is planned (a dry run says so too), naming its longest output; an
    input whose own name passes 255 bytes (its file system holds such names: exFAT, SMB) is planned."""
    from xvertfast.io.files import InputFile
    from xvertfast.pipeline import preprocess_files as module

    src = tmp_path / "in"
    src.mkdir()
    long_name = src / ("x" * 246 + ".png")  # 250 bytes: _xp.png 253, _y.tiff 253, _y.png 252, _overlay.png 258
    for path, seed in ((long_name, 1), (src / "ok.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(path)
    read, read_input = [], module.read_input
    monkeypatch.setattr(module, "read_input", lambda f, **kwargs: read.append(f.path) or read_input(f, **kwargs))
    why = (f"{long_name}: its output's name would be 258 bytes long (_overlay.png in place of the extension of the "
           "input's name), more than the 255 a file name may have; give the input a shorter name")  # fmt: skip
    out = tmp_path / "out"
    for dry_run in (True, False):
        summary = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None, dry_run=dry_run)
        assert summary.failed == [(str(long_name), why)]
    assert [os.path.basename(p) for p in summary.done] == ["ok.png"] and read == [str(src / "ok.png")]
    assert sorted(p.name for p in out.iterdir()) == sorted([*JOB_STATE, *(f"ok{s}" for s in SUFFIXES)])
    held = str(src / ("ü" * 150 + ".png"))  # 304 bytes, 154 UTF-16 units
    ((f, outs),) = module._plan([InputFile(held, os.path.basename(held))], str(out))
    assert f.path == held and [os.path.basename(o) for o in outs] == ["ü" * 150 + s for s in SUFFIXES]


def test_two_inputs_with_one_output_name_fail_the_second(tmp_path):
    for site, seed in (("siteA", 1), ("siteB", 2)):
        (tmp_path / site).mkdir()
        Image.fromarray(radiograph_like(seed)).save(tmp_path / site / "img1.png")
    summary = preprocess_files([str(tmp_path / "siteA"), str(tmp_path / "siteB")], str(tmp_path / "o"),
                               progress=False, log=lambda m: None)  # fmt: skip
    assert [os.path.basename(os.path.dirname(p)) for p in summary.done] == ["siteA"]
    assert summary.failed[0][0] == str(tmp_path / "siteB" / "img1.png")
    assert "are also those of" in summary.failed[0][1] and "siteA" in summary.failed[0][1]
    assert not summary.skipped


def _outputs(out, name: str) -> list:
    return [out / f"{name}{s}" for s in SUFFIXES]


def test_an_edited_input_is_redone_and_an_unchanged_one_skipped(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    preprocess_files([str(src)], str(out), progress=False, log=lambda m: None)
    before = (out / "a_xp.png").read_bytes()
    Image.fromarray(radiograph_like(5)).save(src / "a.png")  # re-exported with other content
    os.utime(src / "a.png", ns=(os.stat(src / "a.png").st_atime_ns, os.stat(src / "a.png").st_mtime_ns + 10**9))
    again = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None)
    assert [os.path.basename(p) for p in again.done] == ["a.png"]
    assert [os.path.basename(p) for p in again.skipped] == ["b.png"]
    assert (out / "a_xp.png").read_bytes() != before


def test_an_input_the_list_now_tags_monochrome1_is_redone(tmp_path):
    """Its outputs were made of the image read bone bright: a rerun with its @list line tagged
    MONOCHROME1 (as "looks inverted" advises) skipped it as done, keeping them."""
    src, out = tmp_path / "a.png", tmp_path / "out"
    Image.fromarray(radiograph_like(0, 64)).save(src)
    untagged, tagged = tmp_path / "l1.txt", tmp_path / "l2.txt"
    untagged.write_text(f"{src}\n")
    tagged.write_text(f"{src}\tMONOCHROME1\n")
    preprocess_files([f"@{untagged}"], str(out), progress=False, log=lambda m: None)
    [made] = out.rglob("a_xp.png")  # (placed as the list's path leads)
    before = made.read_bytes()
    again = preprocess_files([f"@{tagged}"], str(out), progress=False, log=lambda m: None)
    assert (len(again.done), len(again.skipped)) == (1, 0) and made.read_bytes() != before
    assert len(preprocess_files([f"@{tagged}"], str(out), progress=False, log=lambda m: None).skipped) == 1


def test_a_file_the_job_did_not_write_is_never_replaced(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    Image.fromarray(radiograph_like(0)).save(src / "a.png")
    Image.fromarray(radiograph_like(1)).save(src / "b.png")
    preprocess_files([str(src / "b.png")], str(out), progress=False, log=lambda m: None)  # the folder has a ledger
    (out / "a_overlay.png").write_bytes(b"someone's own picture")
    for overwrite in (False, True):
        summary = preprocess_files([str(src)], str(out), overwrite=overwrite, progress=False, log=lambda m: None)
        ((path, reason),) = summary.failed
        assert path.endswith("a.png") and "a_overlay.png exists and was not written by xvertfast preprocess" in reason
        assert (out / "a_overlay.png").read_bytes() == b"someone's own picture"
        assert not (out / "a_xp.png").exists()  # nothing of that input written beside it
    assert [os.path.basename(p) for p in summary.done] == ["b.png"]  # --overwrite redid the job's own


def test_a_folder_from_before_the_ledger_resumes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    preprocess_files([str(src / "a.png"), str(src / "b.png")], str(out), progress=False, log=lambda m: None)
    for name in JOB_STATE:  # what an xvertfast before the ledger left: the outputs alone
        (out / name).unlink()
    _outputs(out, "b")[0].unlink()  # b's set is incomplete: not taken as done
    # a first run after the upgrade on c alone makes the ledger; a's whole set is still taken later
    assert [os.path.basename(p) for p in preprocess_files([str(src / "c.png")], str(out), progress=False,
                                                          log=lambda m: None).done] == ["c.png"]  # fmt: skip
    summary = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None)
    assert sorted(os.path.basename(p) for p in summary.skipped) == ["a.png", "c.png"]
    ((path, reason),) = summary.failed  # some of b's outputs alone: not taken, not replaced
    assert path.endswith("b.png") and "not written by xvertfast preprocess" in reason
    # a is now in the ledger as done; an edit of it is redone like any other
    assert not preprocess_files([str(src / "a.png")], str(out), progress=False, log=lambda m: None).done


def test_other_settings_are_refused_without_overwrite(tmp_path, monkeypatch, capsys):
    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(radiograph_like(0)).save(src / "a.png")
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0
    monkeypatch.setattr(module, "SETTINGS", {**module.SETTINGS, "lam": 0.5})
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds outputs of an xvertfast preprocess job with other settings (lam 0.8 -> 0.5)" in err
    assert main(["preprocess", str(src), "-o", str(out), "-q", "--overwrite"]) == 0
    assert "1 done" in capsys.readouterr().out


def test_a_full_disk_stops_the_job(tmp_path, monkeypatch, capsys):
    """And where the ledger too could not take the run's end line (the disk full for it as well),
    status said the run was "killed, or its node lost"; it says the disk is full, and that the same
    command resumes once the disk has room (which the job's line did not say either)."""
    import errno

    from xvertfast.io.job_folder import JobFolder
    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    full, ledger_write = [], JobFolder._write

    def no_space(*args, **kwargs):
        full.append(True)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, "_write_float_tiff", no_space)

    def ledger_full_too(job, *args, **kwargs):  # (once an output found the disk full)
        return no_space() if full else ledger_write(job, *args, **kwargs)

    monkeypatch.setattr(JobFolder, "_write", ledger_full_too)
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 1
    captured = capsys.readouterr()
    assert "0 done, 0 skipped, 1 failed" in captured.out and "stopped: the disk is full, 2 not processed (the same " \
        "command resumes, once the disk has room)" in captured.out, captured.out  # fmt: skip
    monkeypatch.undo()
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "(the disk is full): 0 inputs done, 0 skipped, 1 failed, 2 left" in said and "its node lost" not in said, said
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0  # a's first output is redone, not kept
    assert "3 done" in capsys.readouterr().out


def test_a_log_closed_during_the_job_stops_it_and_the_same_call_resumes(tmp_path):
    """`xvertfast preprocess in -o out |& head -1`: the line after head exited raised BrokenPipeError
    out of the job (the ledger "an error: BrokenPipeError", no summary). It stops now, as on a full disk."""
    import errno

    from xvertfast.io.job_folder import job_status

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.png").write_text("not an image")  # (its error line is the one that cannot be written)
    for name, seed in (("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed, 64)).save(src / name)

    def closed(line):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    summary = preprocess_files([str(src)], str(out), progress=False, log=closed)
    assert (summary.stopped, summary.not_processed, len(summary.failed)) == (
        "its log could not be written (Broken pipe)", 2, 1)  # fmt: skip
    led = job_status(str(out), "preprocess").ledgers[0]
    assert (led.ended, led.stop) == ("stopped", summary.stopped)
    again = preprocess_files([str(src)], str(out), progress=False, log=lambda line: None)
    assert (again.stopped, len(again.done), len(again.failed)) == (None, 2, 1)


def test_a_log_file_on_a_full_disk_stops_the_job_saying_to_free_room_first(tmp_path, capsys):
    """`xvertfast preprocess in -o out 2> log.txt`, log.txt's disk full: the job stopped "its log
    could not be written (No space left on device)", and neither its line nor status's said to free
    room before the same command resumes (it stopped again at once), as they do where an output
    finds the disk full."""
    import errno

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.png").write_text("not an image")  # (its error line is the one that cannot be written)
    Image.fromarray(radiograph_like(1, 32)).save(src / "b.png")

    def full(line):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    summary = preprocess_files([str(src)], str(out), progress=False, log=full, command="xvertfast preprocess in -o out")
    assert summary.line().endswith("; stopped: its log could not be written (the disk is full), 1 not processed (the "
                                   "same command resumes, once the disk has room)"), summary.line()  # fmt: skip
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "  to resume the job without --shard, once the disk has room: xvertfast preprocess in -o out\n" in said, said


def test_a_job_called_from_python_is_told_to_resume_in_python_s_words(tmp_path):
    """preprocess_files called from Python, no command= given, whose log could not be written (a
    closed pipe): its line said "(the same command resumes)", a command it never ran."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_text("not an image")  # (its error line is the one that cannot be written)
    Image.fromarray(radiograph_like(1, 32)).save(src / "b.png")

    def closed(line):
        raise BrokenPipeError(32, "Broken pipe")

    summary = preprocess_files([str(src)], str(tmp_path / "out"), progress=False, log=closed)
    assert summary.line().endswith("; stopped: its log could not be written (Broken pipe), 1 not processed (call "
                                   "preprocess_files() again the same way to resume)"), summary.line()  # fmt: skip


def test_a_progress_bar_whose_stream_is_closed_stops_the_job_as_its_log_does(tmp_path, monkeypatch):
    """`xvertfast preprocess in -o out |& head -1`: the bar's stderr closed, tqdm raised BrokenPipeError
    as the bar was made (it absorbs EIO alone), past the job's log: "an error: BrokenPipeError". It
    stops now before its first input's solve and writes, as enhance does (it preprocessed that one
    first)."""
    import sys

    from xvertfast.io.job_folder import job_status

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(radiograph_like(seed, 64)).save(src / name)
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    summary = preprocess_files([str(src)], str(out), progress=True, log=lambda line: None)
    monkeypatch.undo()
    assert (summary.stopped, len(summary.done), summary.not_processed) == (
        "its log could not be written (Broken pipe)", 0, 2)  # fmt: skip
    assert job_status(str(out), "preprocess").ledgers[0].ended == "stopped"
    assert sorted(os.listdir(out)) == sorted(JOB_STATE)  # (no output)
    again = preprocess_files([str(src)], str(out), progress=False, log=lambda line: None)
    assert (again.stopped, len(again.done), len(again.skipped)) == (None, 2, 0)


def test_the_command_whose_job_stopped_at_its_lost_log_exits_1(tmp_path, monkeypatch, capsys):
    """`xvertfast preprocess in -o out |& head -1` (or its stderr on a full disk), the job stopped at
    its progress bar with every input left, none failed: it exited 0, "all done" to a script going
    on (`&& xvertfast train ...`), where enhance exits 1 for a stop."""
    import sys

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(radiograph_like(0, 32)).save(src / "a.png")
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    code = main(["preprocess", str(src), "-o", str(out)])
    monkeypatch.undo()
    assert "0 done, 0 skipped, 0 failed" in capsys.readouterr().out and code == 1, code


def test_a_dry_run_whose_log_is_lost_plans_every_input(tmp_path):
    """A dry run whose log closed at its first line stopped planning there, and its summary, on
    stdout, gave that part of the plan as the whole ("0 to preprocess, ... 1 would fail"). It writes
    nothing, so it plans on: the summary counts every input."""
    import errno

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.png").write_bytes(b"")  # (empty: its error line is the first, and cannot be written)
    for name, seed in (("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed, 64)).save(src / name)

    def closed(line):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    plan = preprocess_files([str(src)], str(out), progress=False, log=closed, dry_run=True)
    assert (plan.stopped, len(plan.planned), len(plan.failed), plan.not_processed) == (None, 2, 1, 0)
    assert not out.exists()


def test_a_log_lost_at_the_last_images_line_does_not_stop_a_job_that_is_done(tmp_path):
    """The last input's error line lost: the job said "stopped early: its log could not be written;
    0 images not processed; the same command resumes" with nothing left. It ends as done."""
    import errno

    from xvertfast.io.job_folder import job_status

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(radiograph_like(0, 64)).save(src / "a.png")
    (src / "b.png").write_text("not an image")  # (its error line, the last, cannot be written)

    def closed(line):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    summary = preprocess_files([str(src)], str(out), progress=False, log=closed)
    assert (summary.stopped, len(summary.done), len(summary.failed)) == (None, 1, 1)
    assert job_status(str(out), "preprocess").ledgers[0].ended == "finished"


def test_an_output_file_system_gone_read_only_stops_the_job_as_a_full_disk_does(tmp_path, monkeypatch, capsys):
    """Only a full disk stopped it: on a file system remounted read-only (after an error, a snapshot)
    the job read and preprocessed every image of the archive, to fail each at its first write."""
    import errno

    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    tried = []

    def read_only(path, *args, **kwargs):
        tried.append(path)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(module, "_write_float_tiff", read_only)
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 1
    said = capsys.readouterr().out
    assert "0 done, 0 skipped, 1 failed" in said and len(tried) == 1
    assert "stopped: the output folder's file system is read-only, 2 not processed" in said, said
    monkeypatch.undo()
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0  # resumed once writable
    assert "3 done" in capsys.readouterr().out


def _three_images_b_failing_to_write(tmp_path, monkeypatch, exc: BaseException):
    """(in, out): a.png, b.png and c.png in ``in``, and the writing of b's overlay (the last of its
    outputs) raising ``exc``; monkeypatch.undo() lets it write again."""
    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    real = module._write_rgb

    def write_rgb(path, rgb):
        if os.path.basename(path).startswith("b_"):
            raise exc
        real(path, rgb)

    monkeypatch.setattr(module, "_write_rgb", write_rgb)
    return src, out


def test_an_image_whose_writing_fails_keeps_none_of_its_outputs(tmp_path, monkeypatch, capsys):
    """Its overlay, written last, fails (a disk error, the disk full): the outputs written before it
    are removed, as a failed file gets none (they passed for the image's outputs)."""
    import errno

    src, out = _three_images_b_failing_to_write(tmp_path, monkeypatch, OSError(errno.EIO, "Input/output error"))
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 1
    assert "2 done, 0 skipped, 1 failed" in capsys.readouterr().out
    made = sorted(p.name for p in out.iterdir() if p.name not in JOB_STATE)
    assert made == sorted(n + s for n in ("a", "c") for s in SUFFIXES)  # none of b's
    monkeypatch.undo()
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0
    assert "1 done, 2 skipped" in capsys.readouterr().out


def test_an_interrupt_says_what_was_done_and_leaves_no_part_of_the_image_in_flight(tmp_path, monkeypatch, capsys):
    """Ctrl-C, or SIGTERM (which the CLI turns into the same KeyboardInterrupt), while an image is
    written: the summary says what is done and what is left, exit 130, and the image in flight
    has no outputs (it printed only "interrupted")."""
    src, out = _three_images_b_failing_to_write(tmp_path, monkeypatch, KeyboardInterrupt())
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 130
    said = capsys.readouterr().out
    assert "1 done, 0 skipped, 0 failed" in said
    assert "stopped: interrupted, 2 not processed (the same command resumes)" in said
    made = sorted(p.name for p in out.iterdir() if p.name not in JOB_STATE)
    assert made == sorted("a" + s for s in SUFFIXES)
    monkeypatch.undo()
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0
    assert "2 done, 1 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(5, "Input/output error")], ids=["interrupt", "io-error"])
def test_status_counts_no_output_of_an_image_whose_writing_stopped(tmp_path, monkeypatch, capsys, exc):
    # its outputs were removed, yet the ledger still said they were being written: status gave
    # "4 started and not finished (in flight, left by a killed run, ...)" for files that were gone
    from xvertfast.io.job_folder import job_status

    src, out = _three_images_b_failing_to_write(tmp_path, monkeypatch, exc)
    main(["preprocess", str(src), "-o", str(out), "-q"])
    capsys.readouterr()
    status = job_status(str(out), "preprocess")
    assert (status.done, status.unfinished) == (4 * (1 if isinstance(exc, KeyboardInterrupt) else 2), 0)
    assert main(["status", str(out)]) == 0
    assert ", 0 started and not finished (" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0  # the rerun redoes the image
    assert job_status(str(out), "preprocess").done == 12


def test_an_unexpected_error_fails_that_file_alone(tmp_path, monkeypatch, capsys):
    """Out of memory on one huge image (the WLS solver's allocation), any other error: that file
    fails, named, and the job goes on to the others and its summary."""
    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2), ("d.png", 3)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    real_read, real_preprocess, real_find_spine = module.read_input, module.preprocess, module.find_spine
    reading = [""]  # the file being processed (one at a time)

    def read_input(f, **kwargs):
        reading[0] = os.path.basename(f.path)
        return real_read(f, **kwargs)

    def preprocess(pixels, *args, **kwargs):
        if reading[0] == "b.png":
            raise MemoryError("std::bad_alloc")
        return real_preprocess(pixels, *args, **kwargs)

    def find_spine(pixels, *args, **kwargs):
        if reading[0] == "c.png":
            raise RuntimeError("solver crashed")
        return real_find_spine(pixels, *args, **kwargs)

    monkeypatch.setattr(module, "read_input", read_input)
    monkeypatch.setattr(module, "preprocess", preprocess)
    monkeypatch.setattr(module, "find_spine", find_spine)
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 1
    captured = capsys.readouterr()
    assert "2 done, 0 skipped, 2 failed" in captured.out
    assert f"{src / 'b.png'}: out of memory (std::bad_alloc)" in captured.err
    assert f"{src / 'c.png'}: solver crashed" in captured.err
    made = sorted(p.name for p in out.iterdir() if p.name not in JOB_STATE)
    assert made == sorted(n + s for n in ("a", "d") for s in SUFFIXES)  # no partial outputs of b or c
    monkeypatch.undo()
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0  # the rerun does b and c
    assert "2 done, 2 skipped" in capsys.readouterr().out


def test_a_bug_in_our_own_code_stops_the_job_with_its_traceback(tmp_path, monkeypatch):
    """A TypeError from our code is no file's fault: it propagates (it failed every file, named,
    without a traceback)."""
    from xvertfast.pipeline import preprocess_files as module

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(radiograph_like(seed)).save(src / name)

    def find_spine(pixels, *args, **kwargs):
        raise TypeError("find_spine() got an unexpected keyword argument 'band'")

    monkeypatch.setattr(module, "find_spine", find_spine)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        module.preprocess_files([str(src)], str(out), progress=False, log=lambda line: None)


def test_nothing_found_and_an_unusable_output_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["preprocess", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "-q"]) == 1
    assert "no image files found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing to do: no folder, no ledger
    Image.fromarray(radiograph_like(0)).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    assert main(["preprocess", str(tmp_path / "a.png"), "-o", str(tmp_path / "file"), "-q"]) == 2
    assert "is a file" in capsys.readouterr().err


def _names(paths) -> list[str]:
    return sorted(os.path.basename(p) for p in paths)


def test_a_dry_run_writes_nothing_and_plans_what_the_run_does(tmp_path, capsys, monkeypatch):
    import itertools
    import time

    from xvertfast.io import job_folder

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, seed in (("a.png", 0), ("b.png", 1), ("c.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(src / name)
    (src / "c.tif").write_bytes((src / "c.png").read_bytes())  # c's outputs twice: the second fails

    def both(**kwargs):
        """The dry run's plan (the folder unchanged by it), then the run's outcome."""
        before = folder_state(out)
        plan = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None, dry_run=True, **kwargs)
        assert folder_state(out) == before and plan.dry_run and not plan.done
        done = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None, **kwargs)
        assert (_names(plan.planned), _names(plan.skipped)) == (_names(done.done), _names(done.skipped))
        assert [p for p, _ in plan.failed] == [p for p, _ in done.failed]
        return plan

    plan = both()
    assert _names(plan.planned) == ["a.png", "b.png", "c.png"] and _names(p for p, _ in plan.failed) == ["c.tif"]
    Image.fromarray(radiograph_like(5)).save(src / "a.png")  # edited: to redo
    os.utime(src / "a.png", ns=(os.stat(src / "a.png").st_atime_ns, os.stat(src / "a.png").st_mtime_ns + 10**9))
    Image.fromarray(radiograph_like(6)).save(src / "d.png")  # new
    Image.fromarray(radiograph_like(7)).save(src / "e.png")
    (out / "e_overlay.png").write_bytes(b"someone's own picture")  # e would replace it: e fails
    plan = both()
    assert _names(plan.planned) == ["a.png", "d.png"] and _names(plan.skipped) == ["b.png", "c.png"]
    assert _names(p for p, _ in plan.failed) == ["c.tif", "e.png"]
    # from here on a ledger line every ten seconds: time enough for a rate (a few seconds are not)
    clock = itertools.count(time.time_ns() + 10**12, 10**10)
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(clock))
    plan = both(overwrite=True)
    assert _names(plan.planned) == ["a.png", "b.png", "c.png", "d.png"]

    # the CLI's summary line
    assert main(["preprocess", str(src), "-o", str(out), "--dry-run", "-q"]) == 1
    assert "dry run, nothing written: 0 to preprocess, 4 done already, 2 would fail" in capsys.readouterr().out
    Image.fromarray(radiograph_like(8)).save(src / "f.png")
    assert main(["preprocess", str(src), "-o", str(out), "--dry-run", "-q"]) == 1
    assert "the 1 would take about" in capsys.readouterr().err  # (its four output files, at the folder's rate)
    assert main(["preprocess", str(src), "-o", str(tmp_path / "new"), "--dry-run", "-q"]) == 1
    assert not (tmp_path / "new").exists()


def test_an_output_folder_in_the_input_folder_holding_images_is_refused(folder, tmp_path, capsys):
    # -o in/sub, which holds good2.png: the search passes the output folder over, so good2.png
    # was left out without a word (as enhance did, which refuses it since)
    before = folder_state(folder)
    for dry in ([], ["--dry-run"]):
        assert main(["preprocess", str(folder), "-o", str(folder / "sub"), "-q", *dry]) == 2
        assert f"{folder / 'sub'} holds images that no xvertfast job wrote ({folder / 'sub' / 'good2.png'})" in (
            capsys.readouterr().err)  # fmt: skip
    assert folder_state(folder) == before


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="a pipe is named by /dev/fd/N")
def test_a_list_piped_in_is_searched_and_checked_once_read(tmp_path, capsys, monkeypatch):
    """``preprocess @<(find data ...) -o data/out``: the list, a pipe, was read by the search, then again
    (empty) by the check of an OUT inside a listed folder, which let an image already in OUT be left
    out without a word (enhance reads each list once a job since 8edb764; preprocess did not)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "out").mkdir(parents=True)
    for name, seed in (("a.png", 1), ("out/foreign.png", 2)):
        Image.fromarray(radiograph_like(seed)).save(tmp_path / "data" / name)
    before = folder_state(tmp_path / "data")
    for dry in ([], ["--dry-run"]):
        read, write = os.pipe()
        os.write(write, b"data\n")
        os.close(write)
        try:
            assert main(["preprocess", f"@/dev/fd/{read}", "-o", "data/out", "-q", *dry]) == 2
        finally:
            os.close(read)
        said = capsys.readouterr().err
        assert ("data/out holds images that no xvertfast job wrote (data/out/foreign.png) and lies in an input "
                "folder: the output folder is not searched, so they would not be preprocessed; give the outputs a "
                "folder of their own") in said, said
    assert folder_state(tmp_path / "data") == before


def test_a_dry_run_says_that_missing_and_empty_inputs_would_fail(folder, tmp_path):
    # an empty file, a listed file that is gone: planned by the dry run, then failed by the run
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'good1.png'}\n{folder / 'empty.png'}\n{folder / 'gone.png'}\n")
    plan = preprocess_files([f"@{listing}"], str(tmp_path / "o"), progress=False, log=lambda m: None, dry_run=True)
    assert plan.planned == [str(folder / "good1.png")]
    assert dict(plan.failed) == {str(folder / "empty.png"): f"{folder / 'empty.png'}: empty file (0 bytes)",
                                 str(folder / "gone.png"): f"{folder / 'gone.png'}: no such file or folder ({listing}, "
                                                           "line 3)"}
    ran = preprocess_files([f"@{listing}"], str(tmp_path / "o"), progress=False, log=lambda m: None)
    assert dict(ran.failed) == dict(plan.failed) and ran.done == plan.planned


def test_a_file_or_folder_in_the_way_of_an_output_is_said_in_words(tmp_path, capsys):
    # was a raw "[Errno 17] File exists: '.../out/sub'" and, on a redo, "[Errno 21] Is a directory"
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub" / "deeper").mkdir(parents=True)
    for k, name in enumerate(["a.png", "sub/b.png", "sub/deeper/c.png"]):
        Image.fromarray(radiograph_like(k)).save(src / name)
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0
    (out / f"a{SUFFIXES[1]}").unlink()
    (out / f"a{SUFFIXES[1]}").mkdir()  # a folder where an output file of a.png goes
    shutil.rmtree(out / "sub")
    (out / "sub").write_text("a file where an output folder goes")
    plan, ran = "0 to preprocess, 0 done already, 3 would fail", "0 done, 0 skipped, 3 failed"
    for dry, said in ((["--dry-run"], plan), ([], ran)):
        assert main(["preprocess", str(src), "-o", str(out), "-q", "--overwrite", *dry]) == 1
        captured = capsys.readouterr()
        assert said in captured.out, captured.out
        err = captured.err
        assert "Errno" not in err and "Is a directory" not in err, err
        for name in ("sub/b.png", "sub/deeper/c.png"):
            assert f"{src / name}: {out / 'sub'} is a file, so" in err, err
        assert f"{src / 'a.png'}: {out / ('a' + SUFFIXES[1])} is a folder" in err, err
    assert (out / "sub").read_text() == "a file where an output folder goes"


def test_an_input_folder_without_images_beside_others_is_said_and_the_job_goes_on(tmp_path, capsys):
    # a mistyped one of several folders (here one of notes) was left out without a word
    (tmp_path / "in1").mkdir()
    (tmp_path / "in2").mkdir()
    Image.fromarray(radiograph_like(0)).save(tmp_path / "in1" / "a.png")
    (tmp_path / "in2" / "notes.txt").write_text("not an image")
    assert main(["preprocess", str(tmp_path / "in1"), str(tmp_path / "in2"), "-o", str(tmp_path / "out"), "-q"]) == 0
    captured = capsys.readouterr()
    assert "1 done" in captured.out
    assert f"warning: {tmp_path / 'in2'}: no image files found in it" in captured.err, captured.err


def test_a_rerun_that_skips_everything_states_no_rate(tmp_path, capsys):
    # said "(0.00 images/s)", as if preprocessing were stuck; enhance's summary leaves the rate out
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(radiograph_like(0)).save(src / "a.png")
    args = ["preprocess", str(src), "-o", str(tmp_path / "out"), "-q"]
    assert main(args) == 0
    assert "1 done, 0 skipped, 0 failed in " in capsys.readouterr().out
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"0 done, 1 skipped, 0 failed in \d+\.\d s", line), line


def test_status_says_the_recorded_numbers_are_the_wls_smoothings(folder, tmp_path, capsys):
    """status printed 'lam 0.8, alpha 1.2, eps 0.0001' alone: a reader could not place them."""
    out = tmp_path / "out"
    assert main(["preprocess", str(folder / "good1.png"), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    assert "  settings: WLS smoothing lam 0.8, alpha 1.2, eps 0.0001\n" in capsys.readouterr().out


def test_inputs_given_as_an_iterator_are_read_once_and_checked_as_a_list_is(folder, tmp_path):
    # preprocess_files(Path("/data").glob("*"), out): the search took the iterator's paths and left it
    # empty, so the output folder in/sub, which holds good2.png, was not refused (good2.png was passed
    # over without a word) and "nothing found" named no input
    from xvertfast.io.files import NothingFound

    with pytest.raises(ValueError, match="holds images that no xvertfast job wrote"):
        preprocess_files(iter([str(folder)]), str(folder / "sub"), dry_run=True, progress=False, log=lambda m: None)
    (tmp_path / "none").mkdir()
    with pytest.raises(NothingFound, match=f"^no image files found in {tmp_path / 'none'} "):
        preprocess_files(iter([tmp_path / "none"]), str(tmp_path / "out"), progress=False, log=lambda m: None)


@pytest.mark.parametrize("write", ["writes", "write-fails"])
def test_an_input_link_swapped_onto_its_own_output_is_neither_replaced_nor_deleted(tmp_path, monkeypatch, write):
    # in/x.png -> a/x.png, pointed at out/x_xp.png (a `latest` link re-pointed) once the job has decided to
    # redo it: its X_p was written over the input (write_image has no input to compare), or, the write failing,
    # the clean-up of its outputs removed the input
    from xvertfast.io.job_folder import job_status
    from xvertfast.pipeline import preprocess_files as module

    (tmp_path / "a").mkdir()
    (tmp_path / "in").mkdir()
    Image.fromarray(radiograph_like(0)).save(tmp_path / "a" / "x.png")
    link, out = tmp_path / "in" / "x.png", tmp_path / "out"
    link.symlink_to(tmp_path / "a" / "x.png")
    assert preprocess_files([str(tmp_path / "in")], str(out), progress=False, log=lambda _: None).done
    Image.fromarray(radiograph_like(1)).save(tmp_path / "a" / "x.png")  # edited: redone
    held = (out / "x_xp.png").read_bytes()
    read_input = module.read_input

    def swapping(f, **kwargs):
        link.unlink()
        link.symlink_to(out / "x_xp.png")
        return read_input(f, **kwargs)

    monkeypatch.setattr(module, "read_input", swapping)
    if write == "write-fails":
        monkeypatch.setattr(module, "write_image", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O error")))
    summary = preprocess_files([str(tmp_path / "in")], str(out), progress=False, log=lambda _: None)
    assert (out / "x_xp.png").read_bytes() == held
    ((path, why),) = summary.failed
    assert path == str(link) and "refusing to overwrite the input image" in why, why
    assert job_status(str(out), "preprocess").unfinished == 0  # refused before it was recorded as being written


def test_a_resume_resolves_each_input_folder_once_for_the_search_and_the_ledger(tmp_path, monkeypatch):
    """The search and the ledger each built a RealPaths (io/files): a resume resolved every input
    folder with os.path.realpath (an lstat of each folder on its path) three times, once for the
    walk's own check of links and once for each resolver. The job now has one, as enhance's has."""
    src = tmp_path / "in"
    for k in range(3):
        (src / f"ward{k}").mkdir(parents=True)
        Image.fromarray(radiograph_like(k)).save(src / f"ward{k}" / "a.png")
    job = ([str(src)], str(tmp_path / "out"))
    assert len(preprocess_files(*job, progress=False, log=lambda _: None).done) == 3
    resolved, real = [], os.path.realpath

    def counting(path, *args, **kwargs):
        resolved.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", counting)
    summary = preprocess_files(*job, progress=False, log=lambda _: None)
    monkeypatch.setattr(os.path, "realpath", real)
    assert len(summary.skipped) == 3, summary.line()
    assert [resolved.count(str(src / f"ward{k}")) for k in range(3)] == [2, 2, 2], resolved


def test_another_jobs_outputs_in_a_folder_swapped_in_are_not_adopted_into_the_ledger_of_the_folder_held(
        tmp_path, monkeypatch):  # fmt: skip
    """-o latest re-pointed at another preprocess job's folder (`ln -sfn c2 latest`) as the job planned:
    an input's four outputs, all there by the path and not in the ledger, were taken for an earlier
    version's and adopted, so c1's ledger recorded c2's files as c1's outputs, done."""
    from xvertfast.io.job_folder import job_files
    from xvertfast.pipeline import preprocess_files as module

    src, c1, c2, latest = tmp_path / "in", tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    for folder in (src, c1, c2):
        folder.mkdir()
    Image.fromarray(radiograph_like(0, 64)).save(src / "x.png")
    for suffix in SUFFIXES:
        (c2 / f"x{suffix}").write_bytes(b"another job's")
    latest.symlink_to(c1, target_is_directory=True)
    plan = module._plan

    def swapping(files, out_dir):  # (the job holds c1 by now)
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        return plan(files, out_dir)

    monkeypatch.setattr(module, "_plan", swapping)
    preprocess_files([str(src)], str(latest), progress=False, log=lambda _: None)
    assert sorted(os.listdir(c2)) == sorted(f"x{suffix}" for suffix in SUFFIXES)
    assert all((c2 / f"x{suffix}").read_bytes() == b"another job's" for suffix in SUFFIXES)
    assert '"adopted"' not in (c1 / job_files("preprocess")[1]).read_text()


def _link_swapped_at_the_second_read(tmp_path, monkeypatch, size=96):
    """in/ with three images and `latest` -> c1, re-pointed at c2 as preprocess reads the second image: the
    `ln -sfn c2 latest` of a user starting another job while this one runs."""
    from xvertfast.pipeline import preprocess_files as module

    src, c1, c2, latest = tmp_path / "in", tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    for folder in (src, c1, c2):
        folder.mkdir()
    for k in range(3):
        Image.fromarray(radiograph_like(k, size)).save(src / f"x{k}.png")
    latest.symlink_to(c1, target_is_directory=True)
    read_input, reads = module.read_input, []

    def swapping(f, **kwargs):
        reads.append(f.path)
        if len(reads) == 2:
            latest.unlink()
            latest.symlink_to(c2, target_is_directory=True)
        return read_input(f, **kwargs)

    monkeypatch.setattr(module, "read_input", swapping)
    return src, c1, c2, latest


def test_status_of_a_job_stopped_as_its_output_link_moved_gives_o_the_folder_it_read(tmp_path, monkeypatch, capsys):
    """`xvertfast status c1` after a stop at `ln -sfn c2 latest` said "to resume ...: cd D && xvertfast
    preprocess in -o latest", the command the summary warned writes into c2: it now gives -o c1."""
    src, c1, c2, latest = _link_swapped_at_the_second_read(tmp_path, monkeypatch, size=64)
    monkeypatch.chdir(tmp_path)
    assert main(["preprocess", "in", "-o", "latest", "-q"]) == 1
    capsys.readouterr()
    main(["status", str(c1)])
    said = capsys.readouterr().out
    assert f"to resume the job without --shard: cd {tmp_path} && xvertfast preprocess in -o {c1}" in said, said


def test_an_output_folder_link_swapped_during_the_job_stops_it_before_it_writes_elsewhere(tmp_path, monkeypatch):
    # -o latest, latest -> c1, pointed at c2 (another job's folder) as the second image is read: its outputs
    # went into c2 by the link, over that job's, while c1's ledger recorded them done
    from xvertfast.io.job_folder import job_status

    src, c1, c2, latest = _link_swapped_at_the_second_read(tmp_path, monkeypatch)
    (c2 / "x1_xp.png").write_bytes(b"another job's")
    summary = preprocess_files([str(src)], str(latest), progress=False, log=lambda _: None)
    assert os.listdir(c2) == ["x1_xp.png"] and (c2 / "x1_xp.png").read_bytes() == b"another job's"
    assert summary.stopped == ("the output folder now leads elsewhere (a link changed, or the folder moved, during "
                               "the job)")
    assert len(summary.done) == 1 and summary.not_processed == 1, summary
    ((path, why),) = summary.failed
    assert path == str(src / "x1.png") and f"now leads to {c2}, not to {c1}" in why, why
    # (the summary says what the error says, not "the same command resumes": run again, it would write into c2)
    give = f"give out_dir={str(c1)!r} to write the rest"
    assert why.endswith(give) and summary.line().endswith(f"1 not processed ({give})"), (why, summary.line())
    assert job_status(str(c1), "preprocess").done == 4 and job_status(str(c1), "preprocess").unfinished == 0
