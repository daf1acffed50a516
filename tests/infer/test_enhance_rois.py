"""``xvertfast enhance --rois FILE``: spine ROI centres placed by hand for some images, the rest found."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tests.infer.test_enhance import TILE, chest_like, many_tiles_job, model_dir, tiny_model  # noqa: F401 (a fixture)
from xvertfast.cli import main
from xvertfast.infer import Enhancer
from xvertfast.io import read_image
from xvertfast.io.job_folder import LEDGER_FILE
from xvertfast.preprocess import find_spine

HEAD = "file,upper_row,upper_col,lower_row,lower_col\n"


def _inputs(tmp_path, seed):
    src = tmp_path / "in"
    src.mkdir()
    for k, name in enumerate(("a.png", "b.png")):
        Image.fromarray(np.round(chest_like(seed + k) * 255).astype(np.uint8)).save(src / name)
    return src


def _run(src, out, model, *extra):
    return main(["enhance", str(src), "-o", str(out), "--model", str(model), "--device", "cpu", "-q", *extra])


def _said(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_tiles_are_placed_at_the_given_centres_and_other_images_keep_theirs(tmp_path, model_dir, seed):
    """enhance had no way to give the centres that its spine warning told the user to give."""
    src = _inputs(tmp_path, seed)
    assert _run(src, tmp_path / "auto", model_dir) == 0
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,60,70,180,90\n")
    assert _run(src, tmp_path / "given", model_dir, "--rois", str(rois)) == 0
    auto, given = (np.asarray(Image.open(tmp_path / o / "a.png")) for o in ("auto", "given"))
    assert not np.array_equal(auto, given)
    for name in ("b.png",):  # not in the file: its centres are found, as without --rois
        assert np.array_equal(*(np.asarray(Image.open(tmp_path / o / name)) for o in ("auto", "given")))
    rad = read_image(src / "a.png")
    spine = find_spine(rad.pixels).with_centres((60, 70), (180, 90))
    expected = Enhancer(str(model_dir), device="cpu").enhance(rad, spine).pixels
    assert np.abs(given / 255.0 - expected).max() <= 1 / 255 + 1e-6


def test_a_rerun_redoes_the_images_whose_centres_changed_and_skips_the_rest(tmp_path, model_dir, seed, capsys):
    """The job's settings must not hold the CSV (an edit would be refused as other settings), and an
    output made at other centres must not be skipped as done."""
    src = _inputs(tmp_path, seed)
    out, rois = tmp_path / "out", tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,60,70,180,90\n")
    assert _run(src, out, model_dir, "--rois", str(rois)) == 0
    assert "2 done, 0 skipped" in _said(capsys)[0]

    def rerun(text: str | None, expect: str) -> None:
        if text is not None:
            rois.write_text(text)
        before = {n: (out / n).stat().st_mtime_ns for n in ("a.png", "b.png")}
        assert _run(src, out, model_dir, *(["--rois", str(rois)] if text is not None else [])) == 0
        assert expect in _said(capsys)[0]
        return {n for n in before if (out / n).stat().st_mtime_ns != before[n]}

    assert rerun(HEAD + "a.png,60,70,180,90\n", "0 done, 2 skipped") == set()  # the same centres
    assert rerun(HEAD + "a.png,62,70,180,90\n", "1 done, 1 skipped") == {"a.png"}  # a's moved
    assert rerun(HEAD + "a.png,62,70,180,90\nb.png,70,100,170,110\n", "1 done, 1 skipped") == {"b.png"}  # b's added
    assert rerun(HEAD + "b.png,70,100,170,110\n", "1 done, 1 skipped") == {"a.png"}  # a's removed: found again
    assert rerun(None, "1 done, 1 skipped") == {"b.png"}  # no file: every image's found
    lines = [json.loads(line) for line in (out / LEDGER_FILE).read_text().splitlines()]
    assert [line["centres"] for line in lines if line.get("output") == "a.png" and "centres" in line][-1] == \
        [62.0, 70.0, 180.0, 90.0]  # fmt: skip


def test_a_dry_run_plans_the_images_whose_centres_changed(tmp_path, model_dir, seed, capsys):
    src = _inputs(tmp_path, seed)
    out, rois = tmp_path / "out", tmp_path / "rois.csv"
    assert _run(src, out, model_dir) == 0
    rois.write_text(HEAD + "b.png,70,100,170,110\n")
    assert _run(src, out, model_dir, "--rois", str(rois), "--dry-run") == 0
    assert "1 to enhance, 1 done already" in _said(capsys)[0]


@pytest.mark.parametrize("rows, problem", [
    ("a.png,60,70,180,90\nc.png,1,2,3,4\n", "rois.csv, line 3: c.png is none of the inputs"),
    ("a.png,60,70,180,90\nb.png,sixty,70,180,90\n", "rois.csv, line 3: ROI centres must be numbers"),
    ("a.png,60,70,180,90\n,60,70,180,90\n", "rois.csv, line 3: the file column is empty"),
    ("a.png,60,70,180,90\na.png,60,70,180,90\n", "rois.csv, line 3: a.png has centres on line 2 already"),
    ("a.png,60,70,180,90\nx.png,60,70,180,90\n", "rois.csv, line 3: x.png is the file name of 2 inputs"),
    ("a.png,60,70,180,90\nb.png,180,70,60,90\n", "rois.csv, line 3: the upper ROI centre's row (180) must be above"),
])  # fmt: skip
def test_a_bad_row_stops_the_job_before_it_starts_naming_the_line(tmp_path, model_dir, seed, capsys, rows, problem):
    src = _inputs(tmp_path, seed)
    for sub in ("p1", "p2"):  # one file name in two folders
        (src / sub).mkdir()
        Image.fromarray(np.round(chest_like(seed + 5) * 255).astype(np.uint8)).save(src / sub / "x.png")
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + rows)
    out = tmp_path / "out"
    assert _run(src, out, model_dir, "--rois", str(rois)) == 2
    assert problem in _said(capsys)[1]
    assert not out.exists()


def test_a_path_tells_apart_inputs_of_one_file_name(tmp_path, model_dir, seed, capsys):
    src = _inputs(tmp_path, seed)
    for sub in ("p1", "p2"):
        (src / sub).mkdir()
        Image.fromarray(np.round(chest_like(seed + 5) * 255).astype(np.uint8)).save(src / sub / "x.png")
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + f"{src / 'p1' / 'x.png'},60,70,180,90\n")
    out = tmp_path / "out"
    assert _run(src, out, model_dir, "--rois", str(rois)) == 0
    assert not np.array_equal(*(np.asarray(Image.open(out / p / "x.png")) for p in ("p1", "p2")))


def test_a_centre_outside_its_image_fails_that_image_naming_the_line(tmp_path, model_dir, seed, capsys):
    src = _inputs(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "b.png,60,70,180,90\na.png,60,7000,180,90\n")
    out = tmp_path / "out"
    assert _run(src, out, model_dir, "--rois", str(rois)) == 1
    out_text, err = _said(capsys)
    assert "1 done, 0 skipped, 1 failed" in out_text
    assert f"{src / 'a.png'}: {rois}, line 3: the upper ROI centre (60, 7000) lies outside the 240x256 image" in err
    assert (out / "b.png").exists() and not (out / "a.png").exists()


def test_full_mode_refuses_the_centres_it_would_not_use(tmp_path, model_dir, seed, capsys):
    src = _inputs(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,60,70,180,90\n")
    out = tmp_path / "out"
    assert _run(src, out, model_dir, "--rois", str(rois), "--mode", "full") == 2
    assert "--rois places the tiles of --mode spine; --mode full enhances the whole image" in _said(capsys)[1]
    assert not out.exists()
    enhancer = Enhancer(str(model_dir), device="cpu", mode="full")
    # in the caller's words: it said '--rois ... --mode full' to a Python caller of rois= and mode=
    with pytest.raises(ValueError, match=r"^rois places the tiles of mode='spine'; mode='full' enhances the whole "
                                         r"image and uses no ROIs$"):  # fmt: skip
        enhancer.enhance_files([str(src)], str(out), rois=str(rois), progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match=r"^preview draws outputs: a dry run writes none$"):
        enhancer.enhance_files([str(src)], str(out), preview=str(tmp_path / "p.png"), dry_run=True, progress=False,
                               log=lambda m: None)  # fmt: skip


def _off_centre(seed: int) -> np.ndarray:
    """A chest cut off left of 30% of the width, bright to its right (not inverted): its spine
    is found at the edge of where it is looked for."""
    rng = np.random.default_rng(seed)
    band = 0.25 + 0.4 * (np.linspace(0, 1, 240) > 0.3)
    return np.clip(band[None, :] + 0.08 * rng.random((256, 240)), 0, 1)


def test_the_spine_warning_names_the_option_and_full_mode_does_not_give_it(tmp_path, model_dir, seed, capsys):
    """The warning said "give the centres", which enhance had no way to do; in full mode, which
    uses no ROIs, it warned of ROIs that may miss the spine."""
    src = tmp_path / "in"
    src.mkdir()
    pixels = _off_centre(seed)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(src / "off.png")
    assert find_spine(pixels).pinned_at_search_edge()
    assert _run(src, tmp_path / "spine", model_dir) == 0
    err = _said(capsys)[1]
    assert "the spine was found at the edge" in err and "(--rois FILE)" in err
    assert _run(src, tmp_path / "full", model_dir, "--mode", "full") == 0
    assert "the spine was found at the edge" not in _said(capsys)[1]


def test_images_not_shaped_like_a_chest_are_enhanced_with_a_warning_in_spine_mode(tmp_path, model_dir, seed, capsys):
    """A 4000 x 300 and a 300 x 4000 image were enhanced in spine mode without a word; they are
    still enhanced (never refused), with the warning given as it happens, in the summary and in
    the report; full mode, which finds no spine, says nothing of it."""
    src = tmp_path / "in"
    src.mkdir()
    for name, (h, w) in {"wide.png": (48, 480), "tall.png": (480, 48), "chest.png": (256, 240)}.items():
        Image.fromarray(np.round(chest_like(seed, h, w) * 255).astype(np.uint8)).save(src / name)
    report = tmp_path / "run.json"
    assert _run(src, tmp_path / "spine", model_dir, "--report", str(report)) == 0
    err = _said(capsys)[1]
    for name, shape in (("wide.png", "480 x 48"), ("tall.png", "48 x 480")):
        said = f"{src / name}: {shape}: not the shape of a frontal chest radiograph"
        assert err.count(said) == 2, err  # (as it happens, and again in the summary)
        assert (tmp_path / "spine" / name).exists()
    assert "chest.png: 256" not in err and "chest.png: 240" not in err
    files = {os.path.basename(r["input"]): r["warnings"] for r in json.loads(report.read_text())["files"]}
    assert "--rois" in files["wide.png"][0] and files["chest.png"] == []
    # full mode on the two others alone: the chest, of which spine mode said nothing either, was most of
    # full mode's tiles (the test's time)
    (src / "chest.png").unlink()
    assert _run(src, tmp_path / "full", model_dir, "--mode", "full") == 0
    assert "not the shape of" not in _said(capsys)[1]
    assert sorted(n for n in os.listdir(tmp_path / "full") if n.endswith(".png")) == ["tall.png", "wide.png"]


def test_the_python_api_takes_the_centres_read_or_a_path(tmp_path, model_dir, seed):
    from xvertfast.preprocess.centres import load_roi_centres

    src = _inputs(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,60,70,180,90\n")
    enhancer = Enhancer(str(model_dir), device="cpu")
    keyed_by_path = {src / "a.png": ((60, 70), (180, 90))}  # (refused by 0706abd: a key that was no str)
    for k, given in enumerate((str(rois), load_roi_centres(str(rois)), keyed_by_path)):
        out = tmp_path / f"out{k}"
        summary = enhancer.enhance_files([str(src)], str(out), rois=given, progress=False, log=lambda m: None)
        assert summary.done == 2
    outs = [np.asarray(Image.open(tmp_path / o / "a.png")) for o in ("out0", "out1", "out2")]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert os.path.exists(tmp_path / "out0" / "b.png")


def test_centres_on_the_last_rows_are_enhanced_and_a_spine_with_swapped_rows_is_refused_in_its_rows(seed):
    """Spine mode moved the centres SPINE_SHIFT apart and clamped them to the image, then checked the
    moved ones: rows 39.2 and 39.6 of a 40-row image (tile 32) were refused as 39.0438 over 39, "are
    the two swapped?", rows the user never gave. The spine given is checked instead, in its rows."""
    model = tiny_model(seed)
    model.metadata = {"training": {"config": {"roi_size": 32}}}
    enh = Enhancer(model, device="cpu", backend="torch", mode="spine")
    img = chest_like(seed, 40, 40)
    res = enh.enhance(img, find_spine(img, upper=(39.2, 20), lower=(39.6, 20)))
    assert len(res.boxes) == 2 and res.pixels.shape == (40, 40) and np.isfinite(res.pixels).all()
    swapped = dataclasses.replace(find_spine(img), upper=(30.0, 20.0), lower=(10.0, 20.0))  # not checked there
    with pytest.raises(ValueError, match=r"^enhance: the upper ROI centre's row \(30\) must be above the lower ROI "
                                         r"centre's \(10\), .*swapped"):  # fmt: skip
        enh.enhance(img, swapped)


@pytest.mark.parametrize("tile", [128, 512])
def test_the_roi_coverage_is_the_share_of_the_evaluation_rois_compose_fills_with_the_network_alone(seed, tile):
    """evaluate scored a model trained at --roi-size 128 on ROIs mostly of original pixels (like identity)
    and said nothing: spine_roi_coverage, which it now warns by, must count what compose does. Tiles of
    ones on an image darker than 0.7: a ROI pixel is 1 exactly where no original shows."""
    from xvertfast.infer.enhancer import _WEIGHT_ONE_TOLERANCE, spine_roi_coverage

    rng = np.random.default_rng(seed)
    enhancer = Enhancer(tiny_model(seed), device="cpu")
    enhancer.tile = tile  # (what the model's training config sets; compose runs no network)
    prep = enhancer.prepare(0.1 + 0.6 * rng.random((256, 256)))
    out = enhancer.compose(prep, torch.ones((2, 1, tile, tile)))
    rois = prep.spine.eval_rois()
    filled = sum(int((out[r.top : r.bottom, r.left : r.right] >= 1 - _WEIGHT_ONE_TOLERANCE).sum()) for r in rois)
    share = filled / sum((r.bottom - r.top) * (r.right - r.left) for r in rois)
    assert spine_roi_coverage(tile, prep.spine) == pytest.approx(share, abs=1e-12)
    # at the centres find_spine places: a tile of 128 covers 6% of the ROIs, one of 512 (the default) all
    assert spine_roi_coverage(tile) == (1.0 if tile == 512 else pytest.approx(0.063, abs=0.001))


@pytest.mark.parametrize("mode, tile, partial", [("spine", 128, True), ("spine", 512, False), ("full", 128, False)])
def test_the_share_left_original_is_given_only_where_spine_tiles_leave_rois_original(mode, tile, partial):
    # enhance's warning and evaluate's note each tested the mode and the share themselves
    from xvertfast.infer.enhancer import partial_roi_coverage, spine_roi_coverage

    share = partial_roi_coverage(types.SimpleNamespace(mode=mode, tile=tile))
    assert share == (spine_roi_coverage(tile) if partial else None)
    assert share is None or 0 < share < 1


def test_a_model_trained_on_small_rois_is_warned_of_as_a_job_starts_and_again_after_its_summary(
        tmp_path, model_dir, seed, capsys, monkeypatch):  # fmt: skip
    """A model trained at --roi-size 128 enhances two 128 px tiles (at 1024 rows) in spine mode, and
    nothing said so: a warning once a job (not an image), none in full mode, which covers the image.
    Said only as the job started, it scrolled away on a long job: it is said again after the summary
    line, kept on the summary (summary.notes) and in the --report's summary."""
    src = _inputs(tmp_path, seed)
    (src / "c.png").write_bytes((src / "a.png").read_bytes())  # three images: once a job is not once an image
    monkeypatch.setattr("sys.stderr", __import__("sys").stdout)  # (one stream: the order of what is said)
    assert _run(src, tmp_path / "spine", model_dir, "--report", str(tmp_path / "run.json")) == 0
    warning = (f"the model was trained at --roi-size {TILE}: spine mode enhances two tiles of {TILE} px a side (at "
               "1024 rows), 6% of the 512x290 ROIs evaluate scores")  # fmt: skip
    said = _said(capsys)[0]
    summary_at = said.index("3 done")
    assert said.count(f"warning: {warning}") == 2
    assert said.index(f"warning: {warning}") < summary_at < said.rindex(f"warning: {warning}")
    (note,) = json.loads((tmp_path / "run.json").read_text())["summary"]["notes"]
    assert note.startswith(warning)
    summary = Enhancer(model_dir, device="cpu").enhance_files([str(src)], str(tmp_path / "api"), progress=False,
                                                              log=lambda text: None)  # fmt: skip
    # from Python in Python's words: it was told of --roi-size and --mode full
    assert summary.notes == [note.replace(f"--roi-size {TILE}", f"roi_size={TILE}").replace("--roi-size 512", "roi_size=512")
                             .replace("--mode full", "mode='full'")]  # fmt: skip
    assert "--" not in summary.notes[0] and note != summary.notes[0]
    assert _run(src, tmp_path / "full", model_dir, "--mode", "full", "--report", str(tmp_path / "full.json")) == 0
    assert "--roi-size" not in _said(capsys)[0]
    assert json.loads((tmp_path / "full.json").read_text())["summary"]["notes"] == []


def test_the_spine_warnings_of_a_job_name_the_callers_options_also_from_the_reader_threads(tmp_path, model_dir, seed,
                                                                                              capsys, monkeypatch):  # noqa: F811
    """A strip's spine warning told enhance_files' Python callers to use --preview and --rois; and
    worded on the job's reader threads, which start without the CLI's CLI_OPTIONS, it would have
    named Python's arguments to a CLI user."""
    import threading

    from xvertfast.infer import batch

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(np.tile(chest_like(seed), (1, 3)) * 255).astype(np.uint8)).save(src / "strip.png")
    worded_in = []
    image_warnings = batch.image_warnings
    monkeypatch.setattr(batch, "image_warnings",
                        lambda *a, **k: worded_in.append(threading.current_thread().name) or image_warnings(*a, **k))
    summary = Enhancer(model_dir, device="cpu").enhance_files([str(src)], str(tmp_path / "api"), progress=False,
                                                              log=lambda line: None)  # fmt: skip
    (said,) = summary.records[0].warnings
    assert said.endswith("720 x 256: not the shape of a frontal chest radiograph (width / height 2.8, outside 0.5-2); "
                         "the spine found may be wrong: check it with enhance_files' preview= or preprocess_files' "
                         "overlay, or give rois="), said  # fmt: skip
    assert "--" not in said
    assert _run(src, tmp_path / "cli", model_dir) == 0
    err = _said(capsys)[1]
    assert ("the spine found may be wrong: check it with --preview (enhance) or the overlay (preprocess), or give "
            "--rois") in err, err
    assert "preview=" not in err and "rois=" not in err
    assert len(worded_in) == 2 and all(name.startswith("xvf-read") for name in worded_in), worded_in


def test_a_model_of_tiny_tiles_is_said_to_fill_a_part_of_the_rois_not_none():
    """A model trained at --roi-size 32 fills 0.38% of the evaluation ROIs: enhance's warning and
    evaluate's note said "0%", as if its output were nowhere in them."""
    from xvertfast.eval.evaluate import _rois_left_original
    from xvertfast.infer.batch import _small_tiles_warning

    enhancer = types.SimpleNamespace(mode="spine", tile=32)
    assert "two tiles of 32 px a side (at 1024 rows), 0.38% of the 512x290 ROIs" in _small_tiles_warning(enhancer)
    (note,) = _rois_left_original(["mine:xvertnet=runs/a/model"], {"mine": types.SimpleNamespace(enhancer=enhancer)})
    assert "its spine tiles fill 0.38% of the 512x290 evaluation ROIs' pixels" in note, note


def test_evaluates_note_of_a_model_on_small_rois_names_roi_size_in_the_callers_words():
    """evaluate's note of a model trained on small ROIs told its Python callers of --roi-size 64 and
    --roi-size 512, as enhance_files' warning did before f58c58e: roi_size=64 from Python."""
    from xvertfast._text import cli_running
    from xvertfast.eval.evaluate import _rois_left_original

    args = (["mine:xvertnet=runs/a/model"], {"mine": types.SimpleNamespace(enhancer=types.SimpleNamespace(mode="spine",
                                                                                                         tile=64))})
    (note,) = _rois_left_original(*args)
    assert "was trained at roi_size=64: its spine tiles" in note and note.endswith("trained at roi_size=512 (the default)")
    assert "--" not in note, note
    with cli_running({"methods"}):
        (said,) = _rois_left_original(*args)
    assert said == note.replace("roi_size=", "--roi-size "), said


def test_full_mode_with_a_model_of_small_rois_is_warned_of_its_hundreds_of_tiles(tmp_path, seed, capsys):
    """Full mode cuts an image into tiles of the model's roi_size at 1024 rows: a model trained at
    roi_size=64 cut a 128 x 128 image into 441 tiles of 8 px, each its own network run and WLS solve
    (minutes on a CPU), and nothing said so. A job says it once as it starts (a dry run here: no
    solve), in the caller's words; one at 128 (121 tiles) or 512 (9) is not warned of."""
    from xvertfast.infer.enhancer import many_full_tiles
    from xvertfast.model import save_model

    said = many_full_tiles(64, (128, 128))
    assert said.startswith("the model was trained at roi_size=64: full mode cuts this 128x128 image into 441 tiles "
                           "of 8 px a side, each its own network run and WLS solve, where a model trained at "
                           "roi_size=512 (the default) cuts it into 9"), said  # fmt: skip
    assert said.endswith("mode='spine' enhances the spine's two tiles, or enhance with a model trained at a larger "
                         "roi_size"), said  # fmt: skip
    assert many_full_tiles(64).startswith("the model was trained at roi_size=64: full mode cuts a square image into "
                                          "441 tiles (64 px a side at 1024 rows)")  # fmt: skip
    assert many_full_tiles(32, (32, 32)) is not None  # 1024 tiles of 1 px
    assert all(many_full_tiles(tile, shape) is None for tile in (128, 512) for shape in ((128, 128), None))
    model = save_model(tiny_model(seed), tmp_path / "m64", extra={"training": {"config": {"roi_size": 64}}})
    src = _inputs(tmp_path, seed)
    assert _run(src, tmp_path / "out", model, "--mode", "full", "--dry-run") == 0
    err = _said(capsys)[1]
    cli = "warning: the model was trained at --roi-size 64: full mode cuts a square image into 441 tiles"
    assert err.count(cli) == 2 and "--mode spine enhances the spine's two tiles" in err, err  # (again after the summary)
    summary = Enhancer(model, device="cpu", mode="full").enhance_files([str(src)], str(tmp_path / "api"), dry_run=True,
                                                                       progress=False, log=lambda line: None)  # fmt: skip
    assert summary.notes == [many_full_tiles(64)]
    assert Enhancer(model, device="cpu", mode="spine").enhance_files(  # spine mode: its own note, of the ROIs
        [str(src)], str(tmp_path / "api"), dry_run=True, progress=False, log=lambda line: None).notes[0].startswith(
        "the model was trained at roi_size=64: spine mode enhances two tiles")  # fmt: skip


def test_full_mode_warns_of_an_elongated_images_many_tiles_in_a_job_too_and_blames_its_shape(tmp_path, seed,
                                                                                              monkeypatch):
    """A job said of a square image whether full mode takes many tiles, so an image far from square
    (tiles are squares sized to its height) went unwarned in a batch; and the default model, which
    cuts a 100 x 10000 strip into 789, was told to use a model trained at roi_size=512: itself. The
    threshold lowered here (a model at 512 cuts a square image into 9, a 64 x 96 one into 12), the
    network skipped (its tiles' cost is not what is tested)."""
    from xvertfast.infer import enhancer as enhancer_module
    from xvertfast.infer.enhancer import many_full_tiles

    strip = many_full_tiles(512, (100, 10000))
    assert strip.startswith("full mode cuts this 100x10000 image into 789 tiles of 50 px a side, each its own network "
                            "run and WLS solve, where a square image takes 9: the tiles are squares"), strip  # fmt: skip
    assert "trained at roi_size=512" not in strip and strip.endswith("or crop the image to the part to enhance")
    both = many_full_tiles(128, (100, 10000))  # (the model cuts it 15 times finer than the shape alone: said first)
    assert both.startswith("the model was trained at roi_size=128: full mode cuts this 100x10000 image into 12221 "
                           "tiles of 12 px a side, each its own network run and WLS solve, where a model trained at "
                           "roi_size=512 (the default) cuts it into 789: many times the work"), both  # fmt: skip
    assert both.endswith("or enhance with a model trained at a larger roi_size, or crop the image"), both
    monkeypatch.setattr(enhancer_module, "MANY_FULL_TILES", 9)
    model = tiny_model(seed)
    model.metadata = {"training": {"config": {"roi_size": 512}}}
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed, 64, 96) * 255).astype(np.uint8)).save(wide := src / "wide.png")
    enh = Enhancer(model, device="cpu", backend="torch", mode="full")
    monkeypatch.setattr(enh, "run_tiles", lambda xp, y: xp)
    summary = enh.enhance_files([str(src)], str(tmp_path / "out"), progress=False, log=lambda line: None)
    (record,) = summary.records
    assert record.warnings == [f"{wide}: {many_full_tiles(512, (64, 96))}"], record.warnings
    assert record.warnings[0].startswith(f"{wide}: full mode cuts this 64x96 image into 12 tiles of 32 px a side")
    assert summary.notes == []  # (the job's note, of a square image: 9 tiles)


@pytest.mark.parametrize("shape", [(64, 96), (64, 2000), (100, 3000), (2048, 2500), (1024, 1024), (5, 3), (1, 1)])
def test_full_mode_tiles_are_counted_as_many_as_are_cut(shape):
    """The check of an image full mode cuts into many tiles counts them without making them (a
    strip's thousands of boxes were made to be counted, for each image of a job): the count and
    side are those of the tiles enhance cuts."""
    from xvertfast.infer import enhancer as enhancer_module

    for tile in (32, 96, 256, 512):
        boxes = enhancer_module._full_boxes(shape, tile)
        assert enhancer_module._full_tiles(shape, tile) == (len(boxes), boxes[0].bottom - boxes[0].top), (shape, tile)
    assert enhancer_module.default_full_tiles(shape) == len(enhancer_module._full_boxes(shape, 512))


def test_a_jobs_check_for_many_tiles_says_the_same_counted_or_cut(monkeypatch):
    """batch._many_tiles_of: said of the image where its shape is a cause, else the job's note of
    the model with this image; the words of tiles counted are those of tiles cut (prep.boxes). The
    threshold lowered here (a model at 256 cuts a 64 x 96 image into 40 tiles, one at 512 into 12)."""
    from xvertfast.infer import batch
    from xvertfast.infer import enhancer as enhancer_module
    from xvertfast.infer.enhancer import many_full_tiles

    monkeypatch.setattr(enhancer_module, "MANY_FULL_TILES", 30)
    strip = (64, 2000)  # (a model at 512 cuts it into over 30: its shape is a cause)
    for tile, shape in ((256, (64, 96)), (512, strip), (256, strip)):
        prep = types.SimpleNamespace(pixels=np.zeros(shape, np.float32), boxes=enhancer_module._full_boxes(shape, tile))
        said, note = batch._many_tiles_of(tile, "in/x.png", prep)
        if shape == strip:
            assert said == many_full_tiles(tile, shape) and note is None, (said, note)
            assert f"full mode cuts this 64x2000 image into {len(prep.boxes)} tiles of " in said, said
        else:  # the model alone: the job's note, of this image
            assert said is None and note == many_full_tiles(tile, shape, prep.boxes, named="in/x.png"), (said, note)
            assert f"e.g. in/x.png (64x96) into {len(prep.boxes)} tiles of " in note, note


def test_the_check_for_many_tiles_makes_no_tiles_to_count_them(monkeypatch):
    """A full-mode job asks, of each image, how many tiles a model at 512 cuts it into, and a model's
    note counts a square image's: each made the image's list of tiles only to take its length (a
    strip's hundreds, thousands at small tiles). Counted from the grid now: no list is made but
    the one enhance cuts the image by (prep.boxes)."""
    from xvertfast.infer import batch
    from xvertfast.infer import enhancer as enhancer_module

    strip, tile = (100, 3000), 96
    prep = types.SimpleNamespace(pixels=np.zeros(strip, np.float32), boxes=enhancer_module._full_boxes(strip, tile))

    def made(shape, tile):
        raise AssertionError(f"tiles of {shape} made at {tile} px to be counted")

    monkeypatch.setattr(enhancer_module, "_full_boxes", made)
    assert enhancer_module.default_full_tiles(strip) > enhancer_module.MANY_FULL_TILES
    said, note = batch._many_tiles_of(tile, "in/x.png", prep)
    assert f"this 100x3000 image into {len(prep.boxes)} tiles" in said and note is None, (said, note)
    assert "a square image into 441 tiles" in enhancer_module.many_full_tiles(64)  # (the model's note)


def test_a_job_says_once_where_the_model_alone_cuts_some_images_into_many_tiles(tmp_path, seed, monkeypatch):
    """A model trained at roi_size=96 cuts a square image into 196 tiles (under 200: no job note) and
    each landscape 2048 x 2500 one into 252: each got its own warning, worded of the model. Said once
    a job now, and a square image's record holds none; kept in the job's notes (summary.notes, the
    --report), naming an image that crossed the threshold as an example, where it was a warning
    alone mid-job that said a square image's count, under the threshold. The threshold lowered here
    (a model at 256 cuts a square image into 25, a 64 x 96 one into 40, 64 x 128 into 55; one at 512
    into 12, 15), the network skipped (its tiles' cost is not what is tested)."""
    from xvertfast.infer.enhancer import many_full_tiles

    enh, src = many_tiles_job(tmp_path, seed, monkeypatch, {"square": (64, 64), "wide": (64, 96), "wider": (64, 128)})
    report = tmp_path / "report.json"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        summary = enh.enhance_files([str(src)], str(tmp_path / "out"), progress=False, log=lambda line: None,
                                    report=str(report), workers=1)  # (one reader: the first image is known)
    assert [record.warnings for record in summary.records] == [[], [], []]
    texts = [str(w.message) for w in said if "tiles" in str(w.message)]
    assert len(texts) == 1 and summary.notes == texts, (texts, summary.notes)  # (said once, and kept)
    assert json.loads(report.read_text())["summary"]["notes"] == texts
    assert texts == [many_full_tiles(256, (64, 96), named=str(src / "wide.png"))], texts
    assert texts[0].startswith(f"the model was trained at roi_size=256: full mode cuts images into over 30 tiles, "
                               f"e.g. {src / 'wide.png'} (64x96) into 40 tiles of 16 px a side, each its own network "
                               "run and WLS solve, where a model trained at roi_size=512 (the default) cuts it into "
                               "12: many times the work"), texts  # fmt: skip


def test_a_job_warns_of_an_image_whose_shape_cuts_it_into_many_tiles_after_its_note_of_the_model(tmp_path, seed,
                                                                                                   monkeypatch):
    """Once a job had given its note of a model that cuts images into many full-mode tiles, the images
    read after it were not checked at all: a 100 x 10000 strip read after a model at roi_size=96 gave
    its note at a 2048 x 2500 image was not told that its shape alone makes hundreds of tiles, or to
    crop it. Here d_strip is read after a_wide gave the note (batch_size=1 and one reader read 3
    images ahead); e_wide, read after it too, joins the note without a warning of its own."""
    from xvertfast.infer.enhancer import many_full_tiles

    enh, src = many_tiles_job(tmp_path, seed, monkeypatch, {"a_wide": (64, 96), "b_square": (64, 64), "c_square": (
        64, 64), "d_strip": (64, 256), "e_wide": (64, 96)}, batch_size=1)  # fmt: skip
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = enh.enhance_files([str(src)], str(tmp_path / "out"), progress=False, log=lambda line: None,
                                    workers=1)  # fmt: skip
    assert summary.notes == [many_full_tiles(256, (64, 96), named=str(src / "a_wide.png"))], summary.notes
    strip = f"{src / 'd_strip.png'}: {many_full_tiles(256, (64, 256))}"
    assert strip.startswith(f"{src / 'd_strip.png'}: the model was trained at roi_size=256: full mode cuts this "
                            "64x256 image into"), strip  # fmt: skip
    warned = [record.warnings for record in summary.records]  # (in input order)
    assert warned == [[], [], [], [strip], []], warned


def test_enhance_warns_of_full_modes_many_tiles_before_the_network_runs(seed, monkeypatch):
    """Enhancer.enhance said nothing before the minutes of a model of small ROIs' hundreds of full-mode
    tiles (the threshold lowered here: a model at 256 cuts a 64 x 64 image into 25, cheap to cut)."""
    from xvertfast.infer import enhancer as enhancer_module

    model = tiny_model(seed)
    model.metadata = {"training": {"config": {"roi_size": 256}}}
    monkeypatch.setattr(enhancer_module, "MANY_FULL_TILES", 20)

    class NetworkRan(Exception):
        pass

    def network(xp, y):
        raise NetworkRan  # (the warning is said before the network runs, which is not run here)

    for mode, warned in (("full", True), ("spine", False)):
        enh = Enhancer(model, device="cpu", backend="torch", mode=mode)
        monkeypatch.setattr(enh, "run_tiles", network)
        with warnings.catch_warnings(record=True) as said, pytest.raises(NetworkRan):
            warnings.simplefilter("always")
            enh.enhance(chest_like(seed, 64, 64))
        texts = [str(w.message) for w in said if issubclass(w.category, UserWarning)]
        expected = ("the model was trained at roi_size=256: full mode cuts this 64x64 image into 25 tiles of 16 px a "
                    "side, each its own network run and WLS solve, where a model trained at roi_size=512 (the "
                    "default) cuts it into 9")  # fmt: skip
        assert any(t.startswith(expected) for t in texts) == warned, texts
