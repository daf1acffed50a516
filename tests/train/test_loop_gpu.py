"""Training on a GPU: where a resumed Adam keeps its step count, and --amp on GPUs without bf16.
No GPU here: torch's FakeTensorMode and a faked torch.cuda stand in for one."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from xvertfast.train import TrainConfig
from xvertfast.train.loop import _optimizer_tensors, _restore_optimizer


def restored_steps(device: str, **adam) -> list[torch.device]:
    """The devices of the step counts a resume on ``device`` gives Adam (loaded, as a checkpoint
    is, onto the training device)."""
    with FakeTensorMode():
        params = [torch.nn.Parameter(torch.zeros(3, device=device)), torch.nn.Parameter(torch.zeros(2, device=device))]
        opt = torch.optim.Adam(params, **adam)
        _restore_optimizer(opt, {f"{i}.step": torch.tensor(5.0, device=device) for i in range(len(params))})
        return [opt.state[p]["step"].device for p in params]


def test_a_resume_on_a_gpu_keeps_adams_step_count_on_the_cpu():
    # on the GPU, a non-capturable Adam read it back with .item() per parameter per step
    assert restored_steps("cuda") == [torch.device("cpu")] * 2


@pytest.mark.parametrize("setting", ["capturable", "fused"])
def test_a_capturable_or_fused_adam_keeps_its_step_count_beside_the_parameters(setting):
    assert restored_steps("cuda", **{setting: True}) == [torch.device("cuda", 0)] * 2


@pytest.mark.cuda
def test_a_resume_on_the_gpu_puts_adams_state_where_torchs_own_load_state_dict_does():
    params = [torch.nn.Parameter(torch.randn(4, 3, device="cuda"))]
    opt = torch.optim.Adam(params)
    params[0].grad = torch.randn_like(params[0])
    opt.step()
    saved = {k: v.cpu().to("cuda") for k, v in _optimizer_tensors(opt).items()}  # as _load_checkpoint gives them
    ours, theirs = torch.optim.Adam(params), torch.optim.Adam(params)
    _restore_optimizer(ours, saved)
    theirs.load_state_dict(opt.state_dict())
    for key, value in theirs.state[params[0]].items():
        assert ours.state[params[0]][key].device == value.device, key


@pytest.mark.parametrize("capability", [(7, 0), (7, 5)])
def test_amp_on_a_gpu_without_native_bf16_is_refused_before_any_image(tmp_path, monkeypatch, capability):
    from xvertfast.train import loop

    # a V100 or T4: bf16 autocast there is emulated (slower than fp32) or torch refuses it mid-run
    monkeypatch.setattr(loop, "_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(loop, "_initial_model", lambda config: pytest.fail("got past the --amp check"))
    config = TrainConfig(stages=1, epochs_gc=1, epochs_joint=0, device="cuda", amp=True)
    from xvertfast._text import cli_running

    with cli_running(["amp"]), pytest.raises(
            ValueError, match=rf"--amp on cuda:0 \(Tesla T4, compute capability {capability[0]}\.{capability[1]}\): "
                              r"no native bf16.*8\.0.*without --amp"):  # fmt: skip
        loop.train([str(tmp_path / "data")], str(tmp_path / "run"), config, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match=r"^amp=True on cuda:0 .*; train with amp=False in the TrainConfig$"):
        loop.train([str(tmp_path / "data")], str(tmp_path / "run"), config, progress=False, log=lambda m: None)


def test_amp_on_a_gpu_with_native_bf16_is_let_through(tmp_path, monkeypatch):
    from xvertfast.train import loop

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    said = []
    loop._check_amp(TrainConfig(device="cuda", amp=True), torch.device("cuda", 0), said.append)
    assert said == []


def test_amp_refused_on_the_resume_of_an_amp_run_says_where_it_can_go_on(tmp_path, monkeypatch):
    # a run started with --amp on an A100, resumed on a T4 node, was told "train without --amp", and
    # the resume without it was then refused as another configuration than the checkpoint's
    from xvertfast.train import loop

    monkeypatch.setattr(loop, "_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(loop, "_initial_model", lambda config: pytest.fail("got past the --amp check"))
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.json").write_text("{}")  # epochs trained with --amp
    config = TrainConfig(stages=1, epochs_gc=1, epochs_joint=0, device="cuda", amp=True)
    with pytest.raises(ValueError) as err:
        loop.train([str(tmp_path / "data")], str(run), config, resume=True, progress=False, log=lambda m: None)
    said = str(err.value)
    assert "without --amp" not in said.split("start a new RUN_DIR")[0], said
    assert "which a resume cannot change: resume it on a GPU of compute capability 8.0 or later" in said, said
