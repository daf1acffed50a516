"""``outputs=DIR``: another tool's outputs scored by the protocol; method labels."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from tests.eval.test_evaluate import chest_like
from xvertfast.cli import main
from xvertfast.eval.baselines import clahe, parse_method
from xvertfast.eval.evaluate import evaluate
from xvertfast.eval.journal import JOURNAL_FILE, Journal
from xvertfast.eval.precomputed import PrecomputedOutputs
from xvertfast.eval.protocol import run_protocol
from xvertfast.io import ImageReadError, read_image, write_image
from xvertfast.io.files import InputFile
from xvertfast.model import XVertNet, XVertNetStage, save_model

METRICS = ["entropy", "tenengrad", "lpc_si"]


def scores(out_dir, metrics=METRICS) -> dict[tuple[str, str, str], dict[str, float]]:
    with open(out_dir / "scores.csv") as f:
        return {(r["file"], r["roi"], r["method"]): {m: float(r[m]) for m in metrics} for r in csv.DictReader(f)}


def _evaluate_outputs(src, out, tool) -> int:
    """``xvertfast evaluate SRC -o OUT --methods identity,outputs=TOOL --metrics entropy --pictures 0 -q``'s
    exit status: the run most tests here make of a tool's outputs."""
    return main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,outputs={tool}", "--metrics", "entropy",
                 "--pictures", "0", "-q"])  # fmt: skip


def inputs_and_clahe_outputs(tmp_path, seed, fmt: str, deep: bool = False):
    """Input images in in/ and in/sub/, and CLAHE's outputs mirrored under tool/ as ``fmt``."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    for k, rel in enumerate(["a.png", "sub/b.png"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        values = chest_like(seed + k, 560, 520)
        if deep:  # 12 bits in a 16-bit PNG
            values = (values.astype(np.uint16) * 16 + np.arange(values.shape[1], dtype=np.uint16) % 16)
        Image.fromarray(values).save(src / rel)
        rad = read_image(src / rel)
        ext = {"png8": ".png", "png16": ".png", "tiff": ".tif"}[fmt]
        (tool / rel).parent.mkdir(parents=True, exist_ok=True)
        write_image(str(tool / rel).replace(".png", ext), clahe(rad.pixels), fmt=fmt, like=rad)
    return src, tool


@pytest.mark.parametrize("fmt", ["png8", "png16", "tiff"])
def test_outputs_score_exactly_as_the_method_that_wrote_them(tmp_path, seed, fmt):
    src, tool = inputs_and_clahe_outputs(tmp_path, seed, fmt)
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,clahe,tool:outputs={tool}",
                 "--metrics", ",".join(METRICS), "--pictures", "1", "-q"]) == 0  # fmt: skip
    got = scores(out)
    files = {k[0] for k in got}
    assert len(files) == 2
    for f in files:
        for roi in ("upper", "lower"):
            assert got[(f, roi, "tool")] == got[(f, roi, "clahe")]
            assert got[(f, roi, "tool")] != got[(f, roi, "identity")]


def test_a_deep_png_output_is_read_over_its_12_bits(tmp_path, seed):
    src, tool = inputs_and_clahe_outputs(tmp_path, seed, "png16", deep=True)
    assert read_image(tool / "a.png").bits_stored == 12
    out = tmp_path / "r"
    evaluate([str(src)], str(out), ["clahe", f"tool:outputs={tool}"], METRICS, pictures=0, progress=False,
             log=lambda m: None)  # fmt: skip
    got = scores(out)
    for key, tool_scores in got.items():
        if key[2] == "tool":
            # 12-bit storage moves a value by at most 1/8190: a few ROI pixels round to the next grey level
            assert tool_scores == pytest.approx(got[(key[0], key[1], "clahe")], rel=0.02)


def test_locate_follows_enhance_naming(tmp_path):
    src, tool = tmp_path / "in", tmp_path / "tool"
    (tool / "s").mkdir(parents=True)
    for name in ["a.tif", "s/1.2.840.9.dcm", "b.png", "b.tiff", "c.png.txt"]:
        (tool / name).write_bytes(b"x")
    method = PrecomputedOutputs(str(tool))
    assert method.locate(InputFile(str(src / "a.png"), "a.png")) == str(tool / "a.tif")
    assert method.locate(InputFile(str(src / "s/1.2.840.9"), "s/1.2.840.9")) == str(tool / "s/1.2.840.9.dcm")
    with pytest.raises(ImageReadError, match="is several files there"):
        method.locate(InputFile(str(src / "b.dcm"), "b.dcm"))
    with pytest.raises(ImageReadError, match="is missing"):
        method.locate(InputFile(str(src / "c.png"), "c.png"))
    with pytest.raises(ValueError, match="no such folder"):
        PrecomputedOutputs(str(tmp_path / "missing"))


def test_a_missing_outputs_folder_is_said_as_its_method_was_typed(tmp_path, capsys):
    """--methods mine:outputs=nothere said "--methods outputs=nothere: ...", dropping the label typed,
    as mine:xvertnet=nothere does not; from Python it names the method ``method 'SPEC'``."""
    image = str(tmp_path / "a.png")
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(image)
    missing = str(tmp_path / "nothere")
    args = ["evaluate", image, "-o", str(tmp_path / "report"), "--metrics", "entropy", "-q", "--methods"]
    assert main([*args, f"identity,mine:outputs={missing}"]) == 2
    assert capsys.readouterr().err == (f"error: --methods mine:outputs={missing}: no such folder: give the folder "
                                       "another tool wrote its outputs into, mirroring the inputs' paths\n")  # fmt: skip
    with pytest.raises(ValueError, match=f"^method 'mine:inverted_outputs={re.escape(image)}': a file, not a folder: "):
        evaluate([image], str(tmp_path / "report"), [f"mine:inverted_outputs={image}"], ["entropy"], progress=False)
    assert not (tmp_path / "report").exists()


def test_a_refused_outputs_folder_says_its_problem_apart_from_the_method():
    """get_method names the method as typed (mine:outputs=DIR) before the folder's problem, which it
    took out of PrecomputedOutputs' message by the text of its start: the refusal carries it apart."""
    from xvertfast.eval.precomputed import FolderRefused

    with pytest.raises(FolderRefused) as refused:
        PrecomputedOutputs("no/such/place", inverted=True)
    assert isinstance(refused.value, ValueError) and refused.value.problem.startswith("no such folder: give the folder")
    assert str(refused.value) == f"inverted_outputs=no/such/place: {refused.value.problem}"


def test_a_missing_output_names_the_files_named_after_it(tmp_path):
    """A tool that names its outputs its own way (a_gamma.png, enh_b.png), or writes an input of a
    subfolder flat, failed each image with 'no output for it (looked for tool/a.*)' alone: the
    refusal now names the files there that hold the input's name, and the one at the folder's top."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    (tool / "s").mkdir(parents=True)
    for name in ["a_gamma.png", "enh_b.tif", "c.png", "b2.txt", "d.png", "dd_1.png", "dd_2.png", "dd_3.png",
                 "dd_4.png", "e1.png", "s/x.png"]:  # fmt: skip
        (tool / name).write_bytes(b"x")
    method = PrecomputedOutputs(str(tool))

    def refusal(rel: str) -> str:
        with pytest.raises(ImageReadError, match="is missing") as caught:
            method.locate(InputFile(str(src / rel), rel))
        return str(caught.value)

    assert f"; {tool} holds a_gamma.png, named after it: an output is named as its input" in refusal("a.png")
    assert f"; {tool} holds enh_b.tif, named after it" in refusal("b.dcm")
    assert f"; {tool} holds dd_1.png, dd_2.png, dd_3.png, ..., named after it" in refusal("dd.png")
    assert f"; {tool} holds c.png: the output of an input found at s/c.png (in a subfolder, or listed by that path) goes" in (
        refusal("s/c.png"))
    assert refusal("e.png").endswith(f"its output {tool / 'e'}.* is missing")  # e1.png: another input's, named so
    assert refusal("s/y.png").endswith(f"its output {tool / 's' / 'y'}.* is missing")


def test_a_missing_outputs_near_miss_is_found_past_the_names_of_other_numbers(tmp_path):
    """Outputs im1_enh.png .. im120_enh.png: the stems going on from 'im1' with a digit (im10_enh ..
    im19_enh, im100_enh ..) sort before im1_enh ('_' after the digits), and the near misses were
    taken from a fixed window of names after 'im1': im1.png's refusal named none of them."""
    tool = tmp_path / "tool"
    tool.mkdir()
    for i in range(1, 121):
        (tool / f"im{i}_enh.png").write_bytes(b"x")
    (tool / "pre_im1.png").write_bytes(b"x")
    for i in range(10):  # other inputs' names ending in im1 (backwards: '1mi' and a digit, before '1mi_erp')
        (tool / f"{i}im1.png").write_bytes(b"x")
    method = PrecomputedOutputs(str(tool))
    for rel, near in (("im1.png", "im1_enh.png, pre_im1.png"), ("im12.png", "im12_enh.png"),
                      ("im120.png", "im120_enh.png")):  # fmt: skip
        with pytest.raises(ImageReadError, match="is missing") as caught:
            method.locate(InputFile(str(tmp_path / "in" / rel), rel))
        assert f"; {tool} holds {near}, named after it" in str(caught.value), str(caught.value)


def test_another_inputs_output_is_no_near_miss(tmp_path):
    """Inputs a.png and a_lateral.png, only a_lateral's output there: a.png's refusal said 'tool holds
    a_lateral.png, named after it', another input's output. The inputs' own outputs are left out of
    the near misses (and out of the count shown), and the one at the top of an input of a subfolder."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    (tool / "s").mkdir(parents=True)
    rels = ["a.png", "a_lateral.png", "b.png", *(f"b_{i}.png" for i in range(5)), "x.png", "s/x.png"]
    for name in ["a_lateral.png", *(f"b_{i}.png" for i in range(5)), "b_gamma.png", "x.png"]:
        (tool / name).write_bytes(b"x")
    method = PrecomputedOutputs(str(tool))
    method.expect([InputFile(str(src / rel), rel) for rel in rels])

    def refusal(rel: str) -> str:
        with pytest.raises(ImageReadError, match="is missing") as caught:
            method.locate(InputFile(str(src / rel), rel))
        return str(caught.value)

    assert refusal("a.png").endswith(f"its output {tool / 'a'}.* is missing"), refusal("a.png")
    assert f"; {tool} holds b_gamma.png, named after it" in refusal("b.png"), refusal("b.png")
    assert refusal("s/x.png").endswith(f"its output {tool / 's' / 'x'}.* is missing"), refusal("s/x.png")


def test_inputs_of_one_name_but_for_the_extension_fail_not_scored_against_one_output(tmp_path, seed, capsys):
    """a.png and a.tif (an 8-bit image and another one's 16-bit TIFF) both took tool/a.png, the
    output of a.png, as theirs: the TIFF's image was scored against another image's output, exit 0.
    Both now fail, naming the other; two inputs of one name in two folders given as files alike."""
    import tifffile

    src, other, tool = tmp_path / "in", tmp_path / "other", tmp_path / "tool"
    for folder in (src, other, tool):
        folder.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "a.png")
    tifffile.imwrite(src / "a.tif", chest_like(seed + 1).astype(np.uint16) * 257)
    Image.fromarray(chest_like(seed)).save(tool / "a.png")
    Image.fromarray(chest_like(seed + 2)).save(src / "b.png")
    Image.fromarray(chest_like(seed + 2)).save(tool / "b.png")
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 1
    err = capsys.readouterr().err
    for name, other_name in (("a.png", "a.tif"), ("a.tif", "a.png")):
        line = next(line for line in err.splitlines() if f"error: {src / name}" in line)
        assert line.startswith(f"error: {src / name}: its output {tool / 'a'}.* would also be the output of "
                               f"{src / other_name} ("), line  # fmt: skip
        assert "whose it is cannot be told" in line, line
    assert {k[0] for k in scores(out, ["entropy"])} == {str(src / "b.png")}
    Image.fromarray(chest_like(seed + 3)).save(other / "b.png")  # b.png of two folders, given as files
    files = [InputFile(str(src / "b.png"), "b.png"), InputFile(str(other / "b.png"), "b.png")]
    run = run_protocol([], {"tool": PrecomputedOutputs(str(tool))}, ["entropy"], files=files, pictures=0,
                       progress=False, log=lambda *a: None)  # fmt: skip
    assert [path for path, _ in run.failed] == [str(src / "b.png"), str(other / "b.png")]
    assert all("whose it is cannot be told" in reason for _, reason in run.failed)


def test_only_a_method_reading_files_is_given_the_inputs_to_expect(tmp_path, seed):
    """run_protocol handed its files to any method with an attribute ``expect`` (a function of the
    caller's, a mock), not only to one that reads its outputs from files (``needs_source``)."""
    Image.fromarray(chest_like(seed)).save(tmp_path / "a.png")

    def own(pixels, spine):
        return pixels

    own.expect = lambda files: pytest.fail("expect called on a method that reads no files")
    run = run_protocol([str(tmp_path / "a.png")], {"own": own}, ["entropy"], pictures=0, progress=False,
                       log=lambda *a: None)  # fmt: skip
    assert not run.failed and {row["method"] for row in run.rows} == {"own"}


def test_inputs_of_one_name_but_for_the_extension_each_with_an_output_of_its_extension_are_scored(tmp_path, seed,
                                                                                                   capsys):
    """enhance --format same writes in/a.png and in/a.tiff as out/a.png and out/a.tiff: evaluating that
    folder failed both ('whose it is cannot be told') though each output has its own input's
    extension. Each is now scored against its own; where one of three has none there, all three
    fail, the others named."""
    import tifffile

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "a.png")
    tifffile.imwrite(src / "a.tiff", chest_like(seed + 1))
    Image.fromarray(chest_like(seed)).save(tool / "a.png")
    tifffile.imwrite(tool / "a.TIF", chest_like(seed + 1))  # (another spelling of the extension: as good)
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 0, capsys.readouterr().err
    got = scores(out, ["entropy"])
    for name in ("a.png", "a.tiff"):
        assert got[(str(src / name), "upper", "outputs")] == got[(str(src / name), "upper", "identity")]
    Image.fromarray(chest_like(seed + 2)).save(src / "a.jpg")  # a third input of the name, no output of its own
    assert _evaluate_outputs(src, tmp_path / "r2", tool) == 1
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if f"error: {src / 'a.jpg'}" in line)
    assert f"would also be the output of {src / 'a.png'} and {src / 'a.tiff'} (" in line, line
    assert sum("whose it is cannot be told" in line for line in err.splitlines()) == 3, err


def test_inputs_of_one_name_with_the_outputs_enhance_format_same_gives_them_are_scored(tmp_path, seed, capsys):
    """enhance --format same writes in/a.jpg and in/a.tif as out/a.png and out/a.tif: evaluating that
    folder failed both ('whose it is cannot be told'), a.jpg having no output of its own extension.
    Each is now scored against its own; in/a.png and in/a.jpg with only a.png there (either's) both
    fail, as does a mix of the two rules (a.jpg's own .jpg beside a.tif's, a.png's .png beside it)."""
    import tifffile

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "a.jpg", quality=95)
    tifffile.imwrite(src / "a.tif", chest_like(seed + 1))
    Image.open(src / "a.jpg").save(tool / "a.png")  # (its decoded values: scored as the input is)
    tifffile.imwrite(tool / "a.tif", chest_like(seed + 1))
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 0, capsys.readouterr().err
    got = scores(out, ["entropy"])
    for name in ("a.jpg", "a.tif"):
        assert got[(str(src / name), "upper", "outputs")] == got[(str(src / name), "upper", "identity")]
    assert got[(str(src / "a.jpg"), "upper", "outputs")] != got[(str(src / "a.tif"), "upper", "outputs")]
    for name in ("b", "c"):  # b.png and b.jpg with b.png alone; c.jpg and c.png with c.png and c.tif
        Image.fromarray(chest_like(seed + 2)).save(src / f"{name}.png")
        Image.fromarray(chest_like(seed + 3)).save(src / f"{name}.jpg")
        Image.fromarray(chest_like(seed + 2)).save(tool / f"{name}.png")
    tifffile.imwrite(tool / "c.tif", chest_like(seed + 3))
    assert _evaluate_outputs(src, tmp_path / "r2", tool) == 1
    err = capsys.readouterr().err
    failed = sorted(line.removeprefix("error: ").split(": ")[0] for line in err.splitlines() if "whose it is" in line)
    assert failed == sorted(str(src / n) for n in ("b.png", "b.jpg", "c.png", "c.jpg")), err
    assert {k[0] for k in scores(tmp_path / "r2", ["entropy"])} == {str(src / "a.jpg"), str(src / "a.tif")}


def test_an_unreadable_output_of_a_relative_input_names_the_input(tmp_path, seed, capsys, monkeypatch):
    """Input a.png given relative, its output t/a.png unreadable: the line was 'error: t/a.png: named
    like a PNG ...', the input named nowhere (failure_text took 'a.png' in 't/a.png' for the input
    named). The input now comes first."""
    from xvertfast.io.errors import failure_text

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t").mkdir()
    Image.fromarray(chest_like(seed)).save("a.png")
    (tmp_path / "t" / "a.png").write_bytes(b"not an image")
    assert _evaluate_outputs("a.png", "r", "t") == 1
    line = next(line for line in capsys.readouterr().err.splitlines() if "t/a.png" in line)
    assert line.startswith("error: a.png: "), line
    assert failure_text("a.png", ImageReadError("a.png", "bad")) == "a.png: bad"  # named once, as ever
    assert failure_text("a.png", ValueError("t/a.png: bad")) == "a.png: t/a.png: bad"


def test_locating_each_output_of_a_flat_folder_does_not_go_over_the_whole_folder(tmp_path, monkeypatch):
    """Each input's output was looked for by going over every name in its folder: over a folder of
    20 000 outputs an evaluation (its resume too, which locates each image's output to see whether it
    changed) spent 24 ms an image on it, quadratic. The names are looked at about once a folder."""
    import xvertfast.eval.precomputed as precomputed

    tool, n = tmp_path / "tool", 300
    tool.mkdir()
    for i in range(n):
        (tool / f"im{i:04d}.tif").write_bytes(b"x")
    (tool / "im0007").write_bytes(b"x")  # found with im0007.tif: two outputs for one input
    looked = []
    extension = precomputed.image_extension
    monkeypatch.setattr(precomputed, "image_extension", lambda name: looked.append(name) or extension(name))
    method = PrecomputedOutputs(str(tool))
    for i in range(n):
        if i == 7:
            with pytest.raises(ImageReadError, match="im0007.* is several files there: im0007, im0007.tif"):
                method.locate(InputFile(str(tmp_path / "in" / "im0007"), "im0007"))
            continue
        assert method.locate(InputFile(str(tmp_path / "in" / f"im{i:04d}.png"), f"im{i:04d}.png")) == str(
            tool / f"im{i:04d}.tif")
    assert len(looked) <= 3 * n, len(looked)


def test_bad_outputs_fail_their_image_with_the_reason(tmp_path, seed, capsys):
    """Each refusal names the input, then its output: 'INPUT: its output OUTPUT <problem>' (they began
    with the output, with the input, or with both, one after the other)."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    cases = {
        "small": (chest_like(seed)[:300], "small.png is \\d+x300, the input \\d+x\\d+: an output must keep the size"),
        "inverted": (255 - chest_like(seed + 1), "inverted.png looks inverted against it"),
        "float": (chest_like(seed + 2).astype(np.float32), "float.tif holds float values in \\[.+\\], not in \\[0, 1"),
        "missing": (None, "missing.\\* is missing"),
        "unreadable": (b"not an image", "unreadable.png: named like a PNG"),
        "several": (b"x", "several.\\* is several files there: several.png, several.tif"),
    }
    for k, (name, (output, _)) in enumerate(cases.items()):
        Image.fromarray(chest_like(seed + k)).save(src / f"{name}.png")
        if isinstance(output, bytes):
            (tool / f"{name}.png").write_bytes(output)
            if name == "several":
                (tool / f"{name}.tif").write_bytes(output)
        elif output is not None and output.dtype == np.uint8:
            Image.fromarray(output).save(tool / f"{name}.png")
        elif output is not None:
            import tifffile

            tifffile.imwrite(tool / f"{name}.tif", output)
    Image.fromarray(chest_like(seed + 9)).save(src / "good.png")
    Image.fromarray(chest_like(seed + 9)).save(tool / "good.png")
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 1
    err = capsys.readouterr().err
    for name, (_, message) in cases.items():
        line = next(line for line in err.splitlines() if f"{name}.png" in line)
        assert re.match(re.escape(f"error: {src / name}.png: its output {tool}{os.sep}") + message, line), line
    assert {k[0] for k in scores(out, ["entropy"])} == {str(src / "good.png")}
    # the inputs' own folder holds no outputs of them
    with pytest.raises(ImageReadError, match=re.escape(f"{src / 'good.png'}: its output {src / 'good.png'} is the "
                                                       "input itself")):  # fmt: skip
        PrecomputedOutputs(str(src)).locate(InputFile(str(src / "good.png"), "good.png"))


def test_an_output_whose_large_scale_brightness_turns_over_is_scored_not_taken_for_inverted(tmp_path, seed):
    # the default model's lung fields can come out brighter than the spine (--mode full): the
    # whole-image correlation with the input was below -0.5 on 5 of the 18 cxr-dev images (6 when this
    # test was written; counted again in caff5c6), and evaluate refused xvertfast's own outputs as
    # "looks inverted"; an inverted output's details are inverted too, this one's are not
    from scipy.ndimage import gaussian_filter

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    x = chest_like(seed).astype(np.float64) / 255
    base = gaussian_filter(x, 8)  # (the band down the middle, the rows' waves), turned over; the rest kept
    turned = np.clip(0.9 - base + 1.5 * (x - base), 0, 1)
    assert np.corrcoef(turned.ravel(), x.ravel())[0, 1] < -0.5  # what the old check refused
    Image.fromarray(chest_like(seed)).save(src / "a.png")
    Image.fromarray(np.round(turned * 255).astype(np.uint8)).save(tool / "a.png")
    source = InputFile(str(src / "a.png"), "a.png")
    out = PrecomputedOutputs(str(tool))(x.astype(np.float32), source=source)
    assert out.shape == x.shape
    Image.fromarray(255 - chest_like(seed)).save(tool / "a.png")  # stored inverted: still refused
    with pytest.raises(ImageReadError, match=r"looks inverted .* details correlate at -(0\.9\d|1\.00)"):
        PrecomputedOutputs(str(tool))(x.astype(np.float32), source=source)
    # ... blurred too (a smoothing tool's output of an inverted image: its details at -0.34 went
    # through a limit of -0.5), while the same blur of an upright output is scored
    for image, refused in ((1 - x, True), (x, False)):
        Image.fromarray(np.round(gaussian_filter(image, 16) * 255).astype(np.uint8)).save(tool / "a.png")
        if refused:
            with pytest.raises(ImageReadError, match="looks inverted"):
                PrecomputedOutputs(str(tool))(x.astype(np.float32), source=source)
        else:
            PrecomputedOutputs(str(tool))(x.astype(np.float32), source=source)


def test_an_output_refused_as_inverted_says_where_its_input_is_the_inverted_one(tmp_path, seed, capsys,
                                                                                 monkeypatch):
    """A MONOCHROME1 radiograph kept as a PNG is read bone dark: a tool's upright output of it was
    refused as 'looks inverted ...: bone should be bright, as in the inputs', the input never named
    as the cause. Now the refusal says the input looks inverted itself, with its fix (an @list
    tag), which then scores the output; and of a MONOCHROME1 DICOM, read inverted, that an output
    of its stored values is inverted."""
    from tests.io.test_read import make_dicom

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    upright = chest_like(seed)
    Image.fromarray(255 - upright).save(src / "dark.png")  # bone dark, as MONOCHROME1 stores it
    Image.fromarray(upright).save(tool / "dark.png")  # the tool's output, bone bright
    make_dicom(src / "m1.dcm", 4095 - upright.astype(np.uint16) * 16, "MONOCHROME1")  # read as upright * 16
    Image.fromarray(255 - upright).save(tool / "m1.png")  # an output of its stored values: bone dark
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 1
    err = capsys.readouterr().err
    dark = next(line for line in err.splitlines() if "dark.png" in line)
    assert re.search(r"dark\.png: its output .*dark\.png looks inverted against it \(its details correlate at "
                     r"-\d\.\d\d\); but its "
                     r"input itself looks inverted \(.*\); if it stores bone dark, list it in an @list with a tab and "
                     r"MONOCHROME1 after its path", dark), dark  # fmt: skip
    m1 = next(line for line in err.splitlines() if "m1.dcm" in line)
    assert "its input is MONOCHROME1, stored bone dark and read inverted: an output made from its stored values is " \
           "inverted" in m1, m1  # fmt: skip
    monkeypatch.chdir(tmp_path)  # the fix the refusal gives: a listed input's output mirrors its path
    (tmp_path / "list.txt").write_text("in/dark.png\tMONOCHROME1\n")
    (tool / "in").mkdir()
    (tool / "dark.png").rename(tool / "in" / "dark.png")
    assert _evaluate_outputs("@list.txt", "r2", tool) == 0, capsys.readouterr().err
    assert {k[2] for k in scores(tmp_path / "r2", ["entropy"])} == {"identity", "outputs"}


def test_a_tools_outputs_stored_bone_dark_are_scored_inverted_when_asked(tmp_path, seed, capsys):
    """A vendor's processed images kept in MONOCHROME1's polarity (bone dark, in PNG) were refused as
    inverted, with no way to score them. The refusal now names inverted_outputs=DIR, which scores each
    output inverted (here the input itself stored bone dark: scored as identity), says so in the
    report's notes and provenance, and refuses an output that is upright (naming outputs=DIR)."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    for k, name in enumerate(("a", "b")):
        Image.fromarray(chest_like(seed + k)).save(src / f"{name}.png")
        Image.fromarray(255 - chest_like(seed + k)).save(tool / f"{name}.png")
    assert _evaluate_outputs(src, tmp_path / "r0", tool) == 1
    err = capsys.readouterr().err
    assert err.count(f"; if its tool stores its outputs bone dark (as MONOCHROME1 does), give the method as "
                     f"inverted_outputs={tool} to score each inverted") == 2, err  # fmt: skip
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,vendor:inverted_outputs={tool}",
                 "--metrics", "entropy,tenengrad", "--pictures", "0", "-q"]) == 0, capsys.readouterr().err  # fmt: skip
    said = (f"method vendor (inverted_outputs={tool}) scores each output inverted, 1 - its value on its format's "
            "scale: its tool stores bone dark; an output that looks inverted so fails its image")  # fmt: skip
    assert f"note: {said}" in capsys.readouterr().err.splitlines()
    got = scores(out, ["entropy", "tenengrad"])
    for name in ("a", "b"):
        for roi in ("upper", "lower"):
            key = str(src / f"{name}.png"), roi
            assert got[(*key, "vendor")] == got[(*key, "identity")]
    summary = (out / "summary.md").read_text()
    assert f"- {said}" in summary.split("## Notes")[1].splitlines(), summary
    assert f"`vendor:inverted_outputs={tool}`: another tool's outputs, stored bone dark and scored inverted" in summary
    Image.fromarray(chest_like(seed)).save(tool / "a.png")  # upright: refused, naming outputs=DIR
    with pytest.raises(ImageReadError, match=rf"a\.png looks inverted against it, read inverted as "
                       rf"inverted_outputs={re.escape(str(tool))} asks \(its details correlate at -\d\.\d\d\): its "
                       rf"tool stores bone bright, .*: give the method as outputs={re.escape(str(tool))}$"):  # fmt: skip
        PrecomputedOutputs(str(tool), inverted=True)(read_image(src / "a.png").pixels,
                                                     source=InputFile(str(src / "a.png"), "a.png"))  # fmt: skip

@pytest.fixture
def one_input(tmp_path, seed):
    """An empty tool output folder, and one 8-bit input image as the input file and its pixels."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "a.png")
    return tool, InputFile(str(src / "a.png"), "a.png"), read_image(src / "a.png").pixels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dicom_output_of_float_pixel_data_is_read_as_a_float_tiffs(one_input, dtype):
    # a float pixel data DICOM was read over BitsStored's range at 32 or 64 bits: FloatPixelData
    # over 0..2**32 - 1 (an output in [0, 1] scored black), DoubleFloatPixelData raised a bare
    # OverflowError; and the [0, 1] check passed over every DICOM
    from tests.io.test_read import make_float_dicom

    tool, source, pixels = one_input
    enhanced = clahe(pixels).astype(dtype)
    make_float_dicom(tool / "a.dcm", enhanced)
    np.testing.assert_allclose(PrecomputedOutputs(str(tool))(pixels, source=source), enhanced, atol=1e-7)
    make_float_dicom(tool / "a.dcm", enhanced * 255)  # floats on another scale: refused, as a float TIFF's
    with pytest.raises(ImageReadError, match=r"a\.dcm holds float values in \[.+\], not in \[0, 1\]"):
        PrecomputedOutputs(str(tool))(pixels, source=source)


def test_a_monochrome1_float_dicom_output_is_scored_as_an_integer_ones(one_input):
    # a tool's output stored bone dark as floats in [0, 1] (1 - its image): flipped within its own
    # values, an output of 0.4..0.9 was scored as 0.1..0.6, where an integer MONOCHROME1 output is
    # flipped within its stored range and scored as it was meant
    from tests.io.test_read import make_float_dicom

    tool, source, pixels = one_input
    enhanced = 0.4 + 0.5 * clahe(pixels).astype(np.float32)
    make_float_dicom(tool / "a.dcm", 1 - enhanced, "MONOCHROME1")
    np.testing.assert_allclose(PrecomputedOutputs(str(tool))(pixels, source=source), enhanced, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_monochrome1_float_output_a_rounding_past_1_is_scored_as_meant(one_input, dtype):
    # floats up to 1 + FLOAT_SCALE_SLACK are taken as on [0, 1] here; reading flipped them within
    # [0, 1] only strictly inside it, so an output topping at nextafter(1, 2) was flipped within its
    # own values and scored 0.1 off
    import tifffile

    tool, source, pixels = one_input
    stored = (0.9 - 0.8 * clahe(pixels)).astype(dtype)  # (bone dark, as MinIsWhite stores it)
    stored.flat[np.argmax(stored)] = np.nextafter(dtype(1), dtype(2))
    tifffile.imwrite(tool / "a.tif", stored, photometric="miniswhite")
    scored = PrecomputedOutputs(str(tool))(pixels, source=source)
    np.testing.assert_allclose(scored, np.clip(1 - stored.astype(np.float64), 0, 1), atol=1e-6)


def test_a_replaced_output_is_scored_again_on_resume(tmp_path, seed):
    src, tool = inputs_and_clahe_outputs(tmp_path, seed, "png8")
    methods = {"tool": PrecomputedOutputs(str(tool))}

    def run():
        journal = Journal(str(tmp_path / "r"), {"methods": ["tool"]})
        try:
            return run_protocol([str(src)], methods, ["entropy"], pictures=0, progress=False, log=lambda m: None,
                                journal=journal)  # fmt: skip
        finally:
            journal.close()

    first = run()
    assert run().rows == first.rows  # both taken from the journal
    flat = np.full((560, 520), 128, np.uint8)
    flat[::2] = 130  # another output, same size
    os.remove(tool / "a.png")
    Image.fromarray(flat).save(tool / "a.png")
    os.utime(tool / "a.png", ns=(1, 1))
    third = run()
    changed = {r["file"]: r["entropy"] for r in third.rows}
    assert changed[str(src / "a.png")] == pytest.approx(1.0)  # two grey levels, half each
    assert changed[str(src / "sub/b.png")] == {r["file"]: r["entropy"] for r in first.rows}[str(src / "sub/b.png")]


def test_parse_method():
    assert parse_method("clahe") == ("clahe", "clahe", "")
    assert parse_method("xvertnet=runs/a") == ("xvertnet", "xvertnet", "runs/a")
    assert parse_method("mine:xvertnet=C:\\runs\\a") == ("mine", "xvertnet", "C:\\runs\\a")
    assert parse_method("vendor.v2:outputs=/data/x") == ("vendor.v2", "outputs", "/data/x")
    for bad in ["a b:clahe", "x|y:clahe", ":clahe", "mine:"]:
        with pytest.raises(ValueError, match="LABEL"):
            parse_method(bad)


def test_labels_compare_two_models_and_keep_what_a_method_is(tmp_path, seed):
    torch.manual_seed(seed)
    models = [save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / f"m{k}",
                         extra={"training": {"config": {"roi_size": 64}}}) for k in range(2)]  # fmt: skip
    src = tmp_path / "a.png"
    Image.fromarray(chest_like(seed)).save(src)
    out = tmp_path / "r"
    methods = ["identity", "orig:identity", f"first:xvertnet={models[0]}", f"second:xvertnet={models[1]}"]
    run, _ = evaluate([str(src)], str(out), methods, ["entropy", "tenengrad"], pictures=1, progress=False,
                      log=lambda m: None, device="cpu")  # fmt: skip
    assert run.methods == ["identity", "orig", "first", "second"]
    got = {(r["roi"], r["method"]): (r["entropy"], r["tenengrad"]) for r in run.rows}
    for roi in ("upper", "lower"):
        assert got[(roi, "orig")] == got[(roi, "identity")]  # scored as the original, as stored
        assert got[(roi, "first")] != got[(roi, "second")]
    with open(out / "summary.csv") as f:
        assert {r["compared_to"] for r in csv.DictReader(f) if r["method"] != "first"} == {"first"}
    with pytest.raises(ValueError, match="each method needs a label of its own"):
        evaluate([str(src)], str(tmp_path / "r2"), ["clahe", "clahe"], ["entropy"], progress=False)


def test_enhance_outputs_score_as_the_in_process_xvertnet(tmp_path, seed):
    # the CLI's outputs read back through outputs=DIR give the scores of the same model run
    # inside evaluate: one protocol, however the enhanced images were made
    torch.manual_seed(seed)
    model = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "model", extra={"training": {"config": {"roi_size": 64}}})
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(chest_like(seed)).save(src / "a.png")
    Image.fromarray(chest_like(seed + 1)).save(src / "sub" / "b.png")
    assert main(["enhance", str(src), "-o", str(tmp_path / "enh"), "--model", str(model), "--device", "cpu", "-q"]) == 0
    out = tmp_path / "r"
    evaluate([str(src)], str(out), [f"xvertnet={model}", f"cli:outputs={tmp_path / 'enh'}"], METRICS, pictures=0,
             progress=False, log=lambda m: None, device="cpu")  # fmt: skip
    got = scores(out)
    assert len(got) == 2 * 2 * 2
    for (f, roi, method), values in got.items():
        if method == "cli":
            assert values == got[(f, roi, "xvertnet")]


def test_a_16_bit_output_is_read_on_one_scale_not_its_own_maximum(tmp_path, seed):
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    values = (chest_like(seed).astype(np.uint16) * 16)  # a 12-bit input
    Image.fromarray(values).save(src / "a.png")
    method = PrecomputedOutputs(str(tool))
    source = InputFile(str(src / "a.png"), "a.png")
    pixels = read_image(src / "a.png").pixels
    for top in (1500, 1023):  # a dark output kept at 12 bits: its maximum needs 11 or 10 bits
        dark = np.round(values.astype(np.float64) / 4095 * top).astype(np.uint16)
        Image.fromarray(dark).save(tool / "a.png")
        np.testing.assert_allclose(method(pixels, source=source, input_bits=12), dark / 4095.0, atol=1e-6)
    full = np.round(values.astype(np.float64) / 4000 * 65535).clip(0, 65535).astype(np.uint16)
    Image.fromarray(full).save(tool / "a.png")  # a tool writing the whole 16 bits
    np.testing.assert_allclose(method(pixels, source=source, input_bits=12), full / 65535.0, atol=1e-6)


def test_outputs_inside_the_input_folder_are_not_inputs(tmp_path, seed):
    src, _ = inputs_and_clahe_outputs(tmp_path, seed, "png8")
    os.rename(tmp_path / "tool", src / "enhanced")  # the layout docs/guide/enhancing.md suggests
    run, _ = evaluate([str(src)], str(tmp_path / "r"), ["clahe", f"tool:outputs={src / 'enhanced'}"], ["entropy"],
                      pictures=0, progress=False, log=lambda m: None)  # fmt: skip
    assert run.images == 2 and not run.failed
    with pytest.raises(ValueError, match="is a folder of outputs"):
        evaluate([str(src)], str(src), ["clahe"], ["entropy"], progress=False, log=lambda m: None)
    assert not (src / ".xvertfast-evaluate.jsonl").exists()


def test_another_tools_outputs_added_to_a_report_and_dropped_again(tmp_path, seed, capsys):
    # the files of an outputs=DIR method are journalled with each image: added, they are scored
    # alone; dropped (their folder removed), the other methods' scores stay without a rescore
    import shutil

    src, tool = inputs_and_clahe_outputs(tmp_path, seed, "png8")
    out = tmp_path / "r"
    args = ["evaluate", str(src), "-o", str(out), "--metrics", ",".join(METRICS), "--pictures", "0", "-q"]
    assert main([*args, "--methods", "identity,clahe"]) == 0
    before = scores(out)
    assert main([*args, "--methods", f"identity,clahe,tool:outputs={tool}"]) == 0
    assert "were scored for the methods added alone" in capsys.readouterr().err
    got = scores(out)
    assert {k: v for k, v in got.items() if k[2] != "tool"} == before
    assert all(got[(f, roi, "tool")] == got[(f, roi, "clahe")] for f, roi, _ in before)
    shutil.rmtree(tool)
    assert main([*args, "--methods", "identity,clahe"]) == 0
    assert "resumed: 2 images scored by an earlier run were taken from" in capsys.readouterr().err and scores(out) == before


def test_inputs_of_one_name_with_outputs_of_another_spelling_of_their_extension_are_scored(tmp_path, seed):
    """in/a.jpeg and in/a.tif with tool/a.jpg and tool/a.tif (a tool keeping each input's format, its own
    spelling of it), in/b.dcm and in/b.png with tool/b.dicom and tool/b.png: both failed 'whose it is
    cannot be told', .jpeg and .jpg (.dcm and .dicom) counted as two extensions where .tif and .tiff were
    one. Each spelling of a format is now one, so each input takes the output of its own format."""
    import tifffile

    from tests.io.test_read import make_dicom

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "a.jpeg", quality=95)
    tifffile.imwrite(src / "a.tif", chest_like(seed + 1))
    make_dicom(src / "b.dcm", chest_like(seed + 2).astype(np.uint16) * 16)
    Image.fromarray(chest_like(seed + 3)).save(src / "b.png")
    for name in ("a.jpg", "a.tif", "b.dicom", "b.png"):
        (tool / name).write_bytes(b"x")
    method = PrecomputedOutputs(str(tool))
    sources = [InputFile(str(src / rel), rel) for rel in ("a.jpeg", "a.tif", "b.dcm", "b.png")]
    method.expect(sources)
    assert [method.locate(s) for s in sources] == [str(tool / n) for n in ("a.jpg", "a.tif", "b.dicom", "b.png")]
    (tool / "a.jpeg").write_bytes(b"x")  # a.jpg and a.jpeg there: one format twice, whose is whose unknown
    method = PrecomputedOutputs(str(tool))
    method.expect(sources)
    for source in sources[:2]:
        with pytest.raises(ImageReadError, match="whose it is cannot be told"):
            method.locate(source)
    # in/c.jpg and in/c.jpeg with tool/c.jpg and tool/c.jpeg (a tool keeping each spelling): each its own,
    # the spellings matched as spelt before they are taken as one format (both failed so)
    Image.fromarray(chest_like(seed + 4)).save(src / "c.jpg", quality=95)
    Image.fromarray(chest_like(seed + 5)).save(src / "c.jpeg", quality=95)
    for name in ("c.jpg", "c.JPEG"):
        (tool / name).write_bytes(b"x")
    sources = [InputFile(str(src / rel), rel) for rel in ("c.jpg", "c.jpeg")]
    method = PrecomputedOutputs(str(tool))
    method.expect(sources)
    assert [method.locate(s) for s in sources] == [str(tool / n) for n in ("c.jpg", "c.JPEG")]


def _read_notes(tool, source, pixels, input_bits) -> list[str]:
    """What ``outputs=TOOL`` says of how it read ``source``'s output (its ``notes``)."""
    notes: list[str] = []
    PrecomputedOutputs(str(tool))(pixels, source=source, input_bits=input_bits, notes=notes)
    return notes


def test_a_colour_output_is_scored_as_its_luminance_with_a_note(tmp_path, seed, capsys):
    """A tool's RGB output was scored as its luminance without a word (read with warn=False, the
    reading's note dropped): the report now says so, for that image and method, and counts the
    images it concerns in one line."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    for k, name in enumerate(("a", "b")):
        grey = chest_like(seed + k)
        Image.fromarray(grey).save(src / f"{name}.png")
        Image.fromarray(np.stack([grey, grey // 2 + 60, grey], axis=-1)).save(tool / f"{name}.png")
    Image.fromarray(chest_like(seed + 2)).save(src / "c.png")
    Image.fromarray(chest_like(seed + 2)).save(tool / "c.png")  # grey: nothing said
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 0
    said = "(outputs): its output as read: RGB image converted to luminance (grayscale)"
    err = capsys.readouterr().err
    assert f"note: {src / 'a.png'} {said}" in err.splitlines(), err
    summary = (out / "summary.md").read_text()
    assert f"- 2 images {said} (e.g. {src / 'a.png'}, {src / 'b.png'})" in summary, summary
    assert "c.png" not in summary.split("## Notes")[1].split("\n## ")[0]
    assert _evaluate_outputs(src, out, tool) == 0  # resumed: said from the journal, as the metrics' notes are
    assert "resumed: 3 images scored by an earlier run were taken from" in capsys.readouterr().err
    assert f"- 2 images {said} (e.g. {src / 'a.png'}, {src / 'b.png'})" in (out / "summary.md").read_text()
    assert main(["evaluate", str(src), "-o", str(out), "--methods", f"identity,outputs={tool}", "--metrics",
                 "entropy,tenengrad", "--pictures", "0", "-q"]) == 0  # fmt: skip
    # (a metric added: the outputs run again for it)
    assert "scored for the metrics added alone" in capsys.readouterr().err
    journalled = [json.loads(line) for line in (out / JOURNAL_FILE).read_text().splitlines()]
    again = [line for line in journalled if "tenengrad" in line.get("rows", [{}])[0]]
    assert sorted(os.path.basename(line["file"]) for line in again) == ["a.png", "b.png", "c.png"], journalled
    for line in again:  # the note of the run that added it kept, not journalled again beside it
        read_as = [m for m in line["missing"] if m[0] is None]
        assert len(read_as) == (0 if line["file"].endswith("c.png") else 1), line["missing"]
    assert f"- 2 images {said} (e.g. {src / 'a.png'}, {src / 'b.png'})" in (out / "summary.md").read_text()
    assert main(["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy", "--pictures",
                 "0", "-q"]) == 0  # the outputs dropped: so is what was said of them  # fmt: skip
    assert "converted to luminance" not in (out / "summary.md").read_text()


def test_a_deep_output_whose_values_fit_in_fewer_bits_than_it_is_read_over_is_said(tmp_path, seed):
    """A 10-bit output (0..1023) of a 12-bit input, in a 16-bit PNG recording no depth, was read
    over 0..4095 and scored as a dark image without a word; a DICOM output of 12-bit values whose
    BitsStored says 16, read over 0..65535, alike. Now a note says what it was read over and what its
    values fit in; none where the output fills the range, is 8-bit, or records its input's depth."""
    from tests.io.test_read import make_dicom

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    values = chest_like(seed).astype(np.uint16) * 16 + 15  # a 12-bit input, 0..4095
    Image.fromarray(values).save(src / "a.png")
    rad = read_image(src / "a.png")
    assert rad.bits_stored == 12
    source = InputFile(str(src / "a.png"), "a.png")
    Image.fromarray(values // 4).save(tool / "a.png")  # written over 0..1023
    assert _read_notes(tool, source, rad.pixels, 12) == [
        "its output's values fit in 10 bits (0..1023), but it is read over 12 bits (0..4095, its input's depth: the "
        "file records none), so it is scored as dark as that makes it: if its tool wrote it over 0..1023, record that "
        "depth in the files (a PNG's sBIT chunk, a TIFF's MaxSampleValue, a DICOM's BitsStored) or scale them to "
        "0..4095"]  # fmt: skip
    os.remove(tool / "a.png")
    make_dicom(tool / "a.dcm", values, bits=16)
    assert _read_notes(tool, source, rad.pixels, 12) == [
        "its output's values fit in 12 bits (0..4095), but it is read over 16 bits (0..65535, the depth its "
        "BitsStored records, its input's being 12), so it is scored as dark as that makes it: if its tool wrote it "
        "over 0..4095, record that depth in the files (a PNG's sBIT chunk, a TIFF's MaxSampleValue, a DICOM's "
        "BitsStored) or scale them to 0..65535"]  # fmt: skip
    assert _read_notes(tool, source, rad.pixels, 32)[0].startswith(  # under a float input: no depth to name
        "its output's values fit in 12 bits (0..4095), but it is read over 16 bits (0..65535, the depth its "
        "BitsStored records), so")  # fmt: skip
    os.remove(tool / "a.dcm")
    Image.fromarray(values // 4).save(tool / "a.png")  # ... under a float input (read at 32 bits): over 16 bits
    assert _read_notes(tool, source, rad.pixels, 32)[0].startswith(
        "its output's values fit in 10 bits (0..1023), but it is read over 16 bits (0..65535, its type's whole range: "
        "the file records no depth), so")  # (its values do not pass 32 bits)  # fmt: skip
    assert _read_notes(tool, source, rad.pixels, 8)[0].startswith(  # under an 8-bit input: its values pass it
        "its output's values fit in 10 bits (0..1023), but it is read over 16 bits (0..65535, its type's whole range: "
        "the file records no depth, and its values pass its input's 8 bits), so")  # fmt: skip
    os.remove(tool / "a.png")
    make_dicom(tool / "a.dcm", values, bits=12)  # the depth of its input, recorded: as meant
    assert _read_notes(tool, source, rad.pixels, 12) == []
    os.remove(tool / "a.dcm")
    write_image(str(tool / "a.png"), clahe(rad.pixels), fmt="png16", like=rad)  # as enhance writes it
    assert _read_notes(tool, source, rad.pixels, 12) == []
    Image.fromarray(values).save(tool / "a.png")  # fills its input's 12 bits, recording none
    assert _read_notes(tool, source, rad.pixels, 12) == []
    Image.fromarray((values // 16).astype(np.uint8)).save(tool / "a.png")  # 8-bit: over 0..255, as ever
    assert _read_notes(tool, source, rad.pixels, 12) == []
    for dark in (values // 2, values * 8):  # values up to half their range (over 12 bits, over 16): a dark output
        Image.fromarray(dark).save(tool / "a.png")
        assert _read_notes(tool, source, rad.pixels, 12) == []
    Image.fromarray(values // 4).save(tool / "a.png")
    out = tmp_path / "r"
    evaluate([str(src)], str(out), [f"tool:outputs={tool}"], ["entropy"], pictures=0, progress=False,
             log=lambda m: None)  # fmt: skip
    assert f"- {src / 'a.png'} (tool): its output's values fit in 10 bits (0..1023), but it is read over 12 bits" in (
        (out / "summary.md").read_text())


def test_an_image_one_method_fails_on_keeps_its_notes_and_says_it_is_left_out_of_every_method(tmp_path, seed, capsys):
    """An input whose output is missing failed for every method (identity's scores of it dropped
    too), and what was noted of the input as it was read (its colour converted, a polarity that
    looks inverted) was lost with it. The report now keeps those notes and says that a failed image
    is left out of every method's scores."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    grey = chest_like(seed)
    Image.fromarray(np.stack([grey, grey, grey // 2], axis=-1)).save(src / "rgb.png")  # no output of it
    Image.fromarray(chest_like(seed + 1)).save(src / "b.png")
    Image.fromarray(chest_like(seed + 1)).save(tool / "b.png")
    out = tmp_path / "r"
    assert _evaluate_outputs(src, out, tool) == 1
    noted = f"{src / 'rgb.png'}: RGB image converted to luminance (grayscale)"
    assert f"note: {noted}" in capsys.readouterr().err.splitlines()
    summary = (out / "summary.md").read_text()
    notes, failed = summary.split("## Notes")[1].split("## Failed images")
    assert f"- {noted}" in notes.splitlines(), summary
    assert "Each is left out of every method's scores, so that the methods are compared on the same images; where " \
           "one method failed on it, that method is named. What was noted of them as they were read (decoding, " \
           "polarity) is among the notes above." in failed, summary  # fmt: skip
    assert f"- {src / 'rgb.png'}: its output {tool / 'rgb'}.* is missing (method outputs)" in failed.splitlines()
    assert {k[0] for k in scores(out, ["entropy"])} == {str(src / "b.png")}


def _a_12_bit_input(tmp_path, seed):
    """A 12-bit PNG input in ``in/`` and an empty ``tool/`` for its output: (in, tool, its values,
    its Radiograph, its InputFile)."""
    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    values = chest_like(seed).astype(np.uint16) * 16 + 15
    Image.fromarray(values).save(src / "a.png")
    rad = read_image(src / "a.png")
    return src, tool, values, rad, InputFile(str(src / "a.png"), "a.png")


def test_a_signed_output_with_no_negative_value_is_said(tmp_path, seed):
    """A tool's 0..4095 output of a 12-bit input saved as an int16 TIFF (numpy's signed type) was read
    over -32768..32767, its values scored in the upper half with a sixteenth of their contrast, without
    a word; a DICOM of PixelRepresentation 1 and BitsStored 16 holding them alike (not said). A note now
    says so and how to write it (a DICOM's with the BitsStored its values fit in: written unsigned at 16
    bits, they were read too dark); none for a signed output that holds negative values, nor for an
    unsigned one (a rescaled DICOM whose low is alike: the next test)."""
    import tifffile

    from tests.io.test_read import make_dicom

    src, tool, values, rad, source = _a_12_bit_input(tmp_path, seed)
    tifffile.imwrite(tool / "a.tif", values.astype(np.int16))
    assert _read_notes(tool, source, rad.pixels, 12) == [
        "its output is stored as signed integers (int16) and holds no negative value, yet it is read over their range "
        "(-32768..32767), so its values, which fit in 12 bits, are scored in the upper half of that range, with at "
        "most half its contrast: write the outputs as unsigned integers (or as floats in [0, 1])"]  # fmt: skip
    whole = (values.astype(np.int32) * 16 - 32768).astype(np.int16)
    tifffile.imwrite(tool / "a.tif", whole)  # the whole range
    assert _read_notes(tool, source, rad.pixels, 12) == []
    tifffile.imwrite(tool / "a.tif", values)
    assert _read_notes(tool, source, rad.pixels, 12) == []
    os.remove(tool / "a.tif")
    make_dicom(tool / "a.dcm", values, bits=16, signed=True)
    assert _read_notes(tool, source, rad.pixels, 12) == [
        "its output is stored as signed integers (PixelRepresentation 1, BitsStored 16) and holds no negative value, "
        "yet it is read over their range (-32768..32767), so its values, which fit in 12 bits, are scored in the upper "
        "half of that range, with at most half its contrast: write the outputs with PixelRepresentation 0 (unsigned "
        "integers) and BitsStored 12, its input's depth"]  # fmt: skip
    make_dicom(tool / "a.dcm", values, bits=12)  # written so: nothing to say (unsigned at 16 bits: too dark)
    assert _read_notes(tool, source, rad.pixels, 12) == []
    # a dark output (values halved, in 11 bits) is told its input's depth, not the 11 its largest value fits in
    # (over 0..2047 it read up to white, not half); under a float input, no depth known, only if so written
    make_dicom(tool / "a.dcm", values // 2, bits=16, signed=True)
    assert _read_notes(tool, source, rad.pixels, 12)[0].endswith(
        "which fit in 11 bits, are scored in the upper half of that range, with at most half its contrast: write the "
        "outputs with PixelRepresentation 0 (unsigned integers) and BitsStored 12, its input's depth")  # fmt: skip
    assert _read_notes(tool, source, rad.pixels, 32)[0].endswith(
        "PixelRepresentation 0 (unsigned integers) and BitsStored 11 (if its tool wrote them over 0..2047)")
    make_dicom(tool / "a.dcm", values // 2, bits=12)  # written as told: read up to half, as meant; nothing said
    assert read_image(tool / "a.dcm").values.max() / 4095 <= 0.5
    assert _read_notes(tool, source, rad.pixels, 12) == []
    make_dicom(tool / "a.dcm", values, bits=16)
    assert "but it is read over 16 bits" in _read_notes(tool, source, rad.pixels, 12)[0]
    make_dicom(tool / "a.dcm", values // 2 + 2048, bits=13, signed=True)  # 12 bits of 13: no depth to name
    assert _read_notes(tool, source, rad.pixels, 12)[0].endswith("PixelRepresentation 0 (unsigned integers)")
    make_dicom(tool / "a.dcm", whole, bits=16, signed=True)
    assert _read_notes(tool, source, rad.pixels, 12) == []


def test_a_dicom_output_whose_rescale_moves_the_range_away_from_its_values_is_said(tmp_path, seed):
    """12-bit values stored as 32768..36863 in an unsigned DICOM with RescaleIntercept -32768 (read
    as 0..4095) were read over -32768..32767, the rescale's image of BitsStored 16, and scored in a
    sixteenth of black to white without a word (the depth note compares plain depths; it is not signed
    either); so alike a signed one rescaled by +16384. A note now says where the values lie, how much
    of the range they fill and how to write them; none for a rescaled output filling its range."""
    from tests.io.test_read import make_dicom

    src, tool = tmp_path / "in", tmp_path / "tool"
    src.mkdir()
    tool.mkdir()
    values = chest_like(seed).astype(np.uint16) * 16 + 15
    values[0, :2] = 0, 4095
    Image.fromarray(values).save(src / "a.png")
    rad = read_image(src / "a.png")
    source = InputFile(str(src / "a.png"), "a.png")
    make_dicom(tool / "a.dcm", values + 32768, bits=16, intercept=-32768)
    assert read_image(tool / "a.dcm").values.min() == 0  # (read as its 0..4095)
    assert _read_notes(tool, source, rad.pixels, 12) == [
        "its output's values lie in 0..4095 after its rescale (RescaleSlope 1, RescaleIntercept -32768), which puts "
        "the range it is read over (what its BitsStored 16 holds, rescaled) at -32768..32767: they fill 6% of it, so "
        "it is scored within that share of black to white: if its tool meant them over their own range, write them "
        "with no rescale (RescaleSlope 1, RescaleIntercept 0) and BitsStored 12, its input's depth"]  # fmt: skip
    # (the fix named no BitsStored: "and BitsStored the depth they fit in"); under a float input, no depth known
    assert _read_notes(tool, source, rad.pixels, 32)[0].endswith(
        "and BitsStored 12 (if its tool wrote them over 0..4095)")
    make_dicom(tool / "a.dcm", values, bits=16, signed=True, intercept=16384)
    note = _read_notes(tool, source, rad.pixels, 12)[0]
    assert note.startswith(
        "its output's values lie in 16384..20479 after its rescale (RescaleSlope 1, RescaleIntercept 16384), which "
        "puts the range it is read over (what its BitsStored 16 holds, rescaled) at -16384..49151: they fill 6% of "
        "it")  # fmt: skip
    assert note.endswith("if its tool meant its stored values (0..4095) over their own range, write them with no "
                         "rescale (RescaleSlope 1, RescaleIntercept 0) and BitsStored 12, its input's depth")
    make_dicom(tool / "a.dcm", values, bits=12, intercept=-1024)  # rescaled, filling its range: as meant
    assert _read_notes(tool, source, rad.pixels, 12) == []
    make_dicom(tool / "a.dcm", values // 16 + 32768, bits=16, intercept=-32768)  # 8 bits' worth: not "0%"
    assert "they fill 0.38% of it" in _read_notes(tool, source, rad.pixels, 12)[0]
    # a narrow spread high in 16 bits is the image's own, not its rescale's: said neither with one nor without
    narrow = 40000 + 2 * values.astype(np.uint32)
    for intercept in (-1024, 0):
        make_dicom(tool / "a.dcm", narrow, bits=16, intercept=intercept)
        assert _read_notes(tool, source, rad.pixels, 12) == [], intercept


def test_a_bone_dark_outputs_notes_say_how_it_is_scored_read_inverted(tmp_path, seed):
    """inverted_outputs=DIR scores 1 - v, and the notes on the depth or sign it is read over said
    what holds for an upright output: bone-dark 12-bit values in an unsigned DICOM of BitsStored 16
    were "scored as dark as that makes it" and scored 0.94..1 (nearly white); int16 ones "in the
    upper half", and scored 0.44..0.50. The notes now say how they are scored read inverted."""
    import tifffile

    from tests.io.test_read import make_dicom

    src, tool, values, rad, source = _a_12_bit_input(tmp_path, seed)
    dark = 4095 - values  # stored bone dark

    def read():
        notes: list[str] = []
        scored = PrecomputedOutputs(str(tool), inverted=True)(rad.pixels, source=source, input_bits=12, notes=notes)
        return scored, notes

    make_dicom(tool / "a.dcm", dark, bits=16)
    scored, notes = read()
    assert scored.min() >= 0.93
    assert notes == [
        "its output's values fit in 12 bits (0..4095), but it is read over 16 bits (0..65535, the depth its "
        "BitsStored records, its input's being 12), so, read inverted, it is scored as bright as that makes it: if "
        "its tool wrote it over 0..4095, record that depth in the files (a PNG's sBIT chunk, a TIFF's "
        "MaxSampleValue, a DICOM's BitsStored) or scale them to 0..65535"]  # fmt: skip
    os.remove(tool / "a.dcm")
    tifffile.imwrite(tool / "a.tif", dark.astype(np.int16))
    scored, notes = read()
    assert 0.43 <= scored.min() and scored.max() <= 0.5
    assert notes == [
        "its output is stored as signed integers (int16) and holds no negative value, yet it is read over their range "
        "(-32768..32767), so its values, which fit in 12 bits, lie in the upper half of that range and, read "
        "inverted, are scored in the lower half of black to white, with at most half its contrast: write the outputs "
        "as unsigned integers (or as floats in [0, 1])"]  # fmt: skip
