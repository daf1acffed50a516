"""The batch job's contact sheet: which pairs it draws, where, and that it never fails a job."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from xvertfast.cli import main
from xvertfast.infer.preview import _GAP, _LABEL, _chosen, _spread, _thumb, is_preview, write_preview
from tests.infer.test_enhance import chest_like, model_dir  # noqa: F401 - fixture


def test_spread_takes_first_last_and_evenly_between():
    assert _spread(3, 8) == [0, 1, 2]
    picked = _spread(100, 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 99
    gaps = np.diff(picked)
    assert gaps.max() - gaps.min() <= 1
    assert _spread(5, 1) == [0]


def make_pairs(tmp_path, seed, n):
    pairs = []
    for i in range(n):
        src, out = tmp_path / f"in{i}.png", tmp_path / f"out{i}.png"
        img = chest_like(seed + i, 120 + 10 * i, 100)
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(src)
        Image.fromarray(np.round((1 - img) * 255).astype(np.uint8)).save(out)
        pairs.append((str(src), str(out)))
    return pairs


def test_pairs_are_drawn_side_by_side_under_their_names(tmp_path, seed):
    pairs = make_pairs(tmp_path, seed, 3)
    sheet_path = tmp_path / "sheet.png"
    assert write_preview(pairs, str(sheet_path), height=64) == [p[0] for p in pairs]
    sheet = np.asarray(Image.open(sheet_path))
    first_in, first_out = _thumb(pairs[0][0], 64)[0], _thumb(pairs[0][1], 64, stored=True)[0]
    x, y = _GAP, _GAP + _LABEL
    np.testing.assert_array_equal(sheet[y : y + 64, x : x + first_in.width], np.asarray(first_in))
    x2 = x + first_in.width + _GAP
    np.testing.assert_array_equal(sheet[y : y + 64, x2 : x2 + first_out.width], np.asarray(first_out))
    assert sheet.shape[0] == 2 * (64 + _LABEL + 2 * _GAP)  # 3 pairs, 2 a row


def test_an_output_is_drawn_on_its_file_s_scale_so_a_greyed_out_one_looks_grey(tmp_path, seed):
    # min-max scaled, an output the model greyed out (full mode's 51..186 of 255 for the default
    # model) was drawn with its input's contrast: the sheet hid the problem it is there to show
    from PIL.PngImagePlugin import PngInfo

    img = chest_like(seed, 48, 40)
    unit = (img - img.min()) / (img.max() - img.min())
    src = tmp_path / "in.png"
    Image.fromarray(np.round(unit * 255).astype(np.uint8)).save(src)
    deep = tmp_path / "in12.png"  # a 12-bit input in a bare 16-bit PNG
    Image.fromarray(np.round(unit * 4095).astype(np.uint16)).save(deep)
    grey = 0.4 + 0.2 * unit  # the outputs: 0.4..0.6 of their scale
    outs = {"out8.png": (src, np.round(grey * 255).astype(np.uint8), None),
            "out12.png": (deep, np.round(grey * 4095).astype(np.uint16), "12"),  # as png16 records its depth
            "bare12.png": (deep, np.round(grey * 4095).astype(np.uint16), None)}  # none: the input's depth
    for name, (_, values, bits) in outs.items():
        info = PngInfo()
        if bits:
            info.add_text("xvertfast bits stored", bits)
        Image.fromarray(values).save(tmp_path / name, pnginfo=info)
    for name, (given, _, _) in outs.items():
        sheet = tmp_path / f"sheet_{name}"
        write_preview([(str(given), str(tmp_path / name))], str(sheet), height=48)
        drawn = np.asarray(Image.open(sheet), dtype=int)[_GAP + _LABEL : _GAP + _LABEL + 48]
        before, after = drawn[:, _GAP : _GAP + 40], drawn[:, 2 * _GAP + 40 : 2 * _GAP + 80]
        assert before.min() <= 5 and before.max() >= 250, name  # the input as read: its full contrast
        assert 0.4 * 255 - 2 <= after.min() and after.max() <= 0.6 * 255 + 2, (name, after.min(), after.max())


def test_a_caption_says_under_the_pairs_what_the_sheet_shows(tmp_path, seed, monkeypatch):
    # a sheet passed on said nothing of how its outputs were made (mode, brightness, model): the
    # batch job gives that as its caption, wrapped at spaces to the sheet's width
    from PIL import ImageDraw

    pairs = make_pairs(tmp_path, seed, 3)
    write_preview(pairs, str(tmp_path / "plain.png"), height=40)
    said, text = [], ImageDraw.ImageDraw.text

    def recording(self, xy, words, *args, **kwargs):
        said.append((xy, words))
        return text(self, xy, words, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", recording)
    caption = "XVertNet vertebral contrast enhancement, mode full, brightness network, " * 4 + "Müller"
    write_preview(pairs, str(tmp_path / "captioned.png"), height=40, caption=caption)
    plain, captioned = Image.open(tmp_path / "plain.png"), Image.open(tmp_path / "captioned.png")
    lines = [(xy, words) for xy, words in said if xy[1] >= plain.size[1]]  # under the pairs
    assert len(lines) > 1 and " ".join(words for _, words in lines) == caption.replace("ü", "u")
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    assert all(_GAP + measure.textlength(words) <= captioned.size[0] - _GAP for _, words in lines)
    assert captioned.size == (plain.size[0], plain.size[1] + len(lines) * _LABEL + _GAP)


def test_unreadable_pairs_are_left_out_and_none_at_all_is_an_error(tmp_path, seed):
    pairs = make_pairs(tmp_path, seed, 2)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    drawn = write_preview(pairs + [(pairs[0][0], str(tmp_path / "broken.png"))], str(tmp_path / "s.png"))
    assert drawn == [p[0] for p in pairs]
    with pytest.raises(ValueError, match=r"none of the images could be read back \(.*broken\.png: "):  # the reason
        write_preview([(pairs[0][0], str(tmp_path / "broken.png"))], str(tmp_path / "t.png"))
    assert not (tmp_path / "t.png").exists() and not list(tmp_path.glob(".t.png*"))


def test_pairs_and_labels_that_do_not_fit_are_said_before_any_read(tmp_path, seed):
    # each was "preview: none of the images could be read back": a labels list one short (its
    # IndexError taken for an unreadable pair), one pair not in a list, and no pair at all
    pairs = make_pairs(tmp_path, seed, 2)
    sheet = str(tmp_path / "s.png")
    with pytest.raises(ValueError, match=r"^preview: 1 labels for 2 pairs: give one a pair$"):
        write_preview(pairs, sheet, labels=["a"])
    with pytest.raises(ValueError, match=r"^preview: 1 photometrics for 2 pairs: give one a pair$"):
        write_preview(pairs, sheet, photometrics=[None])
    with pytest.raises(ValueError, match=r"^preview: pairs must be \(input, output\) pairs, got '.*' at 0: one pair "
                                         r"is \[\(input, output\)\]$"):  # fmt: skip
        write_preview(pairs[0], sheet)
    with pytest.raises(ValueError, match=r"^preview: there are no \(input, output\) pairs to draw$"):
        write_preview([], sheet)
    assert not os.path.exists(sheet)
    assert write_preview(iter(pairs), sheet) == [p[0] for p in pairs]  # (any iterable of pairs)


def test_enhance_writes_the_preview_of_what_it_wrote(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / f"c{i}.png")
    (src / "bad.png").write_bytes(b"")
    out, sheet = tmp_path / "out", tmp_path / "look.png"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q", "--preview", str(sheet)]) == 1
    assert f"preview: {sheet}" in capsys.readouterr().out
    rows = 2 * (320 + _LABEL + 2 * _GAP)  # the three good files: two rows, then the caption's lines
    assert (Image.open(sheet).size[1] - rows - _GAP) // _LABEL in (1, 2, 3)
    assert not (out / "look.png").exists()


def test_a_job_with_no_output_to_draw_says_so_not_that_it_has_no_pairs(tmp_path, model_dir, capsys):  # noqa: F811
    """A job whose every input failed (or that stopped before its first output) said "preview look.png not
    written: preview: there are no (input, output) pairs to draw", write_preview's words to its Python caller."""
    src, out, sheet = tmp_path / "in", tmp_path / "out", tmp_path / "look.png"
    src.mkdir()
    (src / "bad.png").write_bytes(b"")
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q", "--preview", str(sheet)]) == 1
    err = capsys.readouterr().err
    assert (f"warning: preview {sheet} not written: no input has an output to draw (none was enhanced, by this run "
            "or one before)") in err, err
    assert "pairs" not in err and not sheet.exists()


def test_two_inputs_of_one_name_are_labelled_by_their_paths(tmp_path, model_dir, seed, monkeypatch):  # noqa: F811
    # p1/IM1.png and p2/IM1.png were both labelled "IM1.png" on the contact sheet
    import os

    from PIL import ImageDraw

    src = tmp_path / "in"
    for i, sub in enumerate(("p1", "p2")):
        (src / sub).mkdir(parents=True)
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / sub / "IM1.png")
    said, text = [], ImageDraw.ImageDraw.text

    def recording(self, xy, words, *args, **kwargs):
        said.append(words)
        return text(self, xy, words, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", recording)
    sheet = tmp_path / "look.png"
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "-q", "--preview",
                 str(sheet)]) == 0  # fmt: skip
    assert said[:2] == [f"{os.path.join(sub, 'IM1.png')}: input | output" for sub in ("p1", "p2")]
    # the caption says how the outputs were made and how the pairs are drawn
    caption = " ".join(said[2:])
    assert "mode spine, brightness network" in caption and caption.endswith("own scale, as a viewer shows it")


def test_an_input_listed_as_monochrome1_is_drawn_bone_bright(tmp_path, model_dir, seed):  # noqa: F811
    # the sheet re-read each input without its @list polarity: a PNG listed with MONOCHROME1
    # was drawn bone dark beside its bone-bright output, as though the job had inverted it
    src = tmp_path / "dark.png"
    Image.fromarray(np.round((1 - chest_like(seed)) * 255).astype(np.uint8)).save(src)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{src}\tMONOCHROME1\n")
    sheet = tmp_path / "look.png"
    assert main(["enhance", f"@{listing}", "-o", str(tmp_path / "out"), "--model", str(model_dir), "-q",
                 "--preview", str(sheet)]) == 0  # fmt: skip
    as_stored = np.asarray(_thumb(str(src), 320)[0], dtype=int)
    top = _GAP + _LABEL
    drawn = np.asarray(Image.open(sheet), dtype=int)[top : top + 320, _GAP : _GAP + as_stored.shape[1]]
    assert np.abs(drawn - (255 - as_stored)).max() <= 2  # the negative, up to two roundings to 8 bits


def test_longer_labels_and_pairs_in_a_numpy_array_are_drawn(tmp_path, seed):
    # 1a15020 refused both, which the old code drew: it took labels[k] and photometrics[k] of a
    # longer list, and unpacked any row of two, as df[["in", "out"]].values gives
    pairs = make_pairs(tmp_path, seed, 2)
    inputs = [p[0] for p in pairs]
    labelled, sheet = str(tmp_path / "labelled.png"), str(tmp_path / "s.png")
    assert write_preview(pairs, labelled, labels=["a", "b", "c"], photometrics=[None] * 3) == inputs
    assert write_preview(pairs, sheet, labels=["a", "b"]) == inputs
    assert np.array_equal(np.asarray(Image.open(labelled)), np.asarray(Image.open(sheet)))  # ("c" unused)
    os.remove(sheet)
    assert write_preview(np.array(pairs), sheet) == inputs
    assert write_preview(np.array(pairs, dtype=object), sheet) == inputs
    for two_characters in ("ab", b"ab"):  # a path is no pair, however long its name
        with pytest.raises(ValueError, match=r"^preview: pairs must be \(input, output\) pairs, got "):
            write_preview([two_characters], sheet)


@pytest.mark.parametrize("name, extension, suggested", [
    ("look.jpg", ".jpg", "look.png"), ("look.tif", ".tif", "look.png"), ("look.json", ".json", "look.png"),
    ("look.png.jpg", ".jpg", "look.png"),  # (was 'name it look.png.png')
    ("run_v1.5.JPEG", ".JPEG", "run_v1.5.png"), ("look.2026-12-06.tif", ".tif", "look.2026-12-06.png"),
])  # fmt: skip
def test_a_sheet_named_other_than_png_is_refused(tmp_path, seed, name, extension, suggested):
    # write_preview wrote a PNG under look.jpg, which viewers and tools then took for a JPEG
    pairs = make_pairs(tmp_path, seed, 1)
    with pytest.raises(ValueError, match=rf"^preview: {re.escape(str(tmp_path / name))}: the contact sheet is a PNG, "
                                         rf"not to be written under a name ending in {re.escape(extension)}: "
                                         rf"name it {re.escape(suggested)}$"):  # fmt: skip
        write_preview(pairs, tmp_path / name)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["LOOK.PNG", "look", "run_v1.5", "look.2026-12-06", "look."])
def test_a_sheet_named_png_or_with_no_extension_is_written_as_png(tmp_path, seed, name):
    # (the extension in any case; a name without one says no format, and text after the last dot
    # with no letter in it is none: run_v1.5 and look.2026-12-06 were refused, 'name it run_v1.png')
    pairs = make_pairs(tmp_path, seed, 1)
    assert write_preview(pairs, tmp_path / name) == [pairs[0][0]]
    assert Image.open(tmp_path / name).format == "PNG"


def test_enhance_refuses_a_preview_named_other_than_png_before_the_job(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # the job ran, then wrote a PNG under look.jpg at its end
    src, out, sheet = tmp_path / "in", tmp_path / "out", tmp_path / "look.jpg"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src / "c.png")
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q", "--preview", str(sheet)]) == 2
    assert (f"error: --preview {sheet}: the contact sheet is a PNG, not to be written under a name ending in .jpg: "
            "name it look.png") in capsys.readouterr().err
    assert not out.exists() and not sheet.exists()


@pytest.mark.parametrize("argument, value", [("count", 0), ("count", 2.5), ("count", "3"), ("count", None),
                                             ("height", 0), ("height", -5), ("height", 2.5), ("height", True)])
def test_a_count_or_height_that_is_no_whole_number_is_refused_by_name(tmp_path, seed, argument, value):
    # count 2.5 failed in range() ("'float' object cannot be interpreted as an integer"), '3' and None
    # in '<', naming nothing; height 0 or 2.5 was "none of the images could be read back"
    pairs = make_pairs(tmp_path, seed, 1)
    with pytest.raises(ValueError, match=rf"^preview: {argument} must be a whole number >= 1 \(.*\), got "):
        write_preview(pairs, tmp_path / "s.png", **{argument: value})
    assert not (tmp_path / "s.png").exists()


def test_a_sheet_that_is_one_of_the_pairs_images_is_refused_not_written_over_it(tmp_path, seed):
    """write_preview(pairs, path) from Python wrote the sheet wherever ``path`` was: over an input of
    the pairs (given as the sheet's name by a slip), or over an output through a folder's link. A
    sheet path that is itself a link to an image is written: the link is replaced, not its image
    (f868630 refused it, saying the image "would be written over")."""
    pairs = make_pairs(tmp_path, seed, 3)
    (tmp_path / "sheets").symlink_to(tmp_path, target_is_directory=True)
    through_folder = str(tmp_path / "sheets" / os.path.basename(pairs[2][1]))
    kept = {path: open(path, "rb").read() for pair in pairs for path in pair}
    for sheet, same in ((pairs[1][0], pairs[1][0]), (through_folder, pairs[2][1])):
        with pytest.raises(ValueError, match=f"^preview: {re.escape(sheet)} is {re.escape(same)}, an image of the "
                                             "pairs drawn: it would be written over; give the contact sheet a file"):
            write_preview(pairs, sheet, height=32)
    (tmp_path / "look.png").symlink_to(pairs[2][1])
    assert write_preview(pairs, str(tmp_path / "look.png"), height=32) == [p[0] for p in pairs]
    assert not os.path.islink(tmp_path / "look.png") and is_preview(str(tmp_path / "look.png"))
    assert {path: open(path, "rb").read() for path in kept} == kept
    assert write_preview(pairs, str(tmp_path / "sheet.png"), height=32) == [p[0] for p in pairs]


def _labels_drawn_by_a_job(src, tmp_path, model_dir, monkeypatch) -> list[str]:  # noqa: F811
    """The labels ``xvertfast enhance SRC --preview`` draws on its sheet, in their order (not its caption)."""
    from PIL import ImageDraw

    said, text = [], ImageDraw.ImageDraw.text

    def recording(self, xy, words, *args, **kwargs):
        said.append(words)
        return text(self, xy, words, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", recording)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "-q", "--preview",
                 str(tmp_path / "look.png")]) == 0  # fmt: skip
    return [words for words in said if ": input | output" in words]


def test_the_inputs_warned_of_are_on_the_sheet(tmp_path, model_dir, seed, monkeypatch):  # noqa: F811
    """A sheet of 8 from a job of 9 spread evenly left out the 5th input, which looked inverted: the one
    image the sheet was there to show. Those the job warned of are now always drawn, labelled so."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(9):
        img = chest_like(seed + i)
        Image.fromarray(np.round((1 - img if i == 4 else img) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    assert 4 not in _spread(9, 8)  # (the old choice)
    said = _labels_drawn_by_a_job(src, tmp_path, model_dir, monkeypatch)
    assert len(said) == 8 and "img4.png: input | output (warned of: see the job's log)" in said, said
    assert [w for w in said if "warned" in w] == ["img4.png: input | output (warned of: see the job's log)"]


def test_the_sheet_puts_first_the_images_warned_of_not_the_notes_of_their_reading(tmp_path, model_dir, seed,
                                                                                  monkeypatch):  # noqa: F811
    """12 grey images stored as RGB PNGs, each noted "RGB image converted to luminance", the 11th stored
    bone dark: every input counted as warned of, the sheet drew the first 8, each labelled so, and left
    out the one that looked inverted. A note of how an image was read does not put it first."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):
        img = chest_like(seed + i)
        grey = np.round((1 - img if i == 10 else img) * 255).astype(np.uint8)
        Image.fromarray(np.stack([grey] * 3, axis=-1)).save(src / f"img{i:02d}.png")
    said = _labels_drawn_by_a_job(src, tmp_path, model_dir, monkeypatch)
    assert [w for w in said if "warned" in w] == ["img10.png: input | output (warned of: see the job's log)"], said
    others = [i for i in range(12) if i != 10]
    assert said == [f"img{i:02d}.png: input | output" if i != 10 else "img10.png: input | output (warned of: see "
                    "the job's log)" for i in sorted([10] + [others[k] for k in _spread(11, 7)])]  # fmt: skip


def test_more_inputs_warned_of_than_places_are_spread_over():
    """A job of 10,000 images warned of drew its first 8: where more are warned of than there are
    places, the places are spread over them, as over a job's; the others fill any places left."""
    assert _chosen([True] * 10000, 8) == _spread(10000, 8)
    warned = [k % 5 == 0 for k in range(100)]  # 20 warned of
    assert _chosen(warned, 8) == [5 * k for k in _spread(20, 8)]
    rest = [k for k in range(100) if k not in (3, 50)]
    assert _chosen([k in (3, 50) for k in range(100)], 8) == sorted([3, 50] + [rest[i] for i in _spread(98, 6)])


def narrow_pairs(tmp_path, seed) -> list[tuple[str, str]]:
    """Two (input, output) pairs of 120 x 12 px strips: thumbnails narrower than any label."""
    pairs = []
    for i in range(2):
        src, out = tmp_path / f"in{i}.png", tmp_path / f"out{i}.png"
        img = chest_like(seed + i, 120, 12)
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(src)
        Image.fromarray(np.round((1 - img) * 255).astype(np.uint8)).save(out)
        pairs.append((str(src), str(out)))
    return pairs


def test_a_label_wider_than_its_pair_widens_its_cell(tmp_path, seed):
    """Narrow images under a long label (a path below the folder given, "warned of: see the job's log"):
    the label ran on into the next cell's, both unreadable. The cell is as wide as its label."""
    pairs = narrow_pairs(tmp_path, seed)
    labels = ["site-A/patient-0001/study-2026-12-07/series-3/IM-0001-0001.png"] * 2
    write_preview(pairs, str(tmp_path / "sheet.png"), height=40, labels=labels, warned=[True, False])
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    cell_w = sheet.shape[1] // 2
    band = sheet[_GAP : _GAP + _LABEL]
    assert (band[:, : cell_w - _GAP] < 128).any() and (band[:, cell_w + _GAP :] < 128).any()  # both labels drawn
    assert (band[:, cell_w - _GAP // 2 : cell_w + _GAP // 2] == 255).all()  # the first ends in its cell, a gap between


def test_a_very_long_label_is_cut_in_the_middle_keeping_the_file_name(tmp_path, seed):
    """A path 40 folders deep (an archive's below the folder given) made its cell as wide as the whole
    path, thousands of pixels of white beside 12 px thumbnails. A label wider than the pair and than
    480 px is now cut in the middle: the path's start, "...", the file name whole (or its end)."""
    pairs = narrow_pairs(tmp_path, seed)
    deep = "/".join(f"level-{k:02d}" for k in range(40)) + "/IM-0001-0042.dcm"
    write_preview(pairs, str(tmp_path / "sheet.png"), height=40, labels=[deep, "short.png"], warned=[True, False])
    width = Image.open(tmp_path / "sheet.png").width
    assert width <= 2 * (480 + 2 * _GAP)  # was 2 cells of the whole path's width (~2500 px each)

    from PIL import ImageDraw

    from xvertfast.infer.preview import _fitted

    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    suffix = ": input | output (warned of: see the job's log)"
    cut = _fitted(deep, suffix, 480, length)
    assert length(cut) <= 480 and cut.startswith("level-00/") and "..." in cut
    assert cut.endswith("/level-38/level-39/IM-0001-0042.dcm" + suffix)  # the last folders and the name
    assert _fitted("short.png", ": input | output", 480, length) == "short.png: input | output"  # fits: as it is
    name = "x" * 200 + "-0042.dcm"  # a file name too long alone: cut too, its end kept
    cut = _fitted(f"a/{name}", suffix, 480, length)
    assert length(cut) <= 480 and "..." in cut and cut.endswith("-0042.dcm" + suffix)


def test_labels_cut_alike_still_tell_their_files_apart(tmp_path, seed):
    """Archives repeat a file name in each series: the cut kept the path's start and the name, so two
    series' IM-0001-0001.dcm read the same. The folders just above the name are kept, and two labels
    still cut alike (they differ higher up) are cut again keeping where they differ."""
    from PIL import ImageDraw

    from xvertfast.infer.preview import _fitted

    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    uid = "1.2.840.113619.2.55.3.2831164356.781.1593757234"
    pacs = "PACS-export/ward-A/patient-0001234/study-20261207-chest-PA/series-000{}/IM-0001-0001.dcm"
    for one, two, width in ((f"{uid}.67/{uid}.70/IM-0001-0001.dcm", f"{uid}.67/{uid}.71/IM-0001-0001.dcm", 520),
                            (pacs.format(3), pacs.format(4), 480)):  # fmt: skip
        cuts = [_fitted(label, ": input | output", width, length) for label in (one, two)]
        assert cuts[0] != cuts[1] and all(length(cut) <= width and "..." in cut for cut in cuts), cuts
    # differing far from the name: two drawn labels differ
    deep = "archive/" + "/".join(f"folder-{k:02d}-long-name" for k in range(12)) + "/IM.dcm"
    labels = [deep, deep.replace("folder-05", "folder-5b")]
    assert _fitted(labels[0], ": input | output", 480, length) == _fitted(labels[1], ": input | output", 480, length)

    def band(k):  # the label of cell k
        sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
        cell = sheet.shape[1] // 2
        return sheet[_GAP : _GAP + _LABEL, k * cell : (k + 1) * cell]

    write_preview(narrow_pairs(tmp_path, seed), str(tmp_path / "sheet.png"), height=12, labels=labels)
    assert not np.array_equal(band(0), band(1))
    write_preview(narrow_pairs(tmp_path, seed), str(tmp_path / "sheet.png"), height=12, labels=[deep, deep])
    assert np.array_equal(band(0), band(1))  # (one label twice is drawn alike)


def test_two_names_drawn_alike_once_their_accents_are_dropped_are_escaped_instead(tmp_path, seed):
    """"scan é.png" and "scan e.png", two files, were both labelled "scan e.png": such labels are drawn
    with every character the font lacks escaped ("scan \\u00e9.png"), as is the decomposed form's mark."""
    import unicodedata

    from PIL import ImageDraw

    def bands(labels):  # the labels drawn, cell by cell, and as the text given
        write_preview(narrow_pairs(tmp_path, seed), str(tmp_path / "sheet.png"), height=12, labels=labels)
        sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
        cell = sheet.shape[1] // 2
        return [sheet[: _GAP + _LABEL, k * cell : (k + 1) * cell] for k in range(2)], cell

    def text(words, cell):
        drawn = Image.new("L", (cell, _GAP + _LABEL), 255)
        ImageDraw.Draw(drawn).text((_GAP, _GAP), words + ": input | output", fill=0)
        return np.asarray(drawn)

    (one, two), cell = bands(["w/scan é.png", "w/scan e.png"])
    assert np.array_equal(one, text("w/scan \\u00e9.png", cell)) and np.array_equal(two, text("w/scan e.png", cell))
    (one, two), cell = bands(["w/scan é.png", unicodedata.normalize("NFD", "w/scan é.png")])
    assert np.array_equal(one, text("w/scan \\u00e9.png", cell))
    assert np.array_equal(two, text("w/scan e\\u0301.png", cell))
    (one, two), cell = bands(["w/scan é.png", "w/scan é 2.png"])  # told apart without: accents dropped
    assert np.array_equal(one, text("w/scan e.png", cell))


def test_a_byte_of_a_name_and_a_letter_are_never_escaped_alike():
    """An undecodable byte of a name (0xe9, held as the surrogate U+DCE9) is drawn \\xe9, as Python
    writes it; é (U+00E9), drawn exact beside "scan e.png", was drawn \\xe9 too, as was a C1 control
    (U+0085) beside the byte 0x85: two files, one label. A character is now drawn by its code point."""
    from PIL import ImageDraw

    from xvertfast.infer.preview import _distinct, _drawable

    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    labels = ["scan é.png", "scan e.png", "scan \udce9.png"]
    drawn = _distinct(labels, [""] * 3, 480, length)
    assert drawn == ["scan \\u00e9.png", "scan e.png", "scan \\xe9.png"] and len(set(drawn)) == 3
    assert _drawable("a\x85b") == "a\\u0085b" and _drawable("a\udc85b") == "a\\x85b"
    assert _drawable("a\tb 中") == "a\\tb \\u4e2d"  # (other escapes as Python writes them)


def test_a_warned_of_label_cut_at_another_point_than_its_twin_still_shows_where_they_differ():
    """Two labels that differ high up a deep path were cut again where they differ only when cut to
    the same text: one "warned of" has a longer suffix, so less room, and was cut at another point;
    the two texts differed ("...") with neither showing the folder that tells them apart."""
    from PIL import ImageDraw

    from xvertfast.infer.preview import _distinct

    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    deep = "archive/" + "/".join(f"folder-{k:02d}-long-name" for k in range(12)) + "/IM.dcm"
    labels = [deep, deep.replace("folder-05", "folder-5b")]
    suffixes = [": input | output (warned of: see the job's log)", ": input | output"]
    cuts = _distinct(labels, suffixes, 480, length)
    assert all(length(cut) <= 480 and "..." in cut and cut.endswith(suffix) for cut, suffix in zip(cuts, suffixes))
    assert "older-05" in cuts[0] and "older-5b" in cuts[1], cuts


def test_a_label_s_letters_the_font_lacks_are_drawn_readably_not_as_boxes(tmp_path, seed):
    # Pillow's built-in font has printable ASCII alone: "Ünïcødé scan é.png" was drawn "□n□c□d□ scan □.png"
    from PIL import ImageDraw

    pairs = make_pairs(tmp_path, seed, 1)

    def sheet(label):
        path = tmp_path / "sheet.png"
        write_preview(pairs, str(path), height=40, labels=[label])
        return np.asarray(Image.open(path))

    def drawn_as(label, text):  # whether the sheet's label band is ``text`` (as a label, its backslash is doubled)
        band = sheet(label)[: _GAP + _LABEL]
        image = Image.new("L", (band.shape[1], band.shape[0]), 255)
        ImageDraw.Draw(image).text((_GAP, _GAP), text + ": input | output", fill=0)
        return np.array_equal(band, np.asarray(image))

    assert drawn_as("Ünïcødé scan é 中.png", "Unicode scan e \\u4e2d.png")  # accents off, 中 escaped
    # letters NFKD keeps whole (ø was drawn \\xf8) spelled as without them
    assert np.array_equal(sheet("Ærø Łódź Straße.png"), sheet("AEro Lodz Strasse.png"))
    assert drawn_as("a\udce9b.png", "a\\xe9b.png")  # an undecodable byte of a name, as that byte
    assert not np.array_equal(sheet("Unic中de scan e.png"), sheet("Unicode scan e.png"))  # (the label is drawn)


def test_a_decomposed_name_loses_its_accents_and_a_windows_cut_keeps_the_name(tmp_path, seed, monkeypatch):
    """macOS writes names decomposed ("e" + U+0301): the mark, taken alone, was escaped ("Mu\\u0308ller").
    On Windows (os.sep "\\") the cut took an escape's backslash (\\u4e2d) for the last separator."""
    import unicodedata

    from PIL import ImageDraw

    from xvertfast.infer import preview

    assert preview._drawable(unicodedata.normalize("NFD", "Müller/scan é.png")) == "Muller/scan e.png"
    assert preview._drawable("q\u0301.png") == "q.png"  # an accent no letter composes with: dropped too
    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    monkeypatch.setattr(preview.os, "sep", "\\")
    label = "archive\\" * 3 + "scan 中 " + "x" * 150 + "-0042.png"  # a name too long alone, cut from its start
    cut = preview._fitted(label, ": input | output", 480, length)
    assert cut.startswith("...scan \\u4e2d x") and cut.endswith("x-0042.png: input | output"), cut  # was "...u4e2d x"
    write_preview(narrow_pairs(tmp_path, seed), str(tmp_path / "sheet.png"), height=12, labels=[label, "b.png"])
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    drawn = Image.new("L", (sheet.shape[1] // 2, _GAP + _LABEL), 255)
    ImageDraw.Draw(drawn).text((_GAP, _GAP), cut, fill=0)
    assert np.array_equal(sheet[: _GAP + _LABEL, : sheet.shape[1] // 2], np.asarray(drawn))  # the sheet draws it


def test_a_backslash_of_a_name_is_not_drawn_as_an_escape(monkeypatch):
    """A name holding the text \\xe9 (a backslash, x, e, 9) was drawn as the undecodable byte 0xe9 is,
    \\xe9: two files, one label (\\u00e9 likewise as é drawn exact). Its backslash is now doubled, as
    Python writes it; one a letter's compatibility form gives (the fullwidth ＼) too. Checked with
    POSIX's os.sep "/" (a name can hold a backslash) on any platform; Windows' "\\" is kept, a separator."""
    from PIL import ImageDraw

    from xvertfast.infer import preview
    from xvertfast.infer.preview import _distinct, _drawable

    monkeypatch.setattr(preview.os, "sep", "/")
    length = ImageDraw.Draw(Image.new("L", (1, 1))).textlength
    labels = ["caf\\xe9.png", "caf\udce9.png", "scan \\u00e9.png", "scan é.png", "scan e.png"]
    drawn = _distinct(labels, [""] * 5, 480, length)
    assert drawn == ["caf\\\\xe9.png", "caf\\xe9.png", "scan \\\\u00e9.png", "scan \\u00e9.png", "scan e.png"]
    assert _drawable("a\\b/c\\d.png") == "a\\\\b/c\\\\d.png"  # (in the folder part too)
    assert _drawable("caf\uff3cxe9.png") == "caf\\\\xe9.png" and _drawable("\uff3c", exact=True) == "\\uff3c"
    monkeypatch.setattr(preview.os, "sep", "\\")
    assert _drawable("a\\b/c\\d.png") == "a\\b/c\\d.png"  # Windows' separators, as they are
    assert _drawable("caf\uff3cxe9.png") == "caf\\\\xe9.png"  # (a fullwidth ＼ is no separator: doubled there too)
