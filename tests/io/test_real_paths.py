"""RealPaths resolves each folder once a job: its answers must be os.path.realpath's, links and
missing files included, or a resume would take an input for another (the ledger names inputs so)."""

from __future__ import annotations

import os

import pytest

from xvertfast.io.files import RealPaths


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """data/ward/{a.png, b.png}; links: data/latest -> ward (a folder), data/ward/c.png -> a.png,
    data/ward/loop -> loop (a link to itself), data/ward/gone.png -> nowhere."""
    ward = tmp_path / "data" / "ward"
    ward.mkdir(parents=True)
    (ward / "a.png").write_bytes(b"a")
    (ward / "b.png").write_bytes(b"b")
    os.symlink("ward", tmp_path / "data" / "latest")
    os.symlink("a.png", ward / "c.png")
    os.symlink("loop", ward / "loop")
    os.symlink("nowhere.png", ward / "gone.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


SPELLINGS = ["data/ward/a.png", "data/latest/a.png", "data/latest/c.png", "data/ward/c.png", "data/ward/missing.png",
             "data/nofolder/x.png", "data/ward/gone.png", "data/ward/loop", "data/latest/../ward/b.png",
             "data/latest/..", "data/ward/.", "data/ward/", "a.png", "", ".", "data//ward//b.png", "/"]  # fmt: skip


@pytest.mark.parametrize("relative", [True, False])
def test_each_spelling_resolves_as_realpath_does(tree, relative):
    real = RealPaths()
    for _ in range(2):  # (the second time from the folders already resolved)
        for path in SPELLINGS:
            spelled = path if relative or path.startswith("/") else os.path.join(str(tree), path)
            assert real(spelled) == os.path.realpath(spelled), spelled


def test_a_link_at_the_last_part_is_followed_each_time(tree):
    real = RealPaths()
    assert real("data/ward/c.png") == str(tree / "data" / "ward" / "a.png")
    os.remove("data/ward/c.png")
    os.symlink("b.png", "data/ward/c.png")
    assert real("data/ward/c.png") == str(tree / "data" / "ward" / "b.png")
