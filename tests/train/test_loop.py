"""The staged training loop: resume after a kill reaches the same weights; the CLI trains a loadable model."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CXR_DEV, needs_cxr_dev, said_around_the_bar
from xvertfast import load_model
from xvertfast.cli import main
from xvertfast.train import TrainConfig, train


def write_images(folder, n=3, size=80):
    folder.mkdir()
    x = np.linspace(-1, 1, size)
    for k in range(n):
        rng = np.random.default_rng(k)
        img = np.exp(-(x[None, :] ** 2) / 0.03) * 0.6 + 0.2 + 0.08 * rng.random((size, size))
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f"img{k}.png")
    return folder


CONFIG = TrainConfig(stages=2, epochs_gc=2, epochs_joint=2, batch_size=2, width=4, depth=2, roi_size=32,
                     val_fraction=0.34, patience=5, seed=3, device="cpu")  # fmt: skip


def weights(model):
    return {f"{k}.{n}": v for k, s in enumerate(model.stages) for n, v in s.state_dict().items()}


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    data = write_images(tmp_path / "data")
    full = train([str(data)], str(tmp_path / "full"), CONFIG, progress=False, log=lambda m: None)
    for stop in (3, 2):  # kill mid-stage 1, then again inside stage 2
        train([str(data)], str(tmp_path / "cut"), CONFIG, resume=True, progress=False, stop_after_epochs=stop,
              log=lambda m: None)  # fmt: skip
    resumed = train([str(data)], str(tmp_path / "cut"), CONFIG, resume=True, progress=False, log=lambda m: None)
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with open(tmp_path / "cut" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["stage"], r["epoch"]) for r in rows] == [(s, e) for s in "12" for e in "1234"]
    loaded = load_model(tmp_path / "cut" / "model")
    xp = torch.rand(1, 1, 40, 40)
    torch.testing.assert_close(loaded.enhance(xp, xp * 0.1), full.eval().enhance(xp, xp * 0.1), rtol=0, atol=0)


def test_making_the_next_stages_inputs_shows_progress(tmp_path, capsys):
    # a WLS solve per ROI between stage 1's last epoch and stage 2's bar, with nothing on the screen
    data = write_images(tmp_path / "data")
    quick = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run"), quick, progress=True, log=lambda m: None)
    err = capsys.readouterr().err
    assert "stage 2 inputs" in err and "ROI" in err
    train([str(data)], str(tmp_path / "quiet"), quick, progress=False, log=lambda m: None)
    assert "stage 2 inputs" not in capsys.readouterr().err


def test_new_run_refuses_an_existing_checkpoint_and_a_changed_config(tmp_path):
    data = write_images(tmp_path / "data")
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run"), small, progress=False, log=lambda m: None, stop_after_epochs=1)
    with pytest.raises(FileExistsError, match=r"holds a checkpoint: call train\(\) again with resume=True to go on, or "
                                              "use a new folder$"):  # (from Python: no --resume to add)
        train([str(data)], str(tmp_path / "run"), small, progress=False, log=lambda m: None)
    from xvertfast._text import cli_running

    wider = TrainConfig(**{**small.__dict__, "width": 8})
    with cli_running(["resume", "init", "lr", "width"]), pytest.raises(ValueError) as cli:  # not finished
        train([str(data)], str(tmp_path / "run"), wider, resume=True, progress=False, log=lambda m: None)
    # (it offered a new RUN_DIR with --init of this run's model, which --init refuses: a model of width 4)
    assert "--resume with a different configuration than the checkpoint's (--width 4 -> 8); resume with the run's " \
           "settings (only --lr may change), or start a new RUN_DIR from scratch (--init takes only a model of the " \
           "same --width)" in str(cli.value), cli.value
    train([str(data)], str(tmp_path / "run"), small, resume=True, progress=False, log=lambda m: None)
    # a finished run has nothing to resume: said so, with where its model is (not "add --resume")
    with pytest.raises(FileExistsError, match="holds a finished run") as finished:
        train([str(data)], str(tmp_path / "run"), small, progress=False, log=lambda m: None)
    assert f"its model is {tmp_path / 'run' / 'model'}" in str(finished.value) and "--resume" not in str(finished.value)
    # (from Python: it was told "use a new RUN_DIR with --init MODEL", an option train() has not)
    assert f"train into a new run folder with init={str(tmp_path / 'run' / 'model')!r} in its TrainConfig" in \
        str(finished.value) and "--init" not in str(finished.value), finished.value
    # finished: it was told to "resume with the run's settings", and, for --width 8, to train into a new RUN_DIR
    # with --init of its model, which --init refuses (a model of width 4): a model is offered only for settings
    # it does not fix
    model = tmp_path / "run" / "model"
    changed = TrainConfig(**{**small.__dict__, "batch_size": 1})
    with pytest.raises(ValueError) as info:
        train([str(data)], str(tmp_path / "run"), changed, resume=True, progress=False, log=lambda m: None)
    # (from Python: not "only --lr may change", "a new RUN_DIR" and "--init MODEL", which train() has not)
    assert str(info.value) == f"{tmp_path / 'run'}: the run has finished (all 1 stage trained): nothing to resume; its " \
        f"model is {model}; to train with other settings (batch_size 2 -> 1), train into a new run folder with " \
        f"init={str(model)!r} in its TrainConfig", info.value
    with cli_running(["resume", "init", "lr", "width"]), pytest.raises(ValueError) as cli:  # the CLI's words
        train([str(data)], str(tmp_path / "run"), wider, resume=True, progress=False, log=lambda m: None)
    assert str(cli.value) == f"{tmp_path / 'run'}: the run has finished (all 1 stage trained): nothing to resume; its " \
        f"model is {model}; to train with other settings (--width 4 -> 8), start a new RUN_DIR from scratch (--init " \
        "takes only a model of the same --width)", cli.value


@needs_cxr_dev
@pytest.mark.slow
def test_cli_trains_a_tiny_two_stage_model_on_cxr_dev(tmp_path):
    images = [os.path.join(CXR_DEV, n) for n in ("nih_00014998_000.png", "nih_00022202_000.png", "nih_00012751_000.png")]
    code = main(["train", *images, "-o", str(tmp_path / "run"), "--stages", "2", "--epochs-gc", "2",
                 "--epochs-joint", "1", "--batch-size", "2", "--width", "4", "--depth", "2",
                 "--roi-size", "64", "-q"])  # fmt: skip
    assert code == 0
    model = load_model(tmp_path / "run" / "model")
    assert len(model.stages) == 2
    assert os.path.exists(tmp_path / "run" / "metrics.csv")


def test_random_patches_cut_the_same_window_from_both(seed):
    from xvertfast.train.data import random_patches

    xp = torch.rand(5, 1, 32, 32)
    y = xp * 2 - 1  # y determined by xp pixel by pixel: a shared window keeps the relation
    gen = torch.Generator().manual_seed(seed)
    px, py = random_patches(xp, y, 12, gen)
    assert px.shape == py.shape == (5, 1, 12, 12)
    torch.testing.assert_close(py, px * 2 - 1)
    for i in range(5):  # each patch is a true window of its own ROI
        windows = xp[i, 0].unfold(0, 12, 1).unfold(1, 12, 1)
        assert (windows == px[i, 0]).flatten(2).all(-1).any()
    same_x, same_y = random_patches(xp, y, 32, gen)
    assert same_x is xp and same_y is y  # a patch as large as the ROI is the ROI


def test_patch_training_resumes_bitwise(tmp_path):
    data = write_images(tmp_path / "data")
    config = TrainConfig(**{**CONFIG.__dict__, "patch_size": 16})
    whole = train([str(data)], str(tmp_path / "a"), config, progress=False, log=lambda m: None)
    train([str(data)], str(tmp_path / "b"), config, progress=False, stop_after_epochs=3, log=lambda m: None)
    resumed = train([str(data)], str(tmp_path / "b"), config, resume=True, progress=False, log=lambda m: None)
    for name, value in weights(whole).items():
        assert torch.equal(value, weights(resumed)[name]), name


def test_init_starts_each_stage_from_the_given_models_weights(tmp_path):
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    first = train([str(data)], str(tmp_path / "first"), CONFIG, **quiet)
    untouched = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 0, "epochs_joint": 0, "init": str(tmp_path / "first" / "model")})
    same = train([str(data)], str(tmp_path / "same"), untouched, **quiet)
    for name, value in weights(first).items():  # no epochs: the model it started from
        assert torch.equal(value, weights(same)[name]), name
    saved = load_model(tmp_path / "same" / "model").metadata["training"]["init"]
    assert saved["path"] == os.path.abspath(tmp_path / "first" / "model") and len(saved["fingerprint"]) == 64

    tuned_config = TrainConfig(**{**untouched.__dict__, "epochs_joint": 1})
    tuned = train([str(data)], str(tmp_path / "tuned"), tuned_config, **quiet)
    scratch = train([str(data)], str(tmp_path / "scratch"), TrainConfig(**{**tuned_config.__dict__, "init": None}), **quiet)
    a, b, c = weights(first), weights(tuned), weights(scratch)
    conv = "0.head.weight"
    # one epoch of fine-tuning stays near the start; a run from scratch does not
    assert (b[conv] - a[conv]).abs().max() < (c[conv] - a[conv]).abs().max()
    assert not torch.equal(b[conv], a[conv])


def test_init_with_fewer_stages_starts_the_later_ones_at_random_and_checks_the_architecture(tmp_path):
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "one"), one, **quiet)
    messages = []
    two = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 1, "epochs_joint": 0, "init": str(tmp_path / "one" / "model")})
    model = train([str(data)], str(tmp_path / "two"), two, progress=False, log=messages.append)
    assert len(model.stages) == 2
    # (not "stages 2..2"; from Python not "--init has", an option train() has not)
    assert "the init model has 1 stage: stage 2 starts from random weights" in messages, messages
    wider = TrainConfig(**{**two.__dict__, "width": 8})
    # (from Python in train()'s words: it was told "--init ...", an option it has not)
    with pytest.raises(ValueError, match=rf"^init='{re.escape(two.init)}': its stages have \(width, depth, upsample\)"):
        train([str(data)], str(tmp_path / "wider"), wider, **quiet)
    other_upsampling = TrainConfig(**{**two.__dict__, "upsample": "transposed"})
    from xvertfast._text import cli_running

    with cli_running(["init"]), pytest.raises(ValueError, match=rf"^--init {re.escape(two.init)}: .*'transposed'"):
        train([str(data)], str(tmp_path / "transposed"), other_upsampling, **quiet)


def test_resume_of_a_run_checkpointed_before_the_upsampling_choice(tmp_path):
    """Its state.json has no "upsample": it trained with the transposed conv, and resumes only so."""
    data = write_images(tmp_path / "data")
    old = TrainConfig(**{**CONFIG.__dict__, "upsample": "transposed"})
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(tmp_path / "run"), old, stop_after_epochs=1, **quiet)
    state_path = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["upsample"]
    state_path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="upsample 'transposed' -> 'bilinear'"):
        train([str(data)], str(tmp_path / "run"), CONFIG, resume=True, **quiet)
    model = train([str(data)], str(tmp_path / "run"), old, resume=True, **quiet)
    assert [s.upsample for s in model.stages] == ["transposed", "transposed"]


def test_cli_init_takes_the_architecture_from_the_model(tmp_path, capsys):
    data = write_images(tmp_path / "data")
    base = ["--stages", "1", "--epochs-joint", "0", "--batch-size", "2", "--roi-size", "32", "-q", "--device", "cpu"]
    assert main(["train", str(data), "-o", str(tmp_path / "a"), "--width", "4", "--depth", "2", "--upsample", "transposed",
                 "--epochs-gc", "1", *base]) == 0  # fmt: skip
    assert main(["train", str(data), "-o", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "model"),
                 "--epochs-gc", "1", *base]) == 0  # fmt: skip
    stage = load_model(tmp_path / "b" / "model").stages[0]
    assert (stage.width, stage.depth, stage.upsample) == (4, 2, "transposed")
    assert main(["train", str(data), "-o", str(tmp_path / "c"), "--init", str(tmp_path / "nowhere"), *base]) == 2
    assert "--init" in capsys.readouterr().err


def test_amp_on_the_cpu_trains_in_bf16_where_onednn_has_it(tmp_path, monkeypatch):
    from xvertfast.infer import backends

    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0})
    amp = TrainConfig(**{**small.__dict__, "amp": True})
    if backends.cpu_bf16_support() != "no":
        fp32 = weights(train([str(data)], str(tmp_path / "fp32"), small, **quiet))
        bf16 = weights(train([str(data)], str(tmp_path / "bf16"), amp, **quiet))
        assert all(torch.isfinite(v).all() for v in bf16.values())
        assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)  # autocast really ran
    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: "no")
    from xvertfast._text import cli_running

    # refused with no word on what to do: it says to train without --amp (a resume: how to go on)
    with cli_running(["amp"]), pytest.raises(ValueError, match=r"^--amp on this CPU: .*AVX-512 BF16.*; train without "
                                                               r"--amp$"):  # fmt: skip
        train([str(data)], str(tmp_path / "refused"), amp, **quiet)
    # from Python in train()'s words: it has no --amp (it was named all the same)
    with pytest.raises(ValueError, match=r"^amp=True on this CPU: .*AVX-512 BF16.*; train with amp=False in the "
                                         r"TrainConfig$"):  # fmt: skip
        train([str(data)], str(tmp_path / "refused"), amp, **quiet)
    from xvertfast.train.loop import _check_amp

    with cli_running(["amp"]), pytest.raises(ValueError, match="; this run was started with --amp, which a resume "
                                                               "cannot change: resume.*start a new RUN_DIR without "
                                                               "--amp"):  # fmt: skip
        _check_amp(amp, torch.device("cpu"), quiet["log"], resuming=True)
    with pytest.raises(ValueError, match=r"; this run was started with amp=True, which a resume cannot change: resume.*"
                                         r"train into a new run folder with amp=False in its TrainConfig \(a copy"):
        _check_amp(amp, torch.device("cpu"), quiet["log"], resuming=True)


@pytest.mark.parametrize("support", ["avx512_bf16", "yes"])
def test_amp_on_a_cpu_without_amx_is_said_as_a_warning(monkeypatch, support):
    """It was the one line of the run's warnings without "warning: " (a log grepped for them missed it)."""
    from xvertfast.infer import backends
    from xvertfast.train.loop import _check_amp

    from xvertfast._text import cli_running

    said = []
    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: support)
    with cli_running(["amp"]):
        _check_amp(TrainConfig(**{**CONFIG.__dict__, "amp": True}), torch.device("cpu"), said.append)
    assert len(said) == 1 and said[0].startswith("warning: --amp on a CPU without AMX: "), said
    assert said[0].endswith("with a run without --amp"), said
    _check_amp(TrainConfig(**{**CONFIG.__dict__, "amp": True}), torch.device("cpu"), said.append)  # from Python
    assert said[1].startswith("warning: amp=True on a CPU without AMX: ") and said[1].endswith("with amp=False"), said
    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: "amx")
    _check_amp(TrainConfig(**{**CONFIG.__dict__, "amp": True}), torch.device("cpu"), said.append)
    assert len(said) == 2


def test_a_kill_between_the_checkpoint_and_its_state_resumes_exactly(tmp_path, monkeypatch):
    # the weights of epoch 2 are on disk, the state still says epoch 1: the checkpoint's own
    # state wins, so no epoch is trained twice
    from xvertfast.train import loop

    data = write_images(tmp_path / "data")
    full = train([str(data)], str(tmp_path / "full"), CONFIG, progress=False, log=lambda m: None)
    save_state = loop._save_state

    def killed_at_epoch_2(path, config, prog, run):
        if prog.stage == 1 and prog.epoch == 2:
            raise KeyboardInterrupt
        save_state(path, config, prog, run)

    monkeypatch.setattr(loop, "_save_state", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train([str(data)], str(tmp_path / "cut"), CONFIG, progress=False, log=lambda m: None)
    monkeypatch.setattr(loop, "_save_state", save_state)
    logs = []
    resumed = train([str(data)], str(tmp_path / "cut"), CONFIG, resume=True, progress=False, log=logs.append)
    assert "resuming after stage 1, epoch 2 (the last one finished)" in logs
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_resume_message_names_the_last_epoch_finished(tmp_path):
    # "resuming at stage 1, epoch 25" when epoch 25 was finished and the run went on with epoch 26
    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    quiet = {"progress": False}
    train([str(data)], run, CONFIG, stop_after_epochs=2, log=lambda m: None, **quiet)
    logs = []
    train([str(data)], run, CONFIG, resume=True, stop_after_epochs=1, log=logs.append, **quiet)
    assert "resuming after stage 1, epoch 2 (the last one finished)" in logs
    with open(os.path.join(run, "metrics.csv")) as f:
        assert [(r["stage"], r["epoch"]) for r in csv.DictReader(f)] == [("1", "1"), ("1", "2"), ("1", "3")]
    train([str(data)], run, CONFIG, resume=True, stop_after_epochs=1, log=lambda m: None, **quiet)  # stage 1 ends
    logs.clear()
    train([str(data)], run, CONFIG, resume=True, stop_after_epochs=1, log=logs.append, **quiet)
    assert "resuming at the start of stage 2 (stage 1 finished)" in logs
    with open(os.path.join(run, "metrics.csv")) as f:
        assert [(r["stage"], r["epoch"]) for r in csv.DictReader(f)][-2:] == [("1", "4"), ("2", "1")]


def test_a_retrained_first_stage_makes_the_second_stages_data_anew(tmp_path):
    import shutil

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # into stage 2: its data kept (unfinished)
    (old,) = run.glob("stage2_data*.npy")
    shutil.rmtree(run / "checkpoint")  # (a finished run has removed its stage data: one stopped in stage 2 has not)
    other = TrainConfig(**{**CONFIG.__dict__, "seed": 4})
    train([str(data)], str(run), other, stop_after_epochs=5, **quiet)
    (new,) = run.glob("stage2_data*.npy")  # the old first stage's outputs replaced, not kept beside
    assert new != old
    again = train([str(data)], str(run), other, resume=True, **quiet)
    fresh = train([str(data)], str(tmp_path / "fresh"), other, **quiet)
    a, b = weights(again), weights(fresh)
    assert all(torch.equal(a[k], b[k]) for k in a)  # not trained on the old first stage's outputs


def test_resume_with_other_images_is_refused(tmp_path):
    data = write_images(tmp_path / "data")
    train([str(data)], str(tmp_path / "run"), CONFIG, progress=False, stop_after_epochs=1, log=lambda m: None)
    files = sorted(str(p) for p in data.iterdir())
    # the same images in another order: the split goes by position (the message said "3 images then, 3 now")
    with pytest.raises(ValueError, match=r"3 images then; the 3 files given now are of other sizes, or in another "
                                         r"order: the validation split goes by position"):  # fmt: skip
        train(files[::-1], str(tmp_path / "run"), CONFIG, resume=True, progress=False, log=lambda m: None)
    # files of the run's sizes (uncompressed TIFF of the same shape) but other images: refused once read
    tiffs = tmp_path / "tiffs"
    tiffs.mkdir()
    for k, name in enumerate(["a.tif", "b.tif", "c.tif"]):
        Image.open(files[k]).save(tiffs / name)
    train([str(tiffs)], str(tmp_path / "tiff_run"), CONFIG, progress=False, stop_after_epochs=1, log=lambda m: None)
    Image.open(files[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tiffs / "b.tif")  # the same size
    with pytest.raises(ValueError, match=r"changed since the run began: .*b\.tif \(other contents than the run trained on at its place\)"):
        train([str(tiffs)], str(tmp_path / "tiff_run"), CONFIG, resume=True, progress=False, log=lambda m: None)
    Image.open(files[1]).save(tiffs / "a.tif")  # b's contents then at a's place: moved, not changed
    Image.open(files[0]).save(tiffs / "b.tif")
    with pytest.raises(ValueError, match=r"3 images then and now, but other ones, the same in another order"):
        train([str(tiffs)], str(tmp_path / "tiff_run"), CONFIG, resume=True, progress=False, log=lambda m: None)
    (data / "img0.png").unlink()
    with pytest.raises(ValueError, match=r"other training images than the run started with \(3 images then, 2 files now\)"):
        train([str(data)], str(tmp_path / "run"), CONFIG, resume=True, progress=False, log=lambda m: None)


def test_a_resume_names_the_image_that_changed_since_the_run_began(tmp_path, monkeypatch):
    """An image re-exported since (same path, other contents) was refused as "the 3 files given now are
    of other sizes, or in another order", or, of the same size, "other ones, the same in another order":
    which file, and that the run's epochs were trained on it as it was, went unsaid."""
    from xvertfast.train import data as train_data

    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], run, CONFIG, stop_after_epochs=1, **quiet)
    changed = data / "img1.png"
    Image.fromarray(np.asarray(Image.open(changed))[::-1].copy()).save(changed, optimize=True)  # another size
    preprocessed = []
    real = train_data.preprocess
    monkeypatch.setattr(train_data, "preprocess", lambda *a, **k: preprocessed.append(a) or real(*a, **k))
    with pytest.raises(ValueError) as refused:
        train([str(data)], run, CONFIG, resume=True, **quiet)
    said = str(refused.value)
    then = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["image_sizes"][1]
    assert said.startswith(f"{run}: resume=True with 1 training image changed since the run began: {changed} ({then:,} "
                           f"bytes at its place in the run, {changed.stat().st_size:,} now); the run's epochs were "
                           "trained on it as it was, and a resume goes on only with the same images: put it back as it "
                           "was to resume, or train on it as it is now in a new run folder"), said  # fmt: skip
    assert not preprocessed  # (said from the sizes: before any image is read)
    # of the same size: named once it is read (its digest), in the CLI's words from the CLI
    pixels = np.asarray(Image.open(data / "img2.png"))
    Image.fromarray(pixels).save(data / "img2.tif")  # uncompressed: any change keeps its size
    (data / "img2.png").unlink()
    other = tmp_path / "other_run"
    train([str(data)], str(other), CONFIG, stop_after_epochs=1, **quiet)
    flipped = pixels.copy()
    flipped[:, [0, 1]] = flipped[:, [1, 0]]
    Image.fromarray(flipped).save(data / "img2.tif")
    from xvertfast._text import cli_running

    with cli_running(["resume"]), pytest.raises(ValueError) as refused:
        train([str(data)], str(other), CONFIG, resume=True, **quiet)
    assert (f"--resume with 1 training image changed since the run began: {data / 'img2.tif'} (other contents than "
            "the run trained on at its place); the run's epochs were trained on it as it was") in str(refused.value), str(refused.value)
    assert "in a new RUN_DIR (a copy of this one's cache/ in it saves preprocessing the others)" in str(refused.value)


def test_a_resume_with_other_files_is_refused_before_they_are_preprocessed(tmp_path, monkeypatch):
    """--resume given other images (another archive) preprocessed all of them, hours for an archive,
    said 'resuming after stage 1, epoch 1' and then refused them: their count and sizes differed."""
    from xvertfast.train import data as train_data

    data, run = write_images(tmp_path / "data"), str(tmp_path / "run")
    train([str(data)], run, CONFIG, progress=False, stop_after_epochs=1, log=lambda m: None)
    preprocessed, logs = [], []
    real = train_data.preprocess
    monkeypatch.setattr(train_data, "preprocess", lambda *a, **k: preprocessed.append(a) or real(*a, **k))
    other = write_images(tmp_path / "other", size=96)  # 3 other images, of other sizes
    with pytest.raises(ValueError, match=r"other training images than the run started with \(3 images then; the 3 "
                                         r"files given now are of other sizes, or in another order"):  # fmt: skip
        train([str(other)], run, CONFIG, resume=True, progress=False, log=logs.append)
    files = sorted(str(p) for p in data.iterdir())
    with pytest.raises(ValueError, match=r"other training images than the run started with \(3 images then, 2 files now\)"):
        train(files[:2], run, CONFIG, resume=True, progress=False, log=logs.append)
    assert not preprocessed and not [m for m in logs if "resuming" in m], logs
    # a file skipped (unreadable) found among the run's images is no other image: the run goes on
    (data / "broken.png").write_bytes(b"not an image")
    train([str(data)], run, CONFIG, resume=True, progress=False, stop_after_epochs=1, log=logs.append)
    assert "resuming after stage 1, epoch 1 (the last one finished)" in logs
    assert any("broken.png" in m for m in logs)


def test_a_run_folder_inside_the_data_folder_is_not_trained_on(tmp_path):
    data = write_images(tmp_path / "data")
    run = data / "run"
    train([str(data)], str(run), CONFIG, progress=False, stop_after_epochs=5, log=lambda m: None)
    assert (run / "preview_stage1.png").exists()
    logs = []
    train([str(data)], str(run), CONFIG, resume=True, progress=False, log=logs.append)
    # (but for the lines that name its cache: what the end of the run frees, and what keeps the images' preprocessing
    # with the warnings of those taken from there, 80 px test images enlarged into their ROIs)
    named = ("removed the later stages' training data", "1 warning about images trained on as they are")
    assert not [m for m in logs if "run" + os.sep in m and not m.startswith(named)], logs


def test_blank_and_tiny_images_are_not_trained_on(tmp_path):
    data = write_images(tmp_path / "data")
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(data / "blank.png")
    Image.fromarray(np.full((20, 20), 7, np.uint8)).save(data / "tiny.png")
    logs = []
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run"), small, progress=False, log=logs.append)
    assert any("blank.png" in m and "constant image" in m for m in logs)
    assert any("tiny.png" in m and "too small" in m for m in logs)
    assert len(load_model(tmp_path / "run" / "model").metadata["training"]["sources"]) == 3


@pytest.mark.parametrize("change, message", [({"batch_size": 0}, "batch_size"), ({"roi_size": 4}, "roi_size"),
                                             ({"stages": 0}, "stages"), ({"device": "bogus"}, "bogus")])  # fmt: skip
def test_bad_settings_fail_before_any_image_is_preprocessed(tmp_path, change, message):
    data = write_images(tmp_path / "data")
    with pytest.raises(ValueError, match=message):
        train([str(data)], str(tmp_path / "run"), TrainConfig(**{**CONFIG.__dict__, **change}), progress=False,
              log=lambda m: None)  # fmt: skip
    assert not (tmp_path / "run" / "cache").exists()


def test_a_second_run_in_the_same_folder_is_refused_while_one_trains_there(tmp_path, monkeypatch):
    from xvertfast.train import loop

    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0})
    refusals = []
    save_state = loop._save_state

    def second_run_meanwhile(*args):  # another train into RUN_DIR while the first is between epochs
        save_state(*args)
        try:
            train([str(data)], str(tmp_path / "run"), small, resume=True, **quiet)
        except ValueError as exc:
            refusals.append(str(exc))

    monkeypatch.setattr(loop, "_save_state", second_run_meanwhile)
    first = train([str(data)], str(tmp_path / "run"), small, **quiet)
    assert len(refusals) == 3 and all("another xvertfast train is running in" in r for r in refusals)  # 2 epochs, 1 stage end
    monkeypatch.setattr(loop, "_save_state", save_state)
    again = train([str(data)], str(tmp_path / "run"), small, resume=True, **quiet)  # the lock went with the run
    assert all(torch.equal(a, b) for a, b in zip(weights(first).values(), weights(again).values()))


def test_a_three_stage_run_resumed_without_the_third_stages_data_makes_it_from_the_second_stages(tmp_path):
    # killed once stage 2 was saved, stage 3's data lost (a kill while it was written): the
    # resumed run must make it from stage 2's data, not run stage 2 on the first stage's ROIs
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    three = TrainConfig(**{**CONFIG.__dict__, "stages": 3, "epochs_gc": 1, "epochs_joint": 0})
    full = train([str(data)], str(tmp_path / "full"), three, **quiet)
    train([str(data)], str(tmp_path / "cut"), three, stop_after_epochs=2, **quiet)  # stops as stage 3 begins
    (third,) = (tmp_path / "cut").glob("stage3_data-*.npy")
    made = np.load(third)  # (an uninterrupted run's: a finished run removes it, so it is compared here)
    third.unlink()
    train([str(data)], str(tmp_path / "cut"), three, resume=True, stop_after_epochs=0, **quiet)  # made again
    assert np.array_equal(np.load(third), made)
    resumed = train([str(data)], str(tmp_path / "cut"), three, resume=True, **quiet)
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_removes_the_later_stages_data_and_an_unfinished_one_keeps_it(tmp_path):
    # stage{k}_data-*.npy (4 MB per image and later stage at --roi-size 512) was kept by a finished run,
    # which reads it no more: a --resume says it is finished, and nothing else opens it
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    logs = []
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, progress=False, log=logs.append)  # into stage 2
    (path,) = run.glob("stage2_data-*.npy")  # needed to resume: kept
    size, mine = path.stat().st_size, run / "stage2_data-notes.npy"
    mine.write_bytes(b"not the run's")  # named otherwise than the run names its data: left alone
    assert not any("removed the later stages" in line for line in logs)
    cache = sum(p.stat().st_size for p in (run / "cache").iterdir())
    train([str(data)], str(run), CONFIG, resume=True, progress=False, log=logs.append)
    assert not path.exists() and mine.exists() and (run / "cache").is_dir()
    said = [line for line in logs if "removed the later stages' training data" in line]
    assert said == [f"removed the later stages' training data ({size / 1e6:.1f} MB): the finished run reads it no "
                    f"more; {run / 'cache'} ({cache / 1e6:.1f} MB, the preprocessed ROIs) is kept for a run trained "
                    "again on these images (in this folder, or a new one given a copy of it): delete it if none will "
                    "be"], logs  # fmt: skip
    # a run finished before (an older xvertfast kept its stage data, a kill before the removal): --resume removes it
    path.write_bytes(b"left")
    logs.clear()
    model = train([str(data)], str(run), CONFIG, resume=True, progress=False, log=logs.append)
    assert not path.exists() and len(model.stages) == 2
    assert any("the run has finished" in line for line in logs) and any("(0.0 MB)" in line for line in logs)


def test_a_finished_one_stage_run_says_how_large_its_kept_cache_is(tmp_path):
    # the cache (8 MB per image at --roi-size 512) is kept for a run trained again on the same images;
    # a run finishing said its size only beside the later stages' data it removed, so a one-stage run,
    # which has none, finished without a word of the gigabytes it left
    import shutil

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    logs = []
    train([str(data)], str(run), one, progress=False, log=logs.append)
    cache = sum(p.stat().st_size for p in (run / "cache").iterdir())
    assert cache > 0 and not any("removed the later stages" in line for line in logs)
    assert logs.count(f"{run / 'cache'} ({cache / 1e6:.1f} MB, the preprocessed ROIs) is kept for a run trained again "
                      "on these images (in this folder, or a new one given a copy of it): delete it if none will "
                      "be") == 1, logs  # fmt: skip
    # where it is a link (other runs may share it) it is said so, and left as it is
    shutil.move(run / "cache", tmp_path / "shared")
    os.symlink(tmp_path / "shared", run / "cache")
    logs.clear()
    train([str(data)], str(run), one, resume=True, progress=False, log=logs.append)
    assert f"{run / 'cache'} is a link, perhaps shared with other runs: left as it is" in logs, logs
    assert sum(p.stat().st_size for p in (tmp_path / "shared").iterdir()) == cache


def test_a_finished_run_names_its_private_cache_with_its_size(tmp_path):
    """RUN_DIR/private-cache (the crops and set a read-only shared cache lacked: up to 4 MB an image at
    --roi-size 512) went unsaid as the run finished: only RUN_DIR/cache was named, or left as a link."""
    from xvertfast.train import loop

    run, shared = tmp_path / "run", tmp_path / "shared"
    shared.mkdir()
    (run / "private-cache").mkdir(parents=True)
    (run / "private-cache" / "rois-a.npy").write_bytes(b"x" * 300_000)
    (run / "cache").symlink_to(shared)
    logs = []
    loop._remove_stage_data(str(run), logs.append)
    assert logs == [f"{run / 'cache'} is a link, perhaps shared with other runs: left as it is; {run / 'private-cache'} "
                    "(0.3 MB, the preprocessed ROIs its cache lacked) is kept for a run trained again on these images "
                    "(in this folder, or a new one given a copy of it): delete it if none will be"], logs  # fmt: skip
    (run / "cache").unlink()  # (a cache made writable since: both folders are the run's)
    (run / "cache").mkdir()
    (run / "cache" / "crops-a.npy").write_bytes(b"x" * 200_000)
    logs.clear()
    loop._remove_stage_data(str(run), logs.append)
    assert logs == [f"{run / 'cache'} (0.2 MB, the preprocessed ROIs) and {run / 'private-cache'} (0.3 MB, the "
                    "preprocessed ROIs its cache lacked) are kept for a run trained again on these images (in this "
                    "folder, or a new one given a copy of them): delete them if none will be"], logs  # fmt: skip


def test_a_finished_run_whose_cache_cannot_be_summed_says_it_is_kept_without_a_size(tmp_path, monkeypatch):
    # the cache line listed RUN_DIR/cache and read each file's size unguarded, so a folder that cannot
    # be listed, or a file removed while it was summed (a user deleting the cache), raised out of a run
    # that had finished; now the line is said without a size, and a file removed meanwhile not counted
    from xvertfast.train import loop

    run = tmp_path / "run"
    cache = run / "cache"
    cache.mkdir(parents=True)
    (cache / "crops-a.npy").write_bytes(b"x" * 300_000)
    (cache / "rois-a.npy").write_bytes(b"x" * 200_000)
    kept = ("is kept for a run trained again on these images (in this folder, or a new one given a copy of it): "
            "delete it if none will be")  # fmt: skip
    real_scandir = os.scandir

    class Failing:  # a DirEntry whose stat raises
        def __init__(self, entry, error):
            self.entry, self.error = entry, error

        def __getattr__(self, name):
            return getattr(self.entry, name)

        def stat(self, **kwargs):
            raise self.error

    def failing(error, stat_of=None):  # os.scandir of the cache raising, or its entry stat_of's stat
        def scandir(path="."):
            if os.fspath(path) != str(cache):
                return real_scandir(path)
            if stat_of is None:
                raise error
            listing = real_scandir(path)

            class Listing:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    listing.close()

                def __iter__(self):
                    return (Failing(e, error) if e.name == stat_of else e for e in listing)

            return Listing()

        monkeypatch.setattr(loop.os, "scandir", scandir)

    for error, stat_of in ((PermissionError(13, "Permission denied"), None),
                           (PermissionError(13, "Permission denied"), "rois-a.npy")):  # fmt: skip
        failing(error, stat_of)
        logs = []
        loop._remove_stage_data(str(run), logs.append)
        assert logs == [f"{cache} (the preprocessed ROIs; its size could not be read: Permission denied) {kept}"], logs
    failing(FileNotFoundError(2, "No such file or directory"), "rois-a.npy")  # (removed while summed)
    logs = []
    loop._remove_stage_data(str(run), logs.append)
    assert logs == [f"{cache} (0.3 MB, the preprocessed ROIs) {kept}"], logs
    failing(FileNotFoundError(2, "No such file or directory"))  # (the whole cache removed meanwhile)
    logs = []
    loop._remove_stage_data(str(run), logs.append)
    assert logs == [], logs
    monkeypatch.setattr(loop.os, "scandir", real_scandir)
    loop._remove_stage_data(str(run), logs.append)
    assert logs == [f"{cache} (0.5 MB, the preprocessed ROIs) {kept}"], logs


def test_resume_refuses_an_init_model_changed_since_the_run_started(tmp_path):
    import shutil

    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "a"), one, **quiet)
    train([str(data)], str(tmp_path / "b"), TrainConfig(**{**one.__dict__, "seed": 5}), **quiet)
    tuned = TrainConfig(**{**one.__dict__, "epochs_gc": 2, "init": str(tmp_path / "a" / "model")})
    train([str(data)], str(tmp_path / "run"), tuned, stop_after_epochs=1, **quiet)
    shutil.rmtree(tmp_path / "a" / "model")
    shutil.copytree(tmp_path / "b" / "model", tmp_path / "a" / "model")  # same path, other weights
    # (from Python: it was told "--resume with --init ...", "start a new RUN_DIR", options train() has not)
    with pytest.raises(ValueError, match=rf"resume=True with init={re.escape(repr(tuned.init))}, whose weights are not "
                                         r"those the run started from \(fingerprint .*; resume with the model the run "
                                         "started from, or start a new run folder$"):  # fmt: skip
        train([str(data)], str(tmp_path / "run"), tuned, resume=True, **quiet)
    from xvertfast._text import cli_running

    with cli_running(["resume", "init"]), pytest.raises(ValueError, match=rf"--resume with --init {re.escape(tuned.init)}"
                                                        r", whose weights are not those the run started from \(.*; "
                                                        "resume with the model the run started from, or start a new "
                                                        "RUN_DIR$"):  # the CLI's words, as before  # fmt: skip
        train([str(data)], str(tmp_path / "run"), tuned, resume=True, **quiet)


def test_resume_takes_the_init_model_spelled_another_way(tmp_path, monkeypatch):
    # a run begun with --init first/model was refused on --resume with its absolute path (a job script
    # run from another folder): "a different configuration ... init 'first/model' -> '/.../first/model'",
    # the same model, whose weights the fingerprint compares
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "first"), one, **quiet)
    monkeypatch.chdir(tmp_path)
    tuned = {**one.__dict__, "epochs_gc": 3}
    full = train([str(data)], str(tmp_path / "full"), TrainConfig(**{**tuned, "init": "first/model"}), **quiet)
    train([str(data)], str(tmp_path / "run"), TrainConfig(**{**tuned, "init": "first/model"}), stop_after_epochs=1,
          **quiet)  # fmt: skip
    for spelled in (str(tmp_path / "first" / "model"), "./first/model/"):
        train([str(data)], str(tmp_path / "run"), TrainConfig(**{**tuned, "init": spelled}), resume=True,
              stop_after_epochs=1, **quiet)  # fmt: skip
    resumed = train([str(data)], str(tmp_path / "run"), TrainConfig(**{**tuned, "init": "first/model"}), resume=True,
                    **quiet)  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(weights(full).values(), weights(resumed).values()))
    with pytest.raises(ValueError, match=r"\(init '[^']*first/model/?' -> None\)"):  # no init: another configuration
        train([str(data)], str(tmp_path / "run"), TrainConfig(**tuned), resume=True, **quiet)


def test_any_whole_number_seeds_a_run_as_torch_would_take_it(tmp_path, capsys):
    # --seed 20000000000000 (or a timestamp in ns) passed the check, every image was preprocessed,
    # then the run failed with torch's "Overflow when unpacking long long" (seed * 1_000_003 past 2**64)
    data = write_images(tmp_path / "data", n=2)
    quiet = {"progress": False, "log": lambda m: None}
    one = {**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 1}
    assert main(["train", str(data), "-o", str(tmp_path / "big"), "--stages", "1", "--epochs-gc", "1", "--epochs-joint",
                 "0", "--width", "4", "--depth", "2", "--roi-size", "32", "-q", "--seed", "20000000000000"]) == 0  # fmt: skip
    assert "Overflow" not in capsys.readouterr().err
    # torch takes a negative seed as its two's complement: the same run as that seed (runs seeded so before are kept)
    negative = train([str(data)], str(tmp_path / "neg"), TrainConfig(**{**one, "seed": -5}), **quiet)
    wrapped = train([str(data)], str(tmp_path / "wrap"), TrainConfig(**{**one, "seed": 2**64 - 5}), **quiet)
    assert all(torch.equal(a, b) for a, b in zip(weights(negative).values(), weights(wrapped).values()))


def _diverging_loss(monkeypatch, at_step: int) -> None:
    """The loss of the ``at_step``-th training step (counted from 1) becomes NaN."""
    from xvertfast.train.losses import XVertNetLoss

    real, steps = XVertNetLoss.__call__, [0]

    def loss(self, out, y, features, joint):
        terms = real(self, out, y, features, joint)
        if torch.is_grad_enabled():  # a training step, not the validation
            steps[0] += 1
            if steps[0] == at_step:
                return terms._replace(total=terms.total * float("nan"))
        return terms

    monkeypatch.setattr(XVertNetLoss, "__call__", loss)


def test_a_nan_loss_stops_training_before_that_epoch_is_saved(tmp_path, monkeypatch):
    from xvertfast.train import TrainingDiverged
    from xvertfast.train.loop import _load_checkpoint

    data = write_images(tmp_path / "data")
    _diverging_loss(monkeypatch, at_step=3)  # 2 steps an epoch: the first step of epoch 2
    with pytest.raises(TrainingDiverged, match="stage 1, epoch 2: the training loss is nan") as raised:
        train([str(data)], str(tmp_path / "run"), CONFIG, progress=False, log=lambda m: None)
    # from Python, train()'s arguments: it was told "add --resume --lr 0.0001 to the same command"
    assert "call train() again with resume=True and lr=0.0001 in its TrainConfig to go on" in str(raised.value)
    assert "--" not in str(raised.value).replace("--amp", ""), raised.value
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert (state["progress"]["stage"], state["progress"]["epoch"]) == (1, 1)
    kept = _load_checkpoint(str(tmp_path / "run" / "checkpoint"), "cpu")["stage"]
    assert all(torch.isfinite(v).all() for v in kept.values())


@pytest.mark.parametrize("finished", [False, True])
def test_a_divergence_with_amp_is_said_in_the_callers_words(tmp_path, monkeypatch, finished):
    """From Python, a run with amp=True that diverged was told "run it without --amp" or "start a
    new RUN_DIR without --amp": options of a command it never typed."""
    from xvertfast._text import cli_running
    from xvertfast.train import TrainingDiverged

    monkeypatch.setattr("xvertfast.train.loop.has_finished_epochs", lambda run_dir: finished)
    ckpt = str(tmp_path / "run" / "checkpoint")
    python = str(TrainingDiverged(1, 2, "the training loss is nan", ckpt, 1e-3, amp=True))
    assert "--" not in python, python
    assert ("bf16 overflow (amp=True), which a resume cannot change: train into a new run folder with amp=False in "
            "its TrainConfig (a copy of this one's cache/ in it saves the preprocessing)" if finished else
            "bf16 overflow (amp=True): call train() again with amp=False in its TrainConfig") in python, python
    with cli_running(["amp", "lr", "resume"]):  # the CLI's words, as before
        cli = str(TrainingDiverged(1, 2, "the training loss is nan", ckpt, 1e-3, amp=True))
    assert ("bf16 overflow (--amp), which a resume cannot change: start a new RUN_DIR without --amp (a copy of this "
            "one's cache/ in it saves the preprocessing)" if finished else
            "bf16 overflow (--amp): run it without --amp") in cli, cli


def test_a_resume_into_a_folder_without_a_checkpoint_is_said_in_the_callers_words(tmp_path):
    """From Python, train(resume=True) into a new folder logged "--resume: ... holds no checkpoint yet"."""
    class Said(Exception):
        pass

    def log(message):
        if "no checkpoint yet" in message:
            raise Said(message)

    with pytest.raises(Said) as said:  # (said before any image is read: the run is not trained here)
        train([str(tmp_path / "data")], str(tmp_path / "run"), CONFIG, resume=True, progress=False, log=log)
    assert str(said.value) == f"resume=True: {tmp_path / 'run'} holds no checkpoint yet; starting a new run there"


@pytest.mark.parametrize("resumed, lr, lr_given, cli, python", [
    (False, None, False, "add --resume to the same command to go on", "call train() again with resume=True to go on"),
    (True, None, False, "run the same command again to go on", "call train() again the same way to go on"),
    (False, 1e-4, False, "add --resume --lr 0.0001 to the same command to go on",
     "call train() again with resume=True and lr=0.0001 in its TrainConfig to go on"),
    (True, 1e-4, False, "add --lr 0.0001 to the same command to go on",
     "call train() again with lr=0.0001 in its TrainConfig to go on"),
    (True, 1e-4, True, "change --lr to 0.0001 in the same command to go on",
     "call train() again with lr=0.0001 in its TrainConfig to go on"),
    (False, 1e-4, True, "add --resume to the same command and change --lr to 0.0001 to go on",
     "call train() again with resume=True and lr=0.0001 in its TrainConfig to go on"),
])  # fmt: skip
def test_how_a_stopped_run_goes_on_is_said_in_the_callers_words(resumed, lr, lr_given, cli, python):
    """A Python caller was told to "add --resume" / "--lr 0.0001" to a command it never typed;
    and a command that had --lr already was told to add another."""
    from xvertfast._text import cli_running
    from xvertfast.train.run_folder import to_go_on

    assert to_go_on(resumed, lr, lr_given) == python
    with cli_running(["resume", "lr"]):
        assert to_go_on(resumed, lr, lr_given) == cli


def test_cli_reports_a_diverged_loss_in_one_message_with_exit_3(tmp_path, monkeypatch, capsys):
    data = write_images(tmp_path / "data")
    _diverging_loss(monkeypatch, at_step=1)
    argv = ["train", str(data), "-o", str(tmp_path / "run"), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0",
            "--width", "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 3
    enlarged, said, err = capsys.readouterr().err.strip().split("\n", 2)  # (80 px test images: enlarged, said so)
    assert enlarged.startswith("warning: 3 images were enlarged more than 3x"), enlarged
    assert said == "3 images (6 ROIs): 2 for training, 1 for validation"  # what the run trains on, then the error
    assert err.startswith("error: stage 1, epoch 1: the training loss is nan") and "--lr" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_refused_resume_names_the_settings_as_train_s_options():
    # a resume refused for other settings named them as TrainConfig's fields ("batch_size 8 -> 4") to a CLI user
    from xvertfast.cli import build_parser
    from xvertfast.train.loop import _OPTIONS, TrainConfig

    options = {option for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions
               for option in action.option_strings}  # fmt: skip
    assert {f"--{key.replace('_', '-')}" for key in _OPTIONS} <= options
    assert _OPTIONS <= set(TrainConfig.__dataclass_fields__)
    # and every setting that is an option of train is in _OPTIONS (one added to both was said by its field's name)
    assert {key for key in TrainConfig.__dataclass_fields__ if f"--{key.replace('_', '-')}" in options} == _OPTIONS


def test_a_new_run_from_the_run_s_model_is_offered_only_for_settings_init_takes(tmp_path, monkeypatch):
    """A resume refused for other settings offers a new run with --init of the run's model only where
    no setting changed that a model fixes (loop._FIXED_BY_A_MODEL): it offered one for a new --width,
    which --init then refused. Those settings are the ones the --init check (_initial_model) refuses
    a model for, each and only them: a check added to one and not to the other offers that again."""
    import dataclasses

    from xvertfast.model import XVertNet, XVertNetStage, save_model
    from xvertfast.train import loop

    save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m")
    base = TrainConfig(width=4, depth=2, init=str(tmp_path / "m"))
    model = loop._initial_model(base)  # (taken as it is; read once, for each setting changed below)
    monkeypatch.setattr(loop, "load_model", lambda path: model)
    others = {"stages": 1, "epochs_gc": 1, "epochs_joint": 1, "batch_size": 2, "width": 8, "depth": 3,
              "upsample": "transposed", "roi_size": 256, "patch_size": 1024, "val_fraction": 0.5, "patience": 3,
              "lr": 1e-4, "betas": (0.8, 0.9), "seed": 1, "device": "cpu", "amp": True, "lam": 0.5, "alpha": 1.0,
              "eps": 1e-3}  # fmt: skip
    assert set(others) == set(TrainConfig.__dataclass_fields__) - {"init"}  # (a new setting: give it another value)
    refused = set()
    for key, value in others.items():
        try:
            loop._initial_model(dataclasses.replace(base, **{key: value}))
        except ValueError:
            refused.add(key)
    assert refused == set(loop._FIXED_BY_A_MODEL), refused


def test_a_diverged_run_goes_on_with_a_lower_lr(tmp_path, monkeypatch, capsys):
    """What the divergence message says to do works: --resume with --lr lowered goes on from the
    last finished epoch, with the new rate, and the change is recorded; other settings still
    cannot change on resume."""
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "2", "--epochs-gc", "2", "--epochs-joint", "2",
            "--batch-size", "2", "--width", "4", "--depth", "2", "--roi-size", "32", "--val-fraction", "0.34",
            "--patience", "5", "--seed", "3", "--device", "cpu", "-q"]  # fmt: skip
    _diverging_loss(monkeypatch, at_step=3)  # 2 steps an epoch: the first step of stage 1's epoch 2
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "add --resume --lr 0.0001 to the same command" in err, err
    monkeypatch.undo()
    assert main([*argv, "--resume", "--batch-size", "1", "--lr", "1e-4"]) == 2  # still refused: another batch size
    # in the CLI's words, the lr (which may change) not among the changes refused: it said "(lr 0.001 -> 0.0001;
    # batch_size 2 -> 1); resume with the run's settings (only --lr may change)"
    assert "a different configuration than the checkpoint's (--batch-size 2 -> 1); " in capsys.readouterr().err
    assert main([*argv, "--resume", "--lr", "1e-4"]) == 0
    err = capsys.readouterr().err
    assert "--lr 0.0001: stage 1 trained 1 epoch with 0.001" in err, err
    changes = [{"stage": 1, "epoch": 1, "from": 1e-3, "to": 1e-4}]
    assert json.loads((run / "checkpoint" / "state.json").read_text())["lr_changes"] == changes
    model = load_model(run / "model")
    assert model.metadata["training"]["lr_changes"] == changes and model.metadata["training"]["config"]["lr"] == 1e-4

    # the new rate is the one applied: the weights are those of a run at 1e-3 for an epoch, then 1e-4 ...
    quiet = {"progress": False, "log": lambda m: None}
    lower = TrainConfig(**{**CONFIG.__dict__, "lr": 1e-4})
    train([str(data)], str(tmp_path / "ref"), CONFIG, stop_after_epochs=1, **quiet)
    ref = train([str(data)], str(tmp_path / "ref"), lower, resume=True, **quiet)
    assert all(torch.equal(a, b) for a, b in zip(weights(ref).values(), weights(model).values()))
    # ... not those of a run that kept 1e-3
    kept = train([str(data)], str(tmp_path / "kept"), CONFIG, **quiet)
    assert not all(torch.equal(a, b) for a, b in zip(weights(kept).values(), weights(model).values()))


def test_a_resumed_run_removes_the_temporaries_a_kill_left(tmp_path):
    data = write_images(tmp_path / "data")
    run = tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # inside stage 2
    written = [run / "checkpoint" / "epoch.safetensors", run / "checkpoint" / "state.json", run / "metrics.csv",
               run / "checkpoint" / "model" / "stage1.safetensors", run / "preview_stage2.png",
               *run.glob("stage2_data-*.npy"), *(run / "cache").glob("*.npy")]  # fmt: skip
    assert len(written) == 5 + 1 + 4  # the stage-2 data, 3 images' crops and the gathered ROIs
    stale = [path.parent / f".{path.name}.k1ll3d_.part" for path in written]
    someone_elses = run / ".notes.txt.abcdefgh.part"
    for path in [*stale, someone_elses]:
        path.write_bytes(b"cut short")
    train([str(data)], str(run), CONFIG, resume=True, **quiet)
    assert not [path for path in stale if path.exists()] and someone_elses.exists()


@pytest.mark.parametrize("damaged, cut", [("epoch.safetensors", lambda b: b[: len(b) // 2]),
                                          ("state.json", lambda b: b[:-20]),
                                          ("state.json", lambda b: b"[]")])  # fmt: skip
def test_a_damaged_checkpoint_is_named_with_what_to_do(tmp_path, capsys, damaged, cut):
    data = write_images(tmp_path / "data")
    train([str(data)], str(tmp_path / "run"), CONFIG, stop_after_epochs=1, progress=False, log=lambda m: None)
    path = tmp_path / "run" / "checkpoint" / damaged
    path.write_bytes(cut(path.read_bytes()))
    with pytest.raises(ValueError, match=f"{damaged} cannot be read .*start a new RUN_DIR"):
        train([str(data)], str(tmp_path / "run"), CONFIG, resume=True, progress=False, log=lambda m: None)
    argv = ["train", str(data), "-o", str(tmp_path / "run"), "--resume", "--stages", "2", "--epochs-gc", "2",
            "--epochs-joint", "2", "--batch-size", "2", "--width", "4", "--depth", "2", "--roi-size", "32",
            "--val-fraction", "0.34", "--patience", "5", "--seed", "3", "--device", "cpu", "-q"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path} cannot be read" in err and "Traceback" not in err


def test_damaged_stage_data_is_named_with_what_to_do(tmp_path, capsys):
    from xvertfast.io import DamagedFileError

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    full = train([str(data)], str(tmp_path / "full"), CONFIG, **quiet)
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # one epoch into stage 2
    (path,) = run.glob("stage2_data-*.npy")
    path.write_bytes(path.read_bytes()[:-100])  # cut short
    # (a Python caller is told of train(), the CLI's user of the command: the words of each)
    with pytest.raises(DamagedFileError, match=f"^{path}: damaged cache file: .*delete it and call train\\(\\) again "
                                               "the same way .it is made again"):  # fmt: skip
        train([str(data)], str(run), CONFIG, resume=True, **quiet)
    argv = ["train", str(data), "-o", str(run), "--resume", "--stages", "2", "--epochs-gc", "2", "--epochs-joint", "2",
            "--batch-size", "2", "--width", "4", "--depth", "2", "--roi-size", "32", "--val-fraction", "0.34",
            "--patience", "5", "--seed", "3", "--device", "cpu", "-q"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"\nerror: {path}: damaged cache file" in err and "Traceback" not in err
    assert "delete it and run the same command again (it is made again" in err, err
    path.unlink()  # as the message says: made again, the run ends as an uninterrupted one
    resumed = train([str(data)], str(run), CONFIG, resume=True, **quiet)
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_files_of_other_tensors_are_named_as_damaged(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # stage 1 (4 epochs) done, one of stage 2
    ckpt = run / "checkpoint" / "epoch.safetensors"
    with safe_open(ckpt, framework="pt") as f:
        meta, tensors = f.metadata(), {name: f.get_tensor(name) for name in f.keys()}
    first = sorted(name for name in tensors if name.startswith("stage."))[0]
    save_file({name: t for name, t in tensors.items() if name != first}, ckpt, metadata=meta)  # one weight fewer
    with pytest.raises(ValueError, match="epoch.safetensors cannot be read .its tensors do not fit this run's model"):
        train([str(data)], str(run), CONFIG, resume=True, **quiet)
    save_file(tensors, ckpt, metadata=meta)
    finished = run / "checkpoint" / "model" / "stage1.safetensors"
    save_file({"other": torch.zeros(2)}, finished)  # a valid file of other tensors
    with pytest.raises(ValueError, match="stage1.safetensors cannot be read .its tensors do not fit"):
        train([str(data)], str(run), CONFIG, resume=True, **quiet)


def test_a_file_system_without_locking_does_not_pass_for_another_run(tmp_path, monkeypatch):
    import errno
    import fcntl

    from xvertfast.resume import hold_lock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)  # NFS mounted with nolock
    lock = hold_lock(str(tmp_path / "lock"))
    assert lock is not None  # unlocked, as where there is no flock: not "another run holds it"
    lock.close()


def test_cli_reports_running_out_of_memory_in_a_line_with_the_resume_hint(tmp_path, monkeypatch, capsys):
    from xvertfast.model import XVertNetStage

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)\nsee the docs")

    data = write_images(tmp_path / "data")
    argv = ["train", str(data), "-o", str(tmp_path / "run"), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0",
            "--width", "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(XVertNetStage, "forward", out_of_memory)
        assert main(argv) == 3
    # after the line saying what the run trains on (and the warning before it: 80 px test images are enlarged)
    err = capsys.readouterr().err.split(" for validation\n", 1)[1]
    assert err.startswith("error: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (simulated)\n")
    assert "no epoch had finished" in err and "see the docs" not in err and "Traceback" not in err
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run2"), small, stop_after_epochs=1, progress=False, log=lambda m: None)
    monkeypatch.setattr(XVertNetStage, "forward", out_of_memory)  # in the second epoch
    assert main([*argv[:3], str(tmp_path / "run2"), *argv[4:], "--batch-size", "2", "--val-fraction", "0.34",
                 "--patience", "5", "--seed", "3", "--resume"]) == 3  # fmt: skip
    err = capsys.readouterr().err
    # (given with --resume, it is told to run the command again, not to add the --resume it has)
    assert "keeps the last finished epoch: once the cause is gone, run the same command again to go on" in err, err
    assert "add --resume" not in err


def test_resume_with_another_cpu_thread_count_warns(tmp_path):
    data = write_images(tmp_path / "data")
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 3, "epochs_joint": 0})
    before = torch.get_num_threads()
    logs = []
    try:
        torch.set_num_threads(1)
        train([str(data)], str(tmp_path / "run"), small, stop_after_epochs=1, progress=False, log=logs.append)
        train([str(data)], str(tmp_path / "run"), small, stop_after_epochs=1, resume=True, progress=False,
              log=logs.append)  # fmt: skip
        assert not [m for m in logs if "threads" in m]
        torch.set_num_threads(2)
        train([str(data)], str(tmp_path / "run"), small, resume=True, progress=False, log=logs.append)
    finally:
        torch.set_num_threads(before)
    # (from Python, whose train() has no --threads: torch's own setting)
    assert [m for m in logs if "trained with 1 CPU thread, now with 2" in m and "(torch.set_num_threads(1) before "
            "train() resumes it bitwise)" in m], logs


def test_the_feature_loss_is_off_for_exactly_the_gc_epochs_then_on(tmp_path, monkeypatch):
    """The schedule: ``epochs_gc`` epochs of L1 alone (the feature loss not even computed), then L1 + L2,
    in training steps and validation alike."""
    import math

    import xvertfast.train.losses as losses
    from xvertfast.train.data import split_by_image
    from xvertfast.train.losses import XVertNetLoss

    real_call, real_feature = XVertNetLoss.__call__, losses.feature_loss
    calls, features = [], []  # (training step?, joint) per loss call; the phase of each feature loss

    def loss(self, out, y, feats, joint):
        calls.append((torch.is_grad_enabled(), joint))
        return real_call(self, out, y, feats, joint)

    def feature_loss(*args, **kwargs):
        features.append(calls[-1][1])
        return real_feature(*args, **kwargs)

    monkeypatch.setattr(XVertNetLoss, "__call__", loss)
    monkeypatch.setattr(losses, "feature_loss", feature_loss)
    config = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 3, "epochs_joint": 2})
    data = write_images(tmp_path / "data")
    train([str(data)], str(tmp_path / "run"), config, progress=False, log=lambda m: None)
    train_ids, val_ids = split_by_image(3, config.val_fraction, config.seed)
    steps = math.ceil(2 * len(train_ids) / config.batch_size)  # two ROIs per image
    assert len(val_ids) == 1 and steps == 2
    training = [joint for grad, joint in calls if grad]
    assert training == [False] * (config.epochs_gc * steps) + [True] * (config.epochs_joint * steps)
    validation = [joint for grad, joint in calls if not grad]  # one batch a validation
    assert validation == [False] * config.epochs_gc + [True] * config.epochs_joint
    assert features and all(features)  # computed in the joint phase only
    assert len(features) == config.epochs_joint * (steps + 1)


def test_early_stopping_ends_the_stage_after_patience_epochs_and_keeps_the_best(tmp_path, monkeypatch):
    """Validation loss rising after the first joint epoch: with patience 1 the stage stops one
    epoch later (of 6 allowed) and keeps the first joint epoch's weights."""
    import xvertfast.train.loop as loop

    config = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 6, "patience": 1})
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    # the weights after the first joint epoch: the same seeded run, stopped there
    first_joint = weights(train([str(data)], str(tmp_path / "cut"), config, stop_after_epochs=3, **quiet))

    real, joint_epochs = loop._evaluate, [0]

    def rising(stage, data, loss_fn, joint, batch_size, device):
        real(stage, data, loss_fn, joint, batch_size, device)
        if not joint:
            return 0.5
        joint_epochs[0] += 1
        return 1.0 + joint_epochs[0]  # 2, 3, 4, ...: the first joint epoch is the best

    monkeypatch.setattr(loop, "_evaluate", rising)
    model = train([str(data)], str(tmp_path / "run"), config, **quiet)
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, config.epochs_gc + 3))
    assert [float(r["val_loss"]) for r in rows] == [0.5, 0.5, 2.0, 3.0]
    kept = weights(model)
    assert kept.keys() == first_joint.keys()
    assert all(torch.equal(kept[k], first_joint[k]) for k in kept)
    saved = weights(load_model(tmp_path / "run" / "model"))
    assert all(torch.equal(saved[k], first_joint[k]) for k in kept)
    last = loop._load_checkpoint(str(tmp_path / "run" / "checkpoint"), "cpu")["stage"]  # the epoch it stopped at
    assert any(not torch.equal(last[n], v) for n, v in model.stages[0].state_dict().items() if v.is_floating_point())


def test_a_full_disk_while_caching_stops_the_run_instead_of_skipping_the_image(tmp_path, monkeypatch):
    """Writing an image's crops on a full disk is not that image's fault: before, np.save's short write
    ("65536 requested and 62432 written", no errno) skipped the image, and every later one, as unreadable."""
    import contextlib
    import errno

    import xvertfast.train.data as data_module
    from xvertfast.io.write import disk_full
    from xvertfast.train.data import load_rois

    data = write_images(tmp_path / "data")

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield  # pragma: no cover

    monkeypatch.setattr(data_module, "atomic_write", full)
    said = []
    with pytest.raises(OSError) as caught:
        load_rois([str(data)], str(tmp_path / "cache"), 32, log=said.append)
    assert disk_full(caught.value) and not said


def test_cli_reports_a_full_disk_while_checkpointing_with_exit_3_and_resume_goes_on(tmp_path, monkeypatch, capsys):
    """safetensors says a full disk in its own SafetensorError (not an OSError): it ended train with a traceback."""
    import safetensors.torch
    from safetensors import SafetensorError

    data = write_images(tmp_path / "data")
    run = tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0",
            "--width", "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    real, calls = safetensors.torch.save_file, []

    def fills_up(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second epoch's checkpoint
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(safetensors.torch, "save_file", fills_up)
        assert main(argv) == 3
    err = capsys.readouterr().err
    assert f"error: {run}: no space left on its disk" in err and "Traceback" not in err
    assert "keeps the last finished epoch" in err and "--resume" in err
    assert not [n for n in os.listdir(run / "checkpoint") if n.endswith(".part")]
    assert main([*argv, "--resume"]) == 0
    assert "resuming after stage 1, epoch 1 (the last one finished)" in capsys.readouterr().err


def test_a_resumed_run_stopped_by_a_full_disk_or_a_divergence_is_not_told_to_add_the_resume_it_has(
        tmp_path, monkeypatch, capsys):  # fmt: skip
    """A --resume'd run whose disk filled up was told "free space, then add --resume to the same command", and
    one that diverged "add --resume --lr 0.0001": the command has --resume already; the CLI's own lines said
    "run the same command again" since 88bc142. One with --lr already was told to "add --lr 0.0001"
    (a second --lr): it is told to change it."""
    import safetensors.torch
    from safetensors import SafetensorError

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "3", "--epochs-joint", "0",
            "--width", "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    train([str(data)], str(run), TrainConfig(stages=1, epochs_gc=3, epochs_joint=0, width=4, depth=2, roi_size=32,
                                             batch_size=2, device="cpu"), stop_after_epochs=1, progress=False,
          log=lambda m: None)  # fmt: skip

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    with monkeypatch.context() as patch:
        patch.setattr(safetensors.torch, "save_file", full)
        assert main([*argv, "--resume"]) == 3
    err = capsys.readouterr().err
    assert "no space left on its disk" in err and "free space, then run the same command again to go on" in err, err
    assert "add --resume" not in err
    _diverging_loss(monkeypatch, at_step=1)
    assert main([*argv, "--resume"]) == 3
    err = capsys.readouterr().err
    assert "training diverged" in err and "add --lr 0.0001 to the same command to go on" in err, err
    assert "add --resume" not in err  # (a run not resumed is: test_a_diverged_run_goes_on_with_a_lower_lr)
    _diverging_loss(monkeypatch, at_step=1)  # (a resumed command with --lr: told to change it, not add a second)
    assert main([*argv, "--resume", "--lr", "0.002"]) == 3
    err = capsys.readouterr().err
    assert "training diverged" in err and "change --lr to 0.0002 in the same command to go on" in err, err


def test_a_full_disk_before_the_first_epoch_names_the_folders_that_hold_its_crops(tmp_path):
    """A run whose disk filled up before its first epoch said "RUN/cache keeps the images preprocessed so far",
    though with a read-only shared cache (linked) its crops are in RUN/private-cache, and where none had been
    preprocessed yet, nothing is kept: it names the folders that hold crops, as the Ctrl-C line does."""
    import errno

    from xvertfast.train.loop import DiskFull

    run, shared = tmp_path / "r3", tmp_path / "shared"
    shared.mkdir()
    (run / "private-cache").mkdir(parents=True)
    full = OSError(errno.ENOSPC, "No space left on device")
    assert "no epoch had finished, no image was preprocessed yet: free space" in str(DiskFull(str(run), full))
    (run / "private-cache" / ("0" * 32 + ".npy")).write_bytes(b"")
    (run / "cache").symlink_to(shared)
    said = str(DiskFull(str(run), full))
    assert f"no epoch had finished; the images preprocessed so far are kept in {run / 'private-cache'}: " \
           "free space" in said, said
    (shared / ("1" * 32 + ".npy")).write_bytes(b"")  # another run's crops, in the shared cache: keep none of this one
    said = str(DiskFull(str(run), full))
    assert f"kept in {run / 'private-cache'}: free space" in said, said
    (run / ".xvertfast-train-linked-crops").write_text("1" * 32 + ".npy\n")  # taken by this run
    said = str(DiskFull(str(run), full))
    assert f"kept in {run / 'cache'} and {run / 'private-cache'}: free space" in said, said


def test_a_run_stopped_early_on_a_shared_cache_counts_only_its_own_crops_as_kept(tmp_path, capsys, monkeypatch):
    """RUN_DIR/cache linked to a cache shared with other runs counted as keeping "the images preprocessed so
    far" wherever it held any .npy file, other runs' included: a run stopped before it had taken a crop said
    its preprocessing was kept in its cache. Now only the crops it took (found there or wrote) count."""
    from xvertfast.train import data as data_module

    data, other, shared = write_images(tmp_path / "data", n=2), write_images(tmp_path / "other", n=1), tmp_path / "s"
    load_rois = data_module.load_rois
    load_rois([str(other)], str(shared), 32, log=lambda m: None)  # another run's image
    run = tmp_path / "run"
    run.mkdir()
    (run / "cache").symlink_to(shared)
    real, calls = data_module._image_pairs, []

    def ctrl_c_at(n):
        def pairs(*args, **kwargs):
            calls.append(args[0])
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return pairs

    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu"]  # fmt: skip
    monkeypatch.setattr(data_module, "_image_pairs", ctrl_c_at(1))
    assert main(argv) == 130
    assert "interrupted: no epoch had finished, no image was preprocessed yet; add --resume" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(data_module, "_image_pairs", ctrl_c_at(2))  # (the first image's crops written into the link)
    assert main([*argv, "--resume"]) == 130
    said = capsys.readouterr().err
    # (RUN_DIR/cache named as the command was given RUN_DIR: "its cache" named no folder in a job's log)
    assert f"no epoch had finished; the images preprocessed so far are kept in {run / 'cache'}; run the same" in said
    calls.clear()
    monkeypatch.setattr(data_module, "_image_pairs", ctrl_c_at(1))  # (a start stopped before it found them again)
    assert main([*argv, "--resume"]) == 130
    assert f"the images preprocessed so far are kept in {run / 'cache'};" in capsys.readouterr().err
    # the record of the crops it took (read only before its first epoch) was kept for good, a line an image: it goes
    # once an epoch is saved, and a start after one (a resume) records nothing
    from xvertfast.train.run_folder import LINKED_CROPS, recording_linked_crops

    assert (run / LINKED_CROPS).exists()
    monkeypatch.setattr(data_module, "_image_pairs", real)
    assert main([*argv, "--resume"]) == 0
    assert not (run / LINKED_CROPS).exists()
    with recording_linked_crops(str(run)) as taken:
        assert taken is None
    assert not (run / LINKED_CROPS).exists()


def _tmpfs(path, size: str) -> None:
    import subprocess

    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.decode().strip()}")


@pytest.mark.parametrize("size, options", [
    ("600k", ["--roi-size", "128", "--width", "4"]),  # the third image's crops, then the gathered ROIs (SIGBUS before)
    ("400k", ["--roi-size", "32", "--width", "8"]),  # the first checkpoint (a SafetensorError traceback before)
])  # fmt: skip
def test_a_really_full_disk_stops_the_run_in_one_message_and_resume_goes_on(tmp_path, size, options):
    import subprocess
    import sys

    data = write_images(tmp_path / "data")
    disk = tmp_path / "disk"
    _tmpfs(disk, size)
    try:
        run = disk / "run"
        argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0",
                "--depth", "2", "--batch-size", "2", "-q", "--device", "cpu", "--threads", "1", *options]  # fmt: skip
        command = [sys.executable, "-c", "import sys; from xvertfast.cli import main; sys.exit(main(sys.argv[1:]))"]
        done = subprocess.run([*command, *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 3, done.stderr
        assert f"error: {run}: no space left on its disk" in done.stderr and "skipped" not in done.stderr
        assert not [n for _, _, names in os.walk(run) for n in names if n.endswith(".part")]
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        done = subprocess.run([*command, *argv, "--resume"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert len(load_model(run / "model").stages) == 1
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_resuming_a_finished_run_says_so_and_records_no_lr_change(tmp_path):
    """Before: "--lr ...: stage 2 trained 0 epochs with ...; it goes on with ..." and "resuming at stage 2,
    epoch 0" for a one-stage run that had finished, where nothing trains."""
    data = write_images(tmp_path / "data")
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    run = tmp_path / "run"
    train([str(data)], str(run), small, progress=False, log=lambda m: None)
    model = (run / "model" / "config.json").read_bytes()
    said = []
    lower = TrainConfig(**{**small.__dict__, "lr": small.lr / 10})
    train([str(data)], str(run), lower, resume=True, progress=False, log=said.append)
    # (from Python: it was told "a new RUN_DIR with --init MODEL", which train() has not)
    assert f"{run}: the run has finished (all 1 stage trained): nothing to resume; its model is {run / 'model'} (to " \
           f"train it on more or other images: train into a new run folder with init={str(run / 'model')!r} in its " \
           "TrainConfig)" in said, said
    assert not [m for m in said if "goes on with" in m or m.startswith("resuming")], said
    assert (run / "model" / "config.json").read_bytes() == model
    assert "lr_changes" not in json.loads((run / "checkpoint" / "state.json").read_text())
    # its images are not gathered again: one added since was preprocessed (hours where the cache
    # misses, or a refusal for other images or centres), where nothing trains
    cache = sorted(p.name for p in (run / "cache").rglob("*"))
    write_images(tmp_path / "more", n=1, size=96)
    os.replace(tmp_path / "more" / "img0.png", data / "added.png")
    said.clear()
    again = train([str(data)], str(run), small, resume=True, progress=False, log=said.append)
    assert sorted(p.name for p in (run / "cache").rglob("*")) == cache
    # (the line saying how large the kept cache of preprocessed ROIs is, e5bd5e7, names no preprocessing done)
    assert not [m for m in said if "preprocess" in m.lower() and not m.startswith(f"{run / 'cache'} (")], said
    for a, b in zip(again.stages, load_model(run / "model").stages):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name


def test_a_run_on_one_readable_image_says_that_no_image_is_validated(tmp_path):
    """--val-fraction 0.2 on one image: early stopping went by the training loss, unsaid (the help says
    early stopping on the validation images)."""
    data = write_images(tmp_path / "data", n=1)
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 1})
    said = []
    train([str(data)], str(tmp_path / "run"), small, progress=False, log=said.append)
    assert [m for m in said if "none is held out for validation" in m and "training loss" in m], said
    quiet = []
    train([str(data)], str(tmp_path / "run0"), TrainConfig(**{**small.__dict__, "val_fraction": 0.0}), progress=False,
          log=quiet.append)  # fmt: skip
    assert not [m for m in quiet if "validation" in m], quiet
    # no image held out by choice: the split's line says what early stopping goes by then
    assert [m for m in quiet if "all for training" in m and "go by the training loss" in m], quiet


def test_cli_ctrl_c_before_any_epoch_does_not_claim_one_is_kept(tmp_path, monkeypatch, capsys):
    """Ctrl-C while preprocessing said "the last finished epoch is kept" with no epoch finished."""
    import xvertfast.train.data as data_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    data = write_images(tmp_path / "data")
    argv = ["train", str(data), "-o", str(tmp_path / "run"), "--stages", "1", "--epochs-gc", "1", "--epochs-joint",
            "0", "--width", "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu"]  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(data_module, "preprocess", interrupted)
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "no epoch had finished" in err and "epoch is kept" not in err and "add --resume" in err
    assert "preprocessed so far" not in err  # the first image was being preprocessed: none is cached (said before)
    first = data_module.preprocess
    calls = []

    def second_interrupted(*args, **kwargs):
        calls.append(1)
        return first(*args, **kwargs) if len(calls) == 1 else interrupted()

    with monkeypatch.context() as patch:
        patch.setattr(data_module, "preprocess", second_interrupted)
        assert main(argv) == 130
    cache = tmp_path / "run" / "cache"
    assert f"no epoch had finished; the images preprocessed so far are kept in {cache};" in capsys.readouterr().err
    run2 = [*argv[:3], str(tmp_path / "run2"), *argv[4:]]
    run2[run2.index("--epochs-gc") + 1] = "2"
    with monkeypatch.context() as patch:  # stopped once its first epoch is checkpointed
        patch.setattr("xvertfast.train.loop._write_metrics", interrupted)
        assert main(run2) == 130
    capsys.readouterr()
    monkeypatch.setattr("xvertfast.train.loop.load_rois", interrupted)  # (a finished run does not gather them)
    assert main([*run2, "--resume"]) == 130  # (it has --resume: run again, not "add --resume")
    assert "interrupted: the last finished epoch is kept; run the same command again to go on" in capsys.readouterr().err


def _stop_at_the_second_epoch(monkeypatch):
    """A Ctrl-C as the second epoch's metrics are written (the stage's bar then open)."""
    import xvertfast.train.loop as loop_module

    real, calls = loop_module._write_metrics, []

    def stopped_at_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "_write_metrics", stopped_at_the_second_epoch)


def test_cli_a_run_interrupted_mid_stage_ends_with_the_interrupted_line_not_the_stages_bar(tmp_path, monkeypatch,
                                                                                           capsys):  # fmt: skip
    """The stage's progress bar was closed by the garbage collector once the CLI had said why the run
    stopped: the terminal's (or log's) last line was the bar again, under the "interrupted" line."""
    _stop_at_the_second_epoch(monkeypatch)
    argv = ["train", str(write_images(tmp_path / "data")), "-o", str(tmp_path / "run"), "--stages", "1",
            "--epochs-gc", "3", "--epochs-joint", "0", "--width", "4", "--depth", "2", "--roi-size", "32",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "stage 1:  33%" in err  # (the bar was drawn)
    assert err.rstrip().splitlines()[-1].startswith("interrupted: the last finished epoch is kept"), err[-500:]


@pytest.mark.parametrize("where", ["gathering the ROIs", "stage 2 inputs", "stage 1"])
def test_cli_a_run_interrupted_with_a_bar_on_ends_with_the_interrupted_line_and_no_blank_line_above_it(
        tmp_path, monkeypatch, capsys, where):  # fmt: skip
    """A Ctrl-C while the ROIs were gathered (or a later stage's inputs made) left the generator writing them
    suspended, its bar open: the garbage collector erased the bar after the CLI's "interrupted" line, a log's last
    line then blank. A closed bar ends its line: the "interrupted" line's newline left a blank line above it."""
    import xvertfast.train.data as data_module
    import xvertfast.train.loop as loop_module

    def stopped_within(path, shape, blocks):  # the first block taken, then a Ctrl-C as it is written
        next(iter(blocks))
        raise KeyboardInterrupt

    if where == "stage 1":
        _stop_at_the_second_epoch(monkeypatch)
    elif where == "gathering the ROIs":
        real_write = data_module.write_array
        monkeypatch.setattr(data_module, "write_array", lambda path, *args: (
            stopped_within if os.path.basename(path).startswith("rois-") else real_write)(path, *args))
    else:
        monkeypatch.setattr(loop_module, "write_array", stopped_within)
    argv = ["train", str(write_images(tmp_path / "data")), "-o", str(tmp_path / "run"), "--stages", "2",
            "--epochs-gc", "3" if where == "stage 1" else "1", "--epochs-joint", "0", "--width", "4", "--depth", "2",
            "--roi-size", "32", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"{where}: " in err  # (the bar was drawn)
    line = err.rstrip("\n").split("\n")[-1]
    assert err.endswith("add --resume to the same command to go on\n"), err[-300:]  # (nothing after it)
    assert line.split("\r")[-1].startswith("interrupted: "), err[-300:]
    assert "\n\ninterrupted" not in err, err[-300:]  # (no blank line above it)


def test_cli_the_interrupted_line_on_a_terminal_starts_over_the_ctrl_c_it_echoed(tmp_path, monkeypatch):
    """With no newline above the "interrupted" line, a terminal's echoed "^C" (at the start of the line, under
    -q or between bars) would run into it: on a terminal the line starts with a carriage return, over it."""
    import io
    import sys

    import xvertfast.cli as cli

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_use_threads", ctrl_c)
    monkeypatch.setattr(sys, "stderr", Terminal())
    argv = ["train", str(write_images(tmp_path / "data")), "-o", str(tmp_path / "run"), "--stages", "1", "-q"]
    assert main(argv) == 130
    assert sys.stderr.getvalue() == "\rinterrupted: the run had not started; nothing was written\n"


def test_resume_on_another_kind_of_device_warns(tmp_path):
    """--device auto (the default) started on a GPU and resumed where there is none went on on the CPU
    unsaid, though the result then differs from an uninterrupted run's (as with another thread count,
    which is warned of). The run started on a GPU is simulated by its checkpoint's record."""
    data = write_images(tmp_path / "data")
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0, "device": "auto"})
    run = tmp_path / "run"
    train([str(data)], str(run), small, stop_after_epochs=1, progress=False, log=lambda m: None)
    state_path = run / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["device"] == "cpu"  # this machine's
    state_path.write_text(json.dumps({**state, "device": "cuda"}))
    said = []
    train([str(data)], str(run), small, resume=True, progress=False, log=said.append)
    assert [m for m in said if m.startswith("warning: this run trained on cuda, now on cpu")], said


def test_an_unfinished_run_leaves_no_model_that_passes_for_the_trained_one(tmp_path):
    """Before: each finished stage was saved to RUN_DIR/model, so a run killed in stage 2 left there a
    loadable one-stage model that enhance and evaluate used without a word. The finished stages wait in
    checkpoint/model (for --resume, and to look at); RUN_DIR/model is written when the last stage is."""
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # stage 1 (4 epochs) done, one of stage 2
    assert not (run / "model").exists()
    assert len(load_model(run / "checkpoint" / "model").stages) == 1
    train([str(data)], str(run), CONFIG, resume=True, **quiet)
    assert len(load_model(run / "model").stages) == 2


def test_a_finished_run_keeps_no_model_of_its_first_stages_and_a_resume_of_it_still_works(tmp_path):
    import shutil

    """Before: a finished run left its first stages in checkpoint/model, a loadable one-stage model
    that enhance --model and train --init took without a word. A resume of a finished run reads
    RUN_DIR/model alone, so it goes when the last stage is saved; one interrupted in stage 2 too."""
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    full = train([str(data)], str(tmp_path / "full"), CONFIG, **quiet)
    run = tmp_path / "run"
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)  # stage 1 done, one epoch of stage 2
    assert len(load_model(run / "checkpoint" / "model").stages) == 1  # kept for the resume
    train([str(data)], str(run), CONFIG, resume=True, **quiet)
    for folder in (tmp_path / "full", run):
        assert not (folder / "checkpoint" / "model").exists()
        assert (folder / "checkpoint" / "state.json").is_file()  # the rest of the checkpoint stays
    said = []
    again = train([str(data)], str(run), CONFIG, resume=True, progress=False, log=said.append)
    assert any("the run has finished" in m for m in said), said
    a, b = weights(full), weights(again)
    assert len(again.stages) == 2 and all(torch.equal(a[k], b[k]) for k in a)
    # one left by a run killed between its finished state and the removal (or finished by an older
    # xvertfast): a resume of the finished run removes it
    shutil.copytree(run / "model", run / "checkpoint" / "model")
    train([str(data)], str(run), CONFIG, resume=True, **quiet)
    assert not (run / "checkpoint" / "model").exists()


def test_a_run_an_older_xvertfast_began_resumes_from_the_stages_in_its_model_folder(tmp_path):
    import shutil

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    full = train([str(data)], str(tmp_path / "full"), CONFIG, **quiet)
    train([str(data)], str(run), CONFIG, stop_after_epochs=5, **quiet)
    shutil.move(run / "checkpoint" / "model", run / "model")  # where finished stages were kept before
    resumed = train([str(data)], str(run), CONFIG, resume=True, **quiet)
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_older_runs_model_of_fewer_stages_goes_once_a_later_stage_is_kept(tmp_path):
    # resumed, a run an older xvertfast began left its RUN_DIR/model of the stages finished then
    # (1 of 3) beside the checkpoint/model the new code writes: a model that passed for the run's
    import shutil

    from xvertfast import load_model

    three = TrainConfig(**{**CONFIG.__dict__, "stages": 3})
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), three, stop_after_epochs=5, **quiet)  # into stage 2
    shutil.move(run / "checkpoint" / "model", run / "model")  # where finished stages were kept before
    train([str(data)], str(run), three, resume=True, stop_after_epochs=4, **quiet)  # into stage 3
    assert not (run / "model").exists() and len(load_model(run / "checkpoint" / "model").stages) == 2
    train([str(data)], str(run), three, resume=True, **quiet)
    assert len(load_model(run / "model").stages) == 3


def test_a_run_with_no_readable_image_leaves_no_run_folder(tmp_path, capsys):
    """Before: "no readable training image among the inputs" (exit 2) left the RUN_DIR it had made, with
    its lock file and an empty checkpoint/, where "no image files found" (exit 1) removed it."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "garbage.dcm").write_bytes(b"not an image")
    run = tmp_path / "new" / "run"
    argv = ["train", str(bad), "-o", str(run), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: no readable training image among the inputs: 2 files found, all skipped (see above)" in err, err
    assert not (tmp_path / "new").exists()


def test_the_run_says_what_it_trains_on_and_lists_the_skipped_files_at_the_end(tmp_path):
    """Before: the files skipped were said only as preprocessing met them, hours of progress bars above
    the end of a long run, and nothing said how many images were trained on or held out."""
    data = write_images(tmp_path / "data")
    (data / "empty.png").write_bytes(b"")
    said = []
    train([str(data)], str(tmp_path / "run"), CONFIG, progress=False, log=said.append)
    assert "3 images (6 ROIs): 2 for training, 1 for validation; 1 of 4 files skipped" in said, said
    skipped = f"skipped: {data / 'empty.png'}: empty file (0 bytes)"
    assert said[-4:-2] == ["1 file was skipped (not trained on):", skipped], said
    # (then the warnings: of the images enlarged into their ROIs, 80 px test images)
    assert said[-2].startswith("1 warning about images trained on") and " were enlarged " in said[-1], said[-2:]


def test_the_warnings_about_images_trained_on_are_listed_again_at_the_end(tmp_path):
    """An image trained on despite a warning (here an inverted look: a MONOCHROME1 PNG not listed as one) was
    said only as it was preprocessed, hours of progress above the end of a long run, whose end listed the
    skipped files alone; enhance's summary lists its warned files."""
    from PIL import Image

    data = write_images(tmp_path / "data")
    Image.fromarray(255 - np.asarray(Image.open(data / "img1.png"))).save(data / "img1.png")
    (data / "empty.png").write_bytes(b"")
    said = []
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run"), one, progress=False, log=said.append)
    warning = next(line for line in said if "img1.png: looks inverted" in line)  # (as it was preprocessed)
    assert warning.startswith("warning: ") and said.index(warning) < said.index("1 file was skipped (not trained on):")
    # (and the one warning of the images enlarged into their ROIs, 80 px test images: said once, after the others)
    enlarged = next(line for line in said if line.startswith("warning: 3 images were enlarged more than 3x"))
    cache = tmp_path / "run" / "cache"
    assert said[-5:] == ["1 file was skipped (not trained on):", f"skipped: {data / 'empty.png'}: empty file (0 bytes)",
                         "2 warnings about images trained on as they are (each says what to do; with them fixed or "
                         f"left out, train into a new run folder: a copy of {cache} in it keeps the other images' "
                         "preprocessing):", warning, enlarged], said[-5:]


def test_the_skipped_files_listed_again_at_the_end_are_as_many_as_a_screen_holds(tmp_path):
    """An archive's thousands of duplicates and unreadable files were listed whole at the end, a second
    time (each was said as it was skipped), as the batch jobs' summaries no longer do."""
    from xvertfast._text import FAILED_LISTED

    data = write_images(tmp_path / "data")
    for k in range(FAILED_LISTED + 3):
        (data / f"empty{k:03d}.png").write_bytes(b"")
    said = []
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "run"), one, progress=False, log=said.append)
    start = said.index(f"{FAILED_LISTED + 3} files were skipped (not trained on):") + 1
    end = said[start : start + FAILED_LISTED + 1]  # (the warnings about images trained on follow: 80 px, enlarged)
    assert end[:-1] == [f"skipped: {data / f'empty{k:03d}.png'}: empty file (0 bytes)" for k in range(FAILED_LISTED)]
    assert end[-1] == "... and 3 more skipped files: each was said above as it was skipped", end[-3:]
    assert sum(line.startswith("skipped: ") for line in said) == 2 * FAILED_LISTED + 3  # (each said as it came)


def test_no_epochs_with_an_init_model_of_fewer_stages_is_refused_before_any_image(tmp_path):
    """Before: --epochs-gc 0 --epochs-joint 0 --init ONE_STAGE_MODEL --stages 2 wrote a model whose second
    stage kept its random weights (the CLI refuses no epochs without --init for that very reason)."""
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "one"), one, **quiet)
    none = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 0, "epochs_joint": 0, "init": str(tmp_path / "one/model")})
    with pytest.raises(ValueError, match=r"no epoch is trained: stage 2 would keep its random weights; train some "
                                         r"epochs, or stages=1 in the TrainConfig$"):  # (from Python: no --stages)
        train([str(data)], str(tmp_path / "two"), none, **quiet)
    assert not (tmp_path / "two").exists()


@pytest.mark.parametrize("options", [["--width", "8"], ["--stages", "3", "--epochs-gc", "0", "--epochs-joint", "0"]])
def test_cli_init_default_refusals_say_default_and_the_folder_it_resolved_to(tmp_path, capsys, options):
    """Before: the refusal named only the shipped model's folder ("--init /.../weights/default: ..."),
    not the "default" the user typed."""
    from xvertfast.model.persistence import DEFAULT_MODEL_DIR

    data = write_images(tmp_path / "data")
    assert main(["train", str(data), "-o", str(tmp_path / "run"), "--init", "default", "-q", *options]) == 2
    assert f"error: --init default ({os.path.abspath(DEFAULT_MODEL_DIR)})" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_points_only_at_the_files_a_run_wrote(tmp_path, capsys, monkeypatch):
    """Before: a run of no epochs (--init, --epochs-gc 0 --epochs-joint 0, a copy of the model) said
    "metrics in RUN_DIR/metrics.csv", a file no epoch had written; and in an earlier run's folder (its
    checkpoint/ and model/ removed) it named that run's metrics.csv and curves.png, left there, as its own.
    metrics.csv is written once an epoch: each stage's end wrote the same file again."""
    import xvertfast.train.loop as loop_module

    data = write_images(tmp_path / "data")
    trained = tmp_path / "a"  # (its line names each stage's preview: it named none)
    written, rows = loop_module._write_metrics, []
    with monkeypatch.context() as patch:
        patch.setattr(loop_module, "_write_metrics", lambda run_dir, history: (rows.append(len(history)),
                                                                                written(run_dir, history)))
        assert main(["train", str(data), "-o", str(trained), "--stages", "2", "--epochs-gc", "1", "--epochs-joint",
                     "0", "--batch-size", "2", "--width", "4", "--depth", "2", "--roi-size", "32", "--seed", "3",
                     "-q", "--device", "cpu"]) == 0  # fmt: skip
    assert rows == [1, 2], rows  # (an epoch of each stage: [1, 1, 2, 2] with each stage's end)
    with open(trained / "metrics.csv", newline="") as f:
        assert [(r["stage"], r["epoch"]) for r in csv.DictReader(f)] == [("1", "1"), ("2", "1")]
    said = capsys.readouterr().out
    drawn = importlib.util.find_spec("matplotlib") is not None  # (the pictures need it)
    assert not drawn or f"metrics in {trained / 'metrics.csv'}, loss curves in {trained / 'curves.png'}, previews " \
        f"(a few ROIs through each stage) in {trained / 'preview_stage1.png'} and {trained / 'preview_stage2.png'}" \
        in said, said
    run = tmp_path / "b"
    run.mkdir()
    (run / ".xvertfast-train.lock").touch()  # (an earlier run's folder: its files are not refused)
    for name in ("metrics.csv", "curves.png"):
        (run / name).write_bytes(b"the earlier run's")
    assert main(["train", str(data), "-o", str(run), "--init", str(tmp_path / "a" / "model"), "--epochs-gc", "0",
                 "--epochs-joint", "0", "--roi-size", "32", "-q", "--device", "cpu"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"the model is in {run / 'model'}" in out and "metrics" not in out and "curves" not in out, out
    assert not (run / "metrics.csv").exists() and not (run / "curves.png").exists()


def test_cli_points_only_at_the_previews_of_the_stages_the_run_trained(tmp_path):
    """Before: the finished run's line named every preview_stage{k}.png in RUN_DIR, so a 2-stage run
    trained again in the folder of a 3-stage one (its checkpoint/ and model/ removed, as the docs say)
    named that run's preview_stage3.png as its own."""
    from xvertfast import cli
    from xvertfast.model import XVertNet, XVertNetStage, save_model

    run = tmp_path / "run"
    save_model(XVertNet([XVertNetStage(width=4, depth=2) for _ in range(2)]), run / "model")  # this run's: 2 stages
    for k in (1, 2, 3):  # preview_stage3.png: the earlier run's
        (run / f"preview_stage{k}.png").touch()
    said = cli._trained_line(str(run))
    assert f"previews (a few ROIs through each stage) in {run / 'preview_stage1.png'} and " \
           f"{run / 'preview_stage2.png'}" in said and "preview_stage3" not in said, said


def test_a_run_that_draws_no_figures_names_no_earlier_runs(tmp_path, capsys, monkeypatch):
    """Before: a run that could draw no figures (matplotlib missing), trained in the folder of an earlier run
    (its checkpoint/ and model/ removed), ended naming that run's curves.png and preview_stage1.png as its own,
    which showed other weights and losses. A figure a run cannot draw goes; one it draws replaces it."""
    data, run = write_images(tmp_path / "data", n=2), tmp_path / "run"
    run.mkdir()
    (run / ".xvertfast-train.lock").touch()  # (an earlier run's folder: its figures are not refused)
    for name in ("curves.png", "preview_stage1.png"):
        (run / name).write_bytes(b"the earlier run's")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # (import fails)
    assert main(["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0",
                 "--width", "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert f"metrics in {run / 'metrics.csv'}" in said and "curves" not in said and "preview" not in said, said
    assert not (run / "curves.png").exists() and not (run / "preview_stage1.png").exists()


def test_a_run_resumes_with_another_spelling_of_its_device(tmp_path):
    """Before: a run begun with --device auto (the default) was refused on --resume --device cpu ("a
    different configuration ... device 'auto' -> 'cpu'"), the same device; a change of the device itself
    is said as a warning (checked by the device test)."""
    data = write_images(tmp_path / "data")
    quiet = {"progress": False, "log": lambda m: None}
    auto = TrainConfig(**{**CONFIG.__dict__, "device": "auto"})
    full = train([str(data)], str(tmp_path / "full"), auto, **quiet)
    train([str(data)], str(tmp_path / "run"), auto, stop_after_epochs=3, **quiet)
    said = []
    resumed = train([str(data)], str(tmp_path / "run"), CONFIG, resume=True, progress=False, log=said.append)
    # (none but the images' own, said again from the cache: the 80 px test images are enlarged into their ROIs)
    assert not [m for m in said if "warning" in m and " enlarged more than " not in m
                and not m.startswith("1 warning about images")], said  # fmt: skip
    a, b = weights(full), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_says_a_run_folder_it_may_not_write_in_words(tmp_path, monkeypatch, capsys):
    """Before: "error: [Errno 30] Read-only file system: 'RUN_DIR'" (enhance says "cannot write into the
    output folder OUT: Read-only file system")."""
    import errno

    import xvertfast.train.loop as loop

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    data = write_images(tmp_path / "data")
    monkeypatch.setattr(loop, "hold_lock", read_only)
    run = tmp_path / "run"
    assert main(["train", str(data), "-o", str(run), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write into the run folder {run}: Read-only file system\n", err


def test_cli_says_a_checkpoint_folder_it_may_not_write_in_words(tmp_path, monkeypatch, capsys):
    """`chattr +i RUN/checkpoint` then --resume: "error: [Errno 1] Operation not permitted:
    '.../checkpoint/.epoch.safetensors.q_bqi_r0.part'". (Root ignores chmod: the error is faked.)"""
    import errno

    import xvertfast.train.loop as loop

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu", "--resume"]  # fmt: skip
    train([str(data)], str(run), TrainConfig(stages=1, epochs_gc=2, epochs_joint=0, width=4, depth=2, roi_size=32,
                                             device="cpu"), stop_after_epochs=1, progress=False, log=lambda m: None)  # fmt: skip

    def immutable(ckpt_dir, *args, **kwargs):
        part = os.path.join(ckpt_dir, ".epoch.safetensors.q_bqi_r0.part")
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), part)

    monkeypatch.setattr(loop, "_save_checkpoint", immutable)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"\nerror: cannot write the checkpoint in {run / 'checkpoint'}: Operation not permitted (the last "
            "finished epoch is kept); make it writable") in err, err  # fmt: skip
    # (the command has --resume: told to run it again, not to add the --resume it has)
    assert "then run the same command again to go on" in err and "add --resume" not in err and ".part" not in err
    config = TrainConfig(stages=1, epochs_gc=2, epochs_joint=0, width=4, depth=2, roi_size=32, device="cpu")
    with pytest.raises(PermissionError, match="cannot write the checkpoint"):  # (Python: a ValueError for a while)
        train([str(data)], str(run), config, resume=True, progress=False, log=lambda m: None)


def test_a_file_that_is_no_part_file_is_unwritable_only_in_a_folder_the_run_may_not_write(tmp_path, monkeypatch):
    """The folder decides where the failing file is the run's own (a .npy made in cache/, a mkdir):
    one the run may write in means the error was a read. (Root writes anywhere: access is faked.)"""
    import errno

    from xvertfast.train.loop import _unwritable

    cache = tmp_path / "run" / "cache"
    cache.mkdir(parents=True)
    denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(cache / "a.npy"))
    assert _unwritable(str(tmp_path / "run"), denied) is None
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(cache) and access(path, mode))
    said = _unwritable(str(tmp_path / "run"), denied)
    assert said.startswith(f"cannot write the preprocessed images in {cache}: Permission denied; make it"), said


def test_a_file_of_the_run_it_may_not_read_is_not_said_to_be_unwritable(tmp_path, monkeypatch, capsys):
    """A faked EACCES reading checkpoint/state.json on --resume (its folder writable) said "cannot write
    the checkpoint ... make it writable"; it is said as the read error it is, a PermissionError."""
    import errno

    import xvertfast.train.loop as loop

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    config = TrainConfig(stages=1, epochs_gc=2, epochs_joint=0, width=4, depth=2, roi_size=32, device="cpu")
    train([str(data)], str(run), config, stop_after_epochs=1, progress=False, log=lambda m: None)
    state = str(run / "checkpoint" / "state.json")

    def unreadable(ckpt_dir):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), state)

    monkeypatch.setattr(loop, "latest_state", unreadable)
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu", "--resume"]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: [Errno 13] Permission denied: {state!r}\n"
    with pytest.raises(PermissionError, match="Permission denied"):
        train([str(data)], str(run), config, resume=True, progress=False, log=lambda m: None)


def test_an_input_inside_the_run_folder_is_refused_before_anything_is_written_there(tmp_path):
    """Before: train DATA -o DATA (or -o a folder above an input) was refused only once the run held its
    folder, leaving .xvertfast-train.lock and an empty checkpoint/ among the user's images."""
    data = write_images(tmp_path / "data")
    before = sorted(os.listdir(data))
    for run, given in ((data, data), (tmp_path, data / "img0.png")):
        with pytest.raises(ValueError, match="a folder of outputs"):
            train([str(given)], str(run), CONFIG, progress=False, log=lambda m: None)
    assert sorted(os.listdir(data)) == before and sorted(os.listdir(tmp_path)) == ["data"]


def test_the_output_folder_of_another_job_is_refused_as_a_run_folder(tmp_path, capsys):
    """Before: train -o ENHANCE_OUT trained into enhance's output folder, beside its outputs and ledger
    (a curves.png or preview_stage1.png there was replaced); the help asks for a folder of its own."""
    data = write_images(tmp_path / "data")
    out = tmp_path / "enhanced"
    out.mkdir()
    (out / ".xvertfast-enhance.json").write_text("{}")
    before = sorted(os.listdir(out))
    assert main(["train", str(data), "-o", str(out), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{out} is the output folder of an xvertfast enhance job" in err and "a folder of its own" in err, err
    assert sorted(os.listdir(out)) == before


def test_a_model_folder_is_refused_as_a_run_folder_before_anything_is_written_there(tmp_path, capsys):
    """Before: train -o MODEL (the folder enhance --model and --init take) trained into the model's folder:
    its checkpoint/, cache/ and the new model/ beside the model's own files, which enhance --model MODEL
    still used, the fine-tuned model in MODEL/model unsaid."""
    from xvertfast.model import XVertNet, XVertNetStage, save_model

    data = write_images(tmp_path / "data")
    model = save_model(XVertNet([XVertNetStage(4, 2)]), str(tmp_path / "model"))
    before = sorted(os.listdir(model))
    argv = ["train", str(data), "-o", model, "--init", model, "--roi-size", "32", "--epochs-gc", "1", "--epochs-joint",
            "0", "--stages", "1", "-q"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model} is an xvertfast model (it holds its config.json)") and "a folder of its own" in err
    assert f"--init {model} starts it from this model's weights" in err, err
    assert sorted(os.listdir(model)) == before
    other = tmp_path / "other"  # a folder with a config.json of something else is no model: trained in
    other.mkdir()
    (other / "config.json").write_text('{"format": "something else"}')
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(other), quick, progress=False, log=lambda m: None)
    assert (other / "model" / "config.json").is_file()


@pytest.mark.parametrize("below", [False, True], ids=["the-folder", "a-folder-above"])
def test_a_run_folder_through_a_link_to_a_missing_folder_or_a_file_is_said_so_with_what_to_do(tmp_path, below, capsys):
    """-o latest, latest -> a folder not made yet: "cannot write into the run folder latest: File exists", as if
    latest were a file (enhance says it as such since 11c204b); -o a file: "RUN_DIR x is a file", nothing said
    of what to give."""
    data = write_images(tmp_path / "data")
    (tmp_path / "latest").symlink_to(tmp_path / "2026-12-07", target_is_directory=True)
    run = tmp_path / "latest" / "run" if below else tmp_path / "latest"
    with pytest.raises(ValueError) as refused:
        train([str(data)], str(run), CONFIG, progress=False, log=lambda m: None)
    assert str(refused.value) == (f"cannot write into the run folder {run}: {tmp_path / 'latest'} is a link to "
                                  f"{tmp_path / '2026-12-07'}, which does not exist: make that folder first, or give "
                                  "the output folder itself")  # fmt: skip
    assert not (tmp_path / "2026-12-07").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError) as refused:
        train([str(data)], str(tmp_path / "afile"), CONFIG, progress=False, log=lambda m: None)
    assert str(refused.value) == (f"run folder {tmp_path / 'afile'} is a file: give the training run a folder (made "
                                  "where missing)")  # fmt: skip (from Python: no -o, no RUN_DIR)
    assert main(["train", str(data), "-o", str(tmp_path / "afile"), "-q"]) == 2
    assert (f"error: RUN_DIR {tmp_path / 'afile'} is a file: give the training run a folder (-o, made where "
            "missing)\n") in capsys.readouterr().err  # fmt: skip


def test_a_run_an_older_xvertfast_began_in_a_model_folder_is_resumed(tmp_path, capsys):
    """535a173 refused a model's folder as RUN_DIR before its checkpoint was looked at: a run begun there by
    an older xvertfast (which let it) could not be resumed, and the refusal said nothing of moving it."""
    from xvertfast.model import XVertNet, XVertNetStage, save_model

    data, model = write_images(tmp_path / "data"), str(tmp_path / "model")
    argv = ["train", str(data), "-o", model, "--roi-size", "32", "--epochs-gc", "2", "--epochs-joint", "0",
            "--stages", "1", "--width", "4", "--depth", "2", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    quick = TrainConfig(stages=1, epochs_gc=2, epochs_joint=0, width=4, depth=2, roi_size=32, batch_size=2,
                        device="cpu")  # fmt: skip
    train([str(data)], model, quick, stop_after_epochs=1, progress=False, log=lambda m: None)
    save_model(XVertNet([XVertNetStage(4, 2)]), model)  # (the model's files beside the run's, as then)
    assert os.path.isfile(os.path.join(model, "config.json"))
    assert main([*argv, "--resume"]) == 0
    assert "resuming after stage 1, epoch 1" in capsys.readouterr().err
    assert main(argv) == 2  # (not resumed: refused as any run's folder is, not as a model's)
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "is an xvertfast model" not in err, err
    assert f"train into a new RUN_DIR with --init {os.path.join(model, 'model')}" in err, err  # (the CLI's words)


def test_a_folder_holding_a_model_or_metrics_no_run_there_wrote_is_refused_as_it_was(tmp_path, capsys):
    """Before: train -o FOLDER whose model/ (the model of a run whose checkpoint was cleared away, the
    user's own files) and metrics.csv no run there had written replaced metrics.csv at the first epoch
    and removed model/ with all in it (shutil.rmtree) once stage 1 of 2 was trained, without a word."""
    import shutil

    data = write_images(tmp_path / "data")
    out = tmp_path / "kept"
    (out / "model").mkdir(parents=True)
    (out / "model" / "mine.txt").write_text("the user's")
    (out / "metrics.csv").write_text("a,b\n1,2\n")
    (out / "notes.md").write_text("not a name a run writes")
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(FileExistsError, match="holds model, metrics.csv") as info:
        train([str(data)], str(out), CONFIG, progress=False, log=lambda m: None)
    assert "no checkpoint" in str(info.value) and "a folder of its own" in str(info.value)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    argv = ["train", str(data), "-o", str(out), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]
    assert main([*argv, "--resume"]) == 2  # (a --resume finds no checkpoint to go on from either)
    assert f"error: {out} holds model, metrics.csv" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    (out / "metrics.csv").unlink()  # those moved away, the run trains there beside the other files
    shutil.move(out / "model", tmp_path / "moved")
    train([str(data)], str(out), CONFIG, progress=False, log=lambda m: None)
    assert (out / "notes.md").read_text() == "not a name a run writes" and (out / "model" / "config.json").is_file()
    # that run's checkpoint cleared away, its model is kept from the next run there as well
    shutil.rmtree(out / "checkpoint")
    with pytest.raises(FileExistsError, match=r"holds model but no checkpoint"):
        train([str(data)], str(out), CONFIG, progress=False, log=lambda m: None)
    assert (out / "model" / "config.json").is_file()


def test_a_preprocess_output_folder_given_as_data_is_refused_before_anything_is_written(tmp_path, capsys):
    """Before: train PREP_OUT trained on preprocess's X_p, Y and overlays as if each were a radiograph
    (3 radiographs gave 12 'images', the overlays' colours converted with a note, exit 0)."""
    data = write_images(tmp_path / "data")
    assert main(["preprocess", str(data), "-o", str(tmp_path / "prep"), "-q"]) == 0
    capsys.readouterr()
    argv = ["train", str(tmp_path / "prep"), "-o", str(tmp_path / "run"), "--width", "4", "--depth", "2",
            "--roi-size", "32", "-q"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'prep'} is the output folder of an xvertfast preprocess job" in err, err
    assert "not radiographs to train on" in err and not (tmp_path / "run").exists()
    # a finished run's folder: its curves and previews are no radiographs either
    train([str(data)], str(tmp_path / "done"), CONFIG, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="output folder of an xvertfast train job"):
        train([str(tmp_path / "done")], str(tmp_path / "run"), CONFIG, progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()


def test_images_in_a_folder_below_a_job_output_folder_are_refused_however_given(tmp_path, capsys):
    """Before: only a job's output folder given itself was refused; a subfolder of a preprocess
    output (PREP/ward), one of its images given by name, an @list naming PREP, or a run's preview
    given by name were all trained on as radiographs."""
    data = tmp_path / "data"
    data.mkdir()
    write_images(data / "ward")
    assert main(["preprocess", str(data), "-o", str(tmp_path / "prep"), "-q"]) == 0
    ward = tmp_path / "prep" / "ward"
    listed = tmp_path / "inputs.txt"
    listed.write_text(f"# the archive\n{tmp_path / 'prep'}\n")
    nested = tmp_path / "nested.txt"
    nested.write_text(f"{data / 'ward' / 'img0.png'}\n@{listed}\n")
    argv = ["-o", str(tmp_path / "run"), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]
    for given in (str(ward), str(ward / "img0_xp.png"), f"@{listed}", f"@{nested}"):
        capsys.readouterr()
        assert main(["train", given, *argv]) == 2, given
        err = capsys.readouterr().err
        assert f"in {tmp_path / 'prep'}, the output folder of an xvertfast preprocess job" in err, (given, err)
        assert "not radiographs to train on" in err and not (tmp_path / "run").exists(), (given, err)
    # a run's figures, given by name, are no radiographs either; its images beside them are trained on
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "done"), quick, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="output folder of an xvertfast train job"):
        train([str(tmp_path / "done" / "curves.png")], str(tmp_path / "run"), quick, progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()


def test_radiographs_below_a_job_output_folder_are_trained_on(tmp_path):
    """Before: every image below a folder holding a job's marker was refused, so radiographs in
    PROJ/data, PROJ being where a preprocess job wrote (xvertfast preprocess ELSEWHERE -o .), or below
    a folder where another tool wrote checkpoint/state.json, could not be trained on (exit 2)."""
    proj = tmp_path / "proj"
    assert main(["preprocess", str(write_images(tmp_path / "elsewhere")), "-o", str(proj), "-q"]) == 0
    write_images(proj / "data")
    other = tmp_path / "other"
    (other / "checkpoint").mkdir(parents=True)
    (other / "checkpoint" / "state.json").write_text("{}")
    write_images(other / "images", n=2, size=96)  # (other images than proj/data's: not one image twice)
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(proj / "data"), str(other / "images")], str(proj / "run"), quick, progress=False, log=lambda m: None)
    state = json.loads((proj / "run" / "checkpoint" / "state.json").read_text())
    assert len(state["image_sizes"]) == 5, state["image_sizes"]
    # the preprocess job's own outputs, given by name, are still refused
    with pytest.raises(ValueError, match="output folder of an xvertfast preprocess job"):
        train([str(proj / "img0_xp.png")], str(tmp_path / "run"), quick, progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()


def test_the_images_each_job_writes_are_those_its_entry_in_the_table_train_reads_names(tmp_path, seed):
    """io.files' JOB_IMAGES tells the images a preprocess, evaluate or train job wrote in its folder,
    which train refuses, from the user's own files there, which it trains on. Evaluate and train name
    their images themselves: an image one of them starts writing, missing from the table, would be
    trained on as a radiograph; an entry that names what no job writes refuses a user's file."""
    from tests.eval.test_evaluate import an_image_and_its_roi_file
    from xvertfast.io.files import JOB_IMAGES, discover

    data = write_images(tmp_path / "data")
    assert main(["preprocess", str(data), "-o", str(tmp_path / "preprocess"), "-q"]) == 0
    src, rois = an_image_and_its_roi_file(tmp_path, seed)
    assert main(["evaluate", str(src), "--rois", str(rois), "-o", str(tmp_path / "evaluate"), "--methods", "identity",
                 "--metrics", "entropy", "--pictures", "1", "-q"]) == 0  # fmt: skip
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(tmp_path / "train"), quick, progress=False, log=lambda m: None)
    for job, images in JOB_IMAGES.items():
        folder = tmp_path / job
        found = [f.rel for f in discover([str(folder)])]  # all a search of the folder takes for images
        assert found and [rel for rel in found if not images.wrote(rel)] == [], (job, found)
        written = [os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names]
        for ending in images.endings:
            assert any(rel.lower().endswith(ending) for rel in written), (job, ending, written)
        for name in images.top_names:
            assert any(re.fullmatch(name, rel) for rel in written), (job, name, written)
        for top in images.folders:
            assert any(rel.split(os.sep)[0] == top for rel in written), (job, top, written)


def test_the_progress_bar_counts_rois_as_rois(tmp_path, capsys):
    # the bar said img_s for ROIs (two an image) a second: half as many images went by
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(write_images(tmp_path / "data"))], str(tmp_path / "run"), quick, log=lambda m: None)
    err = capsys.readouterr().err
    assert "roi_s=" in err and "img_s=" not in err and "patch_s=" not in err


def test_the_progress_bar_counts_patches_as_patches(tmp_path, capsys):
    # a run on patches smaller than the ROIs said roi_s, where curves.png's titles say patches/s
    quick = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0, "patch_size": 16})
    train([str(write_images(tmp_path / "data"))], str(tmp_path / "run"), quick, log=lambda m: None)
    err = capsys.readouterr().err
    assert "patch_s=" in err and "roi_s=" not in err


def test_skipped_files_start_their_own_line_under_the_progress_bar(tmp_path, capsys):
    # printed after the preprocessing bar's text, which ends without a newline: "...[00:00<?, ?image/s]skipped: ..."
    data = tmp_path / "data"
    data.mkdir()
    (data / "empty.png").write_bytes(b"")
    (data / "text.png").write_text("not an image")
    assert main(["train", str(data), "-o", str(tmp_path / "run"), "--width", "4", "--depth", "2", "--roi-size", "32"]) == 2
    said_around_the_bar(capsys.readouterr().err, "skipped")


def test_one_folder_given_alone_as_a_string_or_a_path_is_trained_on(tmp_path):
    # train("/data/cxr", ...): the string's characters were taken as the inputs ("/" is a folder
    # above RUN_DIR: the whole file system was searched); a pathlib.Path raised AttributeError
    from pathlib import Path

    data = write_images(tmp_path / "data")
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    for k, given in enumerate((Path(data), str(data))):
        model = train(given, str(tmp_path / f"run{k}"), small, progress=False, log=lambda m: None)
        assert len(model.stages) == 1


def test_the_model_records_the_folder_its_relative_training_images_are_from(tmp_path, monkeypatch):
    """The model's training.sources and validation_images, as given (data/img0.png), named no folder: a
    model handed on, or looked at later, did not say which images it had trained and validated on."""
    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train(["data"], str(tmp_path / "run"), small, progress=False, log=lambda m: None)
    training = load_model(tmp_path / "run" / "model").metadata["training"]
    assert training["sources"] == [os.path.join("data", f"img{k}.png") for k in range(3)]
    assert training["cwd"] == str(tmp_path) and all((tmp_path / p).is_file() for p in training["validation_images"])
    train([str(tmp_path / "data")], str(tmp_path / "run2"), small, progress=False, log=lambda m: None)
    assert "cwd" not in load_model(tmp_path / "run2" / "model").metadata["training"]  # (whole paths: none needed)


def test_a_working_folder_that_cannot_be_read_is_not_recorded_as_null(tmp_path, monkeypatch):
    """The working folder os.getcwd cannot read (deleted) wrote "cwd": null in the model's config.json, a folder
    key naming none; it is left out, as where the images were given by whole paths."""
    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("xvertfast.train.loop.working_folder", lambda: None)
    small = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train(["data"], str(tmp_path / "run"), small, progress=False, log=lambda m: None)
    training = load_model(tmp_path / "run" / "model").metadata["training"]
    assert training["sources"][0] == os.path.join("data", "img0.png") and "cwd" not in training, training


@pytest.mark.parametrize("setting, said", [
    ({"stages": 2.5}, r"^TrainConfig: stages must be a whole number, got 2\.5$"),
    ({"width": "16"}, r"^TrainConfig: width must be a whole number, got '16'$"),
    ({"seed": 3.0}, r"^TrainConfig: seed must be a whole number, got 3\.0$"),  # (a float, even whole)
    ({"betas": (0.9,)}, "betas must be two numbers in"),
    ({"betas": (1.0, 0.99)}, "betas must be two numbers in"),
    ({"betas": ("0.9", 0.99)}, "betas must be two numbers in"),
    ({"betas": (False, 0.99)}, "betas must be two numbers in"),
    ({"upsample": "nearest"}, "upsample must be one of bilinear, transposed"),
    # (wls's words: "wls: need lam >= 0, alpha > 0, eps > 0 and rtol > 0, got ..., rtol=0.0001")
    ({"lam": -1.0}, r"^TrainConfig: need lam >= 0, alpha > 0 and eps > 0, got lam=-1\.0, alpha=1\.2, eps=0\.0001$"),
    ({"eps": 0.0}, r"^TrainConfig: need lam >= 0, alpha > 0 and eps > 0, got lam=0\.8, alpha=1\.2, eps=0\.0$"),
    # (text, as from a config file: "'<=' not supported between instances of 'float' and 'str'", no setting named)
    # (text is said to be no number: "must be in [0, 1), got '0.2'" read as if 0.2 were outside)
    ({"val_fraction": "0.2"}, r"^val_fraction must be a number in \[0, 1\), got '0\.2'$"),
    ({"val_fraction": 1.0}, r"^val_fraction must be a number in \[0, 1\), got 1\.0$"),
    ({"lr": "0.001"}, r"^lr must be a finite number .*, got '0\.001'$"),
    # (named as Python sets them: "ROI size", "patch size", "validation fraction", "learning rate" named no argument)
    ({"roi_size": 6}, r"^roi_size must be at least 8 at depth=2, got 6$"),
    ({"patch_size": 4, "depth": 2}, r"^patch_size must be 0 \(whole ROIs\) or at least 8, got 4$"),
    ({"amp": "no"}, r"^amp must be True or False, got 'no'$"),  # (it turned bf16 on)
    ({"init": 123}, r"^init must be a model directory \(a path\) or 'default', got 123$"),
    # (the CLI alone refused it: train() returned the random weights as a model)
    ({"epochs_gc": 0, "epochs_joint": 0}, "epochs_gc = epochs_joint = 0 trains nothing"),
])  # fmt: skip
def test_a_config_that_cannot_train_is_refused_by_check_naming_the_setting(setting, said):
    # TrainConfig.check let these through to fail later, after the images were preprocessed or in
    # other words: stages=2.5 and lam=-1 passed, width="16" was "'>=' not supported", and betas
    # (1.0, 0.99) was blamed on the learning rate ("from 1.2e-38 to 0")
    with pytest.raises(ValueError, match=said):
        TrainConfig(**{**CONFIG.__dict__, **setting}).check()


def test_a_config_refused_from_the_cli_names_its_options():
    """`xvertfast train --lr nan` was told of "lr / (1 - beta1)" (beta1: a setting the CLI has not), and
    --epochs-gc 0 --epochs-joint 0 of "epochs_gc = epochs_joint = 0" and "with init"."""
    from xvertfast._text import cli_running

    with cli_running(["lr", "epochs_gc", "epochs_joint", "init"]):
        with pytest.raises(ValueError, match=r"^--lr must be a finite number from 1\.2e-38 to 3\.4e\+37 \(float32 "
                                             r"weights; Adam's first step is 10 times --lr\), got nan$"):
            TrainConfig(**{**CONFIG.__dict__, "lr": float("nan")})
        with pytest.raises(ValueError, match=r"^--epochs-gc 0 --epochs-joint 0 trains nothing: the model would keep "
                                             r"its random weights \(with --init, it is a copy of that model\)$"):
            TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 0, "epochs_joint": 0})
        with pytest.raises(ValueError, match=r"^--roi-size must be at least 8 at --depth 2, got 6$"):
            TrainConfig(**{**CONFIG.__dict__, "roi_size": 6})  # (it said "ROI size")


def test_an_init_model_given_as_a_path_object_or_bytes_trains(tmp_path):
    # TrainConfig(init=Path(...)) loaded the model, preprocessed every image, then failed the first
    # checkpoint: "Object of type PosixPath is not JSON serializable"
    from pathlib import Path

    data = write_images(tmp_path / "data", n=2)
    quiet = {"progress": False, "log": lambda m: None}
    one = {**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0}
    train([str(data)], str(tmp_path / "first"), TrainConfig(**one), **quiet)
    config = TrainConfig(**{**one, "init": Path(tmp_path / "first" / "model")})
    assert config.init == str(tmp_path / "first" / "model")
    # (bytes, which load_model takes, were refused: "init must be a model directory (a path) ...")
    assert TrainConfig(**{**one, "init": os.fsencode(tmp_path / "first" / "model")}).init == config.init
    model = train([str(data)], str(tmp_path / "tuned"), config, **quiet)
    assert len(model.stages) == 1
    state = json.loads((tmp_path / "tuned" / "checkpoint" / "state.json").read_text())
    assert state["config"]["init"] == str(tmp_path / "first" / "model")


def test_settings_given_as_numpy_numbers_or_a_torch_device_train(tmp_path):
    # a sweep over np.arange: width=np.int64(4) or lr=np.float32(1e-3) passed the check, every image was
    # preprocessed, then the first checkpoint failed: "Object of type int64 is not JSON serializable"
    # (device=torch.device("cpu"): "Object of type device ...")
    data = write_images(tmp_path / "data", n=2)
    # (np.float32, not np.float64: a float64 is a Python float and would pass unconverted)
    numpy = {"width": np.int64(4), "seed": np.int64(3), "lr": np.float32(1e-3), "val_fraction": np.float32(0.5),
             "betas": [np.float32(0.9), 0.99], "amp": np.bool_(False), "lam": np.float32(0.8),
             "alpha": np.float32(1.2), "eps": np.float32(1e-4), "device": torch.device("cpu")}  # fmt: skip
    config = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0, **numpy})
    assert type(config.width) is int and type(config.seed) is int and type(config.amp) is bool
    for name in ("lr", "val_fraction", "lam", "alpha", "eps"):
        assert type(getattr(config, name)) is float, name
    assert all(type(b) is float for b in config.betas)
    model = train([str(data)], str(tmp_path / "run"), config, progress=False, log=lambda m: None)
    assert model.stages[0].width == 4
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    # (a float32 is recorded as the decimal it reads as, 0.8, not 0.800000011920929: xvertfast._checks)
    assert state["config"]["seed"] == 3 and state["config"]["lr"] == 1e-3
    assert state["config"]["lam"] == 0.8 and state["config"]["eps"] == 1e-4
    assert state["config"]["device"] == "cpu"


def test_a_config_that_cannot_train_is_refused_where_it_is_made():
    # (train() alone checked it: a notebook user saw the error far from the cell that made it)
    with pytest.raises(ValueError, match="^batch_size must be at least 1, got 0$"):
        TrainConfig(batch_size=0)
    config = TrainConfig(**CONFIG.__dict__)
    config.batch_size = 0  # a field changed after: train() checks again
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        train(["nothing"], "nowhere", config, progress=False, log=lambda m: None)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_a_device_that_is_none_is_refused_by_name_as_load_model_does(device):
    # was torch's "Expected one of cpu, cuda, ipu, xpu, mkldnn, ... device type at start of device string: gpu"
    with pytest.raises(ValueError, match=rf"^device={device!r} is not a device \(such as 'cpu', 'cuda' or 'cuda:1'\)$"):
        TrainConfig(device=device)


@pytest.mark.parametrize("device", ["mps", "xpu"])
def test_an_accelerator_this_torch_lacks_is_refused_before_any_image_is_preprocessed(tmp_path, capsys, device):
    # --device xpu on a torch without XPU preprocessed every image, then failed with a traceback
    # ("AssertionError: Torch not compiled with XPU enabled", exit 1: 'no image found'); mps, with
    # exit 3 as if training had begun
    from xvertfast.infer import Enhancer

    available = torch.backends.mps.is_available() if device == "mps" else torch.xpu.is_available()
    if available:
        pytest.skip(f"needs a torch without {device}")
    data = write_images(tmp_path / "data", n=1)
    run = tmp_path / "run"
    assert main(["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0",
                 "--width", "4", "--depth", "2", "--roi-size", "32", "-q", "--device", device]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"error: --device {device} was asked for, but this torch has no usable {device.upper()} device" in err
    assert "; use --device cpu" in err and "Traceback" not in err
    assert not run.exists()  # refused before the run folder was made: nothing preprocessed
    with pytest.raises(RuntimeError, match=rf"^device='{device}' was asked for, but this torch has no usable"):
        Enhancer(device=device)


def test_a_device_that_holds_no_data_is_refused_where_it_is_set_and_before_any_image_is_preprocessed(tmp_path):
    # TrainConfig(device="meta") trained from Python preprocessed every image, then failed at the first epoch;
    # then (988e793) it passed TrainConfig(...) and was refused by train() alone, though check() refuses
    # a setting where it is made
    meta_said = (r"^device='meta' holds no data \(torch's meta device has tensors' shapes alone\): nothing can be "
                 r"enhanced or trained there; use device='cpu'$")  # fmt: skip
    for meta in ("meta", torch.device("meta")):
        with pytest.raises(ValueError, match=meta_said):
            TrainConfig(**{**CONFIG.__dict__, "device": meta})
    data = write_images(tmp_path / "data", n=1)
    said = []
    config = TrainConfig(**CONFIG.__dict__)
    config.device = "meta"  # a field changed after: train() refuses it as check() does
    with pytest.raises(ValueError, match=meta_said):
        train([str(data)], str(tmp_path / "run"), config, progress=False, log=said.append)
    assert not (tmp_path / "run").exists() and said == []


def test_train_and_enhance_take_and_refuse_the_same_devices(tmp_path, capsys, monkeypatch):
    """train (39bbb76), the Enhancer and --device took only cpu, cuda, mps and xpu, refusing a
    plug-in's device torch can use (hpu with Habana's package, npu with Huawei's) in words that
    differed. All now refuse, in the same words, meta and what this torch cannot put a tensor on
    (here hpu: torch has no torch.hpu without Habana's package), and take any other device."""
    from xvertfast.infer import Enhancer
    from xvertfast.infer import backends
    from xvertfast.train.loop import _device

    for device in ("hpu", "meta"):  # (no Habana package here: torch has no torch.hpu)
        with pytest.raises(ValueError) as by_train:
            _device(device)
        with pytest.raises((ValueError, RuntimeError)) as by_enhancer:
            Enhancer(device=device)
        assert str(by_train.value) == str(by_enhancer.value), device
    data = write_images(tmp_path / "data", n=1)
    for command in ("enhance", "train"):  # the command line's words, before anything is written
        capsys.readouterr()
        assert main([command, str(data), "-o", str(tmp_path / command), "--device", "hpu"]) == 2
        # (torch's own words in the brackets: "No module named 'torch.hpu'" here, another torch's elsewhere)
        assert re.search(r"error: --device hpu was asked for, but this torch cannot use it \(.+\); use --device cpu",
                         capsys.readouterr().err), command  # fmt: skip
        assert not (tmp_path / command).exists()
    with pytest.raises(ValueError, match=r"^device='hpu' was asked for, but this torch cannot use it \(.+\); use "
                                         r"device='cpu'$"):  # fmt: skip
        _device("hpu")
    monkeypatch.setattr(backends, "_unusable", lambda dev: None)  # as where Habana's package is installed
    assert _device("hpu") == backends.resolve_device("hpu") == torch.device("hpu")  # (train's and the Enhancer's)


def test_the_device_types_kept_from_caffe2_are_refused_in_words_of_their_own(tmp_path, capsys):
    """torch still parses mkldnn, opengl, opencl and ideep, but makes no tensor there: they passed
    --device and were refused with torch's "INTERNAL ASSERT FAILED ... please report a bug to
    PyTorch", and torch.device('mkldnn') warned, naming a line of xvertfast's."""
    from xvertfast.infer import Enhancer
    from xvertfast.model import load_model
    from xvertfast.train.loop import _device

    data = write_images(tmp_path / "data", n=1)
    for kind in ("mkldnn", "opengl", "opencl", "ideep:0"):
        said = rf"^device='{kind}': torch has no tensors of this type \(a device type kept from Caffe2\); use 'cpu'$"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (torch.device('mkldnn'): "no longer used as device type")
            for refuse in (lambda: _device(kind), lambda: Enhancer(device=kind),
                           lambda: TrainConfig(**{**CONFIG.__dict__, "device": kind})):  # fmt: skip
                with pytest.raises(ValueError, match=said):
                    refuse()
            with pytest.raises(ValueError, match="map_location='.+': torch has no tensors of this type"):
                load_model(map_location=kind)
            with pytest.raises(SystemExit):
                main(["enhance", str(data), "-o", str(tmp_path / kind), "--device", kind])
        assert f"--device: torch has no tensors of this type (a device type kept from Caffe2): use cpu, got {kind!r}" \
            in capsys.readouterr().err  # fmt: skip
        assert not (tmp_path / kind).exists()


def test_a_patch_above_the_roi_size_is_said_to_train_on_whole_rois(tmp_path):
    # (it trained on whole ROIs without a word, under a config that says patches of 48)
    data = write_images(tmp_path / "data", n=1)
    one = {**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0}
    for patch, noted in ((48, True), (32, False), (16, False)):
        said = []
        train([str(data)], str(tmp_path / f"run{patch}"), TrainConfig(**{**one, "patch_size": patch}), progress=False,
              log=said.append)  # fmt: skip
        note = "note: patch size 48 is above the ROI size 32: every step trains on whole ROIs, as with patch size 0"
        assert (note in said) == noted, said


def _wrapped_interrupt(signum=None):
    """What Python 3.11 raises where a Ctrl-C (or the CLI's SIGTERM) lands in an import's class creation."""
    import signal

    try:
        if signum is None:
            raise KeyboardInterrupt
        signal.raise_signal(signum)  # (the CLI's handler raises KeyboardInterrupt)
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling __set_name__ on 'cached_property' instance 'x' of 'Y'") from exc


@pytest.mark.parametrize("signum, code", [(None, 130), ("SIGTERM", 143)])
def test_cli_an_interrupt_that_python_wrapped_in_another_error_is_an_interruption(tmp_path, monkeypatch, capsys,
                                                                                  signum, code):  # fmt: skip
    """`kill -TERM` as train started gave exit 3 and "error: RuntimeError: Error calling __set_name__ ...":
    the KeyboardInterrupt, wrapped, was taken for a training error."""
    import signal

    from xvertfast.train.run_folder import INTERRUPTED, stopped_by

    def interrupted(*args, **kwargs):
        _wrapped_interrupt(getattr(signal, signum) if signum else None)

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    monkeypatch.setattr("xvertfast.train.loop.load_rois", interrupted)
    assert main(["train", str(data), "-o", str(run), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]) == code
    err = capsys.readouterr().err
    assert "interrupted: no epoch had finished" in err and "add --resume" in err and "error" not in err, err
    assert stopped_by(str(run)) == INTERRUPTED  # status says it was interrupted, not killed


HANG_UP_AFTER_THE_FIRST_EPOCH = """
import sys, time
from xvertfast.cli import main
from xvertfast.train import loop
written = loop._write_metrics
def waits_for_the_hang_up(*args):
    written(*args)
    print("epoch written", file=sys.stderr, flush=True)
    time.sleep(300)  # the SIGHUP lands here
loop._write_metrics = waits_for_the_hang_up
sys.exit(main(sys.argv[1:]))
"""


def test_cli_a_run_whose_terminal_hung_up_is_recorded_as_interrupted_and_exits_129(tmp_path):
    """An SSH session dropped without nohup: the terminal is gone (a write to it fails, EIO), then
    SIGHUP comes. It killed `xvertfast train` unrecorded, and status said "killed"; now it is a stop
    as SIGTERM's: recorded as interrupted, the last finished epoch kept, exit code 129, its lines
    sent to the null device rather than failing on the lost terminal."""
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    from xvertfast.train.run_folder import INTERRUPTED, stopped_by

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "3", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    terminal, its_end = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", HANG_UP_AFTER_THE_FIRST_EPOCH, *argv], stdin=subprocess.DEVNULL,
                             stdout=its_end, stderr=its_end, start_new_session=True)  # fmt: skip
    os.close(its_end)
    try:
        seen, deadline = b"", time.monotonic() + 300  # (a slow, shared machine: imports and an epoch)
        while b"epoch written" not in seen and time.monotonic() < deadline:
            if select.select([terminal], [], [], 1.0)[0]:
                try:
                    seen += os.read(terminal, 4096)
                except OSError:  # (EIO: the child closed its end, it ended)
                    break
        assert b"epoch written" in seen, seen.decode(errors="replace")
        os.close(terminal)  # the terminal hangs up: writes to it fail from now on
        child.send_signal(signal.SIGHUP)
        assert child.wait(timeout=120) == 128 + signal.SIGHUP
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert stopped_by(str(run)) == INTERRUPTED  # status says interrupted, not killed
    assert (run / "checkpoint" / "epoch.safetensors").exists()


def test_cli_a_write_failing_as_an_interrupt_unwinds_is_an_interruption_status_says(tmp_path, monkeypatch, capsys):
    """A disk-full OSError raised in a handler of Ctrl-C in train() was taken for the disk being full
    (exit 3), and status said the run was killed, not interrupted."""
    from xvertfast.train.run_folder import INTERRUPTED, stopped_by

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise OSError(28, "No space left on device", "x.part")  # (a cache write in the handler)

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    monkeypatch.setattr("xvertfast.train.loop.load_rois", interrupted)
    assert main(["train", str(data), "-o", str(run), "--width", "4", "--depth", "2", "--roi-size", "32", "-q"]) == 130
    err = capsys.readouterr().err
    assert "interrupted (then OSError: [Errno 28] No space left on device: 'x.part'): no epoch had finished" in err
    assert "add --resume" in err and "error" not in err, err
    assert stopped_by(str(run)) == INTERRUPTED


def test_cli_ctrl_c_as_train_starts_gives_the_resume_hint_where_the_run_has_a_folder(tmp_path, monkeypatch, capsys):
    """A Ctrl-C as torch loaded printed a bare "interrupted", even for a run with epochs to resume."""
    import xvertfast.cli as cli

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    train([str(data)], str(run), TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0}),
          stop_after_epochs=1, progress=False, log=lambda m: None)  # fmt: skip

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_use_threads", interrupted)
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q", "--resume"]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted: the last finished epoch is kept; run the same command again to go on" in capsys.readouterr().err
    assert main([*argv[:3], str(tmp_path / "new"), *argv[4:]]) == 130
    assert "interrupted: the run had not started; nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_cli_an_error_an_interruption_raised_as_train_starts_is_said_with_the_resume_hint(tmp_path, monkeypatch,
                                                                                         capsys):  # fmt: skip
    """A cleanup failing with the disk full as a Ctrl-C unwound was a bare "interrupted": its
    message and the --resume hint were lost."""
    import xvertfast.cli as cli

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    train([str(data)], str(run), TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 2, "epochs_joint": 0}),
          stop_after_epochs=1, progress=False, log=lambda m: None)  # fmt: skip

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise OSError(28, "No space left on device", "x.part")  # (a cleanup in the handler)

    monkeypatch.setattr(cli, "_use_threads", interrupted)
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q", "--resume"]  # fmt: skip
    assert main(argv) == 130
    assert ("interrupted (then OSError: [Errno 28] No space left on device: 'x.part'): the last finished epoch is "
            "kept; run the same command again to go on") in capsys.readouterr().err  # fmt: skip


@pytest.mark.parametrize("signum, code", [(None, 130), ("SIGTERM", 143)])
def test_cli_an_interrupt_once_the_run_has_finished_says_so_and_still_exits_as_interrupted(tmp_path, monkeypatch,
                                                                                           capsys, signum, code):  # fmt: skip
    """Policy (troubleshooting guide): a job complete when interrupted exits 130 (143), so a script's next
    step does not run. train exited 0 there, and also for a Ctrl-C as `train DATA -o FINISHED_RUN`
    started (which refuses such a folder, exit 2): it took a run found finished for one it finished."""
    import signal

    import xvertfast.cli as cli

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "-q"]  # fmt: skip
    real, calls = cli._trained_line, []

    def interrupted_once(run_dir):  # the signal right after train() returned, as the model line is made
        calls.append(run_dir)
        if len(calls) == 1:
            signal.raise_signal(getattr(signal, signum)) if signum else _raise(KeyboardInterrupt())
        return real(run_dir)

    monkeypatch.setattr(cli, "_trained_line", interrupted_once)
    assert main(argv) == code
    said = capsys.readouterr()
    assert said.err.endswith("\ninterrupted once the run had finished: its model is complete\n"), said.err
    assert "\n\ninterrupted" not in said.err  # (no blank line above it)
    assert said.out.count(f"the model is in {run / 'model'}") == 1, said.out

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_use_threads", ctrl_c)  # as the same command starts again: not a run it finished
    assert main(argv) == 130
    said = capsys.readouterr()
    # (not 'add --resume', which would only say the run is finished)
    assert f"interrupted: {run} holds a finished run; its model is {run / 'model'}" in said.err, said.err
    assert "--resume" not in said.err and "once the run had finished" not in said.err
    assert "the model is in" not in said.out


def _raise(exc: BaseException) -> None:
    raise exc
