"""Training on a device (``--device cuda``) end to end, against the same run on the CPU.

The "cpu" variants run everywhere and hold the tests' logic; the "cuda" variants are what
``tools/gpu_check.sh`` runs on a GPU. The comparisons run with TF32 off (``no_tf32``): at fp32
a GPU's sums differ from the CPU's in their order only, ~1e-6 relative per operation.
"""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch

from tests.conftest import DEVICES
from tests.infer.test_enhance import chest_like
from tests.train.test_loop import CONFIG, weights, write_images
from xvertfast import load_model
from xvertfast.model import XVertNetStage, model_tile
from xvertfast.preprocess import preprocess
from xvertfast.train import TrainConfig, train
from xvertfast.train.loop import _layout, _to
from xvertfast.train.losses import XVertNetLoss

#: Two stages of one L1 epoch and one L1 + L2 epoch each: both phases, and stage 2's inputs made by
#: stage 1 with the WLS guidance on the training device.
SHORT = TrainConfig(**{**CONFIG.__dict__, "epochs_gc": 1, "epochs_joint": 1})
#: Relative tolerance of the losses in metrics.csv, device run against CPU run. Stage 1 trains on the same
#: cached ROIs from the same weights: on the CPU, inputs moved by 1e-5 relative moved its losses by
#: <= 1e-5 relative. Stage 2 trains on stage 1's outputs and their WLS guidance, both made on the device
#: (the CUDA solver agrees with the CPU's to ~5e-5 relative), after Adam's first steps, lr * sign(grad),
#: have flipped the weights whose gradients are rounding noise (by 2 lr): the same 1e-5 input change
#: moved its validation loss by 5e-3 relative. 0.1 says "the same training", not "the same digits".
LOSS_RTOL = {"1": 1e-3, "2": 0.1}


@pytest.fixture(scope="module")
def cpu_runs(tmp_path_factory):
    """The CPU run each device run is compared with, made once per module (the cuda variant reuses
    the cpu variant's where both run)."""
    root = tmp_path_factory.mktemp("cpu_run")
    data = write_images(root / "data")
    train([str(data)], str(root / "run"), SHORT, progress=False, log=lambda m: None)
    return read_metrics(root / "run")


def read_metrics(run) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("device", DEVICES)
def test_a_run_on_the_device_resumes_saves_a_loadable_model_and_tracks_the_cpu_run(tmp_path, device, no_tf32,
                                                                                   cpu_runs):  # fmt: skip
    data = write_images(tmp_path / "data")  # the images cpu_runs trained on (seeded)
    config = TrainConfig(**{**SHORT.__dict__, "device": device})  # as --device cuda gives it
    run = tmp_path / "run"
    said: list[str] = []
    train([str(data)], str(run), config, progress=False, stop_after_epochs=1, log=said.append)  # a kill after epoch 1
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["device"] == device and state["progress"] == {**state["progress"], "stage": 1, "epoch": 1}
    model = train([str(data)], str(run), config, resume=True, progress=False, log=said.append)
    assert "resuming after stage 1, epoch 1 (the last one finished)" in said
    # the same device: nothing to warn of (but the enlargement of its 80 px test images, said since 4111830)
    assert not [m for m in said if m.startswith("warning") and "enlarged" not in m], said

    loaded = load_model(run / "model")
    assert len(loaded.stages) == 2
    # what train returns is the model saved, with its record: Enhancer tiles it at the run's roi_size, not 512
    assert model.metadata == loaded.metadata and model_tile(model) == config.roi_size == 32
    for name, value in weights(loaded).items():
        assert value.device.type == "cpu" and torch.isfinite(value).all(), name
        assert torch.equal(value, weights(model)[name].cpu()), name  # what was saved is what was trained
    xp = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = loaded.to(device).enhance(xp.to(device), (xp - 0.5).to(device))  # the guidance's WLS on the device
    assert out.device.type == device and torch.isfinite(out).all()

    rows, reference = read_metrics(run), cpu_runs
    assert [(r["stage"], r["epoch"], r["phase"]) for r in rows] == [(r["stage"], r["epoch"], r["phase"]) for r in reference]
    assert len(rows) == 4
    for row, ref in zip(rows, reference):
        for key in ("train_loss", "val_loss"):
            got, want = float(row[key]), float(ref[key])
            print(f"stage {row['stage']} epoch {row['epoch']} {key}: {device} {got:.8g}, cpu {want:.8g}, "
                  f"relative {abs(got - want) / abs(want):.2e}")  # fmt: skip
            assert got == pytest.approx(want, rel=LOSS_RTOL[row["stage"]]), (row, ref)


#: How far (relative) the highest map entropy of each ROI must lie above the next for a device step to
#: pick the same map as the CPU's. A GPU's sums in another order move a feature value by ~1e-6 relative,
#: now and then across one of the 256 bin edges: ~1e-4 nats (~2e-5 relative) of a 4096-pixel map's
#: entropy per pixel moved. Random stages put the top two within that for ~1% of seeds (0.5% picked
#: another map on the CPU with features moved by 1e-6 of their range, then the L2 term and its
#: gradients differ by far more than the tolerances); 1e-3 takes tens of such moves, all one way.
ENTROPY_MARGIN = 1e-3


def _stage_with_a_clear_highest_entropy_map(seed: int, xp: torch.Tensor, y: torch.Tensor) -> XVertNetStage:
    """A random stage (train mode) drawn from ``seed``, drawn again (seed + 1, ...) while the L2 loss's
    target, the highest-entropy feature map of a ROI, is within ENTROPY_MARGIN of another's: there
    rounding, not the step, would decide which map the device and the CPU compare against."""
    from xvertfast.ops.reference import feature_entropy_reference

    for attempt in range(50):
        torch.manual_seed(seed + attempt)
        stage = XVertNetStage(4, 2).train()
        with torch.no_grad():  # (on a copy: a train-mode forward moves the batch norms' running statistics)
            _, features = copy.deepcopy(stage)(xp, y, return_features=True)
        top, second = feature_entropy_reference(features).topk(2, dim=1).values.unbind(1)
        if bool((top - second > ENTROPY_MARGIN * top).all()):
            return stage
    raise AssertionError(f"no stage of seeds {seed} to {seed + 49} has a clear highest-entropy map")


@pytest.mark.parametrize("device", DEVICES)
def test_one_training_step_on_the_device_matches_the_cpus(seed, device, no_tf32):
    # One step of the loop's (a batch in its layout, the L1 + L2 loss, backward) from the same
    # weights on the same ROIs: the loss to 1e-4 and the gradients to 1e-3 relative (sums in
    # another order: ~1e-6 expected; the compiled ops' reductions on the GPU take their own order).
    pp = preprocess(chest_like(seed, 128, 128))
    tiles = [torch.from_numpy(a)[None, None] for a in (pp.xp, pp.y)]
    xp, y = (torch.cat([t[..., :64, 32:96], t[..., 64:, 32:96]]) for t in tiles)  # two 64 x 64 ROIs
    stage = _stage_with_a_clear_highest_entropy_map(seed, xp, y)
    loss_fn = XVertNetLoss()

    def step(where: torch.device):
        net = copy.deepcopy(stage).to(where, memory_format=_layout(where))
        a, b = _to(xp, where), _to(y, where)
        out, feats = net(a, b, return_features=True)
        terms = loss_fn(out.float(), b, feats.float(), True)
        terms.total.backward()
        grads = torch.cat([p.grad.detach().flatten().cpu() for p in net.parameters()])
        stats = {n: v.detach().cpu() for n, v in net.state_dict().items() if "running" in n}
        return terms, out.detach().cpu(), grads, stats

    cpu, dev = step(torch.device("cpu")), step(torch.device(device))
    for name, want, got in zip(cpu[0]._fields, cpu[0], dev[0]):
        print(f"{name}: cpu {want.item():.8g}, {device} {got.item():.8g}")
        assert got.device.type == device and got.item() == pytest.approx(want.item(), rel=1e-4, abs=1e-7), name
    torch.testing.assert_close(dev[1], cpu[1], rtol=0, atol=1e-5)
    error = ((dev[2] - cpu[2]).norm() / cpu[2].norm()).item()
    print(f"gradients: relative L2 difference {error:.2e}")
    assert cpu[2].norm() > 0 and error < 1e-3
    for name, value in cpu[3].items():  # batch norm's running statistics, updated by the step
        torch.testing.assert_close(dev[3][name], value, rtol=1e-4, atol=1e-6, msg=name)
