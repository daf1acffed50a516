"""What the report's provenance says of how its numbers were made, checked against the report.

The provenance block and provenance.json named the outlier removal and the Wilcoxon test only,
while the report also adjusts the tests paired by image with Holm's method and gives the
Hodges–Lehmann difference with its interval: a reader tracing a paper's table to its settings
missed the family, the interval's confidence and where the exact p-value stops. It claimed tests
against a reference no method could be paired with; and it told identity by re-parsing labels.
"""

from __future__ import annotations

import json

from xvertfast.eval.protocol import EvalRun
from xvertfast.eval.provenance import PROVENANCE_HEADING
from xvertfast.eval.report import write_report
from xvertfast.eval.stats import EXACT_MAX_PAIRS


def small_run(methods: list[str]) -> EvalRun:
    """Three images, two ROIs each, every method scored on all of them."""
    run = EvalRun(methods, ["entropy"], images=3)
    run.rows = [{"file": f"{i}.png", "roi": roi, "method": m, "entropy": 5.0 + k + 0.1 * i + (roi == "upper")}
                for i in range(3) for roi in ("upper", "lower") for k, m in enumerate(methods)]  # fmt: skip
    return run


def written(tmp_path, run: EvalRun, compare_to: str | None) -> tuple[dict, str]:
    """provenance.json's statistics and summary.md's provenance block."""
    out = tmp_path / "r"
    write_report(run, str(out), compare_to)
    record = json.loads((out / "provenance.json").read_text())
    return record["statistics"], (out / "summary.md").read_text().split(f"## {PROVENANCE_HEADING}")[1]


def test_the_provenance_names_holm_over_the_by_image_family_and_the_hodges_lehmann_interval(tmp_path):
    stats, block = written(tmp_path, small_run(["identity", "clahe"]), "identity")
    assert stats["exact_max_pairs"] == EXACT_MAX_PAIRS and stats["confidence"] == 0.95
    assert stats["multiple_tests"].startswith("Holm, over the family of the tests paired by image (methods x metrics)")
    assert stats["difference"].startswith("Hodges-Lehmann estimate of method - identity on the image means")
    assert (f"Wilcoxon signed-rank tests against identity, paired by ROI and by image (exact p up to "
            f"{EXACT_MAX_PAIRS} pairs); by image, p Holm-adjusted over the tests paired by image (methods × metrics) "
            f"and the Hodges–Lehmann difference of the image means with its 95% interval") in block


def test_without_a_test_the_provenance_names_none_of_its_statistics(tmp_path):
    stats, block = written(tmp_path, small_run(["clahe"]), "clahe")
    assert stats["compared_to"] is None
    assert [stats[key] for key in ("exact_max_pairs", "multiple_tests", "difference", "confidence")] == [None] * 4
    assert "; no significance test" in block and "Holm" not in block


def test_a_reference_no_method_pairs_with_is_not_said_tested_against(tmp_path):
    """clahe scored on other images than identity: the report named Wilcoxon tests against identity
    in its legend and its provenance though no test was run; it says why there is none."""
    run = EvalRun(["identity", "clahe"], ["entropy"], images=4)
    run.rows = [{"file": f"{i}.png", "roi": roi, "method": m, "entropy": 5.0 + i + (roi == "upper")}
                for m, files in (("identity", (0, 1)), ("clahe", (2, 3))) for i in files
                for roi in ("upper", "lower")]  # fmt: skip
    stats, block = written(tmp_path, run, "identity")
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert stats["compared_to"] is None and stats["test"] is None
    assert "; no significance test" in block and "Wilcoxon" not in summary
    assert "No significance test: clahe is not tested against identity: they were scored on 0 ROIs in common" in summary


def test_identity_under_another_label_from_python_is_said_identity(tmp_path):
    """provenance.py re-parsed the labels of a run made from Python to tell identity: 'orig' parsed
    as no method, so the originals it stretched went uncounted and its line unexplained. The
    protocol records which methods are identity from the methods themselves."""
    from PIL import Image

    from tests.eval.test_evaluate import chest_like
    from xvertfast.eval.baselines import clahe, identity
    from xvertfast.eval.protocol import run_protocol

    Image.fromarray(chest_like(3).astype("uint16") * 257).save(tmp_path / "a.png")  # 16-bit: identity stretches it
    run = run_protocol([str(tmp_path / "a.png")], {"orig": identity, "clahe": clahe}, ["entropy"], pictures=0,
                       progress=False, log=lambda line: None)  # fmt: skip
    assert run.identity == ["orig"]
    out = tmp_path / "r"
    write_report(run, str(out), "orig")
    record = json.loads((out / "provenance.json").read_text())
    assert record["identity_methods"] == ["orig"] and record["images"]["identity_stretched"] == 1
    assert "- method `orig`: the original, an 8-bit one as stored, a deeper or float one min-max stretched" in \
        (out / "summary.md").read_text()


def test_a_run_built_by_hand_says_its_identity_method(tmp_path):
    """An EvalRun built by hand (the public API) left ``identity`` empty: provenance.json said
    identity_methods [] and identity_stretched null though its method "identity" stretched an
    original. Its method labelled exactly "identity" is now taken as one; another label is not."""
    run = small_run(["identity", "clahe"])
    run.originals = {"0.png": {"bits": 16, "stretched": True}, "1.png": {"bits": 8, "stretched": False}}
    assert run.identity == ["identity"]
    write_report(run, str(tmp_path / "r"), "identity")
    record = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert record["identity_methods"] == ["identity"] and record["images"]["identity_stretched"] == 1
    assert small_run(["orig", "clahe"]).identity == [] and EvalRun(["orig"], [], identity=["orig"]).identity == ["orig"]
