"""`xvertfast status RUN_DIR`: how far a training run has come, read from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from tests.train.test_loop import CONFIG, write_images
from xvertfast.cli import main
from xvertfast.train import train
from xvertfast.train.status import train_status


def test_a_runs_progress_is_read_from_its_checkpoint_as_it_goes(tmp_path, capsys):
    # a run of hours on a cluster node had no way to be checked from elsewhere: status knew only
    # the batch jobs' folders ("holds no output of an xvertfast enhance or preprocess job")
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    assert train_status(str(run)) is None and train_status(str(tmp_path)) is None
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), CONFIG, stop_after_epochs=3, **quiet)  # stage 1: 2 gc epochs, then 1 joint
    status = train_status(str(run))
    assert (status.stage, status.epoch, status.stages, status.finished, status.model) == (1, 3, 2, False, None)
    assert status.epochs_left_at_most == 1 + 4 and status.last["epoch"] == 3 and status.seconds_per_epoch > 0
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert f"{run}: xvertfast train, 2 stages of width 4: stage 1 of 2, not finished" in said
    # the first phase is the structure loss alone; the feature loss is what the joint phase adds
    # (status called it the "feature-loss" phase, the opposite of --epochs-gc's own help)
    assert "stage 1: 2 structure-loss epochs and 1 of up to 2 joint, 0 of 5 in a row without a better score" in said
    assert "feature-loss" not in said
    assert "last epoch (stage 1, epoch 3): training loss " in said and "validation loss " in said
    assert "at most 5 epochs to go, about " in said and "last written " in said

    train([str(data)], str(run), CONFIG, resume=True, stop_after_epochs=2, **quiet)  # into stage 2's gc phase
    assert main(["status", str(run)]) == 0
    assert "stage 2: 1 of 2 structure-loss epochs, then up to 2 joint (structure + feature loss)" in capsys.readouterr().out

    train([str(data)], str(run), CONFIG, resume=True, **quiet)
    status = train_status(str(run))
    assert status.finished and status.model == os.path.join(str(run), "model") and status.epochs_left_at_most == 0
    assert main(["status", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["job"] == "train" and record["finished"] and record["stage"] == 3 and len(record["history"]) == 8
    assert main(["status", str(run)]) == 0
    assert f"finished; the trained model is {run / 'model'}" in capsys.readouterr().out


def test_a_run_preparing_its_data_is_a_training_run(tmp_path, capsys, monkeypatch):
    # a run preprocessing its images (hours on a large archive), or stopped before its first epoch,
    # was "no output of an xvertfast enhance or preprocess job, nor a training run" (exit 2)
    from xvertfast.resume import hold_lock
    from xvertfast.train import data as train_data
    from xvertfast.train.loop import LOCK_FILE

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    real, seen = train_data._image_pairs, []

    def ctrl_c_at_the_second_image(*args, **kwargs):
        seen.append(args[0])
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_data, "_image_pairs", ctrl_c_at_the_second_image)
    with pytest.raises(KeyboardInterrupt):
        train([str(data)], str(run), CONFIG, progress=False, log=lambda m: None)
    status = train_status(str(run))
    assert (status.stage, status.epoch, status.preprocessed, status.running, status.finished) == (0, 0, 1, False, False)
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert f"{run}: xvertfast train: no epoch finished yet (its images are preprocessed first)\n" in said
    assert f"  {run / 'cache'} holds 1 image crop file so far (one for each of its images preprocessed" in said
    assert "last written " in said and f"  not running: interrupted (Ctrl-C, SIGTERM or SIGHUP); to resume it, run its " \
           f"command again with --resume: xvertfast train DATA ... -o {run} --resume" in said, said
    with hold_lock(str(run / LOCK_FILE)):  # as the run holds it while it preprocesses
        assert main(["status", str(run)]) == 0
        assert f"  running now (it holds {run / LOCK_FILE})" in capsys.readouterr().out
    assert main(["status", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert (record["job"], record["stage"], record["preprocessed"], record["finished"]) == ("train", 0, 1, False)
    assert train_status(str(tmp_path / "data")) is None  # no run began there


#: A short training run of the images in data/ into run/, both relative to the folder the test runs in
#: (a tuple: each test takes a list of it, so that one changing its words changes no other's).
_SHORT_RUN = ("train", "data", "-o", "run", "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width", "4",
              "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu")  # fmt: skip


def _ctrl_c_after_the_first_epoch(monkeypatch, argv: list[str]) -> None:
    """Runs the train command ``argv`` and stops it by Ctrl-C once its first epoch is written: a
    run to resume, its checkpoint and its record of the stop as a user's Ctrl-C leaves them."""
    from xvertfast.train import loop

    written = loop._write_metrics

    def ctrl_c_after_the_first_epoch(*args):
        written(*args)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(loop, "_write_metrics", ctrl_c_after_the_first_epoch)
        assert main(argv) == 130


def test_status_gives_the_command_that_resumes_a_stopped_run(tmp_path, capsys, monkeypatch):
    # it gave "xvertfast train DATA ... -o RUN --resume (its data and options as first given: they are
    # not recorded here)": after a lost node, every option was to be typed again, or the resume refused
    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    argv = list(_SHORT_RUN)
    _ctrl_c_after_the_first_epoch(monkeypatch, argv)
    capsys.readouterr()
    assert main(["status", "run"]) == 0
    said = capsys.readouterr().out
    command = f"cd {tmp_path} && xvertfast train {' '.join(argv[1:])} --resume"
    assert f"  not running: interrupted (Ctrl-C, SIGTERM or SIGHUP); to resume it: {command}\n" in said, said
    assert main(command.split(" && xvertfast ")[1].split()) == 0
    assert train_status("run").finished


def test_status_says_a_run_stopped_by_sigterm_was_interrupted_and_a_later_start_is_not(tmp_path, capsys, monkeypatch):
    # a run stopped by Ctrl-C or SIGTERM (a scheduler's time limit) was "stopped before the end (killed, its node
    # lost, out of time, or ended by an error)", where an enhance job's said "(interrupted)"
    import signal

    from xvertfast.train import loop

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "3", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    written = loop._write_metrics

    def sigterm_after_the_first_epoch(*args):
        written(*args)
        os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as patch:
        patch.setattr(loop, "_write_metrics", sigterm_after_the_first_epoch)
        assert main(argv) == 143
    capsys.readouterr()
    assert train_status(str(run)).stopped == "interrupted"
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert "  not running: interrupted (Ctrl-C, SIGTERM or SIGHUP); to resume it: " in said and "killed" not in said, said
    # the next start, stopped without a word (as a kill -9 or a lost node stops it): not said to be interrupted
    from xvertfast.train import TrainConfig

    config = TrainConfig(stages=1, epochs_gc=3, epochs_joint=0, width=4, depth=2, roi_size=32, batch_size=2,
                         device="cpu")  # (the command's, with the defaults of the others)
    train([str(data)], str(run), config, resume=True, stop_after_epochs=1, progress=False, log=lambda m: None)
    assert train_status(str(run)).stopped is None
    assert main(["status", str(run)]) == 0
    assert "  not running: stopped before the end (killed, its node lost" in capsys.readouterr().out


def test_a_refused_start_leaves_the_record_of_the_interrupted_start_before_it(tmp_path, capsys, monkeypatch):
    # a start refused before it trained (another --width on --resume, no --resume, other images) wrote its own
    # command as the latest start's, and status then said the interrupted run "killed, ... or ended by an error"
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "3", "--epochs-joint", "0", "--width",
            "4", "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    _ctrl_c_after_the_first_epoch(monkeypatch, argv)
    record = (run / ".xvertfast-train-command.json").read_text()
    other = tmp_path / "other"
    shutil.copytree(data, other)
    (other / "img0.png").unlink()
    for refused in ([*argv, "--resume", "--width", "8"], argv, [*argv[:1], str(other), *argv[2:], "--resume"]):
        assert main(refused) == 2
        assert (run / ".xvertfast-train-command.json").read_text() == record, refused
    capsys.readouterr()
    assert train_status(str(run)).stopped == "interrupted"
    assert main(["status", str(run)]) == 0
    assert "  not running: interrupted (Ctrl-C, SIGTERM or SIGHUP); to resume it: " in capsys.readouterr().out


def test_status_and_ctrl_c_count_the_crops_of_the_private_cache(tmp_path, capsys, monkeypatch):
    """A run beside a RUN_DIR/cache it cannot write (a read-only shared one) preprocesses into
    RUN_DIR/private-cache: stopped by Ctrl-C, it said "no image was preprocessed yet", and status
    counted cache/ alone ("holds 0 image crop files so far")."""
    from xvertfast.train import data as train_data

    data, run = write_images(tmp_path / "data", n=2), tmp_path / "run"
    monkeypatch.setattr(train_data, "_unwritable", lambda folder: "read-only file system"
                        if folder == str(run / "cache") else None)  # fmt: skip
    _ctrl_c_at_the_second_image(monkeypatch)
    argv = ["train", str(data), "-o", str(run), "--stages", "1", "--epochs-gc", "1", "--epochs-joint", "0",
            "--width", "4", "--depth", "2", "--roi-size", "32", "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "no epoch had finished; the images preprocessed so far are kept in " \
           f"{run / 'private-cache'}; add --resume" in err, err
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert f"\n  {run / 'private-cache'} holds 1 image crop file (of its images that cache, which it could not " \
           "write, lacked)\n" in said, said
    assert train_status(str(run)).preprocessed_private == 1


def _ctrl_c_at_the_second_image(monkeypatch):
    """A run started next is stopped (Ctrl-C) as it preprocesses its second image: before its first epoch."""
    from xvertfast.train import data as train_data

    real, seen = train_data._image_pairs, []

    def ctrl_c_at_the_second_image(*args, **kwargs):
        seen.append(args[0])
        if len(seen) == 2:
            monkeypatch.setattr(train_data, "_image_pairs", real)  # (once)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_data, "_image_pairs", ctrl_c_at_the_second_image)


def test_status_gives_the_command_that_resumes_a_run_stopped_before_its_first_epoch(tmp_path, capsys, monkeypatch):
    # the command line was recorded with the first epoch's checkpoint only: a run stopped while it
    # preprocessed its images (hours for an archive) got "xvertfast train DATA ... -o RUN --resume (its
    # data and options as first given: they are not recorded here)", every option to be typed again
    write_images(tmp_path / "data")
    (tmp_path / "rois.csv").write_text("file,upper_row,upper_col,lower_row,lower_col\nnone.png,20,15,50,60\n")
    monkeypatch.chdir(tmp_path)
    argv = ["train", "data", "-o", "run", "--stages", "1", "--epochs-gc", "2", "--epochs-joint", "0", "--width", "4",
            "--depth", "2", "--roi-size", "32", "--batch-size", "2", "-q", "--device", "cpu"]  # fmt: skip
    _ctrl_c_at_the_second_image(monkeypatch)
    assert main(argv) == 130
    # a start that could not begin (a --rois row naming no input) leaves the command of the run there
    assert main(["train", "data", "-o", "run", "-q", "--device", "cpu", "--rois", "rois.csv"]) == 2
    capsys.readouterr()
    assert main(["status", "run"]) == 0
    said = capsys.readouterr().out
    command = f"cd {tmp_path} && xvertfast train {' '.join(argv[1:])} --resume"
    assert "no epoch finished yet" in said and f"to resume it: {command}\n" in said, said
    assert "  not running: interrupted (Ctrl-C, SIGTERM or SIGHUP); " in said, said  # (the start refused changed nothing)
    assert main(command.split(" && xvertfast ")[1].split()) == 0
    assert train_status("run").finished


def test_a_run_started_from_python_before_its_first_epoch_gives_no_earlier_start_s_command(tmp_path, capsys,
                                                                                          monkeypatch):  # fmt: skip
    # its options are not known, and an earlier start's may differ (nothing is checked before the first
    # epoch): that command would resume another run than this one
    from xvertfast.train.run_folder import COMMAND_FILE

    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    _ctrl_c_at_the_second_image(monkeypatch)
    assert main(["train", "data", "-o", "run", "-q", "--device", "cpu", "--width", "8"]) == 130
    train(["data"], "run", CONFIG, stop_after_epochs=0, progress=False, log=lambda m: None)
    capsys.readouterr()
    assert main(["status", "run"]) == 0
    said = capsys.readouterr().out
    assert "no epoch finished yet" in said and "xvertfast train DATA ... -o run --resume (its data and options" in said
    (tmp_path / "run" / COMMAND_FILE).write_text('{"command": ["not", "a line"]}')  # edited, or cut short
    assert main(["status", "run"]) == 0 and "xvertfast train DATA ... -o run --resume" in capsys.readouterr().out


def test_one_epoch_left_is_said_in_the_singular(tmp_path, capsys):
    # "at most 1 epochs to go", at the end of every run
    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    train([str(data)], str(run), CONFIG, stop_after_epochs=7, progress=False, log=lambda m: None)  # of 2 x (2 + 2)
    assert main(["status", str(run)]) == 0
    assert "  at most 1 epoch to go, about " in capsys.readouterr().out


def test_a_damaged_checkpoint_is_named(tmp_path, capsys):
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint" / "state.json").write_text("{not json")
    assert main(["status", str(tmp_path / "run")]) == 2
    assert "state.json" in capsys.readouterr().err


def test_a_state_json_that_is_not_a_file_is_named(tmp_path, capsys):
    # status took it for a run before its first epoch, while train --resume goes on from it (and fails)
    (tmp_path / "run" / "checkpoint" / "state.json").mkdir(parents=True)
    assert main(["status", str(tmp_path / "run")]) == 2
    assert "state.json" in capsys.readouterr().err


def test_status_says_whether_the_run_trains_now(tmp_path, capsys):
    # a run killed (kill -9, its node lost, out of time) and one in a long epoch looked the same:
    # only "last written 40 min ago" told them apart, by a guess at how long an epoch takes
    import signal
    import subprocess
    import sys

    from xvertfast.train.loop import LOCK_FILE

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    train([str(data)], str(run), CONFIG, stop_after_epochs=1, progress=False, log=lambda m: None)
    assert train_status(str(run)).running is False
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert "  not running: stopped before the end (killed, its node lost, out of time, or ended by an error)" in said
    assert f"xvertfast train DATA ... -o {run} --resume (" in said
    files = sorted(os.listdir(run))
    child = ("import sys, time\n"  # holds the run's lock as a run does
             "from xvertfast.resume import hold_lock\n"
             "lock = hold_lock(sys.argv[1])\n"
             "print('running' if lock else 'refused', flush=True)\n"
             "time.sleep(300)\n")  # fmt: skip
    running = subprocess.Popen([sys.executable, "-c", child, str(run / LOCK_FILE)], stdout=subprocess.PIPE, text=True)
    try:
        assert running.stdout.readline() == "running\n"
        assert train_status(str(run)).running is True
        assert main(["status", str(run)]) == 0
        said = capsys.readouterr().out
        assert f"  running now (it holds {run / LOCK_FILE})" in said and "not running" not in said
        assert main(["status", str(run), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["running"] is True
        assert sorted(os.listdir(run)) == files
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    assert train_status(str(run)).running is False


def test_a_run_starting_while_status_looks_at_its_lock_starts(tmp_path, monkeypatch):
    # status looks at the lock by taking it shared for a moment: a run starting in that moment was
    # refused as if another ran ("another xvertfast train is running in RUN_DIR")
    from tests.conftest import let_go_when_waited_for
    from xvertfast.resume import hold_lock
    from xvertfast.train.loop import LOCK_FILE, _lock_run_dir

    (tmp_path / "run").mkdir()
    look = hold_lock(str(tmp_path / "run" / LOCK_FILE), shared=True)
    let_go_when_waited_for(monkeypatch, look)
    _lock_run_dir(str(tmp_path / "run"))[0].close()


def test_a_start_waiting_for_the_lock_of_one_refused_meanwhile_holds_the_folder_s(tmp_path, monkeypatch):
    # a start waiting for the lock of another, which is refused meanwhile (no image found) and removes its lock
    # file, was left holding the lock of the removed file: a third start made a new one and trained in the folder
    from tests.conftest import let_go_when_waited_for
    from xvertfast.resume import hold_lock
    from xvertfast.train.loop import LOCK_FILE, _lock_run_dir

    (tmp_path / "run").mkdir()
    path = str(tmp_path / "run" / LOCK_FILE)
    other = hold_lock(path)

    class Refused:  # the other start, refused: its lock file removed, then closed
        closed = False

        def close(self):
            os.remove(path)
            other.close()
            self.closed = True

    let_go_when_waited_for(monkeypatch, Refused())
    lock, made, _ = _lock_run_dir(str(tmp_path / "run"))
    try:
        assert os.path.exists(path) and os.path.samestat(os.fstat(lock.fileno()), os.stat(path))
        assert hold_lock(path) is None  # (a third start is kept out)
        assert made  # (the file it holds is its own: removed where it is refused in turn)
    finally:
        lock.close()


@pytest.mark.parametrize("made_by_the_other", ["lock file", "run folder"])
def test_a_start_refused_after_waiting_for_one_refused_leaves_the_folder_as_it_was(tmp_path, monkeypatch,
                                                                                    made_by_the_other):  # fmt: skip
    # two starts in a folder made for them (`mkdir -p run`), the first holding its lock, both refused (no image
    # found): the second looked for the lock file before waiting, found the first's, so left the one it made
    # again behind; and where the first had made the run folder and removed it, the second said "cannot
    # write into the run folder" where it is refused for its images, as the first
    from tests.conftest import let_go_when_waited_for
    from xvertfast.io.files import NothingFound
    from xvertfast.resume import hold_lock
    from xvertfast.train.loop import LOCK_FILE

    (tmp_path / "none").mkdir()
    run = tmp_path / "new" / "run"
    run.mkdir(parents=True)
    path = str(run / LOCK_FILE)
    other = hold_lock(path)

    class Refused:  # the first start, refused: what it made removed, then its lock closed
        closed = False

        def close(self):
            if made_by_the_other == "run folder":
                shutil.rmtree(tmp_path / "new")
            else:
                os.remove(path)
            other.close()
            self.closed = True

    let_go_when_waited_for(monkeypatch, Refused())
    with pytest.raises(NothingFound):
        train([str(tmp_path / "none")], str(run), CONFIG, progress=False, log=lambda m: None)
    if made_by_the_other == "run folder":  # (made again by the second: its own, removed; it looked before it waited)
        assert not (tmp_path / "new").exists()
    else:
        assert os.listdir(run) == []


def _two_starts(monkeypatch, first, second, first_in_a_folder_made_by_the_second=False) -> list:
    """What ``first()`` and ``second()``, two starts into one RUN_DIR, raised (None where nothing), the second
    run in a thread and waiting for RUN_DIR's lock (on a fake clock: no sleep) until the first has
    returned or raised. The second starts as the first holds the lock (as it records its command);
    ``first_in_a_folder_made_by_the_second``: the second starts first, and the first takes the lock
    once the second has made RUN_DIR, before the second takes it."""
    import threading
    import types

    from xvertfast import resume
    from xvertfast.train import loop

    holds, made, waits, done = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    raised, record, create = [None, None], loop.record_command, loop._create

    def run(k, start):
        try:
            start()
        except Exception as exc:
            raised[k] = exc

    thread = threading.Thread(target=run, args=(1, second))

    def recorded(*args):  # (the first start, holding its lock: the second waits for it)
        if threading.current_thread() is not thread and not holds.is_set():
            holds.set()
            if not first_in_a_folder_made_by_the_second:
                thread.start()
            assert waits.wait(30)
        record(*args)

    def created(path):  # (the second start, RUN_DIR made: the first takes the lock now)
        if threading.current_thread() is thread and first_in_a_folder_made_by_the_second and not holds.is_set():
            made.set()
            assert holds.wait(30)
        return create(path)

    def sleep(seconds):  # (the second start, waiting for the lock)
        waits.set()
        assert done.wait(30)

    monkeypatch.setattr(loop, "record_command", recorded)
    monkeypatch.setattr(loop, "_create", created)
    monkeypatch.setattr(resume, "time", types.SimpleNamespace(monotonic=lambda: 0.0, sleep=sleep))
    if first_in_a_folder_made_by_the_second:
        thread.start()
        assert made.wait(30)
    try:
        run(0, first)
    finally:
        done.set()
        thread.join(30)
    assert waits.is_set() and not thread.is_alive()  # (the second waited for the first)
    return raised


def test_a_start_refused_after_one_that_made_the_run_folder_removes_the_folder_it_made_again(tmp_path, monkeypatch):
    # two starts into a new RUN_DIR, both refused (no image found): the first made RUN_DIR and removed it; the
    # second, which had looked for it before it waited for the lock (the first's, there), made it again as it
    # took the lock and left it behind, empty, where it was refused in turn
    from xvertfast.io.files import NothingFound

    (tmp_path / "none").mkdir()

    def start():
        train([str(tmp_path / "none")], str(tmp_path / "new" / "run"), CONFIG, progress=False, log=lambda m: None)

    first, second = _two_starts(monkeypatch, start, start)
    assert isinstance(first, NothingFound) and isinstance(second, NothingFound), (first, second)
    assert not (tmp_path / "new").exists()


def test_a_refused_start_leaves_the_run_another_started_in_the_folder_it_made(tmp_path, monkeypatch):
    # the same command started twice: one made RUN_DIR, then waited for its lock, which the other took first
    # and trained an epoch under; refused in turn (a run is there: not a resume), it removed RUN_DIR as its
    # own, and the other's run with it
    data, run = write_images(tmp_path / "data"), tmp_path / "new" / "run"

    def start():
        train([str(data)], str(run), CONFIG, stop_after_epochs=1, progress=False, log=lambda m: None)

    first, second = _two_starts(monkeypatch, start, start, first_in_a_folder_made_by_the_second=True)
    assert first is None and "holds a checkpoint" in str(second), (first, second)
    status = train_status(str(run))
    assert status is not None and (status.stage, status.epoch) == (1, 1)
    assert (run / "checkpoint" / "state.json").exists()


def test_status_loads_no_torch(tmp_path):
    # `xvertfast status` spent 1.2 s of its 1.5-2 s importing torch, to read a JSON file and a header:
    # a user polling a run, or the shards of a job, from a login node waited for it every time
    import subprocess
    import sys

    from xvertfast.train.run_folder import record_command

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    train([str(data)], str(run), CONFIG, stop_after_epochs=3, progress=False, log=lambda m: None)
    (tmp_path / "preparing").mkdir()
    (tmp_path / "preparing" / ".xvertfast-train.lock").touch()  # a run preprocessing its images
    preparing = tmp_path / "preparing"
    record_command(str(preparing), {"command": f"xvertfast train /d -o {preparing}", "cwd": None})  # (its command)
    assert main(["preprocess", str(data), "-o", str(tmp_path / "job"), "-q"]) == 0  # a batch job's folder
    code = ("import sys\n"
            "from xvertfast.cli import main\n"
            "codes = [main(['status', folder]) for folder in sys.argv[1:]]\n"
            "print(codes, 'torch' in sys.modules)\n")  # fmt: skip
    folders = [str(run), str(tmp_path / "preparing"), str(tmp_path / "job"), str(data)]  # (data: no job's, said so)
    out = subprocess.run([sys.executable, "-c", code, *folders], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "[0, 0, 0, 2] False", out.stdout + out.stderr
    assert "stage 1 of 2, not finished" in out.stdout and "holds 0 image crop files so far" in out.stdout
    assert f"to resume it: xvertfast train /d -o {preparing} --resume\n" in out.stdout
    assert "xvertfast preprocess" in out.stdout and "12 output files done" in out.stdout


def test_a_preparing_runs_status_reads_no_file_per_cached_image(tmp_path, monkeypatch):
    # at stage 0 status took the time of every cached crop to say when the run last wrote: 20 000
    # stats (0.6 s on a local disk, far more on a cluster's network file system) for one line
    run = tmp_path / "run"
    (run / "cache").mkdir(parents=True)
    (run / ".xvertfast-train.lock").touch()
    os.utime(run / ".xvertfast-train.lock", (1e9, 1e9))  # the run began long ago
    for i in range(50):
        (run / "cache" / f"{i:032x}.npy").touch()
    (run / "cache" / f"rois-{0:032x}.npy").touch()  # the gathered set, not an image
    (run / "cache" / f".{1:032x}.npy.x1y2.part").touch()  # a kill's temporary, not an image
    newest = os.stat(run / "cache" / f"{49:032x}.npy").st_mtime
    real_stat, stats = os.stat, []

    def counted(path, *args, **kwargs):
        stats.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted)
    status = train_status(str(run))
    assert status.preprocessed == 50 and status.modified >= newest
    assert len(stats) <= 5, stats  # a few (the lock, the cache folder), whatever the number of images


@pytest.mark.parametrize("argv", [
    ["train", "my data", "-o", "run dir", "--lr=1e-4"],  # spaces, an = form
    ["train", "--output=run", "data", "--resume"],  # --resume given: not added twice
    ["train", "-o", "run", "--", "--resume"],  # an input named --resume, after --
    ["train", "d'q$x", "-orun", "--rois", "r;o.csv", "--init", "./m"],  # shell characters, -oVALUE
])  # fmt: skip
@pytest.mark.parametrize("program", [["xvertfast"], ["/opt/my python/bin/python", "-m", "xvertfast"]])
def test_the_resume_command_status_gives_parses_as_the_run_with_resume(argv, program):
    # status rebuilds the command from the recorded one: it must run the same training, with --resume
    import argparse
    import shlex
    from types import SimpleNamespace

    from xvertfast.cli import _started_with, _train_resume_command, build_parser

    args = build_parser().parse_args(argv)
    recorded = _started_with(argparse.Namespace(argv=argv, program=program), args.data, args.output, args.rois)
    run = SimpleNamespace(command=recorded["command"], cwd="/the cwd/x", run_dir=os.path.join("/the cwd/x", args.output))
    words = shlex.split(_train_resume_command(run))
    assert words[:3] == ["cd", "/the cwd/x", "&&"] and words[3 : 3 + len(program)] == program
    again = build_parser().parse_args(words[3 + len(program) :])
    assert vars(again) == {**vars(args), "resume": True}
    # as typed, --resume after its options, as --help and the guide write it ("train --resume DATA -o RUN" before)
    end = argv.index("--") if "--" in argv else len(argv)
    assert words[3 + len(program) :] == (argv if "--resume" in argv[:end] else [*argv[:end], "--resume", *argv[end:]])
    # the run folder moved since (another name, another place): the command trains into it there
    moved = shlex.split(_train_resume_command(SimpleNamespace(**{**vars(run), "run_dir": "/else where/moved"})))
    again = build_parser().parse_args(moved[3 + len(program) :])
    assert vars(again) == {**vars(args), "resume": True, "output": "/else where/moved"}


def test_each_command_a_training_run_suggests_parses_as_what_it_says(tmp_path, capsys, monkeypatch):
    # status gave "to resume it: ... xvertfast train --resume data -o run ...", not the order --help and the guide
    # give (DATA, -o RUN_DIR, options, --resume): each command train and status suggest is parsed here, and the
    # resume and enhance commands are run as given; status of the finished run gave no enhance command, and a
    # model folder with a space in its name was not quoted in it
    import re
    import shlex

    from xvertfast import cli

    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    _ctrl_c_after_the_first_epoch(monkeypatch, list(_SHORT_RUN))
    capsys.readouterr()
    assert main(["status", "run"]) == 0
    said = capsys.readouterr().out
    with monkeypatch.context() as patch:  # a run whose command was not recorded (started from Python): a template
        patch.setattr(cli, "_train_resume_command", lambda run: None)
        assert main(["status", "run"]) == 0
    said += capsys.readouterr().out
    suggested = re.findall(r"(?:&& )?(xvertfast (?:train|enhance) [^`(\n]*)", said)
    assert len(suggested) == 2, said
    for command in suggested:
        words = shlex.split(command)
        args = cli.build_parser().parse_args(words[1:])
        assert words[-1] == "--resume" and args.resume and args.output == "run", command
    assert suggested[1].startswith("xvertfast train DATA ... -o run --resume"), suggested
    assert main(shlex.split(suggested[0])[1:]) == 0
    said = capsys.readouterr().out
    (enhance,) = re.findall(r"`(xvertfast enhance [^`]*)`", said)
    assert main(["status", "run"]) == 0  # (a finished run checked from elsewhere: the same command, what to do next)
    assert re.findall(r"`(xvertfast enhance [^`]*)`", capsys.readouterr().out) == [enhance]
    spaced = re.findall(r"`(xvertfast enhance [^`]*)`", cli._trained_line(os.path.join("my runs", "a")))
    assert cli.build_parser().parse_args(shlex.split(spaced[0])[1:]).model == os.path.join("my runs", "a", "model")
    words = shlex.split(enhance.replace("INPUT", "data").replace("OUT", "enhanced"))
    assert cli.build_parser().parse_args(words[1:]).model == os.path.join("run", "model"), enhance
    assert main([*words[1:], "-q", "--device", "cpu"]) == 0
    assert sorted(name for name in os.listdir("enhanced") if not name.startswith(".")) == sorted(os.listdir("data"))


def test_the_resume_command_of_a_moved_run_folder_trains_into_it_not_where_it_was(tmp_path, capsys, monkeypatch):
    # status gave the recorded command, "-o run": a run folder moved (copied to a cluster's scratch and back,
    # renamed) was resumed in the old place, or, that gone, a new run began there, from scratch, on --resume
    import shlex

    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    _ctrl_c_after_the_first_epoch(monkeypatch, list(_SHORT_RUN))
    shutil.move(tmp_path / "run", tmp_path / "moved")
    capsys.readouterr()
    assert main(["status", "moved"]) == 0
    said = capsys.readouterr().out
    command = said.split("to resume it: ")[1].strip()
    words = shlex.split(command)
    assert words[:3] == ["cd", str(tmp_path), "&&"] and words[words.index("-o") + 1] == str(tmp_path / "moved"), said
    assert main(words[4:]) == 0
    assert not (tmp_path / "run").exists() and train_status(str(tmp_path / "moved")).finished
    assert "resuming after stage 1, epoch 1" in capsys.readouterr().err


def _preparing_run(tmp_path, crops: int):
    """A run folder at stage 0 whose lock was taken long ago, its cache holding ``crops`` crop files."""
    run = tmp_path / "run"
    (run / "cache").mkdir(parents=True)
    (run / ".xvertfast-train.lock").touch()
    for i in range(crops):
        (run / "cache" / f"{i:032x}.npy").touch()
    for path in (run / ".xvertfast-train.lock", run / "cache"):
        os.utime(path, (1e9, 1e9))
    return run


def test_a_preparing_runs_status_does_not_call_other_crops_its_images(tmp_path, capsys):
    # "5 images so far" for a run of 2 images: the cache also holds crops of other images or of
    # old ROI centres (kept on purpose after an --rois edit, or a copied cache), which status
    # cannot tell from the run's own without hashing every input
    run = _preparing_run(tmp_path, 5)
    assert train_status(str(run)).linked is None  # (a folder, not a link)
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert "5 images" not in said, said
    assert f"{run / 'cache'} holds 5 image crop files so far (one for each of its images preprocessed, and any " \
           "kept there of other images or ROI centres)" in said, said  # fmt: skip


def test_a_preparing_runs_last_write_counts_the_set_being_gathered(tmp_path):
    # gathering the ROI set (minutes for a large run) writes one temporary, which does not change
    # the cache folder's time: a live run was "last written 10 min ago"
    import time

    run = _preparing_run(tmp_path, 3)
    (run / "cache" / f".rois-{7:032x}.npy.ab12cd.part").write_bytes(b"\0" * 8)  # being written now
    os.utime(run / "cache", (1e9, 1e9))
    assert train_status(str(run)).modified > time.time() - 60


def test_a_preparing_run_on_a_linked_cache_counts_only_the_crops_it_took_as_a_stopped_one_says(tmp_path, capsys):
    """RUN_DIR/cache a link to a shared cache: status counted every crop there ("holds 5 image crop files"
    of a run that had taken 2, or none) and took the shared folder's time, which other runs set, as the
    run's last write, while a run stopped then named the link as keeping its preprocessing only where it
    held crops the run took (crop_folders). Both now count by that one rule."""
    from xvertfast.train.run_folder import LINKED_CROPS, crop_folders, preprocessing_kept, recording_linked_crops

    shared, run = tmp_path / "shared", _preparing_run(tmp_path, 0)
    shared.mkdir()
    for i in range(5):  # other runs' crops, written just now
        (shared / f"{i:032x}.npy").touch()
    (run / "cache").rmdir()
    (run / "cache").symlink_to(shared)
    assert train_status(str(run)).preprocessed == 0 and crop_folders(str(run)) == []  # took none
    assert train_status(str(run)).linked == str(shared.resolve())  # (status --json's "linked": the CLI reads it)
    with recording_linked_crops(str(run)) as taken:  # as train records them: two found there, one since gone
        for i in (1, 3, 7):
            taken(str(run / "cache" / f"{i:032x}.npy"))
    os.utime(run / LINKED_CROPS, (1e9, 1e9))  # long ago
    (shared / f".rois-{9:032x}.npy.abcd1234.part").touch()  # another run gathering there now: not this one's write
    status = train_status(str(run))
    assert (status.preprocessed, status.modified) == (2, 1e9), status
    assert crop_folders(str(run)) == [str(run / "cache")]
    assert main(["status", str(run)]) == 0
    said = capsys.readouterr().out
    assert f"\n  {run / 'cache'} holds 2 image crop files this run took so far (found there or preprocessed; it is " \
           f"a link to {shared.resolve()}, whose other crops are other runs')\n" in said, said
    assert " days ago\n" in said, said  # (not the shared folder's time: other runs wrote there just now)
    for i in (1, 3):
        (shared / f"{i:032x}.npy").unlink()
    assert train_status(str(run)).preprocessed == 0 and crop_folders(str(run)) == []
    assert preprocessing_kept(str(run)) == "no epoch had finished, no image was preprocessed yet"


def test_a_preparing_run_on_a_linked_cache_counts_its_own_set_being_gathered_as_written(tmp_path):
    """RUN_DIR/cache a link: status's "last written" came from LINKED_CROPS alone, untouched for the
    minutes the run gathers its set into the shared folder, so a live run (on NFS, where locks may not
    work, the one sign) read "last written N min ago". The set's name is recorded before it is gathered
    (load_rois's taken): its temporary, and the set once written, count; another run's do not."""
    import time

    from xvertfast.train.run_folder import LINKED_CROPS, recording_linked_crops

    shared, run = tmp_path / "shared", _preparing_run(tmp_path, 0)
    shared.mkdir()
    (run / "cache").rmdir()
    (run / "cache").symlink_to(shared)
    (shared / f"{1:032x}.npy").touch()
    with recording_linked_crops(str(run)) as taken:
        for name in (f"{1:032x}.npy", f"rois-{7:032x}.npy"):  # a crop, then the set about to be gathered
            taken(str(run / "cache" / name))
    os.utime(run / LINKED_CROPS, (1e9, 1e9))  # recorded long ago
    other = shared / f".rois-{9:032x}.npy.abcd1234.part"  # another run's, being gathered now
    other.touch()
    assert train_status(str(run)).modified == 1e9
    mine = shared / f".rois-{7:032x}.npy.ab12cd34.part"
    mine.write_bytes(b"\0" * 8)  # being written now
    status = train_status(str(run))
    assert status.preprocessed == 1 and status.modified > time.time() - 60, status
    os.utime(mine, (2e9, 2e9))
    mine.rename(shared / f"rois-{7:032x}.npy")  # written: the set's own time
    assert train_status(str(run)).modified == 2e9


@pytest.mark.parametrize("damaged", [b"abcd", b"ab\xff\n", b"ab\xff"])
def test_a_damaged_record_of_a_linked_caches_crops_loses_no_later_name_and_fails_no_message(tmp_path, damaged):
    """RUN_DIR/.xvertfast-train-linked-crops with its last line cut short (a full disk): the next start
    appended its first name to it ("abcd1111...1111.npy"), no name, so a run that took that crop was
    said to have preprocessed no image; a line of bytes that are no UTF-8 raised UnicodeDecodeError
    out of train, status and the stopped run's message (crop_folders must not fail)."""
    from xvertfast.train.run_folder import LINKED_CROPS, crop_folders, preprocessing_kept, recording_linked_crops

    shared, run = tmp_path / "shared", _preparing_run(tmp_path, 0)
    shared.mkdir()
    (run / "cache").rmdir()
    (run / "cache").symlink_to(shared)
    (run / LINKED_CROPS).write_bytes(damaged)
    (shared / f"{1:032x}.npy").touch()
    with recording_linked_crops(str(run)) as taken:  # the next start takes a crop there
        taken(str(run / "cache" / f"{1:032x}.npy"))
    assert train_status(str(run)).preprocessed == 1
    assert crop_folders(str(run)) == [str(run / "cache")]
    assert preprocessing_kept(str(run)) == \
        f"no epoch had finished; the images preprocessed so far are kept in {run / 'cache'}"


def _strict_json(text: str):
    """``text`` parsed as standard JSON: NaN and Infinity, which Python's json accepts, refused."""
    def refuse(constant):
        raise ValueError(f"{constant} is not standard JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_run_without_validation_images_writes_standard_json_and_reads_it_back(tmp_path, capsys):
    """--val-fraction 0: status --json printed "val_loss": NaN and state.json held "best_val": Infinity,
    which jq and JavaScript refuse. They are null now, read back as the numbers they stand for (a
    resume compares scores with the best one); a state.json with Infinity from before still resumes."""
    from safetensors import safe_open

    from xvertfast.train import TrainConfig

    data, run = write_images(tmp_path / "data"), tmp_path / "run"
    config = TrainConfig(**{**CONFIG.__dict__, "stages": 1, "epochs_gc": 1, "epochs_joint": 2, "val_fraction": 0.0})
    quiet = {"progress": False, "log": lambda m: None}
    train([str(data)], str(run), config, stop_after_epochs=1, **quiet)  # a gc epoch: no best score yet
    state = _strict_json((run / "checkpoint" / "state.json").read_text())
    assert state["progress"]["history"][0]["val_loss"] is None
    with safe_open(str(run / "checkpoint" / "epoch.safetensors"), framework="numpy") as f:
        stored = _strict_json(f.metadata()["state"])
    # no best score yet: the largest float, which an older xvertfast's resume compares with (null: TypeError)
    for best in (state["progress"]["best_val"], stored["progress"]["best_val"]):
        assert isinstance(best, float) and 1e9 < best, best
    assert main(["status", str(run), "--json"]) == 0
    assert _strict_json(capsys.readouterr().out)[0]["last"]["val_loss"] is None
    copies = {"older": ("Infinity", "NaN"), "null": ("null", "null")}  # as an older xvertfast wrote it; a newer one
    for name, (best, val) in copies.items():
        shutil.copytree(run, tmp_path / name)
        path = tmp_path / name / "checkpoint" / "state.json"
        path.write_text(path.read_text().replace(f'"best_val": {json.dumps(sys.float_info.max)}', f'"best_val": {best}')
                        .replace('"val_loss": null', f'"val_loss": {val}'))  # fmt: skip
        assert f'"best_val": {best}' in path.read_text()
    for folder in (run, *(tmp_path / name for name in copies)):
        train([str(data)], str(folder), config, stop_after_epochs=1, resume=True, **quiet)  # a joint epoch: a best
        assert _strict_json((folder / "checkpoint" / "state.json").read_text())["progress"]["best_val"] > 0
        train([str(data)], str(folder), config, resume=True, **quiet)
        assert train_status(str(folder)).finished


def test_train_holds_run_dirs_lock_from_its_start_as_the_jobs_do(tmp_path, monkeypatch, capsys):
    # `train --resume` took RUN_DIR's lock only inside train(), after torch, the --init model and the
    # device loaded (seconds): meanwhile status said "not running: interrupted; to resume it: ...".
    # Held from the command's start now (lock_early_at), taken over by train(), let go at the end.
    # Meanwhile status --json gave "running": true with the start before's "stopped": "interrupted"
    # and its command: the new start, not recorded yet, is "starting" (as a job's), those null
    from xvertfast import cli
    from xvertfast.resume import lock_held
    from xvertfast.train.run_folder import INTERRUPTED, LOCK_FILE, record_command, record_stop

    class Stop(Exception):
        pass

    run, data = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    data.mkdir()
    (data / "a.png").write_bytes(b"x")
    (run / LOCK_FILE).touch()  # an earlier run's, stopped by Ctrl-C
    before = {"command": f"xvertfast train {data} -o {run} --width 8", "cwd": str(tmp_path)}
    record_command(str(run), before)
    record_stop(str(run), INTERRUPTED)
    held, seen = [], []

    def loading() -> None:
        held.append(lock_held(str(run / LOCK_FILE)))
        assert main(["status", str(run), "--json"]) == 0
        seen.append(json.loads(capsys.readouterr().out)[0])
        assert main(["status", str(run)]) == 0
        seen.append(capsys.readouterr().out)
        raise Stop

    monkeypatch.setattr(cli, "_load_torch", loading)
    with pytest.raises(Stop):
        main(["train", str(data), "-o", str(run), "--resume", "-q"])
    assert held == [True] and not lock_held(str(run / LOCK_FILE))
    record, said = seen
    assert (record["running"], record["stopped"], record["command"], record["cwd"]) == (True, None, None, None), record
    assert record["starting"] is True
    assert f"  running now (it holds {run / LOCK_FILE}) (starting: its command not recorded yet)\n" in said, said
    assert "interrupted" not in said and "--width 8" not in said, said
    # the start that did not begin leaves the earlier start's record as it was
    assert main(["status", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert (record["running"], record["starting"], record["stopped"]) == (False, False, INTERRUPTED), record
    assert (record["command"], record["cwd"]) == (before["command"], before["cwd"]), record


def test_status_gives_a_resumed_or_restarted_run_s_own_command_from_its_start(tmp_path, capsys, monkeypatch):
    # a resumed run's command came from checkpoint/state.json, the earlier start's (without its --lr 0.0005)
    # until the resumed run's first epoch ended; and a start after one killed (kill -9: no record of its stop)
    # was given the killed one's command as it loaded, not "starting"
    from xvertfast import cli
    from xvertfast.train import loop
    from xvertfast.train.run_folder import COMMAND_FILE

    class Killed(BaseException):  # (as kill -9: no record of the stop; the lock goes with the process)
        pass

    write_images(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    argv = list(_SHORT_RUN)
    _ctrl_c_after_the_first_epoch(monkeypatch, argv)
    resumed = [*argv, "--resume", "--lr", "0.0005"]  # (the one setting a resume may change)
    seen = []

    def killed_as_it_loads_its_images(*args, **kwargs):
        assert main(["status", "run", "--json"]) == 0
        seen.append(json.loads(capsys.readouterr().out)[0])
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(loop, "load_rois", killed_as_it_loads_its_images)
        with pytest.raises(Killed):
            main(resumed)
    record = seen[0]
    assert (record["running"], record["starting"], record["stopped"]) == (True, False, None), record
    assert record["command"] == f"xvertfast {' '.join(resumed)}" and record["cwd"] == str(tmp_path), record
    assert main(["status", "run"]) == 0  # killed: its command resumes the run
    said = capsys.readouterr().out
    assert f"not running: stopped before the end (killed, its node lost, out of time, or ended by an error); to " \
           f"resume it: cd {tmp_path} && xvertfast {' '.join(resumed)}\n" in said, said
    recorded = os.stat(os.path.join("run", COMMAND_FILE)).st_mtime - 5  # (the killed start recorded it before now)
    os.utime(os.path.join("run", COMMAND_FILE), (recorded, recorded))

    def loading() -> None:  # the next start, loading torch: status said "running" with the killed start's command
        assert main(["status", "run", "--json"]) == 0
        seen.append(json.loads(capsys.readouterr().out)[0])
        raise Killed

    monkeypatch.setattr(cli, "_load_torch", loading)
    with pytest.raises(Killed):
        main(resumed)
    record = seen[1]
    assert (record["running"], record["starting"], record["command"], record["cwd"]) == (True, True, None, None), record


def test_a_refused_start_in_a_folder_made_for_it_leaves_the_folder_as_it_was(tmp_path, capsys, monkeypatch):
    # `mkdir -p run` (a job script), then a start that could not begin (no image found; none readable, on the
    # CLI with --resume and from Python) left run/.xvertfast-train.lock and an empty run/checkpoint/: status
    # then gave it as a run "stopped before the end; to resume it, ... --resume", and so did the next start
    import numpy as np
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "none").mkdir()
    (tmp_path / "blank").mkdir()
    Image.fromarray(np.full((40, 40), 9, np.uint8)).save(tmp_path / "blank" / "a.png")  # (skipped: constant)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")  # (the user's: kept)
    refused = [(["train", "none", "-o", "run", "--resume"], 1), (["train", "blank", "-o", "run", "--resume"], 2),
               (["train", "blank", "-o", "run"], 2)]  # fmt: skip
    for argv, code in refused:
        assert main(argv) == code, argv
        assert sorted(os.listdir(run)) == ["notes.txt"], argv
    capsys.readouterr()
    with pytest.raises(ValueError, match="no readable training image"):
        train(["blank"], "run", CONFIG, resume=True, progress=False, log=lambda m: None)
    assert sorted(os.listdir(run)) == ["notes.txt"]
    assert main(["status", "run"]) == 2 and "nor a training run" in capsys.readouterr().err


def test_a_refused_start_leaves_no_lock_file_where_an_open_file_cannot_be_removed(tmp_path, monkeypatch):
    # Windows deletes no open file: a start that could not begin removed its lock file while still holding it
    # (refused, the error suppressed) and closed it only later, so the folder kept it: the next start took the
    # folder for a run's, and status said it "cannot tell". The same for a RUN_DIR the start made itself.
    import xvertfast.train.loop as loop
    from xvertfast.io.files import NothingFound
    from xvertfast.train.run_folder import LOCK_FILE

    opened = []

    def hold_lock(path, *args, **kwargs):
        lock = real_hold(path, *args, **kwargs)
        opened.append(lock)
        return lock

    def remove(path, *args, **kwargs):  # (by its name alone too: shutil.rmtree unlinks so, with a dir_fd)
        if os.path.basename(os.fsdecode(path)) == LOCK_FILE and not all(lock.closed for lock in opened):
            raise PermissionError(13, "The process cannot access the file because it is being used", str(path))
        return real_remove(path, *args, **kwargs)

    real_hold, real_remove = loop.hold_lock, os.remove
    monkeypatch.setattr(loop, "hold_lock", hold_lock)
    monkeypatch.setattr(os, "remove", remove)
    monkeypatch.setattr(os, "unlink", remove)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # (no flock there)
    (tmp_path / "none").mkdir()
    run = tmp_path / "run"
    run.mkdir()  # (`mkdir -p run` in a job script)
    (run / "notes.txt").write_text("mine")
    made = tmp_path / "new" / "run"
    for folder in (run, made):
        with pytest.raises(NothingFound):
            train([str(tmp_path / "none")], str(folder), CONFIG, progress=False, log=lambda m: None)
    assert opened and all(lock.closed for lock in opened)
    assert sorted(os.listdir(run)) == ["notes.txt"] and not (tmp_path / "new").exists()


def test_a_refused_start_leaves_the_run_s_last_write_as_it_was(tmp_path, capsys, monkeypatch):
    # a start sets the time of RUN_DIR's lock file as it takes it, and a refused one left it so: a run with no
    # finished epoch, dead for a day, read "last written 28 s ago" after a `train --resume --init nowhere`
    import re
    import time

    from xvertfast.io.files import NothingFound
    from xvertfast.train.run_folder import COMMAND_FILE, LOCK_FILE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()  # (no images in it)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).touch()
    (tmp_path / "run" / COMMAND_FILE).write_text(json.dumps({"command": "xvertfast train data -o run", "cwd": "."}))
    a_day_ago = time.time() - 24 * 3600
    for name in (LOCK_FILE, COMMAND_FILE):
        os.utime(tmp_path / "run" / name, (a_day_ago, a_day_ago))

    def last_written() -> str:
        assert main(["status", "run"]) == 0
        return re.search(r"last written (.*) ago", capsys.readouterr().out)[1]

    assert last_written() == "24.0 h"
    assert main(["train", "data", "-o", "run", "--resume", "--init", "nowhere"]) == 2  # before train() takes the lock
    assert "--init: nowhere: no such folder" in capsys.readouterr().err
    assert last_written() == "24.0 h"
    assert main(["train", "data", "-o", "run", "--resume"]) == 1  # refused by train(), the lock taken over
    assert "no image files found in data" in capsys.readouterr().err
    assert last_written() == "24.0 h"
    with pytest.raises(NothingFound):  # a start from Python, which marks the lock as it takes it
        train(["data"], "run", CONFIG, resume=True, progress=False, log=lambda m: None)
    assert last_written() == "24.0 h"
