"""The default model's card says what its files hold: the training command, the config it
gives, the epochs, losses and times of each stage, the validation images and the weights' size
are read from the card and compared with the shipped ``config.json`` and safetensors, so a
retrained model cannot ship with the old card."""

from __future__ import annotations

import os
import re

import pytest

from xvertfast.model import DEFAULT_MODEL_DIR, load_model

CARD = os.path.join(DEFAULT_MODEL_DIR, "..", "MODEL_CARD.md")


@pytest.fixture(scope="module")
def card() -> str:
    with open(CARD) as f:
        return f.read()


@pytest.fixture(scope="module")
def metadata() -> dict:
    return load_model("default").metadata


def _training_command(card: str) -> str:
    section = card[card.index("## Training") :]
    start = section.index("```") + 3
    block = re.sub(r"\\\n\s*", "", section[start : section.index("```", start)])  # continuation lines joined
    (command,) = [line for line in block.splitlines() if line.startswith("xvertfast train")]
    return command.strip()


def test_card_gives_the_command_the_model_records(card, metadata):
    assert _training_command(card) == metadata["provenance"]["command"]


def test_the_command_asks_for_the_config_the_model_records(card, metadata):
    """Parsed by the CLI's own parser, the card's command sets every training option to the
    value the model's config records."""
    import shlex

    from xvertfast.cli import build_parser

    args = build_parser().parse_args(shlex.split(_training_command(card))[1:])
    recorded = metadata["training"]["config"]
    for option in ("width", "depth", "roi_size", "patch_size", "batch_size", "epochs_gc", "epochs_joint",
                   "patience", "seed", "device", "stages", "val_fraction", "lr", "upsample"):  # fmt: skip
        asked = getattr(args, option)
        if asked is not None:  # an option left out takes TrainConfig's default, which recorded holds
            assert asked == recorded[option], option


def test_the_stage_table_is_the_models(card, metadata):
    """Epochs reached, best validation loss (3 decimals) and training seconds of each stage."""
    stages = metadata["provenance"]["stages"]
    rows = re.findall(r"^\| (\d) \| (\d+) \| (\d+) \| [^|]+ \| ([\d.]+) \| (\d+) s \|$", card, flags=re.M)
    assert [row[0] for row in rows] == ["1", "2"]
    epochs_gc = metadata["training"]["config"]["epochs_gc"]
    for k, epochs, joint, loss, seconds in rows:
        recorded = stages[f"stage{k}"]
        assert int(epochs) == recorded["epochs"] and int(joint) == recorded["epochs"] - epochs_gc
        assert loss == f"{recorded['best_val_loss']:.3f}"
        assert int(seconds) == round(recorded["seconds"])
    wall = metadata["provenance"]["wall_time_s"]
    assert f"({wall:.0f} s, both stages" in card


def test_the_data_the_card_names_is_the_models(card, metadata):
    training = metadata["training"]
    said = re.search(r"Validation \(early stopping\) took (\d+) of the (\d+) images by the seeded split: (\S+) and\s+(\S+);", card)
    assert said, "the card's validation sentence"
    assert int(said.group(1)) == len(training["validation_images"]) and int(said.group(2)) == len(training["sources"])
    assert set(said.group(3, 4)) == {os.path.splitext(n)[0] for n in training["validation_images"]}
    assert f"on {len(training['sources'])} frontal chest" in card
    for name in training["sources"]:  # the NIH files are named as a range by name order
        assert name in card or name.startswith("nih_"), name
    nih = sorted(os.path.splitext(n)[0] for n in training["sources"] if n.startswith("nih_"))
    assert f"{nih[0]} ... {nih[-1]} (the first {len(nih)} NIH images by name)" in card


def test_the_weights_size_the_card_gives(card):
    sizes = [os.path.getsize(os.path.join(DEFAULT_MODEL_DIR, f"stage{k}.safetensors")) for k in (1, 2)]
    dtype = load_model("default").metadata["provenance"]["weights_dtype"]
    stated = re.search(r"Weights: (\w+) safetensors, ([\d.]+) MB \(2 x ([\d.]+) MB\) in all", card)
    assert stated, "the card's weights line"
    assert stated.group(1) == dtype
    assert stated.group(2) == f"{sum(sizes) / 1e6:.1f}"
    assert all(f"{s / 1e6:.2f}" == stated.group(3) for s in sizes)
