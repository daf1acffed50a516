"""Training data: cached crops, one memory-mapped file of ROI pairs, subsets that copy no pixels."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import torch

from tests.train.test_loop import write_images
from xvertfast.io import read_image
from xvertfast.preprocess import find_spine, preprocess
from xvertfast.train.data import load_rois


def test_rois_are_cached_as_crops_and_memory_mapped(tmp_path):
    data = write_images(tmp_path / "data", n=3, size=80)
    cache = tmp_path / "cache"
    rois = load_rois([str(data)], str(cache), 32, log=lambda m: None)
    assert len(rois) == 6 and rois.pairs.shape == (6, 2, 32, 32)
    assert rois.image.tolist() == [0, 0, 1, 1, 2, 2] and len(rois.sources) == 3
    # one file per image holding its two crops (not the whole image), one file gathering them
    per_image = [p for p in glob.glob(str(cache / "*.npy")) if not os.path.basename(p).startswith("rois-")]
    gathered = glob.glob(str(cache / "rois-*.npy"))
    assert len(per_image) == 3 and len(gathered) == 1
    assert all(np.load(p, mmap_mode="r").shape == (2, 2, 32, 32) for p in per_image)
    mapped = np.load(gathered[0], mmap_mode="r")
    np.testing.assert_array_equal(rois.pairs.numpy(), mapped)

    # the crops are X_p and Y of the image at its training ROIs
    rad = read_image(rois.sources[1])
    pp = preprocess(rad.pixels)
    box = find_spine(rad.pixels).train_rois(32)[0]
    crop = torch.from_numpy(np.ascontiguousarray(pp.xp[box.top : box.bottom, box.left : box.right]))
    expected = torch.nn.functional.interpolate(crop[None, None], size=(32, 32), mode="area" if crop.shape[-1] > 32
                                               else "bilinear")[0, 0]  # fmt: skip
    torch.testing.assert_close(rois.batch([2])[0][0, 0], expected, rtol=0, atol=0)

    # a rerun reuses both files; a subset shares the pixels and reads its own rows
    again = load_rois([str(data)], str(cache), 32, log=lambda m: None)
    torch.testing.assert_close(again.pairs, rois.pairs, rtol=0, atol=0)
    sub = rois.subset([2, 0])
    assert sub.pairs.data_ptr() == rois.pairs.data_ptr() and sub.image.tolist() == [0, 0, 2, 2]
    xp, y = sub.batch(torch.tensor([3, 0]))
    torch.testing.assert_close(xp[:, 0], rois.pairs[[5, 0], 0], rtol=0, atol=0)
    torch.testing.assert_close(y[:, 0], rois.pairs[[5, 0], 1], rtol=0, atol=0)
    assert xp.is_contiguous() and y.is_contiguous()


def test_gathering_the_rois_shows_progress_and_a_rerun_gathers_nothing(tmp_path, capsys):
    """The crops of every image are copied into one file once preprocessed (4 MB an image at --roi-size 512:
    minutes for an archive) with no bar: the preprocessing bar stood at 100% and nothing moved."""
    data = write_images(tmp_path / "data", n=3, size=80)
    load_rois([str(data)], str(tmp_path / "cache"), 32, log=lambda m: None, progress=True)
    assert "gathering the ROIs:   0%|" in capsys.readouterr().err
    load_rois([str(data)], str(tmp_path / "cache"), 32, log=lambda m: None, progress=True)  # (gathered: reused)
    err = capsys.readouterr().err
    assert "preprocessing" in err and "gathering" not in err
    load_rois([str(data)], str(tmp_path / "cache2"), 32, log=lambda m: None)
    assert capsys.readouterr().err == ""  # (no bar without progress)


def test_wls_parameters_given_as_0_dim_tensors_key_the_cache_as_their_numbers(tmp_path):
    """load_rois(lam=torch.tensor(...)) (a sweep's value) put the tensor into the cache's key, whose
    JSON failed: "Object of type Tensor is not JSON serializable". It is read as its number, as
    TrainConfig and preprocess read one, so the crops a float made are found again."""
    from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_LAM

    data, cache = write_images(tmp_path / "data", n=1, size=64), tmp_path / "cache"
    first = load_rois([str(data)], str(cache), 32, log=lambda m: None)
    made = sorted(os.listdir(cache))
    again = load_rois([str(data)], str(cache), 32, lam=torch.tensor(DEFAULT_LAM, dtype=torch.float64),
                      alpha=np.array(DEFAULT_ALPHA), log=lambda m: None)  # fmt: skip
    assert sorted(os.listdir(cache)) == made
    torch.testing.assert_close(again.pairs, first.pairs, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^load_rois: eps is a tensor that requires grad"):
        load_rois([str(data)], str(cache), 32, eps=torch.tensor(1e-4, requires_grad=True), log=lambda m: None)
    # a value wls cannot take is refused as the run starts, in load_rois' words, as TrainConfig refuses it (each
    # image was skipped instead, "preprocess: need lam >= 0 ...", and then none was readable)
    with pytest.raises(ValueError, match=r"^load_rois: need lam >= 0, alpha > 0 and eps > 0, got lam=-1\.0"):
        load_rois([str(data)], str(cache), 32, lam=torch.tensor(-1.0), log=lambda m: None)
    # a NumPy scalar (lams[i] of a sweep's array) failed as the tensor did: "Object of type float32 is not JSON
    # serializable"; it keys the crops as the float it holds
    scalar = load_rois([str(data)], str(cache), 32, lam=np.float32(0.5), log=lambda m: None)
    made = sorted(os.listdir(cache))
    torch.testing.assert_close(load_rois([str(data)], str(cache), 32, lam=0.5, log=lambda m: None).pairs,
                               scalar.pairs, rtol=0, atol=0)  # fmt: skip
    assert sorted(os.listdir(cache)) == made
    # a float32 that is no binary fraction (a sweep's np.linspace(..., dtype=np.float32)[i]) keyed its crops as
    # 0.3499999940395355, apart from lam=0.35's: it is read as the decimal it reads as (xvertfast._checks)
    tenths = load_rois([str(data)], str(cache), 32, lam=np.float32(0.35), log=lambda m: None)
    made = sorted(os.listdir(cache))
    torch.testing.assert_close(load_rois([str(data)], str(cache), 32, lam=0.35, log=lambda m: None).pairs,
                               tenths.pairs, rtol=0, atol=0)  # fmt: skip
    assert sorted(os.listdir(cache)) == made


def test_writes_to_a_batch_never_reach_the_cache(tmp_path):
    data = write_images(tmp_path / "data", n=2, size=64)
    rois = load_rois([str(data)], str(tmp_path / "cache"), 32, log=lambda m: None)
    before = rois.pairs.clone()
    rois.pairs[0].fill_(7.0)  # copy-on-write: this process's pages only
    reread = load_rois([str(data)], str(tmp_path / "cache"), 32, log=lambda m: None)
    torch.testing.assert_close(reread.pairs, before, rtol=0, atol=0)


def test_an_image_that_looks_inverted_is_named_once(tmp_path):
    from PIL import Image

    data = write_images(tmp_path / "data", n=2, size=80)
    upright = np.asarray(Image.open(data / "img1.png"))
    Image.fromarray(255 - upright).save(data / "img1.png")
    said = []
    load_rois([str(data)], str(tmp_path / "cache"), 32, log=said.append)
    inverted = [line for line in said if " enlarged more than " not in line]  # (80 px test images: 12.8x)
    assert len(inverted) == 1 and "img1.png: looks inverted" in inverted[0] and inverted[0].startswith("warning:")
    again = []
    load_rois([str(data)], str(tmp_path / "cache"), 32, log=again.append)  # cached: said again, as recorded
    assert again == said


def test_crops_cached_by_an_older_version_are_computed_again(tmp_path, monkeypatch):
    """A cache written before training ROIs kept their square shape on narrow images (cache
    version 2) holds stretched crops: a run with this xvertfast must not reuse them."""
    import xvertfast.train.data as data_module

    data, cache = write_images(tmp_path / "data", n=2, size=80), tmp_path / "cache"
    monkeypatch.setattr(data_module, "CACHE_VERSION", 2)
    load_rois([str(data)], str(cache), 32, log=lambda m: None)
    for path in glob.glob(str(cache / "*.npy")):  # what the older code left: other crops than this one cuts
        np.save(path, np.full(np.load(path).shape, 0.5, dtype=np.float32))
    monkeypatch.undo()
    rois = load_rois([str(data)], str(cache), 32, log=lambda m: None)
    fresh = load_rois([str(data)], str(tmp_path / "fresh"), 32, log=lambda m: None)
    torch.testing.assert_close(rois.pairs, fresh.pairs, rtol=0, atol=0)


DAMAGE = {"cut short": lambda b: b[: len(b) // 2], "empty": lambda b: b"", "not an array file": lambda b: b"\x80" * 200,
          "another array": lambda b: _npy_bytes(np.zeros((3, 5), np.float64))}  # fmt: skip


def _npy_bytes(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("which", ["crops", "gathered"])
def test_a_damaged_cache_file_is_named_with_what_to_do(tmp_path, damage, which):
    from xvertfast.io.errors import DamagedFileError

    data, cache = write_images(tmp_path / "data", n=2, size=64), tmp_path / "cache"
    load_rois([str(data)], str(cache), 32, log=lambda m: None)
    gathered = glob.glob(str(cache / "rois-*.npy"))
    if which == "crops":  # the gathered file is made again from the crops, which are read then
        os.remove(gathered[0])
    path = sorted(set(glob.glob(str(cache / "*.npy"))) - set(gathered))[0] if which == "crops" else gathered[0]
    with open(path, "rb") as f:
        damaged = DAMAGE[damage](f.read())
    with open(path, "wb") as f:
        f.write(damaged)
    with pytest.raises(DamagedFileError) as caught:
        load_rois([str(data)], str(cache), 32, log=lambda m: None)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "delete it" in message and "allow_pickle" not in message
    os.remove(path)  # what the message says: the file is made again
    again = load_rois([str(data)], str(cache), 32, log=lambda m: None)
    fresh = load_rois([str(data)], str(tmp_path / "fresh"), 32, log=lambda m: None)
    torch.testing.assert_close(again.pairs, fresh.pairs, rtol=0, atol=0)


def test_shift_augment_moves_each_pair_together_by_a_reflect_padded_shift(seed):
    import torch.nn.functional as F

    from xvertfast.train.data import shift_augment

    s, batch = 48, 12
    m = s // 16
    xp = torch.rand(batch, 1, s, s)
    y = 2 * xp - 1  # y determined by xp pixel by pixel: the same shift keeps the relation
    out_x, out_y = shift_augment(xp, y, torch.Generator().manual_seed(seed))
    assert out_x.shape == xp.shape and out_y.shape == y.shape
    torch.testing.assert_close(out_y, 2 * out_x - 1)
    moved = 0
    for i in range(batch):
        padded_x, padded_y = (F.pad(t[i : i + 1], (m, m, m, m), mode="reflect")[0] for t in (xp, y))
        found = [(di, dj) for di in range(-m, m + 1) for dj in range(-m, m + 1)
                 if torch.equal(out_x[i], padded_x[:, m + di : m + di + s, m + dj : m + dj + s])]  # fmt: skip
        assert len(found) == 1, f"image {i}: not a shift of its input by at most {m} pixels"
        di, dj = found[0]
        assert torch.equal(out_y[i], padded_y[:, m + di : m + di + s, m + dj : m + dj + s])
        moved += (di, dj) != (0, 0)
    assert moved > 0  # (all 12 unshifted: 25^-12)
    again = shift_augment(xp, y, torch.Generator().manual_seed(seed))
    assert torch.equal(again[0], out_x) and torch.equal(again[1], out_y)  # seeded


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.34, 0.5, 0.9])
def test_split_by_image_gives_disjoint_seeded_sets_of_every_image(fraction):
    from xvertfast.train.data import split_by_image

    for n in range(1, 41):
        splits = {seed: split_by_image(n, fraction, seed) for seed in range(6)}
        for seed, (train_ids, val_ids) in splits.items():
            assert not set(train_ids) & set(val_ids), (n, seed)
            assert sorted(train_ids + val_ids) == list(range(n)), (n, seed)
            want = 0 if n == 1 else min(max(round(fraction * n), 1), n - 1)  # >= 1 to validate on, >= 1 to train on
            assert len(val_ids) == want, (n, seed)
            assert split_by_image(n, fraction, seed) == (train_ids, val_ids)  # deterministic per seed
        if 3 <= n and 0 < len(splits[0][1]) < n:  # the seed picks which images validate
            assert len({tuple(v) for _, v in splits.values()}) > 1, n
    assert split_by_image(10, 0.0, 1) == (list(range(10)), [])
    assert [len(split_by_image(n, f, 0)[1]) for n, f in ((10, 0.2), (3, 0.34), (2, 0.2), (4, 0.9), (7, 0.5))] == [2, 1, 1, 3, 4]


def test_an_image_that_runs_out_of_memory_or_fails_in_torch_is_skipped_by_name(tmp_path, monkeypatch):
    """As enhance does (io.errors.FILE_ERRORS): before, a MemoryError on one huge image (or a torch
    RuntimeError) stopped the whole run with a traceback."""
    import xvertfast.train.data as data_module

    from PIL import Image

    folder = write_images(tmp_path / "data", n=3, size=80)
    real = data_module.preprocess

    def failing(pixels, *args, **kwargs):
        if pixels.shape == (96, 80):
            raise MemoryError("std::bad_alloc")
        if pixels.shape == (88, 80):
            raise RuntimeError("a torch op failed on this image")
        return real(pixels, *args, **kwargs)

    Image.open(folder / "img0.png").resize((80, 96)).save(folder / "huge.png")
    Image.open(folder / "img1.png").resize((80, 88)).save(folder / "odd.png")
    monkeypatch.setattr(data_module, "preprocess", failing)
    said = []
    rois = load_rois([str(folder)], str(tmp_path / "cache"), 32, log=said.append)
    assert len(rois.sources) == 3
    assert f"skipped: {folder / 'huge.png'}: out of memory (std::bad_alloc)" in said
    assert f"skipped: {folder / 'odd.png'}: a torch op failed on this image" in said


def test_a_copy_of_an_image_under_another_name_is_trained_on_once(tmp_path):
    """Before, both copies were kept: with the split by image one could be trained on and the other
    validated, so the validation loss (early stopping, the kept epoch) watched a training image."""
    import shutil

    folder = write_images(tmp_path / "data", n=2, size=80)
    shutil.copy(folder / "img0.png", folder / "img2.png")
    said = []
    rois = load_rois([str(folder)], str(tmp_path / "cache"), 32, log=said.append)
    assert rois.sources == [str(folder / "img0.png"), str(folder / "img1.png")]
    assert [line for line in said if " enlarged more than " not in line] == [f"skipped: {folder / 'img2.png'}: the same image as {folder / 'img0.png'} (trained on once)"]
    assert len(rois) == 4


def test_a_listed_image_that_is_missing_is_skipped_naming_its_list_and_line(tmp_path):
    # training said "skipped: FILE: no such file or folder" in its own words, where enhance,
    # preprocess and evaluate name the list and line to mend: in a list of thousands, the path
    # alone left that line to be searched for
    folder = write_images(tmp_path / "data", n=2, size=80)
    listed = tmp_path / "scans.txt"
    listed.write_text(f"{folder / 'img0.png'}\n{folder / 'gone.png'}\n{folder / 'img1.png'}\n")
    said = []
    rois = load_rois([f"@{listed}"], str(tmp_path / "cache"), 32, log=said.append)
    assert rois.sources == [str(folder / "img0.png"), str(folder / "img1.png")]
    assert [line for line in said if line.startswith("skipped")] == [
        f"skipped: {folder / 'gone.png'}: no such file or folder ({listed}, line 2)"]


def test_only_an_image_that_fails_is_asked_why_so_each_one_is_not_stat_ed_on_every_run(monkeypatch, tmp_path):
    """Every image was asked input_problem (two stats) before its checksum, on every run and resume (tens
    of thousands on a network file system); the reasons said of those that fail are as they were. Not
    only a missing file's: a link loop and a path through a file, whose checksum's open fails with
    another OSError, lost the reader's words and their list and line ("Too many levels of symbolic
    links", "Not a directory")."""
    import xvertfast.train.data as data_module

    folder = write_images(tmp_path / "data", n=2, size=80)
    (folder / "empty.png").write_bytes(b"")
    os.symlink("loop2.png", folder / "loop1.png")
    os.symlink("loop1.png", folder / "loop2.png")
    lines = ["img0.png", "gone.png", "img1.png", "empty.png", "loop1.png", "img0.png/x.png"]
    listed = tmp_path / "scans.txt"
    listed.write_text("".join(f"{folder / name}\n" for name in lines))
    asked, real = [], data_module.input_problem
    monkeypatch.setattr(data_module, "input_problem", lambda f: asked.append(f.path) or real(f))
    said = []
    rois = load_rois([f"@{listed}"], str(tmp_path / "cache"), 32, log=said.append)
    assert rois.sources == [str(folder / "img0.png"), str(folder / "img1.png")]
    assert [line for line in said if line.startswith("skipped")] == [
        f"skipped: {folder / 'gone.png'}: no such file or folder ({listed}, line 2)",
        f"skipped: {folder / 'empty.png'}: empty file (0 bytes)",
        f"skipped: {folder / 'loop1.png'}: a loop of symbolic links: it leads to no file ({listed}, line 5)",
        f"skipped: {folder / 'img0.png/x.png'}: no such file or folder ({listed}, line 6)"]  # fmt: skip
    assert asked == [str(folder / "gone.png"), str(folder / "loop1.png"), str(folder / "img0.png/x.png")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_among_the_images_is_skipped_without_waiting(tmp_path):
    # the cache key hashed the file before it was read, and opening a named pipe for reading
    # waits for a writer: training hung for ever on one among the images (enhance refused it)
    import signal

    folder = write_images(tmp_path / "data", n=2, size=80)
    os.mkfifo(folder / "pipe.png")
    said = []

    def hung(signum, frame):
        raise TimeoutError("load_rois waited on the named pipe")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        rois = load_rois([str(folder)], str(tmp_path / "cache"), 32, log=said.append)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len(rois.sources) == 2
    assert any("pipe.png: not a regular file (a named pipe, socket or device)" in line for line in said), said


def test_a_cache_it_cannot_write_stops_the_run_instead_of_skipping_every_image(tmp_path, monkeypatch):
    """Before: a cache folder it may not write in (made by a run under another user, a read-only mount)
    was said of each image, "skipped: IMAGE: Permission denied", as if the images were unreadable,
    then "no readable training image"; where only some writes failed, images were left out unsaid."""
    import errno

    import xvertfast.train.data as data_module

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    data = write_images(tmp_path / "data")
    said = []
    monkeypatch.setattr(data_module, "write_array", denied)
    with pytest.raises(OSError, match=r"cannot write into .*cache.*: Permission denied \(the crops of .*img0.png"):
        load_rois([str(data)], str(tmp_path / "run" / "cache"), 32, log=said.append)
    assert not [m for m in said if m.startswith("skipped")], said


def test_a_set_a_kill_left_half_gathered_goes_with_the_other_sets(tmp_path):
    """A start killed while it gathered its set (kill -9, the node lost: atomic_write could not
    remove its temporary) and run again with other images left ``.rois-<key>.npy.<random>.part``,
    up to a whole set's size, in the cache forever: only complete sets of other keys were removed,
    and the run's own temporaries (load_rois) are of its own key alone."""
    from xvertfast.train.data import remove_other_sets

    cache = tmp_path / "cache"
    cache.mkdir()
    own, old, killed = "a" * 32, "b" * 32, "c" * 32
    sizes = {f"rois-{own}.npy": 10, f"rois-{old}.npy": 20, f".rois-{killed}.npy.k1ll9x.part": 30,
             f"{'d' * 32}.npy": 40, f".{'e' * 32}.npy.x1y2.part": 50}  # fmt: skip
    for name, size in sizes.items():
        (cache / name).write_bytes(b"\0" * size)
    assert remove_other_sets(str(cache), own) == 20 + 30
    # the run's set, an image's crops, and a kill's temporary of an image's (load_rois' to remove)
    assert sorted(os.listdir(cache)) == sorted([f"rois-{own}.npy", f"{'d' * 32}.npy", f".{'e' * 32}.npy.x1y2.part"])


def test_a_cache_linked_from_another_run_keeps_its_other_sets(tmp_path):
    """Two RUN_DIRs sharing one cache by a link: each start removed the other's gathered set and the
    temporary it was writing (its rename then failed). A linked cache is left as it is."""
    from xvertfast.train.data import remove_other_sets

    shared = tmp_path / "shared"
    shared.mkdir()
    other_set, other_part = f"rois-{'b' * 32}.npy", f".rois-{'c' * 32}.npy.k1ll9x.part"
    for name in (other_set, other_part):
        (shared / name).write_bytes(b"\0" * 10)
    (tmp_path / "run").mkdir()
    os.symlink(shared, tmp_path / "run" / "cache")
    assert remove_other_sets(str(tmp_path / "run" / "cache"), "a" * 32) is None
    assert sorted(os.listdir(shared)) == sorted([other_set, other_part])


def test_a_linked_cache_keeps_the_set_another_run_of_the_same_images_is_gathering(tmp_path):
    """Runs sharing a cache by a link are most often of the same images (another width, another
    seed), and gather one set: the second to start took the temporary the first was writing for a
    kill's leftover and removed it, and the first's rename then failed."""
    data, shared = write_images(tmp_path / "data"), tmp_path / "shared"
    key = load_rois([str(data)], str(tmp_path / "probe"), 32).key  # (the set's name: its images' contents)
    shared.mkdir()
    (tmp_path / "run").mkdir()
    os.symlink(shared, tmp_path / "run" / "cache")
    gathering = shared / f".rois-{key}.npy.r4nd0m.part"  # the first run's, being written
    gathering.write_bytes(b"\0" * 10)
    load_rois([str(data)], str(tmp_path / "run" / "cache"), 32)
    assert gathering.exists()


def test_a_run_on_a_linked_cache_says_it_leaves_the_other_sets(tmp_path, monkeypatch):
    from tests.train.test_loop import CONFIG
    from xvertfast.train import loop, train

    data, shared, run = write_images(tmp_path / "data"), tmp_path / "shared", tmp_path / "run"
    shared.mkdir()
    run.mkdir()
    os.symlink(shared, run / "cache")
    (shared / f"rois-{'b' * 32}.npy").write_bytes(b"\0" * 10)  # another run's set

    def ctrl_c_once_gathered(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "split_by_image", ctrl_c_once_gathered)
    said = []
    with pytest.raises(KeyboardInterrupt):
        train([str(data)], str(run), CONFIG, progress=False, log=said.append)
    assert (shared / f"rois-{'b' * 32}.npy").exists()
    assert f"{run / 'cache'} is a link, perhaps shared with other runs: the ROIs gathered there for other images or " \
           "centres are left in it" in said, said  # fmt: skip


def test_an_image_whose_path_is_in_its_error_is_still_named_when_skipped(tmp_path, monkeypatch):
    """An image's OSError was said as its reason alone where the path was found in that text
    (``text if f.path in text``): an image given as ``denied``, refused 'Permission denied', was
    said 'skipped: Permission denied', no image named. The path now always comes first, once."""
    import errno
    import shutil

    import xvertfast.train.data as data_module

    data = write_images(tmp_path / "data", n=2, size=80)
    monkeypatch.chdir(data)
    shutil.copy("img0.png", "denied")  # (a file given by its name is read by its content)

    def refused(pixels, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "denied")

    monkeypatch.setattr(data_module, "preprocess", refused)
    said = []
    with pytest.raises(data_module.NoReadableImage):
        load_rois(["denied"], str(tmp_path / "cache"), 32, log=said.append)
    assert said == [f"skipped: denied: {os.strerror(errno.EACCES)}"], said


def test_an_image_skipped_for_another_files_error_names_that_file(tmp_path, monkeypatch):
    """An image's OSError with a reason was said '{image}: {reason}' alone: refused reading a
    sidecar (/x/side.json), the skip said 'Permission denied' of the image, the file refused named
    nowhere. It is now said as enhance says it (failure_text): the error's whole text, that file in it."""
    import errno

    import xvertfast.train.data as data_module

    data = write_images(tmp_path / "data", n=1, size=80)

    def refused(pixels, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/x/side.json")

    monkeypatch.setattr(data_module, "preprocess", refused)
    said = []
    with pytest.raises(data_module.NoReadableImage):
        load_rois([str(data)], str(tmp_path / "cache"), 32, log=said.append)
    assert len(said) == 1 and said[0].startswith(f"skipped: {data / 'img0.png'}: ") and "/x/side.json" in said[0], said


def test_images_enlarged_into_their_rois_are_warned_of_once_with_the_largest(tmp_path):
    """A 40-row thumbnail was resampled 25x up into its ROIs (ROIs are cut at the scale of a 1024-row
    image) and trained on as anatomy without a word."""
    from PIL import Image

    data = write_images(tmp_path / "data", n=2, size=80)
    Image.open(data / "img1.png").resize((40, 40)).save(data / "img1.png")  # 32x: the largest
    big = (np.random.default_rng(0).random((400, 380)) * 255).astype(np.uint8)  # 2.6x: not warned of
    Image.fromarray(big).save(data / "big.png")
    said = []
    load_rois([str(data)], str(tmp_path / "cache"), 64, log=said.append)
    enlarged = [line for line in said if "enlarged" in line]
    assert len(enlarged) == 1, said
    assert enlarged[0].startswith("warning: 2 images were enlarged more than 3x to give 64 px training ROIs, up to "
                                  f"32.0x ({data / 'img1.png'}: 40 x 40 pixels): "), enlarged  # fmt: skip
    again = []
    load_rois([str(data)], str(tmp_path / "cache"), 64, log=again.append)  # cached: said again, as recorded
    assert again == said


def test_an_image_too_narrow_for_its_rois_is_warned_of_as_narrow_not_small(tmp_path):
    """A 1024-row strip 48 px wide gives 256 px ROIs 48 px wide (they shrink to its width, square): it was
    told that "ROIs are cut at the scale of a 1024-row image, so a smaller one's are resampled up" and
    to train "at their full resolution", which it has."""
    from PIL import Image

    (tmp_path / "data").mkdir()
    x = np.linspace(-1, 1, 48)
    strip = np.exp(-(x[None, :] ** 2) / 0.03) * 0.6 + 0.2 + 0.08 * np.random.default_rng(0).random((1024, 48))
    Image.fromarray(np.round(strip * 255).astype(np.uint8)).save(tmp_path / "data" / "strip.png")
    said = []
    load_rois([str(tmp_path / "data")], str(tmp_path / "cache"), 256, log=said.append)
    enlarged = [line for line in said if "enlarged" in line]
    assert enlarged == [f"warning: 1 image was enlarged more than 3x to give 256 px training ROIs, up to 5.3x "
                        f"({tmp_path / 'data' / 'strip.png'}: 48 x 1024 pixels): it is narrower than the square ROIs "
                        "of 256 px its height gives (ROIs are cut at the scale of a 1024-row image), so they shrink to "
                        "its width and are resampled up, blurred, without the detail the network meets in full-size "
                        "radiographs; train on such images uncropped, at their full width, or leave them out"], said


def test_the_enlargement_warning_of_thumbnails_and_strips_says_what_to_do_for_both(tmp_path):
    """With a thumbnail and a strip its advice followed the image named (the largest factor) alone: the
    strip was told to come "at their full resolution", which it has (or the thumbnail to come uncropped)."""
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    x = np.linspace(-1, 1, 48)
    strip = np.exp(-(x[None, :] ** 2) / 0.03) * 0.6 + 0.2 + 0.08 * np.random.default_rng(0).random((1024, 48))
    Image.fromarray(np.round(strip * 255).astype(np.uint8)).save(data / "strip.png")  # 5.3x, narrow
    Image.fromarray(np.round(strip[::16, :40][:40] * 255).astype(np.uint8)).save(data / "thumb.png")  # 25.6x, small
    said = []
    load_rois([str(data)], str(tmp_path / "cache"), 256, log=said.append)
    enlarged = [line for line in said if "enlarged" in line]
    assert len(enlarged) == 1 and f"up to 25.6x ({data / 'thumb.png'}: 40 x 40 pixels)" in enlarged[0], said
    assert enlarged[0].endswith("train on such images at their full resolution, and those narrower than their ROIs "
                                "(1) uncropped, at full width, or leave them out"), enlarged  # fmt: skip


def _read_only(shared, monkeypatch) -> None:
    """``shared`` (reached by any path) may not be written by load_rois (faked: root writes anywhere)."""
    import errno

    import xvertfast.train.data as data_module

    real_write = data_module.write_array

    def read_only(path, *args, **kwargs):
        if os.path.realpath(os.path.dirname(path)) == str(shared.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(data_module, "write_array", read_only)
    monkeypatch.setattr(data_module, "_unwritable", lambda folder: "read-only file system"
                        if os.path.realpath(folder) == str(shared.resolve()) else None)  # fmt: skip


def _linked_to_a_read_only(run, shared, monkeypatch):
    """``run`` made, its cache a link to ``shared``, which the run may not write (:func:`_read_only`)."""
    _read_only(shared, monkeypatch)
    run.mkdir()
    (run / "cache").symlink_to(shared)
    return run


def test_a_cache_the_run_cannot_write_is_said_at_the_start_and_a_private_one_takes_what_it_lacks(tmp_path, monkeypatch):
    """RUN_DIR/cache linked to a read-only shared cache: every image was hashed (hours for an archive),
    and the run then failed as it gathered its set there. Now it is said as the run starts, and the
    set, and the crops of images the shared cache lacks, go into RUN_DIR/private-cache."""
    from PIL import Image

    from tests.train.test_loop import CONFIG
    from xvertfast.train import TrainConfig, train

    data = write_images(tmp_path / "data")
    shared = tmp_path / "shared"
    load_rois([str(data)], str(shared), 32, log=lambda m: None)
    for gathered in shared.glob("rois-*.npy"):  # (the set of these images: another run's would be of others)
        gathered.unlink()
    sorted(shared.glob("*.json"))[0].unlink()  # one image's crops as an older xvertfast left them: no record
    write_images(tmp_path / "more", n=1, size=96)
    # an image the shared cache lacks, inverted (a warning, listed at the end)
    Image.fromarray(255 - np.asarray(Image.open(tmp_path / "more" / "img0.png"))).save(data / "new.png")
    before = sorted(os.listdir(shared))
    run = _linked_to_a_read_only(tmp_path / "run", shared, monkeypatch)
    said = []
    one = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 0})
    train([str(data)], str(run), one, progress=False, log=said.append)
    assert said[0] == (f"note: {run / 'cache'} (a link to {shared.resolve()}) cannot be written (read-only file "
                       "system): the run takes the crops it holds, and writes those it lacks and its gathered "
                       f"training set into {run / 'private-cache'}"), said  # fmt: skip
    assert sorted(os.listdir(shared)) == before
    private = sorted(os.listdir(run / "private-cache"))
    # the new image's crops and their record (its warnings), the set
    assert len(private) == 3 and private[0].endswith(".json") and private[2].startswith("rois-"), private
    assert os.path.exists(run / "model")
    # the end names the folders that hold the crops (the new image's are not in RUN_DIR/cache), lists the warnings
    # of the images taken from the cache with their record (here: enlarged, 80 px) with the new one's, and says that
    # the one an older xvertfast cached was warned of, if at all, by the start that preprocessed it: the list is
    # not of it (an empty list read as "no warnings" on every resume)
    assert said[-4] == (f"2 warnings about images trained on as they are (each says what to do; with them fixed or "
                        f"left out, train into a new run folder: a copy of {run / 'cache'} and {run / 'private-cache'} "
                        "in it keeps the other images' preprocessing):"), said[-4:]  # fmt: skip
    assert said[-3].startswith(f"warning: {data / 'new.png'}: looks inverted"), said[-4:]
    assert said[-2].startswith("warning: 3 images were enlarged more than 3x"), said[-4:]  # (96 px and 2 of 80 px)
    assert said[-1] == (f"1 image was taken from {run / 'cache'} as an older xvertfast preprocessed it, which kept no "
                        "record of its warnings: what it noted of it is in the log of the start that preprocessed it, "
                        "not listed here"), said[-3:]  # fmt: skip


def test_the_warnings_of_images_taken_from_the_cache_are_said_again_as_recorded_with_their_crops(tmp_path, monkeypatch):
    """A resumed run, or one given a copy of the cache, took its images' crops from the cache and said nothing
    of their warnings (an inverted look, a spine in doubt, enlarged into their ROIs): "what it noted of them is
    in that start's log". Each image's warnings are recorded beside its crops and said again, of the file where
    it is now and in the caller's words; crops an older xvertfast cached, without a record, are counted."""
    from PIL import Image

    import xvertfast.train.data as data_module
    from xvertfast._text import cli_running

    data, cache = write_images(tmp_path / "data", n=2, size=48), tmp_path / "cache"
    Image.fromarray(255 - np.asarray(Image.open(data / "img1.png"))).save(data / "img1.png")  # inverted
    wide = np.tile(np.asarray(Image.open(data / "img0.png")), (1, 3))  # 48 x 144: not a chest's shape
    Image.fromarray(wide).save(data / "wide.png")
    first = load_rois([str(data)], str(cache), 32, log=lambda m: None)  # (from Python)
    assert first.warned[0].startswith(f"warning: {data / 'img1.png'}: looks inverted"), first.warned
    assert first.warned[1].startswith(f"warning: {data / 'wide.png'}: 144 x 48: not the shape"), first.warned
    assert first.warned[2].startswith("warning: 3 images were enlarged more than 3x") and len(first.warned) == 3

    moved = tmp_path / "moved"
    data.rename(moved)
    with cli_running(["output", "rois"]):  # (what a CLI start preprocessing them there says)
        fresh = load_rois([str(moved)], str(tmp_path / "fresh"), 32, log=lambda m: None)
    assert "--rois" in fresh.warned[1] and fresh.warned != first.warned, fresh.warned
    monkeypatch.setattr(data_module, "read_image", lambda *a, **k: pytest.fail("preprocessed again"))
    said = []
    with cli_running(["output", "rois"]):  # (a CLI resume: told of its options)
        again = load_rois([str(moved)], str(cache), 32, log=said.append)
    assert again.warned == said == fresh.warned and again.unrecorded == {}, said

    for record in cache.glob("*.json"):  # as an older xvertfast left its crops
        record.unlink()
    older = load_rois([str(moved)], str(cache), 32, log=lambda m: None)
    assert older.warned == [] and older.unrecorded == {str(cache): 3}
    torch.testing.assert_close(older.pairs, first.pairs, rtol=0, atol=0)


def test_load_rois_gives_taken_its_set_before_gathering_it_in_a_shared_cache(tmp_path):
    """taken was called with the crops alone: a run on a linked cache recorded nothing of the set it
    gathers there for minutes, and status, dating the run's last write by what it recorded, read a
    live run as "last written N min ago". Now the set too, before it is written (its temporary counts)."""
    data, shared = write_images(tmp_path / "data", n=1, size=48), tmp_path / "shared"
    calls = []
    load_rois([str(data)], str(shared), 32, log=lambda m: None, taken=lambda p: calls.append((p, os.path.exists(p))))
    (crops, _), (gathered, there) = calls  # the image's crops, then the set
    assert not os.path.basename(crops).startswith("rois-") and os.path.basename(gathered).startswith("rois-"), calls
    assert os.path.dirname(gathered) == str(shared) and not there and os.path.exists(gathered)  # named, then written


def test_the_crops_of_a_private_cache_are_taken_once_the_shared_cache_can_be_written(tmp_path, monkeypatch):
    """RUN_DIR/private-cache was looked in only while RUN_DIR/cache could not be written: a shared cache
    made writable before --resume had every image the run had preprocessed privately preprocessed again
    (hours for an archive), and the set gathered again beside the private one."""
    data, shared, private = write_images(tmp_path / "data", n=2, size=48), tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    with monkeypatch.context() as m:
        _read_only(shared, m)
        first = load_rois([str(data)], str(shared), 32, log=lambda m: None, private=str(private))
    assert os.listdir(shared) == [] and len(os.listdir(private)) == 5  # two images' crops and records, the set
    again = load_rois([str(data)], str(shared), 32, log=lambda m: None, private=str(private))  # (writable now)
    assert os.listdir(shared) == [], "preprocessed or gathered again"
    torch.testing.assert_close(again.pairs, first.pairs, rtol=0, atol=0)


def test_a_damaged_file_of_a_linked_or_private_cache_says_what_to_delete_where_it_is(tmp_path, monkeypatch):
    """Each damaged cache file's fix-it text named RUN_DIR/cache: "deleting RUN_DIR/cache redoes every image",
    which for crops in RUN_DIR/private-cache redoes nothing (it is always looked in), and for a link to a
    shared cache deletes the link, or, followed, other runs' crops; a read-only one's file the user cannot delete."""
    from xvertfast._text import cli_running
    from xvertfast.io.errors import DamagedFileError

    data, shared = write_images(tmp_path / "data", n=2, size=48), tmp_path / "shared"
    load_rois([str(data / "img0.png")], str(shared), 32, log=lambda m: None)
    for gathered in shared.glob("rois-*.npy"):
        gathered.unlink()
    run = _linked_to_a_read_only(tmp_path / "run", shared, monkeypatch)
    cache, private = str(run / "cache"), str(run / "private-cache")

    def damaged(path) -> str:  # load_rois's message, the set gathered again from the crops (one cut short)
        for gathered in glob.glob(os.path.join(private, "rois-*.npy")):
            os.remove(gathered)
        with open(path, "r+b") as f:
            f.truncate(100)
        with pytest.raises(DamagedFileError) as caught:
            load_rois([str(data)], cache, 32, log=lambda m: None, private=private)
        return str(caught.value)

    load_rois([str(data)], cache, 32, log=lambda m: None, private=private)
    mine = [p for p in glob.glob(os.path.join(private, "*.npy")) if not os.path.basename(p).startswith("rois-")]
    said = damaged(mine[0])  # img1's crops, in the private cache
    assert f"delete it and call train() again the same way (the image is preprocessed again; deleting {private} " \
           "redoes every image there)" in said and f"deleting {cache}" not in said, said
    with cli_running(["output"]):  # (the CLI's user is told of the command, a Python caller of train())
        assert "delete it and run the same command again (the image is preprocessed again" in damaged(mine[0])
    os.remove(mine[0])
    load_rois([str(data)], cache, 32, log=lambda m: None, private=private)  # (made again, into the private cache)
    theirs = glob.glob(os.path.join(cache, "*.npy"))
    said = damaged(theirs[0])  # img0's crops, in the read-only shared cache
    assert said.startswith(f"{theirs[0]}: "), said
    assert (f"have it deleted by whoever may write there (it is {shared.resolve() / os.path.basename(theirs[0])}: "
            f"{cache} is a link), or remove the link {cache} (the run then preprocesses into a cache of its own), "
            "and call train() again the same way (the image is preprocessed again)") in said, said
    os.remove(theirs[0])  # (as whoever may write there)
    monkeypatch.undo()
    load_rois([str(data)], cache, 32, log=lambda m: None, private=private)
    gathered = glob.glob(os.path.join(cache, "rois-*.npy"))[0]  # (the shared cache can be written now)
    with open(gathered, "r+b") as f:
        f.truncate(100)
    with pytest.raises(DamagedFileError) as caught:  # the set's crops, in both folders
        load_rois([str(data)], cache, 32, log=lambda m: None, private=private)
    assert f"(it is gathered again from the images' crops in {cache} and {private})" in str(caught.value) or \
        f"(it is gathered again from the images' crops in {private} and {cache})" in str(caught.value), caught.value


def test_gathering_works_out_a_damaged_files_advice_only_for_a_damaged_file(tmp_path, monkeypatch):
    """The gathering made each image's fix-it text (where the file really is, whether the cache is a
    link: two lstats and a realpath) before reading its crops, for every image: 40k lookups for an
    archive of 20k images on a network file system, for texts never said. It is made for a damaged
    file alone (its words: the test above)."""
    import xvertfast.train.data as data_module

    made, deleting = [], data_module._deleting
    monkeypatch.setattr(data_module, "_deleting", lambda *args: made.append(args) or deleting(*args))
    data, cache = write_images(tmp_path / "data", n=2, size=48), tmp_path / "cache"
    load_rois([str(data)], str(cache), 32, log=lambda m: None)
    assert [args for args in made if not os.path.basename(args[0]).startswith("rois-")] == []  # (the set's: once)
    assert len(made) == 1
