"""Resuming an interrupted evaluation from its report folder's journal."""

from __future__ import annotations

import copy
import errno
import os
import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image

from tests.eval.test_evaluate import chest_like
from xvertfast.cli import main
from xvertfast.eval.baselines import clahe, identity
from xvertfast.eval.journal import JOURNAL_FILE, LOCK_FILE, PICTURES_DIR, Journal
from xvertfast.eval.protocol import run_protocol

METRICS = ["entropy", "tenengrad"]
SETTINGS = {"methods": ["identity", "clahe"], "metrics": METRICS}


def write_images(folder, seed: int, n: int = 4):
    folder.mkdir()
    for k in range(n):
        Image.fromarray(chest_like(seed + k, 400, 380)).save(folder / f"img{k}.png")
    return folder


class Counted:
    """CLAHE that counts its calls and raises KeyboardInterrupt (a kill) on call ``stop``."""

    def __init__(self, stop: int | None = None):
        self.calls, self.stop = 0, stop

    def __call__(self, pixels, spine=None):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return clahe(pixels, spine)


def run(images, out_dir, method, pictures=0, settings=SETTINGS, restart=False, log=lambda m: None):
    journal = Journal(str(out_dir), settings, restart)
    try:
        return run_protocol([str(images)], {"identity": identity, "clahe": method}, METRICS, pictures=pictures,
                            progress=False, log=log, journal=journal)  # fmt: skip
    finally:
        journal.close()


def test_an_interrupted_evaluation_scores_only_the_rest(tmp_path, seed):
    images = write_images(tmp_path / "in", seed)
    whole = run(images, tmp_path / "whole", Counted())
    with pytest.raises(KeyboardInterrupt):
        run(images, tmp_path / "cut", Counted(stop=3))  # killed while scoring the third image
    rest = Counted()
    resumed = run(images, tmp_path / "cut", rest)
    assert rest.calls == 2 and resumed.images == whole.images == 4
    assert resumed.rows == whole.rows  # same rows, same order, same values

    # images chosen for the report's pictures and journalled without one are run again for it ...
    again = Counted()
    pictured = run(images, tmp_path / "cut", again, pictures=2)
    assert again.calls == 2 and len(pictured.pictures) == 2 and pictured.rows == whole.rows
    # ... and their pictures are journalled with them: the next rerun runs nothing
    none = Counted()
    resumed = run(images, tmp_path / "cut", none, pictures=2)
    assert none.calls == 0 and resumed.rows == whole.rows and len(resumed.pictures) == 2
    for got, made in zip(resumed.pictures, pictured.pictures):
        assert got["file"] == made["file"] and got["boxes"] == made["boxes"] and got["scale"] == made["scale"]
        for part in ("thumbs", "crops"):
            assert got[part].keys() == made[part].keys()
            for name in made[part]:
                np.testing.assert_array_equal(got[part][name], made[part][name])


@pytest.mark.parametrize("damage", ["cut", "empty", "not_zip", "no_boxes"])
def test_a_damaged_picture_is_made_again(tmp_path, seed, damage):
    # a picture file cut short by a kill or a full disk (zipfile.BadZipFile, not an OSError),
    # empty, or without its boxes: the image is run again for its picture, nothing crashes
    images = write_images(tmp_path / "in", seed, n=2)
    made = run(images, tmp_path / "out", Counted(), pictures=2)
    files = sorted((tmp_path / "out" / PICTURES_DIR).iterdir())
    assert len(files) == 2
    data = files[0].read_bytes()
    if damage == "cut":
        files[0].write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        files[0].write_bytes(b"")
    elif damage == "not_zip":
        files[0].write_bytes(b"not a zip file at all" * 10)
    else:
        np.savez(files[0].with_suffix(".tmp.npz"), scale=np.float64(1.0))
        files[0].with_suffix(".tmp.npz").replace(files[0])
    again, said = Counted(), []
    resumed = run(images, tmp_path / "out", again, pictures=2, log=said.append)
    assert again.calls == 1 and len(resumed.pictures) == 2 and resumed.rows == made.rows
    assert "1 image scored by an earlier run was run again with every method, for its picture in the report" in said


def test_a_line_cut_short_by_a_kill_is_dropped_and_the_journal_goes_on(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=3)
    whole = run(images, tmp_path / "whole", Counted())
    with pytest.raises(KeyboardInterrupt):
        run(images, tmp_path / "cut", Counted(stop=2))
    path = tmp_path / "cut" / JOURNAL_FILE
    with open(path, "a") as f:
        f.write('{"file": "' + str(images / "img1.png") + '", "rows": [{"fi')  # the write a kill interrupted
    first = Counted()
    assert run(images, tmp_path / "cut", first).rows == whole.rows and first.calls == 2
    idle = Counted()
    assert run(images, tmp_path / "cut", idle).rows == whole.rows and idle.calls == 0


@pytest.mark.parametrize("line", ["null", "[1, 2]", "5", '{"rows": []}', '{"file": 3}'])
def test_a_line_that_is_json_but_no_entry_is_dropped(tmp_path, seed, line):
    # a journal damaged on disk or edited by hand: its image is scored again, nothing crashes
    images = write_images(tmp_path / "in", seed, n=2)
    whole = run(images, tmp_path / "whole", Counted())
    with pytest.raises(KeyboardInterrupt):
        run(images, tmp_path / "cut", Counted(stop=2))
    with open(tmp_path / "cut" / JOURNAL_FILE, "a") as f:
        f.write(line + "\n")
    rest = Counted()
    assert run(images, tmp_path / "cut", rest).rows == whole.rows and rest.calls == 1


def test_a_line_of_bytes_that_are_not_text_is_dropped(tmp_path, seed):
    # a disk error's garbage: the journal was read as UTF-8 text and the run refused with "'utf-8' codec
    # can't decode byte 0xff", naming no file, though a damaged line only means its image is scored again
    images = write_images(tmp_path / "in", seed, n=2)
    whole = run(images, tmp_path / "whole", Counted())
    with pytest.raises(KeyboardInterrupt):
        run(images, tmp_path / "cut", Counted(stop=2))
    with open(tmp_path / "cut" / JOURNAL_FILE, "ab") as f:
        f.write(b'{"file": "\xff\xfe\x00garbage\n')
    rest = Counted()
    assert run(images, tmp_path / "cut", rest).rows == whole.rows and rest.calls == 1


def test_other_settings_are_refused_and_restart_starts_over(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=2)
    run(images, tmp_path / "r", Counted())
    other = {**SETTINGS, "rois": [["img0.png", [[100, 190], [290, 190]]]]}  # the scores were taken elsewhere
    # in a Python caller's words: "pass --restart ... or use a new REPORT_DIR" named the CLI's
    with pytest.raises(ValueError, match=r"an evaluation with other settings \(rois .*\).*; run with the recorded settings to "
                                         r"resume, pass restart=True to score "
                                         r"every image again into the same folder, or use a new out_dir$"):  # fmt: skip
        run(images, tmp_path / "r", Counted(), settings=other)
    fresh = Counted()
    run(images, tmp_path / "r", fresh, settings=other, restart=True)
    assert fresh.calls == 2


def test_a_changed_image_is_scored_again(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=2)
    run(images, tmp_path / "r", Counted())
    Image.fromarray(chest_like(seed + 50, 400, 380)).save(images / "img1.png")
    stat = os.stat(images / "img1.png")
    os.utime(images / "img1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = Counted()
    run(images, tmp_path / "r", again)
    assert again.calls == 1


def test_an_image_listed_with_another_polarity_is_scored_again(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=2)
    plain, inverted = tmp_path / "plain.txt", tmp_path / "inverted.txt"
    plain.write_text(f"{images / 'img0.png'}\n{images / 'img1.png'}\n")
    inverted.write_text(f"{images / 'img0.png'}\tMONOCHROME1\n{images / 'img1.png'}\n")  # as the warning advises

    def listed(listing, method):
        journal = Journal(str(tmp_path / "r"), SETTINGS)
        try:
            return run_protocol([f"@{listing}"], {"identity": identity, "clahe": method}, METRICS, progress=False,
                                log=lambda m: None, journal=journal)  # fmt: skip
        finally:
            journal.close()

    first = listed(plain, Counted())
    again = Counted()
    flipped = listed(inverted, again)
    assert again.calls == 1  # img0 only: its scores were those of the image read the other way up
    assert [r for r in flipped.rows if "img1" in r["file"]] == [r for r in first.rows if "img1" in r["file"]]
    assert [r for r in flipped.rows if "img0" in r["file"]] != [r for r in first.rows if "img0" in r["file"]]
    idle = Counted()
    listed(inverted, idle)
    assert idle.calls == 0


def test_a_second_evaluation_into_the_same_folder_is_refused(tmp_path, seed):
    first = Journal(str(tmp_path / "r"), SETTINGS)
    try:
        # (it would truncate the journal or append under the first's settings)
        with pytest.raises(ValueError, match="another xvertfast evaluate is writing into"):
            Journal(str(tmp_path / "r"), SETTINGS, restart=True)
    finally:
        first.close()
    Journal(str(tmp_path / "r"), SETTINGS).close()  # free again once the first is done


def test_cli_rerun_resumes_and_restart_rescores(tmp_path, seed, capsys):
    images = write_images(tmp_path / "in", seed, n=2)
    args = ["evaluate", str(images), "-o", str(tmp_path / "rep"), "--methods", "identity,clahe",
            "--metrics", "entropy,tenengrad", "--pictures", "0", "-q"]  # fmt: skip
    assert main(args) == 0
    first = (tmp_path / "rep" / "scores.csv").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert "resumed: 2 images scored by an earlier run were taken from" in capsys.readouterr().err
    assert (tmp_path / "rep" / "scores.csv").read_bytes() == first
    rois = tmp_path / "rois.csv"
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\nimg0.png,110,190,290,190\nimg1.png,110,190,290,190\n")
    assert main([*args[:-1], "--rois", str(rois), "-q"]) == 2  # other ROIs: the scores kept are not theirs
    assert "other settings (rois 'auto' -> " in (err := capsys.readouterr().err) and "--restart" in err
    assert "or use a new REPORT_DIR" in err  # (the CLI's words; from Python out_dir)
    assert main([*args[:-1], "--metrics", "entropy", "--restart", "-q"]) == 0
    assert "resumed" not in capsys.readouterr().err
    assert np.isfinite(float(open(tmp_path / "rep" / "scores.csv").read().splitlines()[1].split(",")[-1]))


def test_cli_rerun_after_a_code_change_is_refused(tmp_path, seed, capsys, monkeypatch):
    """A development install's edited metric code under the same version: the journal's scores
    were taken by the old code, so the rerun is refused (naming the change) rather than mixing them."""
    import xvertfast.eval.evaluate as evaluate

    images = write_images(tmp_path / "in", seed, n=1)
    args = ["evaluate", str(images), "-o", str(tmp_path / "rep"), "--methods", "identity",
            "--metrics", "entropy", "--pictures", "0", "-q"]  # fmt: skip
    assert main(args) == 0
    monkeypatch.setattr(evaluate, "code_digest", lambda: "0123456789abcdef")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    # in words (the digest alone told a user nothing), with what to do; the digests stay, for debugging
    # (an edit of the report's or the CLI's code is none: NOT_SCORING, left out of the digest)
    assert "xvertfast's code changed since these scores were made (an upgrade, or an edit of its code that can " \
           "change a score)" in err  # fmt: skip
    # the same version, an edit: no "version '0.1.0' -> ..." among the values (the word may be elsewhere)
    assert "-> '0123456789abcdef'" in err and not re.search(r"version '[^']*' ->", err)
    # a code is no setting: 'run with the recorded settings to resume' sent one to the settings given
    assert "; reinstall the xvertfast that made them to resume, pass --restart to score every image again into " \
           "the same folder, or use a new REPORT_DIR" in err and "recorded settings" not in err  # fmt: skip
    monkeypatch.setattr(evaluate, "__version__", "99.0")  # an upgrade: its version is named beside the code
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "xvertfast's code changed" in err and re.search(r"version '[^']*' -> '99\.0'", err)
    assert err.count("99.0") == 1 and "xvertfast '" not in err  # said once, as the version
    assert "reinstall the xvertfast that made them to resume" in err and "recorded settings" not in err
    rois = tmp_path / "rois.csv"  # the code and a setting changed
    rois.write_text("file,upper_row,upper_col,lower_row,lower_col\nimg0.png,110,190,290,190\n")
    assert main([*args, "--rois", str(rois)]) == 2
    err = capsys.readouterr().err
    assert "; reinstall the xvertfast that made them and run with the recorded settings to resume, " in err, err
    assert main([*args, "--restart"]) == 0


def _one_png_to_evaluate(tmp_path, seed):
    """A folder of one 96 px PNG, the report folder, and the evaluate command (identity, entropy) of the library tests."""
    (images := tmp_path / "in").mkdir()
    Image.fromarray(chest_like(seed, 96, 96)).save(images / "img0.png")
    out = tmp_path / "rep"
    return images, out, ["evaluate", str(images), "-o", str(out), "--methods", "identity", "--metrics", "entropy",
                         "--pictures", "0", "-q"]  # fmt: skip


def test_cli_rerun_after_a_library_upgrade_is_refused_and_one_installed_since_resumes(tmp_path, seed, capsys,
                                                                                         monkeypatch):  # fmt: skip
    """The libraries that compute the scores are recorded with the settings (and said in the report):
    scikit-image upgraded under an evaluation of hours may move CLAHE's scores, so the rerun is
    refused as an upgrade of xvertfast is, naming the library and both versions. One installed since
    (imagecodecs, which an image's failure asked for) or removed since resumes, the version recorded kept."""
    import json

    import xvertfast.eval.evaluate as evaluate

    images, out, args = _one_png_to_evaluate(tmp_path, seed)
    versions = {"numpy": "2.0.0", "scikit-image": "0.24.0", "torch": "2.4.0+cpu", "pydicom": "3.0.0",
                "imagecodecs": None}  # fmt: skip
    monkeypatch.setattr(evaluate, "library_versions", lambda: dict(versions))
    assert main(args) == 0
    assert "- libraries that compute the scores: numpy 2.0.0, scikit-image 0.24.0, torch 2.4.0+cpu, pydicom 3.0.0; " \
           "imagecodecs not " \
           "installed\n" in (out / "summary.md").read_text()  # fmt: skip
    assert json.loads((out / "provenance.json").read_text())["libraries"] == versions
    capsys.readouterr()
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**versions, "scikit-image": "0.25.0"})
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "libraries that compute the scores were upgraded or downgraded since these scores were made: " \
           "scikit-image '0.24.0' -> '0.25.0')" in err and "numpy" not in err and "code changed" not in err  # fmt: skip
    assert "; reinstall scikit-image 0.24.0 that made them (pip install 'scikit-image==0.24.0') to resume, pass " \
           "--restart" in err  # fmt: skip
    monkeypatch.setattr(evaluate, "code_digest", lambda: "0123456789abcdef")  # and xvertfast's code: both said
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "xvertfast's code changed" in err and "scikit-image '0.24.0' -> '0.25.0'" in err
    assert "; reinstall the xvertfast and scikit-image 0.24.0 that made them (pip install 'scikit-image==0.24.0') " \
           "to resume" in err  # fmt: skip
    monkeypatch.undo()
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**versions, "imagecodecs": "2024.1.1", "pydicom": None})
    assert main(args) == 0
    assert "resumed: 1 image scored by an earlier run was taken from" in capsys.readouterr().err
    kept = {**versions, "imagecodecs": "2024.1.1"}  # (pydicom's recorded version: the image before was read with it)
    assert json.loads((out / "provenance.json").read_text())["libraries"] == kept
    with open(out / JOURNAL_FILE) as f:
        assert json.loads(f.readline())["settings"]["libraries"] == kept
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**versions, "numpy": "2.1.0", "torch": "2.5.1+cpu"})
    assert main(args) == 2  # a local version: pip needs the index it came from
    assert "(pip install 'numpy==2.0.0' 'torch==2.4.0+cpu', with --index-url of the index that gave torch " \
           "2.4.0+cpu) to resume" in capsys.readouterr().err  # fmt: skip


def test_cli_rerun_after_a_decoder_upgrade_is_refused_only_where_images_it_decodes_were_scored(tmp_path, seed, capsys,
                                                                                               monkeypatch):  # fmt: skip
    """A decoder's new version refuses a resume only where the images scored were of a format it
    decodes: `pip install 'xvertfast[dicom-codecs]'` (which an image's failure suggests) moving
    pydicom or its pixel plugins cannot move a PNG's scores, and hours of them were lost. numpy,
    scipy, scikit-image and torch compute every score: they refuse whatever the images."""
    import json

    import xvertfast.eval.evaluate as evaluate

    images, out, args = _one_png_to_evaluate(tmp_path, seed)
    versions = {"numpy": "2.0.0", "pydicom": "3.0.0", "pylibjpeg": "2.0.0", "python-gdcm": "3.0.24",
                "pillow": "11.0.0", "tifffile": "2024.1.1", "imagecodecs": None}  # fmt: skip
    monkeypatch.setattr(evaluate, "library_versions", lambda: dict(versions))
    assert main(args) == 0
    capsys.readouterr()
    moved = {**versions, "pydicom": "3.1.0", "pylibjpeg": "2.1.0", "python-gdcm": "3.2.1", "tifffile": "2025.1.1"}
    monkeypatch.setattr(evaluate, "library_versions", lambda: dict(moved))
    assert main(args) == 0 and "resumed: 1 image scored by an earlier run was taken from" in capsys.readouterr().err
    assert json.loads((out / "provenance.json").read_text())["libraries"] == moved  # the versions now: none read a PNG
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**moved, "pillow": "12.0.0"})
    assert main(args) == 2 and "pillow '11.0.0' -> '12.0.0'" in capsys.readouterr().err  # Pillow decodes PNG
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**moved, "numpy": "2.1.0"})
    assert main(args) == 2 and "numpy '2.0.0' -> '2.1.0'" in capsys.readouterr().err
    Image.fromarray(chest_like(seed + 1, 96, 96)).save(images / "img1.tif")  # a TIFF scored too
    monkeypatch.setattr(evaluate, "library_versions", lambda: dict(moved))
    assert main(args) == 0
    capsys.readouterr()
    monkeypatch.setattr(evaluate, "library_versions", lambda: {**moved, "tifffile": "2025.6.1", "pydicom": "3.2.0"})
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "tifffile '2025.1.1' -> '2025.6.1'" in err and "pydicom" not in err
    with pytest.raises(SystemExit):  # and evaluate --help says so
        main(["evaluate", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "a library upgraded or downgraded, or replaced by another build (onnxruntime by onnxruntime-gpu): numpy, " \
           "scipy, scikit-image, torch, onnxruntime or TensorRT under its --backend, Triton under --backend compile " \
           "on a GPU, or a decoder of the images' formats, pydicom for DICOM, Pillow for PNG) are refused" in said  # fmt: skip
    assert "how the report was made: xvertfast's version, the versions of the libraries that compute the scores" in said
    from xvertfast._version import BACKEND_LIBRARIES  # (each backend's library, Triton too, is named in both lists)

    recorded = said[said.index("how the report was made") : said.index("each model's digest")].lower()
    refused = said[said.index("other settings changed") : said.index("are refused")].lower()
    assert [m for m in BACKEND_LIBRARIES.values() if m not in recorded or m not in refused] == [], (recorded, refused)


def test_a_rerun_after_an_onnxruntime_upgrade_under_its_backend_is_refused_with_the_pip_command(tmp_path,
                                                                                               monkeypatch):  # fmt: skip
    """onnxruntime (TensorRT alike) computes XVertNet's outputs under --backend onnxruntime: its version
    is recorded with the libraries, and an upgrade between two runs is refused as one of scikit-image
    is (the journal recorded the backend's name alone, and the scores of both versions were mixed).
    Under torch's backend it is not recorded: it computes nothing there."""
    import json

    ort = pytest.importorskip("onnxruntime")
    settings = _backend_settings(monkeypatch)
    assert "onnxruntime" not in settings("torch")["libraries"]
    monkeypatch.setattr(ort, "__version__", "1.19.2")
    Journal(str(tmp_path), settings("onnxruntime")).close()
    with open(tmp_path / JOURNAL_FILE) as f:
        assert json.loads(f.readline())["settings"]["libraries"]["onnxruntime"] == "1.19.2"
    Journal(str(tmp_path), settings("onnxruntime")).close()  # the same version resumes
    monkeypatch.setattr(ort, "__version__", "1.20.1")
    with pytest.raises(ValueError) as refused:
        Journal(str(tmp_path), settings("onnxruntime"))
    said = str(refused.value)
    assert "libraries that compute the scores were upgraded or downgraded since these scores were made: " \
           "onnxruntime '1.19.2' -> '1.20.1'" in said, said  # fmt: skip
    assert "reinstall onnxruntime 1.19.2 that made them (pip install 'onnxruntime==1.19.2') to resume" in said, said


def _backend_settings(monkeypatch):
    """evaluate's settings of one xvertnet method run under a backend (by name) on a device (by kind)."""
    from types import SimpleNamespace

    import xvertfast.eval.evaluate as evaluate

    class Enhancer:
        dtype, model = torch.float32, None

        def __init__(self, backend, device):
            self.backend, self.device = SimpleNamespace(name=backend), torch.device(device)

    def settings(backend, device="cpu"):
        built = {"xvertnet": SimpleNamespace(enhancer=Enhancer(backend, device))}
        return evaluate._settings(["xvertnet"], built, ["entropy"], None, {})

    monkeypatch.setattr(evaluate, "fingerprint", lambda model: "weights")
    return settings


def test_a_switch_to_another_build_of_the_backends_library_is_refused_as_an_upgrade(tmp_path, monkeypatch):
    """onnxruntime and onnxruntime-gpu install one module under two names: each was recorded by its
    own, so a resume across the switch (on a GPU another execution provider computes the outputs)
    found one library removed and one installed, both let through, and mixed the two's scores."""
    import xvertfast.eval.evaluate as evaluate
    from xvertfast._version import library_of

    installed = {"onnxruntime": "1.19.2"}
    monkeypatch.setattr(evaluate, "backend_library_versions", lambda backends: dict(installed))
    settings = _backend_settings(monkeypatch)
    Journal(str(tmp_path), settings("onnxruntime", "cuda")).close()
    installed = {"onnxruntime-gpu": "1.19.2"}  # the same version, another build
    with pytest.raises(ValueError) as refused:
        Journal(str(tmp_path), settings("onnxruntime", "cuda"))
    said = str(refused.value)
    assert "were upgraded, downgraded or replaced by another build since these scores were made: onnxruntime " \
           "'1.19.2' -> onnxruntime-gpu '1.19.2'" in said, said  # fmt: skip
    assert "reinstall onnxruntime 1.19.2 that made them (pip uninstall onnxruntime-gpu, then pip install " \
           "'onnxruntime==1.19.2') to resume" in said, said  # fmt: skip
    installed = {"onnxruntime": "1.19.2"}  # switched back: resumes
    Journal(str(tmp_path), settings("onnxruntime", "cuda")).close()
    assert [library_of(name) for name in ("onnxruntime-directml", "tensorrt-cu12", "pytorch-triton", "triton",
                                          "pylibjpeg-libjpeg")] == [
        "onnxruntime", "tensorrt", "triton", "triton", "pylibjpeg-libjpeg"]  # fmt: skip


def test_compile_on_a_gpu_records_tritons_version(monkeypatch):
    """Inductor's kernels for a GPU are Triton's, which pip may upgrade apart from torch (with a warning
    that torch pins another): recorded for compile on a GPU, not on the CPU (C++ there)."""
    import sys
    from types import SimpleNamespace

    from xvertfast._version import library_of

    monkeypatch.setitem(sys.modules, "triton", SimpleNamespace(__version__="3.1.0"))
    settings = _backend_settings(monkeypatch)

    def tritons(libraries):
        return [version for name, version in libraries.items() if library_of(name) == "triton"]

    assert tritons(settings("compile", "cuda")["libraries"]) == ["3.1.0"]
    assert tritons(settings("compile", "cpu")["libraries"]) == tritons(settings("torch", "cuda")["libraries"]) == []


def test_cli_interrupted_says_the_same_command_resumes(tmp_path, seed, capsys, monkeypatch):
    images = write_images(tmp_path / "in", seed, n=2)
    monkeypatch.setattr("xvertfast.eval.baselines.clahe", Counted(stop=2))
    args = ["evaluate", str(images), "-o", str(tmp_path / "rep"), "--methods", "identity,clahe",
            "--metrics", "entropy", "--pictures", "0", "-q"]  # fmt: skip
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted: the images scored so far are kept in" in err and "the same command scores only the rest" in err


def run_methods(images, out_dir, methods: dict, pictures=0, log=lambda m: None):
    journal = Journal(str(out_dir), {"methods": list(methods), "metrics": METRICS})
    try:
        return run_protocol([str(images)], methods, METRICS, pictures=pictures, progress=False, log=log,
                            journal=journal)  # fmt: skip
    finally:
        journal.close()


def test_a_method_added_is_scored_alone_and_one_dropped_leaves_the_rest(tmp_path, seed):
    # adding a model to an evaluation of hours was refused as other settings: --restart scored every
    # method of every image again; now the methods done are kept and the one added alone is run
    images = write_images(tmp_path / "in", seed)
    fresh = run_methods(images, tmp_path / "fresh", {"identity": identity, "clahe": Counted(), "more": Counted()})
    first = Counted()
    run_methods(images, tmp_path / "r", {"identity": identity, "clahe": first})
    kept, added, said = Counted(), Counted(), []
    grown = run_methods(images, tmp_path / "r", {"identity": identity, "clahe": kept, "more": added}, log=said.append)
    assert (first.calls, kept.calls, added.calls) == (4, 0, 4)
    assert grown.rows == fresh.rows and grown.images == 4  # same rows, in the same order, as scored together
    assert any("more added, scored on the 4 images done" in s for s in said), said
    again = Counted()
    assert run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted(), "more": again}).rows == fresh.rows
    assert again.calls == 0  # the completed images were journalled whole

    none, said = Counted(), []
    fewer = run_methods(images, tmp_path / "r", {"identity": identity, "more": none}, log=said.append)
    assert none.calls == 0 and fewer.rows == [r for r in fresh.rows if r["method"] != "clahe"]
    assert any("clahe dropped (its scores stay in the journal" in s for s in said), said
    assert set(fewer.seconds) == {"identity", "more", "metrics"}  # (the dropped method's time was reported)
    back, said = Counted(), []  # and back again: a method left out by mistake costs nothing to give again
    again = run_methods(images, tmp_path / "r", {"identity": identity, "clahe": back, "more": Counted()},
                        log=said.append)  # fmt: skip
    assert back.calls == 0 and again.rows == fresh.rows and any("clahe back" in s for s in said), said
    # restart=True drops the scores recorded, which a new folder keeps (it said 'use a new folder', the CLI's
    # REPORT_DIR's words to a Python caller, as if the two ways came to the same)
    with pytest.raises(ValueError, match=r"an evaluation of other methods \(.*\), none of these \(other\); pass restart=True "
                                         r"to start over, dropping the scores recorded there, or use a new out_dir to keep "
                                         r"them \(a method's name mistyped\? give it as it was\)$"):  # fmt: skip
        run_methods(images, tmp_path / "r", {"other": Counted()})  # none kept: a typo, or another evaluation


def test_a_pictured_image_is_run_whole_when_a_method_is_added(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=3)
    run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted()}, pictures=1)
    kept, added, said = Counted(), Counted(), []
    grown = run_methods(images, tmp_path / "r", {"identity": identity, "clahe": kept, "more": added}, pictures=1,
                        log=said.append)  # fmt: skip
    assert (kept.calls, added.calls) == (1, 3) and set(grown.pictures[0]["crops"]) == {"identity", "clahe", "more"}
    # "2 image(s) ... scored for the methods added alone" of 3 done: the third was said nowhere
    assert "2 images scored by an earlier run were scored for the methods added alone" in said, said
    assert "1 image scored by an earlier run was run again with every method, for its picture in the report" in said


def test_a_kill_while_adding_a_method_resumes(tmp_path, seed):
    images = write_images(tmp_path / "in", seed)
    fresh = run_methods(images, tmp_path / "fresh", {"identity": identity, "clahe": Counted(), "more": Counted()})
    run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted()})
    with pytest.raises(KeyboardInterrupt):
        run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted(), "more": Counted(stop=3)})
    kept, added = Counted(), Counted()
    resumed = run_methods(images, tmp_path / "r", {"identity": identity, "clahe": kept, "more": added})
    assert (kept.calls, added.calls) == (0, 2) and resumed.rows == fresh.rows


def test_a_label_naming_another_method_than_before_is_refused(tmp_path):
    # a new model (or device, precision) under a label already scored would mix two methods'
    # rows, or re-score it unasked: refused as other settings, as before
    settings = {"methods": ["identity", {"label": "mine", "model": "aaaa"}], "metrics": METRICS}
    Journal(str(tmp_path / "r"), settings).close()
    changed = {**settings, "methods": ["identity", {"label": "mine", "model": "bbbb"}, "more"]}
    with pytest.raises(ValueError, match=r"other settings .*model.*restart=True"):
        Journal(str(tmp_path / "r"), changed)
    Journal(str(tmp_path / "r"), {**settings, "methods": ["identity"]}).close()  # mine dropped ...
    with pytest.raises(ValueError, match=r"other settings .*model.*restart=True"):  # ... and given again as another
        Journal(str(tmp_path / "r"), changed)


def test_cli_a_method_added_to_a_report_scores_it_alone(tmp_path, seed, capsys):
    images = write_images(tmp_path / "in", seed, n=2)
    args = ["evaluate", str(images), "--metrics", "entropy,tenengrad", "--pictures", "0", "-q"]
    assert main([*args, "-o", str(tmp_path / "rep"), "--methods", "identity,clahe"]) == 0
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "rep"), "--methods", "identity,clahe,farbman"]) == 0
    err = capsys.readouterr().err
    assert "farbman added, scored on the 2 images done" in err
    assert "2 images scored by an earlier run were scored for the methods added alone" in err
    assert main([*args, "-o", str(tmp_path / "fresh"), "--methods", "identity,clahe,farbman"]) == 0
    assert (tmp_path / "rep" / "scores.csv").read_bytes() == (tmp_path / "fresh" / "scores.csv").read_bytes()
    assert (tmp_path / "rep" / "summary.csv").read_bytes() == (tmp_path / "fresh" / "summary.csv").read_bytes()


def test_methods_in_another_order_keep_their_scores_in_the_new_order(tmp_path, seed):
    images = write_images(tmp_path / "in", seed, n=2)
    fresh = run_methods(images, tmp_path / "fresh", {"clahe": Counted(), "identity": identity})
    run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted()})
    again, said = Counted(), []
    swapped = run_methods(images, tmp_path / "r", {"clahe": again, "identity": identity}, log=said.append)
    assert again.calls == 0 and swapped.rows == fresh.rows
    assert "the methods are in another order: their scores are kept" in said


def test_notes_of_a_grown_or_shrunk_report_read_as_a_fresh_ones(tmp_path, seed):
    # an added method's note of a metric left out ('upper ROI (more): tmqi ...') was added beside the
    # kept one ('upper ROI: tmqi ...'), and a note naming a dropped method stayed
    from xvertfast.eval.baselines import farbman

    def flat(pixels, spine=None):  # BRISQUE is undefined on a constant output: a note naming it
        return np.full_like(pixels, 0.5)

    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(chest_like(seed, 200, 180)).save(images / "small.png")  # ROIs under TMQI's 161 px
    metrics = ["entropy", "tmqi", "brisque"]

    def notes(out, methods):
        journal = Journal(str(out), {"methods": list(methods), "metrics": metrics})
        try:
            return run_protocol([str(images)], methods, metrics, pictures=0, progress=False, log=lambda m: None,
                                journal=journal).notes  # fmt: skip
        finally:
            journal.close()

    both = {"identity": identity, "flat": flat, "farbman": farbman}
    fresh = notes(tmp_path / "fresh", both)
    assert notes(tmp_path / "r", {"identity": identity}) != fresh
    assert notes(tmp_path / "r", both) == fresh  # flat and farbman added
    assert any("(flat)" in n for n in fresh)
    assert notes(tmp_path / "r", {"identity": identity, "farbman": farbman}) == notes(
        tmp_path / "fresh2", {"identity": identity, "farbman": farbman})  # flat dropped: no note names it  # fmt: skip


def test_a_rewrite_a_kill_cut_short_leaves_no_temporary(tmp_path, seed):
    # the journal is rewritten (atomically) when methods change: a kill before the rename left
    # its journal-sized temporary in the report folder for good
    images = write_images(tmp_path / "in", seed, n=2)
    run_methods(images, tmp_path / "r", {"identity": identity})
    left = tmp_path / "r" / f".{JOURNAL_FILE}.k1ll3d.part"  # what atomic_write's temporary is named
    left.write_text("half a journal")
    assert run_methods(images, tmp_path / "r", {"identity": identity, "more": Counted()}).images == 2
    assert not left.exists()


def test_a_refusal_names_the_changes_that_refuse_it_not_the_methods_added(tmp_path):
    # a rerun refused for its metrics also listed the method added, which alone is allowed: the
    # user read both as what to undo
    settings = {"methods": ["identity"], "metrics": METRICS, "rois": "auto"}
    Journal(str(tmp_path / "r"), settings).close()
    with pytest.raises(ValueError) as refused:  # (metrics, like methods, may change alone: not named either)
        Journal(str(tmp_path / "r"), {"methods": ["identity", "clahe"], "metrics": ["entropy"], "rois": []})
    assert "other settings (rois 'auto' -> [])," in str(refused.value)  # that alone
    with pytest.raises(ValueError, match=r"other settings \(methods .*\)"):  # a label naming another method: said
        Journal(str(tmp_path / "r"), {"methods": [{"label": "identity", "model": "x"}], "metrics": ["entropy"],
                                      "rois": "auto"})  # fmt: skip


class CountedMetric:
    """A metric that counts its calls."""

    def __init__(self, metric):
        self.metric, self.calls = metric, 0

    def __call__(self, *args):
        self.calls += 1
        return self.metric(*args)


def count_metrics(monkeypatch, *names) -> dict[str, CountedMetric]:
    import xvertfast.eval.metrics as m

    counted = {name: CountedMetric(getattr(m, name)) for name in names}
    for name, metric in counted.items():
        monkeypatch.setattr(m, name, metric)
    return counted


def run_metrics(images, out_dir, metrics, method, pictures=0, log=lambda m: None):
    journal = Journal(str(out_dir), {**SETTINGS, "metrics": list(metrics)})
    try:
        return run_protocol([str(images)], {"identity": identity, "clahe": method}, list(metrics), pictures=pictures,
                            progress=False, log=log, journal=journal)  # fmt: skip
    finally:
        journal.close()


def test_a_metric_added_is_scored_alone_and_one_dropped_leaves_the_rest(tmp_path, seed, monkeypatch):
    # adding brisque to an evaluation of hours was refused as other settings: --restart scored every
    # metric of every image again; now the scores kept and the metric added alone is computed
    images = write_images(tmp_path / "in", seed)
    fresh = run_metrics(images, tmp_path / "fresh", ["entropy", "tenengrad"], Counted())
    alone = run_metrics(images, tmp_path / "alone", ["tenengrad"], Counted())
    run_metrics(images, tmp_path / "r", ["entropy"], Counted())
    counted, method, said = count_metrics(monkeypatch, "entropy", "tenengrad"), Counted(), []
    grown = run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], method, log=said.append)
    # the methods run again (their outputs are not kept) but only the metric added is computed
    assert (counted["entropy"].calls, counted["tenengrad"].calls, method.calls) == (0, 4 * 2 * 2, 4)
    assert grown.rows == fresh.rows and grown.images == 4  # same rows, same order, as scored together
    assert any("tenengrad added, scored on the 4 images done" in s for s in said), said
    idle = Counted()
    assert run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], idle).rows == fresh.rows
    assert idle.calls == 0 and counted["tenengrad"].calls == 16  # the completed images were journalled whole

    said = []
    fewer = run_metrics(images, tmp_path / "r", ["tenengrad"], idle, log=said.append)
    assert fewer.rows == alone.rows and fewer.metrics == ["tenengrad"]  # the report has the metrics asked alone
    assert any("entropy dropped (its scores stay in the journal" in s for s in said), said
    back = run_metrics(images, tmp_path / "r", ["tenengrad", "entropy"], idle)  # given again: costs nothing
    assert idle.calls == 0 and (counted["entropy"].calls, counted["tenengrad"].calls) == (0, 16)
    assert back.rows == fresh.rows


def test_a_kill_while_adding_a_metric_resumes(tmp_path, seed, monkeypatch):
    images = write_images(tmp_path / "in", seed)
    fresh = run_metrics(images, tmp_path / "fresh", ["entropy", "tenengrad"], Counted())
    run_metrics(images, tmp_path / "r", ["entropy"], Counted())
    with pytest.raises(KeyboardInterrupt):
        run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], Counted(stop=3))
    counted, rest = count_metrics(monkeypatch, "entropy", "tenengrad"), Counted()
    resumed = run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], rest)
    assert (rest.calls, counted["entropy"].calls, counted["tenengrad"].calls) == (2, 0, 2 * 2 * 2)
    assert resumed.rows == fresh.rows


def test_a_pictured_image_keeps_its_picture_when_a_metric_is_added(tmp_path, seed, monkeypatch):
    images = write_images(tmp_path / "in", seed, n=3)
    fresh = run_metrics(images, tmp_path / "fresh", ["entropy", "tenengrad"], Counted(), pictures=2)
    run_metrics(images, tmp_path / "r", ["entropy"], Counted(), pictures=2)
    counted = count_metrics(monkeypatch, "entropy", "tenengrad")
    grown = run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], Counted(), pictures=2)
    assert (counted["entropy"].calls, counted["tenengrad"].calls) == (0, 3 * 2 * 2)
    assert grown.rows == fresh.rows and len(grown.pictures) == 2
    for got, made in zip(grown.pictures, fresh.pictures):
        assert got["file"] == made["file"] and got["boxes"] == made["boxes"]
        for name in made["crops"]:
            np.testing.assert_array_equal(got["crops"][name], made["crops"][name])
    idle = Counted()  # the pictures were journalled with the grown entries: nothing is run again
    assert len(run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], idle, pictures=2).pictures) == 2
    assert idle.calls == 0


def test_notes_of_a_metric_added_or_dropped_read_as_a_fresh_ones(tmp_path, seed):
    # a metric undefined on an ROI leaves a note: the rerun that adds it notes it as a fresh run
    # would (same notes, same order), and one that drops it no longer notes it
    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(chest_like(seed, 200, 180)).save(images / "small.png")  # ROIs under TMQI's 161 px

    def notes(out, metrics):
        return run_metrics(images, out, metrics, Counted()).notes

    fresh = notes(tmp_path / "fresh", ["entropy", "tmqi", "brisque"])
    assert any("tmqi" in n for n in fresh)
    notes(tmp_path / "r", ["entropy", "brisque"])
    assert notes(tmp_path / "r", ["entropy", "tmqi", "brisque"]) == fresh
    assert notes(tmp_path / "r", ["entropy", "brisque"]) == notes(tmp_path / "fresh2", ["entropy", "brisque"])


def test_cli_a_metric_added_to_a_report_scores_it_alone(tmp_path, seed, capsys):
    images = write_images(tmp_path / "in", seed, n=2)
    args = ["evaluate", str(images), "--methods", "identity,clahe", "--pictures", "0", "-q"]
    assert main([*args, "-o", str(tmp_path / "rep"), "--metrics", "entropy"]) == 0
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "rep"), "--metrics", "entropy,tenengrad"]) == 0
    err = capsys.readouterr().err
    assert "tenengrad added, scored on the 2 images done" in err and "--restart" not in err
    assert "2 images scored by an earlier run were scored for the metrics added alone" in err
    assert main([*args, "-o", str(tmp_path / "fresh"), "--metrics", "entropy,tenengrad"]) == 0
    for name in ("scores.csv", "summary.csv"):
        assert (tmp_path / "rep" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
    assert main([*args, "-o", str(tmp_path / "rep"), "--metrics", "tenengrad"]) == 0  # dropped: not reported
    assert main([*args, "-o", str(tmp_path / "alone"), "--metrics", "tenengrad"]) == 0
    for name in ("scores.csv", "summary.csv"):
        assert (tmp_path / "rep" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()


def test_a_method_run_again_for_a_metric_added_keeps_its_time_once(tmp_path, seed):
    # each method runs again on the images done to score a metric added, and that second run's
    # time was added to the first: the report's "Time:" line doubled with every metric added
    import time

    class Slow(Counted):
        def __call__(self, pixels, spine=None):
            time.sleep(0.05)
            return super().__call__(pixels, spine)

    images = write_images(tmp_path / "in", seed, n=2)
    first = run_metrics(images, tmp_path / "r", ["entropy"], Slow())
    method = Slow()
    grown = run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], method)
    assert method.calls == 2  # (it did run again)
    assert grown.seconds["clahe"] == pytest.approx(first.seconds["clahe"])
    resumed = run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], Slow())  # as journalled
    assert resumed.seconds["clahe"] == pytest.approx(first.seconds["clahe"])


def test_a_metric_given_again_is_said_to_be_back_not_scored(tmp_path, seed):
    # a metric dropped and then given again is taken from the journal, yet the log said it was
    # "added, scored on the 2 image(s) done" while nothing was scored
    images = write_images(tmp_path / "in", seed, n=2)
    run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], Counted())
    run_metrics(images, tmp_path / "r", ["entropy"], Counted())
    said, idle = [], Counted()
    run_metrics(images, tmp_path / "r", ["entropy", "tenengrad"], idle, log=said.append)
    assert idle.calls == 0
    assert any("the metrics changed" in s and "tenengrad back, with the scores kept when dropped" in s
               for s in said), said  # fmt: skip
    assert not any("added" in s for s in said), said


def test_the_time_of_a_report_with_methods_or_metrics_dropped_says_it_holds_theirs(tmp_path, seed):
    # a rerun that dropped a method or a metric reported, as its "metrics" time, the time earlier runs
    # spent scoring them too, without a word (the journal keeps one such sum per image: not to be split)
    from xvertfast.eval.report import write_report

    def time_line(run, folder) -> str:
        md = open(write_report(run, str(tmp_path / folder), None)["summary.md"]).read()
        line = next(line for line in md.splitlines() if line.startswith("Time: "))
        # the metrics' time named as what it is: "metrics 1.6 s (metrics: including ...)" read as a method's
        assert re.search(r", scoring the ROIs \d+\.\d s[,.]", line) and "metrics:" not in line, line
        return line

    said = " s, which includes earlier runs' scoring of methods or metrics this report leaves out."
    images = write_images(tmp_path / "in", seed, n=2)
    assert said not in time_line(run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted()}), "a")
    assert said not in time_line(run_methods(images, tmp_path / "r", {"identity": identity, "clahe": Counted()}), "b")
    assert said in time_line(run_methods(images, tmp_path / "r", {"identity": identity}), "c")
    run_metrics(images, tmp_path / "m", METRICS, Counted())
    assert said in time_line(run_metrics(images, tmp_path / "m", ["entropy"], Counted()), "d")
    assert said not in time_line(run_metrics(images, tmp_path / "m", METRICS, Counted()), "e")  # given back


def _full_disk_from(journal, calls: int):
    """A stand-in for os.fsync that fails as a full disk does (no file named) from its ``calls``-th
    call on the file ``journal`` on (the journal's header, written whole by atomic_write, counts none)."""
    real, made = os.fsync, []

    def fsync(fd):
        if os.path.exists(journal) and os.path.samestat(os.fstat(fd), os.stat(journal)):
            made.append(fd)
            if len(made) >= calls:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    return fsync


@pytest.mark.parametrize(("pictures", "recorded"), [(0, 1), (0, 2), (1, 0)])
def test_a_full_disk_while_scoring_names_the_folder_and_file_and_keeps_the_images_recorded(tmp_path, seed, capsys,
                                                                                           monkeypatch, pictures,
                                                                                           recorded):  # fmt: skip
    """A full disk as an image's scores were recorded said only 'error: [Errno 28] No space left on
    device': neither the report folder, nor the file, nor what was kept. The line after ``recorded``
    images fails here (pictures 0: the journal's; 1: the first image's picture, which fails from its
    write); what was kept is counted in words ('the 1 image(s) ... are kept' before)."""
    images, out = write_images(tmp_path / "in", seed, n=3), tmp_path / "rep"
    args = ["evaluate", str(images), "-o", str(out), "--methods", "identity,clahe", "--metrics", "entropy",
            "--pictures", str(pictures), "-q"]  # fmt: skip
    with monkeypatch.context() as patch:
        if pictures:
            def no_room(*a, **k):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            patch.setattr(np, "savez_compressed", no_room)
        else:
            patch.setattr(os, "fsync", _full_disk_from(out / JOURNAL_FILE, recorded + 1))
        assert main(args) == 2
    err = capsys.readouterr().err
    kept = {0: "no image was recorded", 1: "the 1 image recorded before is kept",
            2: "the 2 images recorded before are kept"}[recorded]  # fmt: skip
    first, written = images / f"img{recorded}.png", PICTURES_DIR if pictures else JOURNAL_FILE
    assert (f"error: {out}: the scores of {first} could not be recorded ({written}: "
            f"{os.strerror(errno.ENOSPC)}); {kept}: the same command scores the rest once it can write there") in err, err
    assert main(args) == 0  # (the line whose fsync failed may be whole on disk: taken then too)
    assert ("resumed: " in capsys.readouterr().err) == (not pictures)


def test_a_report_folder_that_cannot_be_written_is_named_with_the_file(tmp_path, seed, capsys, monkeypatch):
    """A read-only report folder said '[Errno 30] Read-only file system: 'r/.xvertfast-evaluate.lock''
    with no word of the report; and a folder that cannot be made, the bare strerror; -o latest, a link to a
    folder not made yet, 'File exists'. The reason is said alone, without an '[Errno 30] ' before it."""
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    args = ["evaluate", str(images), "-o", str(out), "--methods", "identity", "--metrics", "entropy", "-q"]

    def read_only(path, *a, **k):  # (root writes into a read-only folder: the lock's open fails as on a read-only disk)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    with monkeypatch.context() as patch:
        patch.setattr("xvertfast.eval.journal.hold_lock", read_only)
        assert main(args) == 2
    assert (f"error: {out}: the evaluation's journal cannot be kept there ({LOCK_FILE}: "
            f"{os.strerror(errno.EROFS)}); no image was scored") in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*args[:2], "-o", str(tmp_path / "file" / "rep"), *args[4:]]) == 2
    assert (f"error: {tmp_path / 'file' / 'rep'}: the evaluation's journal cannot be kept "
            f"there ({os.strerror(errno.ENOTDIR)}); no image was scored") in capsys.readouterr().err
    # -o latest, latest a link to a folder not made yet: said so, not "File exists"
    (tmp_path / "latest").symlink_to(tmp_path / "2026-12-07", target_is_directory=True)
    assert main([*args[:2], "-o", str(tmp_path / "latest"), *args[4:]]) == 2
    assert (f"error: {tmp_path / 'latest'}: the evaluation's journal cannot be kept there ({tmp_path / 'latest'} is a "
            f"link to {tmp_path / '2026-12-07'}, which does not exist: make that folder first, or give the output "
            "folder itself); no image was scored") in capsys.readouterr().err  # fmt: skip
    assert not (tmp_path / "2026-12-07").exists()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_a_journal_error_keeps_its_kind_and_errno_when_pickled_or_copied(tmp_path, monkeypatch, error):
    """The journal's errors read as the reason alone, of the kind and errno of the error under them; a copy (one
    pickled, as a process pool hands it back) came back with errno None, so a full disk was no longer one."""
    from xvertfast.io.write import disk_full

    def refused(path, *a, **k):
        raise OSError(error, os.strerror(error), path)

    monkeypatch.setattr("xvertfast.eval.journal.hold_lock", refused)
    with pytest.raises(OSError) as raised:
        Journal(str(tmp_path), SETTINGS)
    said = f"{tmp_path}: the evaluation's journal cannot be kept there ({LOCK_FILE}: {os.strerror(error)}); no image " \
           "was scored"  # fmt: skip
    copies = [pickle.loads(pickle.dumps(raised.value)), copy.copy(raised.value), copy.deepcopy(raised.value)]
    for exc in [raised.value, *copies]:
        assert str(exc) == said
        assert exc.errno == error and disk_full(exc) == (error == errno.ENOSPC)
        assert isinstance(exc, PermissionError) == (error == errno.EACCES)


def test_a_ctrl_c_while_scoring_closes_the_progress_bar_before_the_cli_speaks(tmp_path, seed, capsys):
    """The bar was left open on a Ctrl-C: the CLI's 'interrupted: ... the same command scores only
    the rest' came before it, and the bar was drawn again after it once the traceback was freed
    (a run's last line was a half-full bar). It is closed as the interrupt passes."""
    images = write_images(tmp_path / "in", seed, n=3)
    journal = Journal(str(tmp_path / "r"), SETTINGS)
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:  # held, as the CLI's handler holds it while it speaks
            run_protocol([str(images)], {"identity": identity, "clahe": Counted(stop=2)}, METRICS, pictures=0,
                         progress=True, log=lambda m: None, journal=journal)  # fmt: skip
        err = capsys.readouterr().err
        assert "evaluate:" in err and err.endswith("\n"), repr(err[-80:])
        assert stopped.traceback  # (its frames, the loop's among them, alive until here)
    finally:
        journal.close()
