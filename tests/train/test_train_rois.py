"""``xvertfast train --rois FILE``: training ROIs cut at centres placed by hand, never at old ones."""

from __future__ import annotations

import os

import pytest
import torch

from tests.train.test_loop import CONFIG, write_images
from xvertfast.cli import main
from xvertfast.train import data as train_data
from xvertfast.train import train
from xvertfast.train.data import load_rois

HEAD = "file,upper_row,upper_col,lower_row,lower_col\n"


def _pairs(rois) -> dict[str, torch.Tensor]:
    """Each image's two ROI pairs, by file name."""
    return {os.path.basename(s): rois.pairs[rois.image == k] for k, s in enumerate(rois.sources)}


def _quiet(*args, **kwargs):
    return load_rois(*args, log=lambda m: None, **kwargs)


def test_the_named_images_are_cut_at_their_centres_the_others_at_those_found(tmp_path):
    """train had no --rois: its spine warning's advice had no option to take."""
    from xvertfast.preprocess.centres import load_roi_centres

    data = write_images(tmp_path / "data")
    csv = tmp_path / "rois.csv"
    csv.write_text(HEAD + "img0.png,20,15,50,60\n")
    found = _pairs(_quiet([str(data)], str(tmp_path / "c1"), 32))
    given = _pairs(_quiet([str(data)], str(tmp_path / "c2"), 32, rois=load_roi_centres(str(csv))))
    assert not torch.equal(found["img0.png"], given["img0.png"])
    assert torch.equal(found["img1.png"], given["img1.png"]) and torch.equal(found["img2.png"], given["img2.png"])


def test_the_cache_serves_no_crops_cut_at_other_centres(tmp_path, monkeypatch):
    from xvertfast.preprocess.centres import load_roi_centres

    data, cache = write_images(tmp_path / "data"), str(tmp_path / "cache")
    csv = tmp_path / "rois.csv"
    csv.write_text(HEAD + "img0.png,20,15,50,60\n")
    first = _pairs(_quiet([str(data)], cache, 32, rois=load_roi_centres(str(csv))))
    real, preprocessed = train_data.preprocess, []

    def counted(pixels, *args, **kwargs):
        preprocessed.append(1)
        return real(pixels, *args, **kwargs)

    monkeypatch.setattr(train_data, "preprocess", counted)
    csv.write_text(HEAD + "img0.png,60,40,70,20\n")  # img0's moved: its crops are cut again, the others' kept
    moved = _pairs(_quiet([str(data)], cache, 32, rois=load_roi_centres(str(csv))))
    assert len(preprocessed) == 1
    assert not torch.equal(first["img0.png"], moved["img0.png"])
    fresh = _pairs(_quiet([str(data)], str(tmp_path / "fresh"), 32, rois=load_roi_centres(str(csv))))
    assert torch.equal(fresh["img0.png"], moved["img0.png"])
    unplaced = _pairs(_quiet([str(data)], cache, 32))  # no file: the centres found, not the last ones given
    assert torch.equal(unplaced["img0.png"], _pairs(_quiet([str(data)], str(tmp_path / "auto"), 32))["img0.png"])


def test_a_resume_needs_the_centres_its_epochs_were_trained_on(tmp_path):
    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    csv = tmp_path / "rois.csv"
    csv.write_text(HEAD + "img0.png,20,15,50,60\n")
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], run, CONFIG, stop_after_epochs=1, rois=str(csv), **quiet)
    csv.write_text(HEAD + "img0.png,60,40,70,20\n")
    with pytest.raises(ValueError, match=r"^\S+: resume=True with other ROI centres given by hand \(rois\) than"):
        train([str(data)], run, CONFIG, resume=True, rois=str(csv), **quiet)
    with pytest.raises(ValueError, match=r"^\S+: resume=True with other ROI centres given by hand \(rois\) than"):
        train([str(data)], run, CONFIG, resume=True, **quiet)  # none given now: those found
    from xvertfast._text import cli_running

    cli_words = r"^\S+: --resume with other ROI centres given by hand \(--rois\) than"  # the CLI's, as before
    with cli_running(["resume", "rois"]), pytest.raises(ValueError, match=cli_words):
        train([str(data)], run, CONFIG, resume=True, **quiet)
    csv.write_text(HEAD + "img0.png,20,15,50,60\n")
    train([str(data)], run, CONFIG, resume=True, rois=str(csv), **quiet)  # the same: it goes on
    assert os.path.exists(os.path.join(run, "model"))


def test_a_resume_with_the_same_centres_goes_on_however_the_images_are_reached(tmp_path, monkeypatch):
    """The centres' digest held the inputs' paths as given: a run started on data/ and resumed on
    /abs/data (another folder, a node's mount) was refused as 'other ROI centres', its centres unchanged;
    without --rois such a resume goes on (the set's key is its images' contents)."""
    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    (tmp_path / "rois.csv").write_text(HEAD + "img0.png,20,15,50,60\n")
    quiet = {"progress": False, "log": lambda m: None}
    monkeypatch.chdir(tmp_path)
    train(["data"], run, CONFIG, stop_after_epochs=1, rois="rois.csv", **quiet)
    train([str(data)], run, CONFIG, resume=True, rois=str(tmp_path / "rois.csv"), **quiet)
    assert os.path.exists(os.path.join(run, "model"))


def test_a_refused_resume_gathers_no_copy_of_the_set(tmp_path):
    """A resume refused for other centres (or other images) first wrote the whole set's crops into a
    new cache/rois-*.npy, 4 MB an image at --roi-size 512, and left it there: tens of GB for an archive."""
    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    csv = tmp_path / "rois.csv"
    csv.write_text(HEAD + f"{data / 'img0.png'},20,15,50,60\n")
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], run, CONFIG, stop_after_epochs=1, rois=str(csv), **quiet)
    gathered = sorted(n for n in os.listdir(os.path.join(run, "cache")) if n.startswith("rois-"))
    csv.write_text(HEAD + f"{data / 'img0.png'},60,40,70,20\n")
    with pytest.raises(ValueError, match=r"^\S+: resume=True with other ROI centres given by hand \(rois\) than"):
        train([str(data)], run, CONFIG, resume=True, rois=str(csv), **quiet)
    csv.write_text(HEAD + f"{data / 'img0.png'},20,15,50,60\n")
    write_images(tmp_path / "more", n=1, size=96)  # another image
    with pytest.raises(ValueError, match="resume=True with other training images"):
        train([str(data), str(tmp_path / "more")], run, CONFIG, resume=True, rois=str(csv), **quiet)
    assert sorted(n for n in os.listdir(os.path.join(run, "cache")) if n.startswith("rois-")) == gathered


def test_a_set_gathered_at_other_centres_does_not_stay_in_the_cache(tmp_path, monkeypatch):
    """A run stopped before its first epoch and started again with the ROI file edited gathered a
    new cache/rois-*.npy and kept the old one, of no use to the run (a resume goes on only with
    its own set), 4 MB an image at --roi-size 512: tens of GB for an archive. The images' own
    crops stay: another run given a copy of the cache reuses them."""
    from xvertfast.train import loop

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    csv = tmp_path / "rois.csv"
    csv.write_text(HEAD + f"{data / 'img0.png'},20,15,50,60\n")
    quiet = {"progress": False, "log": lambda m: None}
    real_split = loop.split_by_image

    def ctrl_c_once_gathered(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "split_by_image", ctrl_c_once_gathered)
    with pytest.raises(KeyboardInterrupt):
        train([str(data)], str(run), CONFIG, rois=str(csv), **quiet)
    before = set(os.listdir(run / "cache"))
    assert len([n for n in before if n.startswith("rois-")]) == 1
    monkeypatch.setattr(loop, "split_by_image", real_split)
    csv.write_text(HEAD + f"{data / 'img0.png'},60,40,70,20\n")
    said = []
    train([str(data)], str(run), CONFIG, rois=str(csv), stop_after_epochs=1, progress=False, log=said.append)
    assert any(line.startswith(f"removed the ROIs gathered for other images or centres from {run / 'cache'} (")
               for line in said), said
    after = set(os.listdir(run / "cache"))
    gathered = [n for n in after if n.startswith("rois-")]
    assert len(gathered) == 1 and gathered[0] not in before  # the set of the centres now, alone
    assert {n for n in before if not n.startswith("rois-")} < after  # every image's crops kept, img0's old too
    train([str(data)], str(run), CONFIG, rois=str(csv), resume=True, **quiet)  # the run goes on from its own set
    assert (run / "model" / "config.json").exists()


def test_cli_errors_name_the_csv_line(tmp_path, capsys):
    data = write_images(tmp_path / "data")
    csv = tmp_path / "rois.csv"
    run = tmp_path / "run"
    args = ["train", str(data), "-o", str(run), "--width", "4", "--depth", "2", "--roi-size", "32", "--stages", "1",
            "--epochs-gc", "1", "--epochs-joint", "0", "--batch-size", "2", "--device", "cpu", "-q", "--rois", str(csv)]
    csv.write_text(HEAD + "img0.png,20,15,50,60\nimg9.png,1,2,3,4\n")
    assert main(args) == 2
    assert "rois.csv, line 3: img9.png is none of the inputs" in capsys.readouterr().err
    assert not run.exists()
    csv.write_text(HEAD + "img0.png,20,15,50,six\n")
    assert main(args) == 2
    assert "rois.csv, line 2: ROI centres must be numbers" in capsys.readouterr().err
    assert not run.exists()
    csv.write_text(HEAD + "img0.png,20,15,500,60\n")
    assert main(args) == 0  # the image is skipped, as a file that cannot be read is
    err = capsys.readouterr().err
    assert f"skipped: {data / 'img0.png'}: {csv}, line 2: the lower ROI centre (500, 60) lies outside" in err
