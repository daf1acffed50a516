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
    from xvertfast.train import TrainConfig

    args = build_parser().parse_args(shlex.split(_training_command(card))[1:])
    recorded = metadata["training"]["config"]
    for option in ("width", "depth", "roi_size", "patch_size", "batch_size", "epochs_gc", "epochs_joint",
                   "patience", "seed", "device", "stages", "val_fraction", "lr", "upsample"):  # fmt: skip
        asked = getattr(args, option)
        if asked is None:  # an option left out takes TrainConfig's default, which recorded holds
            asked = getattr(TrainConfig(), option)
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


def test_the_weights_size_the_card_gives(card, metadata):
    sizes = [os.path.getsize(os.path.join(DEFAULT_MODEL_DIR, f"stage{k}.safetensors")) for k in (1, 2)]
    dtype = metadata["provenance"]["weights_dtype"]
    stated = re.search(r"Weights: (\w+) safetensors, ([\d.]+) MB \(2 x ([\d.]+) MB\) in all", card)
    assert stated, "the card's weights line"
    assert stated.group(1) == dtype
    assert stated.group(2) == f"{sum(sizes) / 1e6:.1f}"
    assert all(f"{s / 1e6:.2f}" == stated.group(3) for s in sizes)


# ---- the evaluation the card and the README quote is the shipped report's ----

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
REPORT = os.path.join(ROOT, "docs", "default-model")
COLUMNS = {"Entropy (bits)": "entropy", "Tenengrad": "tenengrad", "LPC-SI": "lpc_si", "TMQI Q": "tmqi",
           "BRISQUE (lower is better)": "brisque"}  # fmt: skip
ROWS = {"identity": "identity", "clahe": "clahe", "farbman": "farbman", "xvertnet (default)": "xvertnet",
        "**xvertnet (this model)**": "xvertnet", "xvertnet (brightness = network)": "xvertnet",
        "**xvertnet, brightness = original**": "xvertnet_original_brightness"}  # fmt: skip


def _read_csv(name: str) -> list[dict]:
    import csv

    with open(os.path.join(REPORT, name), newline="") as f:
        return list(csv.DictReader(f))


def _scored(scores_csv: str):
    """A shipped scores file (every ROI's scores) as the EvalRun the report's statistics take."""
    import math

    from xvertfast.eval.protocol import EvalRun

    metrics = list(COLUMNS.values())
    rows = [{**r, **{m: float(r[m]) if r[m] else math.nan for m in metrics}} for r in _read_csv(scores_csv)]
    return EvalRun(methods=list(dict.fromkeys(r["method"] for r in rows)), metrics=metrics, rows=rows)


def _summary(scores_csv: str, compare_to: str, by_image: bool = False) -> list[dict]:
    """What xvertfast's statistics make of a shipped scores file: the records of summarise, or
    with by_image those of summarise_by_image (its test paired by image is checked against scipy
    in tests/eval/test_stats.py)."""
    from xvertfast.eval.report import summarise, summarise_by_image

    return (summarise_by_image if by_image else summarise)(_scored(scores_csv), compare_to)


def test_the_shipped_summary_follows_from_the_shipped_scores():
    """Every cell of summary.csv, the tests paired by image, their Holm adjustment, the
    Hodges-Lehmann intervals and the best mean's columns included, and no column of its own beside them."""
    import math

    from xvertfast.eval.report import _best_columns, summarise_best, summarise_differences

    by_roi, by_image = _summary("scores.csv", "xvertnet"), _summary("scores.csv", "xvertnet", by_image=True)
    for_paper = summarise_differences(_scored("scores.csv"), "xvertnet", by_image)
    best = _best_columns(by_roi, summarise_best(_scored("scores.csv"), by_roi))  # (the best mean's table's columns)
    summary = [{**r, **i, **d, **b} for r, i, d, b in zip(by_roi, by_image, for_paper, best)]
    shipped = _read_csv("summary.csv")
    assert len(summary) == len(shipped) and set(summary[0]) == set(shipped[0])
    for mine, theirs in zip(summary, shipped):
        for key, value in mine.items():
            if isinstance(value, float):
                expected = float(theirs[key]) if theirs[key] else math.nan
                assert value == pytest.approx(expected, rel=1e-9, nan_ok=True), (mine["method"], mine["metric"], key)
            else:
                assert str(value) == theirs[key], (mine["method"], mine["metric"], key)


def _decimals(shown: str) -> int:
    return len(shown.split(".")[1]) if "." in shown else 0


@pytest.mark.parametrize("document, table, scores, compare_to, models", [
    ("README.md", 0, "scores.csv", "xvertnet", 1),
    ("xvertfast/weights/MODEL_CARD.md", 0, "scores.csv", "xvertnet", 1),  # its last row: the first model, below
    ("xvertfast/weights/MODEL_CARD.md", 1, "scores_original_brightness.csv", "xvertnet_original_brightness", 2),
])  # fmt: skip
def test_the_quoted_table_is_the_shipped_summary(document, table, scores, compare_to, models):
    """Each mean ± sd and significance mark of a comparison table is what the shipped scores give
    after outlier removal, at the digits shown (the table-th table headed '| method |')."""
    from xvertfast.eval.stats import significance_mark

    with open(os.path.join(ROOT, document)) as f:
        text = f.read()
    header = list(re.finditer(r"^\| method \|(.*)\|$", text, flags=re.M))[table]
    columns = [COLUMNS[c.strip()] for c in header.group(1).split("|")]
    summary = {(r["method"], r["metric"]): r for r in _summary(scores, compare_to)}
    checked = 0
    for label, cells in re.findall(r"^\| ([^|]+?) \|(.*)\|$", text[header.end() :], flags=re.M):
        if label.startswith("---"):
            continue
        if label.lower() not in ROWS:
            break  # the table ends (a row of another model, or another table)
        method = ROWS[label.lower()]
        for metric, cell in zip(columns, cells.split("|")):
            mean, std, marks = re.fullmatch(r"\s*([\d.]+) ± ([\d.]+)(\**)\s*", cell).groups()
            row = summary[(method, metric)]
            assert mean == f"{row['mean_clean']:.{_decimals(mean)}f}", (document, method, metric)
            assert std == f"{row['std_clean']:.{_decimals(std)}f}", (document, method, metric)
            assert marks == (significance_mark(row["p_value_clean"]) if row["compared_to"] else ""), (document, method, metric)
            checked += 1
    assert checked == (3 + models) * len(columns)


def test_the_cards_p_values_are_the_shipped_scores_by_roi_and_by_image(card):
    """The card's p-values of this model against CLAHE and Farbman, paired by ROI (the papers'
    test) and by image (an image's two ROIs are not independent), are the shipped scores' after
    outlier removal at the digits shown, and the numbers of images it gives are those tested."""
    by_roi = {(r["method"], r["metric"]): r for r in _summary("scores.csv", "xvertnet")}
    by_image = {(r["method"], r["metric"]): r for r in _summary("scores.csv", "xvertnet", by_image=True)}
    section = card[card.index("## Evaluation") : card.index("### Period-2")]
    header = re.search(r"^\| p-value against \|(.*)\|$", section, flags=re.M)
    assert header, "the card's p-value table"
    names = {"entropy": "entropy", "Tenengrad": "tenengrad", "LPC-SI": "lpc_si", "TMQI": "tmqi", "BRISQUE": "brisque"}
    columns = [names[c.strip()] for c in header.group(1).split("|")]
    rows = re.findall(r"^\| (CLAHE|Farbman), by (ROI|image) \|(.*)\|$", section[header.end() :], flags=re.M)
    assert sorted(row[:2] for row in rows) == [("CLAHE", "ROI"), ("CLAHE", "image"), ("Farbman", "ROI"),
                                               ("Farbman", "image")]  # fmt: skip
    for baseline, paired, cells in rows:
        for metric, cell in zip(columns, cells.split("|")):
            shown = cell.strip()
            if paired == "ROI":
                p = by_roi[(baseline.lower(), metric)]["p_value_clean"]
            else:
                p = by_image[(baseline.lower(), metric)]["p_value_by_image_clean"]
            assert shown == f"{p:.{_decimals(shown)}f}", (baseline, paired, metric)
    images = {m: int(by_image[("clahe", m)]["n_images_clean"]) for m in columns}
    said = re.search(r"paired by image \(n = (\d+) images, (\d+) for TMQI\)", section)
    assert said, "the card's number of images tested"
    assert (int(said.group(1)), int(said.group(2))) == (images["entropy"], images["tmqi"])
    assert all(images[m] == images["entropy"] for m in columns if m != "tmqi")


def test_the_original_brightness_p_values_are_its_shipped_scores(card):
    """The brightness = original section's p-values against CLAHE, Farbman and the network's
    brightness, as its two sentences give them: paired by ROI, then by image."""
    by_roi = _summary("scores_original_brightness.csv", "xvertnet_original_brightness")
    by_image = _summary("scores_original_brightness.csv", "xvertnet_original_brightness", by_image=True)
    section = card[card.index("## The same model with the original's brightness") : card.index("## A larger model")]
    names = {"entropy": "entropy", "TMQI": "tmqi", "LPC-SI": "lpc_si", "BRISQUE": "brisque"}
    for lead, records, key in (("p-values against it, paired by ROI", by_roi, "p_value_clean"),
                               ("Paired by image, from its scores", by_image, "p_value_by_image_clean")):  # fmt: skip
        start = section.index(lead)
        end = start + re.search(r"\d\.\s", section[start:]).end()  # the sentence's last number's full stop
        sentence = re.sub(r"\s+", " ", section[start:end])
        said = re.findall(r"(entropy|TMQI|LPC-SI|BRISQUE) (\d[\d.]*\d)(?: \(CLAHE\))?, (\d[\d.]*\d)(?: \(Farbman\))?, (\d[\d.]*\d)",
                          sentence)  # fmt: skip
        assert [m for m, *_ in said] == list(names), sentence
        p = {(r["method"], r["metric"]): r[key] for r in records}
        for metric, *shown in said:
            for method, cell in zip(("clahe", "farbman", "xvertnet"), shown):
                assert cell == f"{p[(method, names[metric])]:.{_decimals(cell)}f}", (lead, metric, method)


def test_the_first_models_row_is_its_shipped_summary(card):
    """The card's last row of its main table: the first (transposed) model, from its own scores."""
    (cells,) = re.findall(r"^\| xvertnet, first model \(transposed\) \|(.*)\|$", card, flags=re.M)
    header = re.search(r"^\| method \|(.*)\|$", card, flags=re.M)
    summary = {(r["method"], r["metric"]): r for r in _summary("scores_transposed_model.csv", "xvertnet")}
    for column, cell in zip(header.group(1).split("|"), cells.split("|")):
        mean, std = re.fullmatch(r"\s*([\d.]+) ± ([\d.]+)\s*", cell).groups()
        row = summary[("xvertnet", COLUMNS[column.strip()])]
        assert (mean, std) == (f"{row['mean_clean']:.{_decimals(mean)}f}", f"{row['std_clean']:.{_decimals(std)}f}")


def test_every_command_the_card_gives_parses(card):
    """The card's train and evaluate commands, in its blocks and its text, are accepted by the CLI's
    parser as written."""
    import shlex

    from xvertfast.cli import build_parser

    blocks = [re.sub(r"\\\n\s*", " ", b) for b in re.findall(r"```\w*\n(.*?)```", card, flags=re.S)]
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.startswith("xvertfast ")]
    commands += [re.sub(r"\s+", " ", c) for c in re.findall(r"`(xvertfast train [^`]+)`", card)
                 if " -o " in c]  # whole commands in running text (not a sketch ending in "...")
    assert len(commands) >= 4, commands
    for command in commands:
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            raise AssertionError(f"MODEL_CARD command does not parse: {command}") from None


def test_the_cards_last_rerun_names_the_code_of_the_shipped_provenance(card):
    """The card quotes the code digest its shipped summary.md and provenance.json were made with:
    it is the one provenance.json records, not a digest copied from another run."""
    import json

    with open(os.path.join(REPORT, "provenance.json"), encoding="utf-8") as f:
        digest = json.load(f)["code_sha256"]
    quoted = re.findall(r"code sha256\s+`?([0-9a-f]{16})", card)
    assert quoted and quoted[-1] == digest, (quoted, digest)


def _strings(value):
    """Every string in a JSON value, its keys' included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_the_packaged_training_record_names_no_folder_of_the_packagers(tmp_path, monkeypatch):
    """tools/package_default_model.py cut the training images to their names but copied the run's
    training.cwd (the folder they were relative to) and an --init model's path as they were: a
    retrained default model would ship the packager's own folders. The shipped record has neither."""
    import importlib.util
    import json
    import sys

    from xvertfast.model import XVertNet, XVertNetStage, save_model

    run = tmp_path / "run"
    training = {"config": {"stages": 1, "roi_size": 32, "init": "/home/me/runs/r0/model"},
                "sources": ["data/a.png", "data/b.png"], "validation_images": ["data/b.png"],
                "cwd": "/home/me/private", "init": {"path": "/home/me/runs/r0/model", "fingerprint": "ab" * 32}}
    save_model(XVertNet([XVertNetStage(4, 2)]), str(run / "model"), extra={"training": training})
    (run / "metrics.csv").write_text("stage,epoch,phase,train_loss,val_loss,images_per_s,seconds\n"
                                     "1,1,gc,0.5,0.6,9.0,2.0\n")  # fmt: skip
    spec = importlib.util.spec_from_file_location(
        "package_default_model", os.path.join(os.path.dirname(__file__), "..", "..", "tools", "package_default_model.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "DEFAULT_MODEL_DIR", str(tmp_path / "shipped"))
    monkeypatch.setattr(sys, "argv", ["package_default_model.py", str(run), "xvertfast train data -o run"])
    tool.main()
    with open(tmp_path / "shipped" / "config.json") as f:
        shipped = json.load(f)["training"]
    assert "cwd" not in shipped and shipped["sources"] == ["a.png", "b.png"], shipped
    assert [s for s in _strings(shipped) if os.path.isabs(s) or "/home/me" in s] == [], shipped


def test_the_shipped_training_record_names_no_folder(metadata):
    """The default model's config.json as shipped: its training images by name, no folder of the machine it was
    trained on (training.cwd, or a path), which would lead nowhere on a user's."""
    assert "cwd" not in metadata["training"]
    assert [s for s in _strings(metadata["training"]) if os.path.isabs(s) or os.sep in s] == []
