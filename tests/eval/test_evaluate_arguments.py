"""evaluate() from Python refuses an argument the CLI's parser would have refused, before the
report folder is touched: ``pictures=None`` raised "'<' not supported between instances of 'int'
and 'NoneType'" from inside the run, leaving a new REPORT_DIR holding a journal and no report,
and ``pictures=-1`` ran as 0 where ``--pictures -1`` is an error."""

from __future__ import annotations

import html
import re

import pytest
from PIL import Image

from tests.eval.test_evaluate import chest_like


@pytest.mark.parametrize("pictures", [None, -1, "3", 2.5, True])
def test_pictures_must_be_a_whole_number_of_images(tmp_path, pictures):
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    out = tmp_path / "report"
    with pytest.raises(ValueError, match=rf"evaluate: pictures must be a whole number >= 0 \(images shown side by side, "
                                         rf"0 for none\), got {pictures!r}"):  # fmt: skip
        evaluate([str(tmp_path / "a.png")], str(out), methods="identity", metrics="entropy", pictures=pictures,
                 progress=False, log=lambda *_: None)  # fmt: skip
    assert not out.exists()


def test_xvertnets_settings_without_an_xvertnet_method_are_said_unused(tmp_path):
    """--device cuda (on a machine without one) or --precision fp16 with identity, clahe and farbman
    alone ran on the CPU in float32 without a word, and the report's command line gave them as
    if they had acted: they are xvertnet's, and a run that has none says so before it scores,
    and in the report's notes."""
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    said: list[str] = []
    evaluate([str(tmp_path / "a.png")], str(tmp_path / "report"), methods="identity,clahe", metrics="entropy",
             pictures=0, progress=False, log=said.append, device="cuda", precision="fp16")  # fmt: skip
    note = ("device='cuda' and precision='fp16' are settings of the xvertnet methods, and none is evaluated: they "
            "are not used (identity, clahe)")  # fmt: skip
    assert f"warning: {note}" in said, said
    # and in the report, beside the command line that gives them (it went to the console alone)
    assert f"\n- {note}\n" in (tmp_path / "report" / "summary.md").read_text()
    assert html.escape(note) in (tmp_path / "report" / "report.html").read_text()
    said.clear()  # the CLI's defaults, auto, are no setting given
    evaluate([str(tmp_path / "a.png")], str(tmp_path / "report2"), methods="identity", metrics="entropy", pictures=0,
             progress=False, log=said.append, device="auto", precision="auto")  # fmt: skip
    assert not [line for line in said if line.startswith("warning")], said


def test_settings_and_compare_to_are_named_in_the_callers_words(tmp_path, capsys):
    """A Python caller was told of 'device cuda' (neither its words nor the CLI's) and of
    '--compare-to', an option it never typed: from Python the arguments (device='cuda',
    compare_to='mine'), from the CLI the options (--device cuda, --compare-to mine)."""
    from xvertfast.cli import main
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    said: list[str] = []
    evaluate([str(tmp_path / "a.png")], str(tmp_path / "py"), methods="identity", metrics="entropy", pictures=0,
             progress=False, log=said.append, device="cuda")  # fmt: skip
    assert "warning: device='cuda' is a setting of the xvertnet methods, and none is evaluated: it is not used " \
           "(identity)" in said, said
    with pytest.raises(ValueError, match=r"^compare_to='mine' is not among the methods \(identity, clahe\)$"):
        evaluate([str(tmp_path / "a.png")], str(tmp_path / "py2"), methods="identity,clahe", metrics="entropy",
                 compare_to="mine", progress=False, log=said.append)  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "a.png"), "-o", str(tmp_path / "cli"), "--methods", "identity",
                 "--metrics", "entropy", "--pictures", "0", "--quiet", "--device", "cuda"]) == 0  # fmt: skip
    assert "--device cuda is a setting of the xvertnet methods" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "a.png"), "-o", str(tmp_path / "cli2"), "--methods", "identity,clahe",
                 "--metrics", "entropy", "--compare-to", "mine"]) == 2  # fmt: skip
    assert "error: --compare-to mine is not among the methods (identity, clahe)" in capsys.readouterr().err


@pytest.mark.parametrize("rois", [None, "", 3])
def test_rois_must_be_auto_or_a_files_path(tmp_path, rois):
    """rois=None raised os.fspath's 'expected str, bytes or os.PathLike object, not NoneType', ''
    (--rois '') said 'ROI centres file : No such file or directory', naming no argument, and 3 was
    opened as file descriptor 3, which reading the 'CSV' closed (pytest's capture then failed)."""
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=rf"^evaluate: rois must be 'auto' or the path of a ROI centres CSV file, "
                                         rf"got {rois!r}$"):  # fmt: skip
        evaluate([str(tmp_path / "a.png")], str(tmp_path / "report"), methods="identity", metrics="entropy",
                 rois=rois, progress=False, log=lambda *_: None)  # fmt: skip
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("argument, value", [("methods", None), ("methods", 5), ("methods", [None]), ("methods", ["identity", 3]),
                                             ("metrics", None), ("metrics", 5), ("metrics", [None]), ("metrics", [1, "entropy"])])  # fmt: skip
def test_methods_and_metrics_must_be_names(tmp_path, argument, value):
    """A method or metric that is no name raised Python's own errors naming neither argument:
    methods=[None] "'NoneType' object has no attribute 'partition'", metrics=[1, 'entropy']
    'sequence item 0: expected str instance, int found', None "'NoneType' object is not iterable"."""
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    given = {"methods": "identity", "metrics": "entropy", argument: value}
    with pytest.raises(ValueError, match=rf"^evaluate: {argument} must be names \(a list of them, or one string of them "
                                         r"comma-separated\), got "):  # fmt: skip
        evaluate([str(tmp_path / "a.png")], str(tmp_path / "report"), **given, progress=False, log=lambda *_: None)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("out_dir", [None, "", 3])
def test_the_report_folder_must_be_a_path(tmp_path, monkeypatch, out_dir):
    """out_dir=None raised os.stat's 'path should be string, bytes, os.PathLike or integer, not
    NoneType', 3 os.fspath's error (after os.path.exists had looked at file descriptor 3), and ''
    (-o '') was the current folder, refused as 'a folder of outputs' holding the inputs."""
    from xvertfast.eval.evaluate import evaluate

    Image.fromarray(chest_like(0)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"^evaluate: out_dir must be the report folder's path, got {out_dir!r}$"):
        evaluate(["a.png"], out_dir, methods="identity", metrics="entropy", progress=False, log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("metrics, said", [([None], "None"), ([1, "entropy"], "1"), (["entropy", b"tmqi"], "b'tmqi'")])
def test_run_protocols_metric_check_names_a_metric_that_is_no_name(metrics, said):
    """check_metrics (run_protocol's, from Python) built its message with ', '.join, which raised
    'sequence item 0: expected str instance, NoneType found' instead of naming the metric."""
    from xvertfast.eval.protocol import check_metrics

    with pytest.raises(ValueError, match=rf"^unknown metric\(s\) {re.escape(said)}; choose from entropy, "):
        check_metrics(metrics)


@pytest.mark.parametrize("metrics, said",
                         [([""], "''"), (["entropy", ""], "''"), (["entropy", "", " tmqi"], "'', ' tmqi'")])
def test_run_protocols_metric_check_names_an_empty_or_spaced_metric_visibly(metrics, said):
    """check_metrics([""]) (run_protocol's, from Python; the CLI drops empty names) said "unknown metric(s) ;
    choose from ...", naming nothing, and " tmqi" read as tmqi, a metric it offered."""
    from xvertfast.eval.protocol import check_metrics

    with pytest.raises(ValueError, match=rf"^unknown metric\(s\) {re.escape(said)}; choose from entropy, "):
        check_metrics(metrics)
