"""The output folder given to the batch jobs from Python (xvertfast._paths.output_folder)."""

from __future__ import annotations

import os

import pytest

from tests.io.test_job_folder import write_pngs
from xvertfast.infer import Enhancer
from xvertfast.pipeline.preprocess_files import preprocess_files


@pytest.mark.parametrize("out_dir, error, said", [
    (None, TypeError, "out_dir must be the output folder's path, got NoneType$"),
    (3, TypeError, "out_dir must be the output folder's path, got int$"),
    ("", ValueError, r"out_dir is empty: give the output folder's path \('\.' for the current one\)$"),
    (b"", ValueError, "out_dir is empty"),
])  # fmt: skip
def test_an_output_folder_that_is_no_path_is_refused_by_name(tmp_path, monkeypatch, seed, out_dir, error, said):
    # None and a number failed with os.fspath's "expected str, bytes or os.PathLike object, not
    # NoneType", naming nothing; '' (the current folder) with "in is inside <cwd>, a folder of outputs"
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "in", seed, ["a.png"])
    jobs = {"enhance_files": lambda: Enhancer("default", device="cpu").enhance_files(["in"], out_dir, dry_run=True),
            "preprocess_files": lambda: preprocess_files(["in"], out_dir, dry_run=True, progress=False)}
    for who, job in jobs.items():
        with pytest.raises(error, match=f"^{who}: {said}"):
            job()
    assert os.listdir(tmp_path) == ["in"]
