"""XVertNet network: shapes, guidance layers, the feature set, multi-stage enhancement, persistence."""

from __future__ import annotations

import copy
import json
import os
import pickle
import re

import pytest
import torch

from xvertfast import wls
from xvertfast.model import XVertNet, XVertNetStage, load_model, save_model
from xvertfast.model.persistence import fingerprint


@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (5, 7), (3, 3), (1, 1)])
def test_odd_sizes_keep_their_shape(seed, hw):
    stage = XVertNetStage(width=4, depth=3).eval()
    xp, y = torch.rand(2, 1, *hw), torch.randn(2, 1, *hw) * 0.1
    out, feats = stage(xp, y, return_features=True)
    assert out.shape == (2, 1, *hw) and feats.shape == (2, 8, *hw)
    assert 0 <= out.min() and out.max() <= 1


def test_guidance_layer_sizes_per_level(seed):
    stage = XVertNetStage(width=4, depth=4)
    seen = {}
    hooks = [g.register_forward_hook(lambda m, i, o, lvl=g.level: seen.__setitem__(lvl, tuple(o.shape))) for g in stage.guides]
    stage(torch.rand(1, 1, 64, 48), torch.rand(1, 1, 64, 48))
    for h in hooks:
        h.remove()
    assert seen == {k: (1, 4 * 2**k, 64 // 2**k, 48 // 2**k) for k in range(4)}


def test_paper_width_gives_128_feature_maps(seed):
    stage = XVertNetStage(width=64, depth=4)
    assert stage.feature_maps == 128
    _, feats = stage(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), return_features=True)
    assert feats.shape[1] == 128


def test_every_parameter_gets_a_gradient(seed):
    stage = XVertNetStage(width=4, depth=2)
    out, feats = stage(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), return_features=True)
    (out.mean() + feats.mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in stage.parameters())


def test_bad_shapes():
    stage = XVertNetStage(width=4, depth=2)
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        stage(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="width must be a whole number >= 1"):
        XVertNetStage(width=0)


def test_enhance_recomputes_the_guidance_between_stages(seed):
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(1, 1, 24, 20), torch.randn(1, 1, 24, 20) * 0.1
    first = model.stages[0](xp, y)
    y2 = first - wls(first[:, 0]).unsqueeze(1)
    torch.testing.assert_close(model.guidance(first), y2)
    torch.testing.assert_close(model.enhance(xp, y), model.stages[1](first, y2))
    torch.testing.assert_close(model.enhance(xp, y, stages=1), first)
    for stages in (0, -1, 3, 1.5):  # -1 ran stage 1 alone, as a slice would
        with pytest.raises(ValueError, match="stages must be 1 to 2"):
            model.enhance(xp, y, stages=stages)
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        model.guidance(first[:, 0])  # [B, H, W] took row 0 of each image


def test_enhance_runs_in_eval_mode_and_leaves_the_mode_and_statistics_alone(seed):
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)])  # a new module is in train mode
    model.stages[1].eval()  # a mixed state comes back as it was
    xp, y = torch.rand(3, 1, 24, 20), torch.randn(3, 1, 24, 20) * 0.1
    stats = {n: b.clone() for n, b in model.named_buffers()}
    modes = [m.training for m in model.modules()]
    batch = model.enhance(xp, y)
    assert all(torch.equal(b, stats[n]) for n, b in model.named_buffers())  # running statistics untouched
    assert [m.training for m in model.modules()] == modes
    torch.testing.assert_close(model.enhance(xp[:1], y[:1]), batch[:1])  # an image's output is its own
    torch.testing.assert_close(batch, model.eval().enhance(xp, y))


def test_save_and_load_give_identical_outputs(seed, tmp_path):
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(6, 3, "transposed")], lam=0.7).eval()
    save_model(model, tmp_path / "m", extra={"training": {"epochs": 0}})
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "stage1.safetensors", "stage2.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"]["stages"] == [{"width": 4, "depth": 2, "upsample": "bilinear"},
                                                {"width": 6, "depth": 3, "upsample": "transposed"}]  # fmt: skip
    assert config["preprocessing"]["lam"] == 0.7 and config["training"] == {"epochs": 0}
    loaded = load_model(tmp_path / "m")
    assert [s.upsample for s in loaded.stages] == ["bilinear", "transposed"]
    xp, y = torch.rand(2, 1, 20, 28), torch.randn(2, 1, 20, 28) * 0.1
    torch.testing.assert_close(loaded.enhance(xp, y), model.enhance(xp, y), rtol=0, atol=0)


def test_a_loaded_model_saved_again_keeps_its_record_and_so_its_tile(seed, tmp_path):
    """A copy saved with the weights alone lost its training config: a model trained on 64 px ROIs
    came back at model_tile's default, 512, and the Enhancer ran it on other tiles."""
    from xvertfast.infer import Enhancer
    from xvertfast.model import model_tile

    training = {"config": {"roi_size": 64}, "sources": ["cxr"]}
    save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m", extra={"training": training, "provenance": {"a": 1}})
    loaded = load_model(tmp_path / "m")
    save_model(loaded, tmp_path / "copy")
    copied = load_model(tmp_path / "copy")
    assert model_tile(copied) == 64 and Enhancer(tmp_path / "copy", device="cpu").tile == 64
    assert {k: v for k, v in copied.metadata.items() if k != "path"} == \
        {k: v for k, v in loaded.metadata.items() if k != "path"}  # fmt: skip
    assert copied.metadata["path"] == str(tmp_path / "copy")  # where it was found, not where the original was
    assert "path" not in json.loads((tmp_path / "copy" / "config.json").read_text())
    save_model(loaded, tmp_path / "retrained", extra={"training": {"config": {"roi_size": 128}}})  # extra's keys win
    assert model_tile(load_model(tmp_path / "retrained")) == 128
    assert load_model(tmp_path / "retrained").metadata["provenance"] == {"a": 1}


@pytest.mark.parametrize("model", [None, "default", XVertNetStage(4, 2)], ids=["None", "str", "stage"])
def test_saving_what_is_no_model_is_refused_before_its_folder_is_made(tmp_path, model):
    with pytest.raises(TypeError, match=r"save_model: model must be an XVertNet \(xvertfast.load_model gives one\), "
                       f"got {type(model).__name__}"):  # fmt: skip
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_compiled_model_is_saved_and_enhanced_as_the_model_it_wraps(tmp_path):
    # save_model(torch.compile(model)) said "must be an XVertNet, got OptimizedModule" (the compiled
    # model is never run here: wrapping it is cheap, compiling happens at the first call)
    from xvertfast.infer import Enhancer

    model = XVertNet([XVertNetStage(4, 2)])
    save_model(torch.compile(model), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert isinstance(Enhancer(torch.compile(model), device="cpu").model, XVertNet)


def test_a_save_that_fails_half_way_leaves_the_model_there_as_it_was(seed, tmp_path, monkeypatch):
    # a full disk while the second stage was written left new stage1 weights beside the old config
    import safetensors.torch

    old = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    save_model(old, tmp_path / "m")
    before = {name: (tmp_path / "m" / name).read_bytes() for name in os.listdir(tmp_path / "m")}
    real, calls = safetensors.torch.save_file, []

    def full_disk_on_the_second(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk_on_the_second)
    new = XVertNet([XVertNetStage(6, 2), XVertNetStage(6, 2)]).eval()
    with pytest.raises(OSError, match="No space left"):
        save_model(new, tmp_path / "m")
    assert {name: (tmp_path / "m" / name).read_bytes() for name in os.listdir(tmp_path / "m")} == before
    load_model(tmp_path / "m")  # still one model


def test_models_saved_before_the_upsampling_choice_load_as_transposed(seed, tmp_path):
    """Their config.json has no "upsample": they all used the transposed conv, and keep their
    fingerprints (resumed enhance jobs and cached exports key on them)."""
    model = XVertNet([XVertNetStage(4, 2, "transposed")]).eval()
    save_model(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["architecture"]["stages"][0]["upsample"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = load_model(tmp_path / "m")
    assert loaded.stages[0].upsample == "transposed"
    assert fingerprint(loaded) == fingerprint(model)
    bilinear = XVertNet([XVertNetStage(4, 2)])
    assert fingerprint(bilinear) != fingerprint(model)


def test_load_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="config.json: not an xvertfast model configuration"):
        load_model(tmp_path)


#: What writes a model, said to a Python caller: "a model is a directory from `xvertfast train`, its
#: RUN_DIR/model" named a command and its argument where load_model or Enhancer was called
_BY_TRAIN = re.escape("that xvertfast.train.train() or `xvertfast train` writes")


def test_an_empty_model_path_is_said_to_be_empty(tmp_path, monkeypatch):
    # load_model("") (an unset variable, --model "") said ": no such folder (...)", naming nothing
    monkeypatch.chdir(tmp_path)
    for given in ("", b""):
        with pytest.raises(FileNotFoundError, match=rf"^the model path is empty: give a model directory {_BY_TRAIN}, "
                                                    r"its run_dir/model, or 'default'$"):  # fmt: skip
            load_model(given)


def test_a_python_caller_is_told_what_writes_a_model_in_python_terms(tmp_path):
    from xvertfast._text import cli_running
    from xvertfast.infer import Enhancer

    missing = str(tmp_path / "nothere")
    python = (rf"^{re.escape(missing)}: no such folder \(a model is a directory {_BY_TRAIN}, "
              r"its run_dir/model, or 'default'\)$")
    for call in (lambda: load_model(missing), lambda: Enhancer(missing, device="cpu")):
        with pytest.raises(FileNotFoundError, match=python):
            call()
    cli = r"no such folder \(a model is a directory from `xvertfast train`, its RUN_DIR/model"  # (the CLI's, as before)
    with cli_running({"model"}), pytest.raises(FileNotFoundError, match=cli):
        load_model(missing)


def _tampered(tmp_path, seed, change) -> str:
    """A saved two-stage model with ``change(folder, config)`` applied; returns the folder."""
    torch.manual_seed(seed)
    folder = tmp_path / "m"
    save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]), folder)
    config = json.loads((folder / "config.json").read_text())
    before = json.dumps(config)
    change(folder, config)
    if json.dumps(config) != before:  # (a change of the files themselves is written by it)
        (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def _set(keys, value):
    def change(folder, config):
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _weights(edit):
    def change(folder, config):
        from safetensors.torch import load_file, save_file

        state = load_file(folder / "stage1.safetensors")
        edit(state)
        save_file(state, folder / "stage1.safetensors")

    return change


def _nan(state):
    state["head.weight"][0] = float("nan")


@pytest.mark.parametrize("change, error, match", [
    (lambda folder, config: (folder / "config.json").write_text("{\"format\": "), ValueError, "config.json: not valid JSON"),
    (_set(["format_version"], "1"), ValueError, "config.json: unsupported model format version '1'"),
    (_set(["format_version"], 99), ValueError, "unsupported model format version 99"),
    (lambda folder, config: config.pop("architecture"), ValueError, "config.json: no architecture.stages list"),
    (_set(["architecture", "stages"], []), ValueError, "no architecture.stages list"),
    (_set(["architecture", "stages", 0, "width"], "four"), ValueError, "stage 1: width must be a whole number"),
    (_set(["architecture", "stages", 1, "depth"], 0), ValueError, "stage 2: depth must be a whole number >= 1"),
    (_set(["architecture", "stages", 0, "widht"], 4), ValueError, "stage 1: expected an object with width"),
    (_set(["architecture", "stages", 0, "upsample"], "pixelshuffle"), ValueError, "stage 1: upsample must be one of"),
    (_set(["architecture", "stages", 0, "width"], 8), ValueError, r"stage1.safetensors: its tensors do not fit .*other shape"),
    (_set(["architecture", "stages", 0, "depth"], 3), ValueError, r"stage1.safetensors: its tensors do not fit .*missing"),
    (_set(["preprocessing", "lam"], float("nan")), ValueError, "config.json: preprocessing: .*lam must be a finite number"),
    (_set(["preprocessing", "eps"], -1.0), ValueError, "config.json: preprocessing: .*eps > 0"),
    (_set(["preprocessing", "alpha"], "1.2"), ValueError, "config.json: preprocessing: .*alpha must be a finite number"),
    (lambda folder, config: (folder / "stage2.safetensors").unlink(), FileNotFoundError, "stage2.safetensors: the model's stage file is missing"),
    # the inference tile: None gave a TypeError traceback, "abc" int()'s message, 512.5 was cut to 512
    *[(lambda folder, config, v=v: config.update(training={"config": {"roi_size": v}}), ValueError,
       rf"config.json: training.config.roi_size must be a whole number >= 1 .*got {re.escape(repr(v))}")
      for v in (None, "abc", 512.5, 0, True)],
    (lambda folder, config: config.update(training=[]), ValueError, "config.json: training and training.config must be objects"),
    (lambda folder, config: (folder / "stage1.safetensors").write_bytes((folder / "stage1.safetensors").read_bytes()[:100]),
     ValueError, "stage1.safetensors: not a readable safetensors file"),
    # torch.save's zip and a plain pickle renamed .safetensors: said as such, not only "header too large"
    (lambda folder, config: torch.save({"head.weight": torch.zeros(2)}, folder / "stage1.safetensors"), ValueError,
     r"stage1.safetensors: not a readable safetensors file .*it looks like a pickle / torch.save file"),
    (lambda folder, config: (folder / "stage1.safetensors").write_bytes(pickle.dumps({"w": [0.0] * 64}, protocol=4)),
     ValueError, r"stage1.safetensors: not a readable safetensors file .*it looks like a pickle / torch.save file"),
    (_weights(_nan), ValueError, "stage1.safetensors: head.weight holds NaN or infinite values"),
    (_weights(lambda state: state.update({"head.weight": state["head.weight"].int()})), ValueError,
     "stage1.safetensors: head.weight holds torch.int32 values, not floating point"),
    (_weights(lambda state: state.update({"extra": torch.zeros(2)})), ValueError, "its tensors do not fit .*unexpected extra"),
])  # fmt: skip
def test_a_damaged_model_folder_is_named_with_what_is_wrong(tmp_path, seed, change, error, match):
    with pytest.raises(error, match=match):
        load_model(_tampered(tmp_path, seed, change))


def test_fp16_weights_load_and_whole_number_parameters_are_floats(tmp_path, seed):
    def halve(state):
        for name, value in state.items():
            if value.is_floating_point():
                state[name] = value.half()

    model = load_model(_tampered(tmp_path, seed, _weights(halve)))  # fp16 is allowed (shipped weights may be)
    assert model.stages[0].head.weight.dtype == torch.float32
    stage = XVertNetStage(4, 2)
    whole, real = XVertNet([stage], lam=1), XVertNet([stage], lam=1.0)
    assert isinstance(whole.lam, float) and fingerprint(whole) == fingerprint(real)  # one model, one fingerprint


def test_the_shipped_default_model(monkeypatch, tmp_path):
    from xvertfast.model import DEFAULT_MODEL_DIR, model_tile
    from xvertfast.model import persistence

    size = sum(os.path.getsize(os.path.join(DEFAULT_MODEL_DIR, f)) for f in os.listdir(DEFAULT_MODEL_DIR))
    assert size <= 40e6  # issue #8's budget
    model = load_model("default")
    assert len(model.stages) == 2 and model_tile(model) == 512
    provenance = model.metadata["provenance"]
    assert provenance["command"].startswith("xvertfast train") and provenance["stages"]["stage2"]["epochs"] > 0
    xp, y = torch.rand(1, 1, 64, 64), torch.randn(1, 1, 64, 64) * 0.05
    out = model.enhance(xp, y)
    assert out.shape == xp.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    monkeypatch.setattr(persistence, "DEFAULT_MODEL_DIR", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="no default model"):
        load_model("default")


def _second_difference_rms(a: torch.Tensor) -> torch.Tensor:
    """RMS of x[j] - (x[j-1] + x[j+1]) / 2 along the rows and along the columns of [N, H, W]."""
    h = a[..., 1:-1] - 0.5 * (a[..., :-2] + a[..., 2:])
    v = a[..., 1:-1, :] - 0.5 * (a[..., :-2, :] + a[..., 2:, :])
    return torch.stack([h.pow(2).mean((-2, -1)).sqrt(), v.pow(2).mean((-2, -1)).sqrt()], -1)


def test_the_default_model_adds_no_pixel_level_pattern(tmp_path):
    # The structure loss cannot see a pattern of period 2 pixels (Sobel cancels it). The first
    # shipped model made one (stripes, from its transposed convolutions): on the bundled
    # sample's spine ROIs its stage 1 had 22-23x the fine-scale (second-difference) energy of
    # X_p across the rows, 8x after both stages. A model without such a pattern stays near 1.
    from xvertfast.samples import SAMPLE_DICOM
    from xvertfast.train.data import load_rois

    rois = load_rois([SAMPLE_DICOM], str(tmp_path / "cache"), 512, log=lambda *_: None)
    model = load_model("default").eval()
    with torch.no_grad():
        stage1 = model.stages[0](rois.xp, rois.y)[:, 0]
        both = model.enhance(rois.xp, rois.y)[:, 0]
    before = _second_difference_rms(rois.xp[:, 0])
    assert (_second_difference_rms(stage1) / before).max() < 1.5
    assert (_second_difference_rms(both) / before).max() < 2.0


def test_a_training_run_folder_given_as_a_model_points_to_its_model(tmp_path):
    save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "run" / "model")
    with pytest.raises(FileNotFoundError, match="no config.json\\); did you mean .*run/model, the model of the training"):
        load_model(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no config.json\\)$"):  # no hint where there is no run
        load_model(tmp_path)


def test_an_unfinished_training_run_given_as_a_model_says_so(tmp_path):
    # RUN_DIR/model is written when the last stage is trained: a run stopped before that was said
    # to be "not an xvertfast model directory" or "no such folder", as if the path were wrong
    run = tmp_path / "run"
    save_model(XVertNet([XVertNetStage(4, 2)]), run / "checkpoint" / "model")  # a finished first stage
    (run / "checkpoint" / "state.json").write_text("{}")
    for given in (run, run / "model"):
        with pytest.raises(FileNotFoundError, match=r"training run .*has not finished: its model \(run_dir/model\) is "
                                                    r"written when its last stage is trained; "
                                                    r"xvertfast\.train\.train\(\.\.\., resume=True\) finishes it"):  # fmt: skip
            load_model(given)
    (run / "checkpoint" / "state.json").unlink()  # no run there: the plain messages
    with pytest.raises(FileNotFoundError, match=r"model: no such folder"):
        load_model(run / "model")


def test_a_model_path_through_a_link_and_its_dotdot_is_hinted_at_as_the_system_reads_it(tmp_path):
    """latest/../run2/model, latest -> runs/c1, is runs/run2/model, but the hints looked at ./run2 (abspath and
    normpath drop latest/.. as text): an unfinished run there was said to be "no such folder"."""
    runs = tmp_path / "runs"
    (runs / "c1").mkdir(parents=True)
    (tmp_path / "latest").symlink_to(runs / "c1", target_is_directory=True)
    save_model(XVertNet([XVertNetStage(4, 2)]), runs / "run2" / "checkpoint" / "model")  # a finished first stage
    (runs / "run2" / "checkpoint" / "state.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=re.escape(f"the training run in {runs / 'run2'} has not finished")):
        load_model(os.path.join(tmp_path, "latest", "..", "run2", "model"))


def test_an_export_folder_given_as_a_model_says_what_it_is(tmp_path):
    # --model exported/ said only "not an xvertfast model directory (no config.json)"
    (tmp_path / "exported").mkdir()
    for name in ("stage1.onnx", "stage2.onnx"):
        (tmp_path / "exported" / name).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no config.json\); it holds an export of a model \(stage1.onnx, "
                                                r"stage2.onnx\), not a model: give the model folder it was exported from"):
        load_model(tmp_path / "exported")


def test_a_file_of_a_model_given_as_the_model_names_its_folder(tmp_path):
    # load_model("m/config.json") or a stage file: os.listdir's bare "[Errno 20] Not a directory"
    folder = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m")
    for name in ("config.json", "stage1.safetensors"):
        with pytest.raises(FileNotFoundError, match=rf"{name}: a file, not a model directory: give the folder that "
                                                    rf"holds it, {re.escape(str(folder))}"):  # fmt: skip
            load_model(os.path.join(folder, name))
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"notes.txt: a file, not a model directory \(a model is a folder "
                                                rf"{_BY_TRAIN}, its run_dir/model, or 'default'\)$"):  # fmt: skip
        load_model(tmp_path / "notes.txt")


def test_a_map_location_that_is_not_a_device_is_refused_by_name(tmp_path):
    # torch's own words: "Expected one of cpu, cuda, ... device type at start of device string: gpu",
    # and for None "device() received an invalid combination of arguments"
    folder = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m")
    for bad in ("gpu", None, 0.5):
        with pytest.raises(ValueError, match=rf"load_model: map_location={re.escape(repr(bad))} is not a device \(such as "
                                             r"'cpu', 'cuda' or 'cuda:1'\)"):  # fmt: skip
            load_model(folder, map_location=bad)


class _PassOn(torch.nn.Module):
    """A stand-in stage: passes its input on and keeps the guidance image it was given."""

    def forward(self, xp, y):
        self.given = y
        return xp


def test_the_guidance_between_stages_uses_the_models_wls_parameters(seed):
    """XVertNet(..., lam, alpha, eps): the HFC image between stages is out - WLS(out; lam, alpha, eps)."""
    lam, alpha, eps = 0.5, 1.0, 3e-4
    model = XVertNet([_PassOn(), _PassOn()], lam=lam, alpha=alpha, eps=eps)
    image = (torch.linspace(0, 1, 20).expand(2, 1, 24, 20) * 0.6 + 0.4 * torch.rand(2, 1, 24, 20)).contiguous()
    want = image - wls(image[:, 0], lam, alpha, eps).unsqueeze(1)
    defaults = image - wls(image[:, 0]).unsqueeze(1)
    assert (want - defaults).abs().max() > 1e-2  # the parameters matter on this image
    torch.testing.assert_close(model.guidance(image), want, rtol=0, atol=1e-6)
    y = torch.randn(2, 1, 24, 20)
    model.enhance(image, y)  # stage 1 gives the image back: stage 2 gets its guidance
    assert model.stages[0].given is y
    torch.testing.assert_close(model.stages[1].given, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs, said", [
    ({"lam": -1}, r"need lam >= 0, alpha > 0 and eps > 0, got lam=-1, alpha=1\.2, eps=0\.0001$"),
    ({"alpha": "1.2"}, r"alpha must be a finite number, got '1\.2'$"),
])  # fmt: skip
def test_wls_parameters_are_refused_in_the_model_s_name(kwargs, said):
    # "XVertNet: wls: need lam >= 0, alpha > 0, eps > 0 and rtol > 0, got ..., rtol=0.0001": wls's
    # words, with an rtol the model does not take
    with pytest.raises(ValueError, match=f"^XVertNet: {said}"):
        XVertNet([_PassOn()], **kwargs)


def test_guidance_carries_no_gradient(seed):
    # a requires_grad image gave a result with a graph through the image alone (the WLS is detached):
    # its docstring says no gradient, and a gradient through it would be a wrong one
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2)])
    image = torch.rand(2, 1, 16, 20, requires_grad=True)
    guide = model.guidance(image)
    assert not guide.requires_grad
    torch.testing.assert_close(guide, model.guidance(image.detach()), rtol=0, atol=0)


def test_guidance_refuses_integer_images_and_arrays(seed):
    # an integer image came back as integers (the difference cast to its dtype: 0 or 1 for a
    # 0..255 image, without a word); a NumPy array raised "'numpy.ndarray' object has no attribute 'dim'"
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2)])
    with pytest.raises(TypeError, match=r"^guidance: image must be floating point \(a stage's output, in \[0, 1\]\), "
                                        r"got torch.uint8$"):  # fmt: skip
        model.guidance(torch.randint(0, 256, (1, 1, 16, 20), dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"^guidance: image must be a torch tensor \[B, 1, H, W\], got ndarray$"):
        model.guidance(torch.rand(1, 1, 16, 20).numpy())


@pytest.mark.parametrize("path", [None, 3])
def test_load_model_names_a_path_that_is_none_or_a_number(path):
    # os.fspath said only "expected str, bytes or os.PathLike object, not NoneType"
    with pytest.raises(TypeError, match=rf"^load_model: path must be a model directory or 'default', "
                                        rf"got {type(path).__name__}$"):  # fmt: skip
        load_model(path)


def test_load_model_takes_a_bytes_path(seed, tmp_path):
    torch.manual_seed(seed)
    folder = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m")
    assert fingerprint(load_model(os.fsencode(folder))) == fingerprint(load_model(folder))


def test_whole_number_arguments_and_their_refusals(seed):
    # np.int64(1) stages was refused as "must be 1 to 2, got np.int64(1)"; a bool width was taken
    # as 1 and a float one failed inside torch's Conv2d ("out_channels must be divisible by groups")
    import numpy as np

    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)])
    xp = torch.rand(1, 1, 16, 16)
    y = model.guidance(xp)
    torch.testing.assert_close(model.enhance(xp, y, stages=np.int64(1)), model.enhance(xp, y, stages=1))
    for bad in (2.5, True, 0):
        with pytest.raises(ValueError, match="width must be a whole number >= 1"):
            XVertNetStage(bad, 2)
        with pytest.raises(ValueError, match="depth must be a whole number >= 1"):
            XVertNetStage(4, bad)
    assert XVertNetStage(np.int64(4), np.int64(2)).width == 4


def test_load_onto_a_missing_gpu_or_the_meta_device(tmp_path, seed):
    # map_location="cuda" without a GPU failed in safetensors with "pin_memory=True requires a CUDA
    # ...", and "meta" was reported as a damaged file ("not a readable safetensors file")
    torch.manual_seed(seed)
    folder = save_model(XVertNet([XVertNetStage(4, 2)]), tmp_path / "m")
    meta = load_model(folder, map_location="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="map_location='cuda', but this torch has no usable CUDA device"):
            load_model(folder, map_location="cuda")


def test_stage_inputs_that_are_not_tensors_or_have_no_pixels(seed):
    # NumPy inputs gave "'numpy.ndarray' object has no attribute 'dim'", an image of no rows
    # torch's "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size ..."
    import numpy as np

    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2)])
    xp = torch.rand(2, 1, 8, 8)
    with pytest.raises(TypeError, match="xp and y must be torch tensors, got ndarray and ndarray"):
        model.enhance(xp.numpy(), np.zeros_like(xp.numpy()))
    for shape in ((2, 1, 0, 8), (2, 1, 8, 0)):
        with pytest.raises(ValueError, match="with H, W >= 1"):
            model.enhance(torch.rand(shape), torch.rand(shape))
    assert model.enhance(xp[:0], xp[:0]).shape == (0, 1, 8, 8)  # an empty batch is fine


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_floating_inputs_of_another_dtype_are_converted_to_the_models(seed, dtype):
    # was "RuntimeError: expected scalar type Double but found Float" (torch.from_numpy of NumPy's float64)
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(2, 1, 20, 28).to(dtype), (torch.randn(2, 1, 20, 28) * 0.1).to(dtype)
    expected = model.enhance(xp.float(), y.float())
    for got in (model.enhance(xp, y), model(xp, y)):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(model.stages[0](xp, y), model.stages[0](xp.float(), y.float()), rtol=0, atol=0)
    half = XVertNet([XVertNetStage(4, 2)]).eval().half()  # the model's dtype, whatever it is
    assert half.enhance(xp, y).dtype == torch.float16


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.bool])
def test_integer_inputs_are_refused_naming_the_input_and_its_dtype(seed, dtype):
    model = XVertNet([XVertNetStage(4, 2)]).eval()
    xp = torch.rand(1, 1, 16, 16)
    message = (rf"holds {dtype} values; it takes floating point \(X_p and Y as xvertfast.preprocess gives them\), "
               r"converted to the model's torch.float32")  # fmt: skip
    with pytest.raises(TypeError, match=rf"^enhance: xp {message}$"):
        model.enhance((xp * 255).to(dtype), xp)
    with pytest.raises(TypeError, match=rf"^XVertNetStage: y {message}$"):
        model.stages[0](xp, (xp * 255).to(dtype))


def test_calling_the_model_is_enhance(seed):
    # was torch's "Module [XVertNet] is missing the required "forward" function"
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)])  # in train mode: enhance runs it in eval mode
    xp, y = torch.rand(2, 1, 16, 24), torch.randn(2, 1, 16, 24) * 0.1
    torch.testing.assert_close(model(xp, y), model.enhance(xp, y), rtol=0, atol=0)
    torch.testing.assert_close(model(xp, y, stages=1), model.enhance(xp, y, stages=1), rtol=0, atol=0)
    assert model.training and not model(xp, y).requires_grad


def test_inputs_that_are_not_finite_are_refused_naming_the_input_and_the_samples(seed):
    # were refused by the WLS between the stages, for the whole batch: "wls: image contains 4096 NaN or
    # infinite value(s)", naming a function the caller never called and neither the input nor the sample
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(5, 1, 16, 16), torch.randn(5, 1, 16, 16) * 0.1
    bad = xp.clone()
    bad[1, 0, 3, 3], bad[1, 0, 4, 4], bad[3] = float("nan"), float("inf"), float("-inf")
    with pytest.raises(ValueError, match=r"^enhance: xp holds NaN or infinite values \(sample 1: 2 values; "
                                         r"sample 3: 256 values\)$"):  # fmt: skip
        model.enhance(bad, y)
    with pytest.raises(ValueError, match=r"^enhance: y holds NaN or infinite values \(sample 0: 1 value; sample 1: "
                                         r"1 value; sample 2: 1 value; \.\.\.\)$"):  # fmt: skip
        model.enhance(xp, y.index_put((torch.arange(5), torch.tensor(0), torch.tensor(0), torch.tensor(0)),
                                      torch.tensor(float("nan"))))  # fmt: skip
    assert torch.isfinite(model.enhance(xp, y)).all()


def test_finite_inputs_beyond_the_models_dtype_are_refused_as_such_not_as_nan(seed):
    """A float64 1e300 given to a float32 model (7e4 to a half one) overflowed to inf in the
    conversion and was refused as "holds NaN or infinite values": values the caller never gave."""
    torch.manual_seed(seed)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(3, 1, 16, 16, dtype=torch.float64), torch.randn(3, 1, 16, 16, dtype=torch.float64) * 0.1
    huge = xp.clone()
    huge[2, 0, 5, 5] = 1e300
    with pytest.raises(ValueError, match=r"^enhance: xp holds values beyond the range of the model's dtype float32 "
                                         r"\(sample 2: 1 value\)$"):  # fmt: skip
        model.enhance(huge, y)
    half = copy.deepcopy(model).half()
    with pytest.raises(ValueError, match=r"^enhance: y holds values beyond the range of the model's dtype float16 "
                                         r"\(sample 0: 1 value\)$"):  # fmt: skip
        half.enhance(xp.float(), y.float().index_put((torch.tensor(0),) * 4, torch.tensor(7e4)))
    huge[0, 0, 0, 0] = float("inf")  # an infinite value given is still said as one, before any conversion
    with pytest.raises(ValueError, match=r"^enhance: xp holds NaN or infinite values \(sample 0: 1 value\)$"):
        model.enhance(huge, y)


def test_padded_inputs_keeps_the_dtype_when_none_is_given():
    """padded_inputs is exported and took (who, xp, y, depth); a dtype argument made a required
    fifth broke such callers with "missing 1 required positional argument". Without one, the
    inputs are checked and padded in their own dtype."""
    from xvertfast.model.stage import padded_inputs

    xp, y = torch.rand(1, 1, 10, 13, dtype=torch.float64), torch.rand(1, 1, 10, 13, dtype=torch.float64)
    pxp, py, size = padded_inputs("caller", xp, y, 2)
    assert size == (10, 13) and pxp.shape == py.shape == (1, 1, 12, 16) and pxp.dtype == py.dtype == torch.float64
    torch.testing.assert_close(pxp[..., :10, :13], xp, rtol=0, atol=0)
    assert padded_inputs("caller", xp, y, 2, torch.float32)[0].dtype == torch.float32
    with pytest.raises(TypeError, match=r"^caller: xp holds torch.uint8 values; it takes floating point \(X_p and Y "
                                        r"as xvertfast.preprocess gives them\)$"):  # fmt: skip
        padded_inputs("caller", xp.to(torch.uint8), y, 2)

