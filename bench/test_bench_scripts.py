"""Checks of the bench scripts themselves (not timings): their --help, and that the tables they
print say what their headers say. Part of the bench smoke check in CI.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


# Each script's `--help`, run as `python bench/NAME.py --help` starts it (its folder first on the
# path, no bench module loaded yet), all in one child process: one torch import for them all, not
# one a script (about 4 CPU seconds each, a minute of the bench smoke check).
_HELPS = """
import contextlib, io, json, os, runpy, sys, traceback
here, names = sys.argv[1], sys.argv[2:]
path, said = [here, *sys.path[1:]], {}
for name in names:
    sys.path[:] = path
    for module in [m for m in sys.modules if m == "bench" or m.startswith("bench.")]:
        del sys.modules[module]
    sys.argv = [os.path.join(here, name), "--help"]
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as stop:
            code = 0 if stop.code is None else stop.code
        except BaseException:
            code = traceback.format_exc()
    said[name] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(said))
"""


@functools.lru_cache(maxsize=None)
def _helps() -> dict:
    out = subprocess.run([sys.executable, "-c", _HELPS, HERE, *SCRIPTS], capture_output=True, text=True,
                         timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def _help(script: str) -> str:
    code, out, err = _helps()[script]
    assert code == 0, f"bench/{script} --help: {code} {err}"
    return out


def _bench(name: str, group: str, median_s: float) -> dict:
    return {"name": name, "group": group, "stats": {"median": median_s}}


def test_report_help_says_what_it_measures():
    """report.py passes its other arguments to pytest; its own --help is not pytest's."""
    text = " ".join(_help("report.py").split())
    assert "speed-up over the named reference" in text and "passed to pytest" in text
    assert "--benchmark-json" not in text  # pytest's own help


def test_report_ratio_is_reference_time_over_xvertfast_time():
    from bench.report import table

    data = {"benchmarks": [_bench("test_op_xvertfast[cpu]", "op cpu", 0.002),
                           _bench("test_op_reference[cpu]", "op cpu", 0.010)]}  # fmt: skip
    assert "| op cpu | 2.0 | 10.0 | 5.0x |" in table(data)


def test_report_names_a_reference_that_did_not_run():
    """A group whose reference was skipped or failed is a row saying so, not left out."""
    from bench.report import table

    data = {"benchmarks": [_bench("test_gc_xvertfast[cpu]", "gc cpu", 0.002),
                           _bench("test_entropy_reference[cpu]", "entropy cpu", 0.5),
                           _bench("test_pool_xvertfast", "pool cpu", 0.001),
                           _bench("test_pool_reference", "pool cpu", 0.004)]}  # fmt: skip
    problems = {"test_gc_reference[cpu]": "failed: out of memory",
                "test_entropy_xvertfast[cpu]": "skipped: compiled extension not built",
                "test_pool_xvertfast": "failed: AssertionError: Tensor-likes are not close!"}  # fmt: skip
    rows = table(data, problems).splitlines()
    (gc,) = [r for r in rows if r.startswith("| gc cpu |")]
    assert gc.startswith("| gc cpu | 2.0 | - |") and "reference failed: out of memory" in gc
    (entropy,) = [r for r in rows if r.startswith("| entropy cpu |")]
    assert entropy.startswith("| entropy cpu | - | 500.0 |") and "xvertfast skipped: compiled extension" in entropy
    (pool,) = [r for r in rows if r.startswith("| pool cpu |")]  # a wrong result's time gives no speed-up
    assert "4.0x" not in pool and "xvertfast failed: AssertionError" in pool


def test_report_names_a_group_of_which_no_side_ran():
    # the CUDA groups without a GPU: both sides skipped, no benchmark data, and no row at all
    from bench.report import table

    data = {"benchmarks": [_bench("test_op_xvertfast[cpu]", "op cpu", 0.002),
                           _bench("test_op_reference[cpu]", "op cpu", 0.010)]}  # fmt: skip
    problems = {"test_op_xvertfast[cuda]": "skipped: needs a CUDA GPU", "test_op_reference[cuda]": "skipped: needs a CUDA GPU",
                "test_wls_torch_on_gpu": "skipped: needs a CUDA GPU"}  # fmt: skip
    rows = table(data, problems).splitlines()
    assert "| op cpu | 2.0 | 10.0 | 5.0x |" in rows
    assert ("| test_op_xvertfast[cuda] | - | - | none: xvertfast skipped: needs a CUDA GPU; reference skipped: needs a "
            "CUDA GPU |") in rows  # fmt: skip
    assert "| test_wls_torch_on_gpu | - | - | none: skipped: needs a CUDA GPU |" in rows
    assert len(rows) == 2 + 3


def _columns(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_enhance_throughput_table_has_its_header_and_a_speed_up_of_the_pipeline():
    """Its one row under the header RESULTS.md's tables have (images/s), the speed-up the
    sequential loop's time over the pipeline's."""
    from bench.enhance_throughput import table

    header, rule, row = table("4 x 256^2, cpu", 4, t_pipelined=2.0, t_sequential=4.0).splitlines()
    assert _columns(header) == ["setting", "pipelined (images/s)", "sequential (images/s)", "speed-up"]
    assert len(_columns(rule)) == 4 and _columns(row) == ["4 x 256^2, cpu", "2.00", "1.00", "2.00x"]


def test_shards_throughput_table_has_a_header_and_a_speed_up_of_the_shards():
    from bench.shards_throughput import table

    header, rule, row = table("4 x 256^2, 2 CPUs", 4, t_one=4.0, t_shards=8.0, shards="2 shards",
                              differing=3, worst=1).splitlines()  # fmt: skip
    assert _columns(header)[:4] == ["setting", "one job (images/s)", "2 shards (images/s)", "speed-up of the shards"]
    assert len(_columns(rule)) == len(_columns(header)) == len(_columns(row))
    assert _columns(row)[1:4] == ["1.00", "0.50", "0.50x"]  # the shards at half the one job's rate


def test_heading_names_the_device_and_the_command_as_given():
    from bench.report import heading

    line = heading("wls_table.py", ["--sizes", "128", "--device", "cpu"])
    assert line.startswith("CPU: ") and "; torch " in line
    assert line.endswith("`python bench/wls_table.py --sizes 128 --device cpu`")


SCRIPTS = sorted(name for name in os.listdir(HERE) if name.endswith(".py") and not name.startswith("test_")
                 and "__main__" in open(os.path.join(HERE, name)).read())  # fmt: skip


def test_every_script_option_has_help():
    """--help says what each option does: every add_argument of a bench script has a help text."""
    import ast

    assert len(SCRIPTS) >= 9, SCRIPTS
    for name in SCRIPTS:
        with open(os.path.join(HERE, name)) as f:
            tree = ast.parse(f.read())
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "add_argument":
                what = ast.literal_eval(call.args[0]) if call.args else "?"
                assert any(k.arg == "help" for k in call.keywords), f"bench/{name}: {what} has no help"


def test_every_script_help_gives_its_whole_description():
    """The docstring (what the script measures, how its table reads) is in --help, not cut."""
    import ast

    for name in SCRIPTS:
        with open(os.path.join(HERE, name)) as f:
            doc = ast.get_docstring(ast.parse(f.read()), clean=False)
        assert " ".join(doc.split()) in " ".join(_help(name).split()), f"bench/{name} --help"


def test_wls_table_refuses_baselines_at_a_size_it_does_not_run():
    """A --baselines size that is not among --sizes had no row, so the baselines silently never ran."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "wls_table.py"), "--sizes", "64", "--baselines", "128"],
                         capture_output=True, text=True, timeout=120, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 2 and "--baselines 128: not among --sizes 64" in out.stderr, out.stderr


@pytest.mark.parametrize("extra", [["--sizes", "64"], ["--baselines"], ["--device", "cuda"]])
def test_wls_table_all_images_refuses_the_options_it_would_ignore(extra):
    # --all-images ran the native-size table on the CPU whatever --sizes or --device said
    out = subprocess.run([sys.executable, os.path.join(HERE, "wls_table.py"), "--all-images", *extra],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 2 and "--all-images times every cxr-dev image" in out.stderr


def test_every_benchmark_reads_xvf_bench_small_alike():
    """XVF_BENCH_SMALL=0 is the full sizes everywhere (the DICOM benchmark took any value as 1)."""
    code = ("import bench.enhance_inputs as e, bench.test_bench_dicom_read as d, bench.test_bench_wls as w; "
            "print(e.COUNT, d.COUNT, w.SIZE)")  # fmt: skip
    for value, want in (("0", "8 8 1024"), ("1", "3 2 512")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             cwd=os.path.dirname(HERE), env={**os.environ, "XVF_BENCH_SMALL": value})  # fmt: skip
        assert out.stdout.split("\n")[-2:] == [want, ""], out.stderr


def test_dicom_read_table_names_its_ratio_and_the_decoders():
    """Its last column is the imagecodecs plugin's rate over pydicom's, as its header says; the
    decoders' versions are printed, since the figures depend on them."""
    pytest.importorskip("imagecodecs")
    pytest.importorskip("openjpeg")
    out = subprocess.run([sys.executable, os.path.join(HERE, "dicom_read.py"), "--count", "1", "--size", "64x80",
                          "--threads", "1"], capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "pylibjpeg-openjpeg " in lines[0] and "imagecodecs " in lines[0]
    header = next(line for line in lines if line.startswith("| threads"))
    assert _columns(header)[1:] == ["pydicom's plugin (files/s)", "imagecodecs plugin (files/s)",
                                    "speed-up (imagecodecs vs pydicom)"]  # fmt: skip
    theirs, ours, ratio = _columns(lines[-1])[1:]
    assert float(ratio.rstrip("x")) == pytest.approx(float(ours) / float(theirs), rel=0.02)


def test_enhance_memory_says_when_a_job_is_too_short_for_a_growth_figure(capsys):
    """A job of a few images has too few points in its second half to fit a growth: the table
    says so instead of '+nan MB per 100 images'."""
    from bench.enhance_memory import print_table, summarise

    samples = [(0.2 * k, done, 1000.0 + done) for k, done in enumerate([0, 0, 1, 1, 2, 3])]
    print_table(summarise(samples, 3))
    printed = capsys.readouterr().out
    assert "nan" not in printed and "| none: too few images to fit |" in printed


def test_report_reads_which_tests_failed_or_skipped_from_pytest(tmp_path):
    from bench.report import not_passed

    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_a_xvertfast():\n    assert 1 == 2, 'maps differ'\n"
        "@pytest.mark.parametrize('device', ['cpu'])\n"
        "def test_b_reference(device):\n    pytest.skip('needs a CUDA GPU')\n"
        "def test_c_reference():\n    pass\n"
    )
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    str(tmp_path / "test_x.py")], capture_output=True, cwd=tmp_path, timeout=120)  # fmt: skip
    problems = not_passed(str(junit))
    assert set(problems) == {"test_a_xvertfast", "test_b_reference[cpu]"}
    assert problems["test_a_xvertfast"].startswith("failed: AssertionError: maps differ")
    assert problems["test_b_reference[cpu]"] == "skipped: needs a CUDA GPU"


def test_wls_table_without_pyamg_says_so_before_timing():
    """Without pyamg (it is in the bench extra, not the test extra) the table stopped with a
    ModuleNotFoundError traceback after its first timings; now it says what to install first."""
    code = ("import runpy, sys; sys.modules['pyamg'] = None; "
            "sys.argv = ['wls_table.py', '--sizes', '32', '--baselines', '32']; "
            "runpy.run_path('bench/wls_table.py', run_name='__main__')")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 1 and "needs pyamg (pip install 'xvertfast[bench]')" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "| size |" not in out.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks a machine without a CUDA GPU")
@pytest.mark.parametrize("command", [["wls_table.py", "--device", "cuda", "--sizes", "32"],
                                     ["roofline.py", "--device", "cuda"]])  # fmt: skip
def test_gpu_tables_on_a_machine_without_a_gpu_say_so(command):
    """They stopped with a traceback ('No module named cupy', 'Torch not compiled with CUDA')."""
    out = subprocess.run([sys.executable, os.path.join(HERE, command[0]), *command[1:]], capture_output=True,
                         text=True, timeout=120, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 2 and "no usable CUDA device" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_batch_planning_table_has_a_row_per_phase_and_a_column_pair_per_size(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(HERE, "batch_planning.py"), "--counts", "10", "30", "--folder",
                          str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == ("| phase | 10 inputs: s | ms an input | CPU ms an input | 30 inputs: s | ms an input "
                       "| CPU ms an input |")
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| discover, a folder", "| discover, an @list", "| plan (png16)",
                                                     "| rerun, all skipped", "| rerun with its --report, all skipped",
                                                     "| dry run", "| rerun of shard 3/4",
                                                     "| job_status", "| `xvertfast status` process"]  # fmt: skip
    assert all(len(r.split(" | ")) == 7 for r in rows[1:])


# The scripts below make figures RESULTS.md quotes but ran in no smoke check (an API change could
# break one unseen until someone re-measured); each runs here once at a tiny size.


def _run_script(script: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True,
                         timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 0, f"bench/{script}: {out.stderr}"
    return out.stdout.splitlines()


def test_archive_resume_counts_the_lstat_and_realpath_calls_of_each_way_and_rewrites_a_killed_runs_ledger(tmp_path):
    args = ("archive_resume.py", "--count", "20", "--depth", "3", "--repeats", "1", "--bar-count", "0",
            "--folder", str(tmp_path))  # fmt: skip

    def lstat_and_realpath_calls() -> dict[str, tuple[int, int]]:
        header, rule, *rows = [line for line in _run_script(*args) if line.startswith("|")]
        assert header.startswith("| resolving, 20 inputs 3 folders below the archive (") and rule.startswith("|---|")
        return {row.split(" | ")[0][2:]: tuple(int(row.split(" | ")[k].replace(",", "")) for k in (1, 2))
                for row in rows}  # fmt: skip

    calls = lstat_and_realpath_calls()
    once, reported, whole = "each folder once (RealPaths)", "each folder once, given the --report it wrote", \
        "each path whole (os.path.realpath)"  # fmt: skip
    assert list(calls) == [once, reported, whole]
    assert calls[whole][0] > calls[once][0] > 0 and calls[whole][1] > calls[once][1] > 0, calls
    # the realpath calls (the inputs session's counts): the --report it wrote checked by the job's resolver,
    # fewer than one more a job's input, where each input resolved whole twice more made 40 more for 20
    assert 0 <= calls[reported][1] - calls[once][1] < 20, calls
    # a run killed while writing its ledger left part of one, which a run given the same --folder kept and
    # resumed, failing on a bare assert: it is written again
    (ledger,) = (tmp_path / "out20-d3").glob(".*.jsonl")
    ledger.write_bytes(ledger.read_bytes()[: ledger.stat().st_size // 2])
    (tmp_path / "out20-d3.written").unlink(missing_ok=True)  # (the mark of a ledger written whole)
    assert lstat_and_realpath_calls() == calls
    out = subprocess.run([sys.executable, os.path.join(HERE, "archive_resume.py"), "--bar-count", "-1"],
                         capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    assert out.returncode == 2 and "--bar-count 0 or more" in out.stderr, out.stderr


def test_archive_resume_refuses_a_resolver_module_that_names_no_realpaths(monkeypatch):
    # such a module was skipped, so the comparison would have timed the package's resolving there both ways
    from bench import archive_resume
    from xvertfast.io import files

    monkeypatch.setattr(archive_resume, "RESOLVER_MODULES", (*archive_resume.RESOLVER_MODULES, "xvertfast.io.write"))
    with pytest.raises(RuntimeError, match=r"^xvertfast\.io\.write no longer names RealPaths"):
        archive_resume.resolving(True)
    assert files.RealPaths is archive_resume._PACKAGES_OWN and files.RealPaths.__module__ == "xvertfast.io.files"


def _needs_cxr_dev():
    from bench.wls_inputs import DATA

    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")


def test_wls_table_runs_every_column_with_its_baselines():
    """Issue #3's table (speed-ups, error, memory): one tiny row with spsolve and pyamg."""
    _needs_cxr_dev()
    pytest.importorskip("pyamg")
    lines = _run_script("wls_table.py", "--sizes", "64", "--baselines", "64", "--repeat", "1")
    header = _columns(next(line for line in lines if line.startswith("| size |")))
    row = _columns(next(line for line in lines if line.startswith("| 64x64 |")))
    assert len(row) == len(header) == 13
    assert "-" not in row and row[-2].endswith("x") and row[-1].endswith("x"), row  # the baselines ran


def test_wls_contention_times_both_thread_counts_under_every_wait_setting():
    """A row per wait setting, each with a min-max time for 1 thread and for --threads."""
    _needs_cxr_dev()
    lines = _run_script("wls_contention.py", "--sizes", "64", "--busy", "1", "--rounds", "1")
    header = _columns(next(line for line in lines if line.startswith("| size |")))
    rows = [_columns(line) for line in lines if line.startswith("| 64x64 |")]
    assert header == ["size", "libgomp wait setting", "1 thread (s)", "2 threads (s)"]
    assert [r[1] for r in rows] == ["default (spin, then sleep)", "GOMP_SPINCOUNT=0", "OMP_WAIT_POLICY=passive"]
    for row in rows:
        for cell in row[2:]:
            low, high = map(float, cell.split("-"))
            assert 0 <= low <= high, row


def test_wls_contention_settings_do_not_inherit_the_shells_wait_settings(monkeypatch):
    """A GOMP_SPINCOUNT or OMP_WAIT_POLICY in the user's shell would make every row that setting."""
    from bench.wls_contention import SETTINGS, child_env

    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    envs = {name: child_env(env) for name, env in SETTINGS.items()}
    default = envs["default (spin, then sleep)"]
    assert "GOMP_SPINCOUNT" not in default and "OMP_WAIT_POLICY" not in default
    assert envs["GOMP_SPINCOUNT=0"]["GOMP_SPINCOUNT"] == "0" and "OMP_WAIT_POLICY" not in envs["GOMP_SPINCOUNT=0"]
    assert envs["OMP_WAIT_POLICY=passive"]["OMP_WAIT_POLICY"] == "passive"
    assert "GOMP_SPINCOUNT" not in envs["OMP_WAIT_POLICY=passive"]
    assert default["PATH"] == os.environ["PATH"] and default["OPENBLAS_NUM_THREADS"] == "1"


def test_wls_parts_times_the_pieces_of_a_solve(tmp_path):
    from PIL import Image

    path = tmp_path / "small.png"
    Image.fromarray((np.random.default_rng(0).random((96, 80)) * 255).astype(np.uint8)).save(path)
    lines = _run_script("wls_parts.py", str(path))
    row = _columns(next(line for line in lines if line.startswith("| small.png |")))
    assert len(row) == 5 and int(row[4]) >= 1 and all(float(v) >= 0 for v in row[1:4]), row


def test_png_levels_tables_every_level_at_both_depths():
    _needs_cxr_dev()
    lines = _run_script("png_levels.py", "--count", "1", "--size", "64", "--levels", "6", "1", "--rounds", "1")
    rows = [_columns(line) for line in lines if line.startswith("| ") and not line.startswith("| bits")]
    assert [(r[0], r[1].split()[0]) for r in rows] == [("16", "6"), ("16", "1"), ("8", "6"), ("8", "1")]


def test_train_data_memory_reads_a_set_and_says_how_much_it_kept():
    (line,) = _run_script("train_data_memory.py", "--rois", "8", "--size", "32", "--epochs", "1")
    assert line.startswith("8 ROI pairs at 32^2") and "anonymous memory +" in line, line


def _agreement_inputs(tmp_path, skip: tuple[str, ...] = (), broken: bool = True, onnxruntime: str = "if installed"
                      ) -> list[str]:  # fmt: skip
    """backend_agreement.py's arguments but --json: a tiny model, an image that cannot be read (unless
    not ``broken``) and a synthetic one; compile skipped (minutes on a CPU), onnxruntime where it is
    not installed (unless ``onnxruntime`` is "always"), and the variants in ``skip``."""
    import importlib.util

    import torch
    from PIL import Image

    from xvertfast.model import XVertNet, XVertNetStage, save_model

    torch.manual_seed(0)
    model = save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]), str(tmp_path / "model"),
                       extra={"training": {"config": {"roi_size": 64}}})  # fmt: skip
    x = np.linspace(-1, 1, 150)
    rows = np.linspace(0, 1, 160)[:, None]
    chest = 0.25 + 0.5 * np.exp(-(x[None, :] ** 2) / 0.01) + 0.1 * np.sin(20 * rows)
    chest = chest + 0.08 * np.random.default_rng(0).random(chest.shape)
    Image.fromarray(np.round(np.clip(chest, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "chest.png")
    (tmp_path / "broken.png").write_bytes(b"not a PNG")
    skip = ["compile", *skip]
    if onnxruntime != "always" and "onnxruntime" not in skip and not importlib.util.find_spec("onnxruntime"):
        skip.append("onnxruntime")
    images = [str(tmp_path / "broken.png")] * broken + [str(tmp_path / "chest.png")]
    return [*images, "--model", model, "--skip", *skip]


def _bf16_refusal() -> str | None:
    """The library's own refusal of precision='bf16' on this CPU, or None where it runs it (asked of
    the library, not a copy of its test of the CPU)."""
    import torch

    from xvertfast.infer.backends import resolve_precision

    try:
        resolve_precision("bf16", torch.device("cpu"), warn=False)
    except ValueError as exc:
        return " ".join(str(exc).split())
    return None


def _check_agreement(args: list[str], code: int, stdout: str, saved: dict) -> None:
    """The broken image is a row naming it while the next is still measured; the reference run again
    does not move at all; bf16 moves the output (else the variant did not change what it says) on a
    CPU the library runs it on, and elsewhere is a row saying it was not measured, in the library's
    words, while the other variants are measured all the same. Either gap makes the exit status 1."""
    refusal = _bf16_refusal()
    broken = [r for r in saved["rows"] if r["image"] == "broken.png"]
    assert code == (1 if broken or refusal else 0), stdout
    assert len(broken) == any(a.endswith("broken.png") for a in args), saved["rows"]
    assert all(r["variant"] == "reference" and "broken.png" in r["error"] for r in broken), broken
    chest = {r["variant"].split(" (")[0]: r for r in saved["rows"] if r["image"] == "chest.png"}
    bf16 = chest.pop("--precision bf16")
    if refusal is None:
        assert "not_measured" not in bf16 and "error" not in bf16 and bf16["max_abs"] > 1e-4, bf16
        chest["--precision bf16"] = bf16
    else:
        assert set(bf16) == {"image", "variant", "not_measured"} and refusal in bf16["not_measured"], bf16
    threads = "1 thread" if saved["reference"]["threads"] > 1 else "2 threads"
    want = {"the reference again"} | {name for key, name in [("batch-size", "--batch-size 1"), ("threads", threads),
                                                             ("onnxruntime", "--backend onnxruntime")] if key not in args}
    want |= {"--precision bf16"} if refusal is None else set()
    assert set(chest) == want and not any("error" in r or "not_measured" in r for r in chest.values()), saved["rows"]
    again = chest["the reference again"]
    assert again["max_abs"] == 0 and again["pixels_8bit"] == 0 and again["max_levels"] == 0
    for row in chest.values():
        assert 0 <= row["mean_abs"] <= row["max_abs"] <= 1 and 0 <= row["max_levels"] <= 255, row
        assert (row["pixels_8bit"] > 0) == (row["max_levels"] > 0), row
    table = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(saved["rows"])
    assert not broken or "| broken.png | reference | - | - | - | failed: " in table[2], table
    if refusal is not None:
        (row,) = [line for line in table if line.startswith("| chest.png | --precision bf16 |")]
        assert row.startswith("| chest.png | --precision bf16 | - | - | - | not measured: ") and refusal in row, row


def test_backend_agreement_measures_every_variant_and_goes_on_past_a_bad_image(tmp_path):
    """On this CPU, as CI runs it: bf16 measured where the library runs it, else said not measured."""
    import json

    args = _agreement_inputs(tmp_path)
    out = subprocess.run([sys.executable, os.path.join(HERE, "backend_agreement.py"), *args, "--json",
                          str(tmp_path / "run.json")], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(HERE))  # fmt: skip
    assert (tmp_path / "run.json").exists(), out.stderr
    _check_agreement(args, out.returncode, out.stdout, json.loads((tmp_path / "run.json").read_text()))


@pytest.mark.filterwarnings("ignore:precision='bf16' on a CPU without AMX")
@pytest.mark.parametrize("support", ["no", "avx512_bf16"])
def test_backend_agreement_on_a_cpu_with_bf16_and_one_without(tmp_path, monkeypatch, capsys, support):
    """Both cases on any CPU, the library's word on its bf16 support (cpu_bf16_support) made
    ``support``: measured on a CPU with bf16, a row saying why not on one without."""
    from xvertfast.infer import backends

    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: support)
    assert (_bf16_refusal() is None) == (support != "no")  # (as the library sees it)
    # (the other variants are measured in the test above; without the broken image the exit status is bf16's)
    args = _agreement_inputs(tmp_path, skip=("onnxruntime", "batch-size", "threads"), broken=False)
    _check_agreement(args, *_agreement_in_process(tmp_path, monkeypatch, capsys, args))


def _agreement_in_process(tmp_path, monkeypatch, capsys, args: list[str]) -> tuple[int, str, dict]:
    """backend_agreement.py run in this process (so the library can be patched) with ``args`` and a
    --json file: its exit status, its stdout and the file's contents."""
    import json

    from bench import backend_agreement

    monkeypatch.setattr(sys, "argv", ["backend_agreement.py", *args, "--json", str(tmp_path / "run.json")])
    code = backend_agreement.main()
    return code, capsys.readouterr().out, json.loads((tmp_path / "run.json").read_text())


def _onnxruntime_row(tmp_path, monkeypatch, capsys) -> tuple[int, dict, str]:
    """The exit status, JSON row and table line of the onnxruntime variant, run on the synthetic image
    alongside the reference again alone (which must still be measured, and not move)."""
    args = _agreement_inputs(tmp_path, skip=("batch-size", "threads", "bf16"), broken=False, onnxruntime="always")
    code, stdout, saved = _agreement_in_process(tmp_path, monkeypatch, capsys, args)
    rows = {r["variant"]: r for r in saved["rows"]}
    assert set(rows) == {"the reference again", "--backend onnxruntime"}, saved["rows"]
    assert rows["the reference again"]["max_abs"] == 0, rows
    (line,) = [line for line in stdout.splitlines() if line.startswith("| chest.png | --backend onnxruntime |")]
    return code, rows["--backend onnxruntime"], line


def test_backend_agreement_says_a_variant_without_onnxruntime_was_not_measured(tmp_path, monkeypatch, capsys):
    """onnxruntime not importable and not --skip'ped: the library's refusal (export.require's, asked of
    plan_backend here) is a "not measured" row in its own words, not a crash, and the exit status is 1."""
    import torch

    from xvertfast.infer.backends import plan_backend

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # (import onnxruntime raises ImportError)
    with pytest.raises(RuntimeError) as refused:
        plan_backend("onnxruntime", torch.device("cpu"), torch.float32)
    refusal = " ".join(str(refused.value).split())
    assert "onnxruntime" in refusal, refusal
    code, row, line = _onnxruntime_row(tmp_path, monkeypatch, capsys)
    assert code == 1 and set(row) == {"image", "variant", "not_measured"} and refusal in row["not_measured"], row
    assert line.startswith("| chest.png | --backend onnxruntime | - | - | - | not measured: MissingDependency: "), line


def test_backend_agreement_says_a_variant_that_fails_to_be_made_failed(tmp_path, monkeypatch, capsys):
    """A bug while a variant's Enhancer is made (an AttributeError, not one of the library's refusals)
    is a "failed:" row, as a failed run is, not "not measured" (which reads as this machine refusing
    it), and the exit status is 1."""
    from xvertfast.infer import enhancer

    plan = enhancer.plan_backend

    def broken_plan(name, device, dtype):
        if name == "onnxruntime":
            raise AttributeError("'NoneType' object has no attribute 'InferenceSession'")
        return plan(name, device, dtype)

    monkeypatch.setattr(enhancer, "plan_backend", broken_plan)
    code, row, line = _onnxruntime_row(tmp_path, monkeypatch, capsys)
    assert code == 1 and set(row) == {"image", "variant", "error"}, row
    assert row["error"] == "AttributeError: 'NoneType' object has no attribute 'InferenceSession'", row
    assert line == ("| chest.png | --backend onnxruntime | - | - | - | failed: AttributeError: 'NoneType' object "
                    "has no attribute 'InferenceSession' |"), line


def _results_pytest_commands() -> list[tuple[str, ...]]:
    """The arguments after ``pytest`` of every ``pytest bench/...`` command RESULTS.md gives."""
    import re
    import shlex

    with open(os.path.join(HERE, "RESULTS.md")) as f:
        spans = re.findall(r"`([^`]*\bpytest bench/[^`]*)`", f.read())
    commands = set()
    for span in spans:
        words = shlex.split(" ".join(span.split()))
        commands.add(tuple(words[words.index("pytest") + 1 :]))
    return sorted(commands)


@pytest.mark.parametrize("args", _results_pytest_commands(), ids=" ".join)
def test_every_pytest_command_in_results_selects_a_benchmark(args):
    """Each command RESULTS.md quotes still names a file and, with -k, selects a benchmark: a
    rename would leave its figures with no command that makes them."""
    files = [a for a in args if a.startswith("bench/")]
    assert files and all(os.path.isfile(os.path.join(os.path.dirname(HERE), f)) for f in files), args
    if "-k" not in args:
        return  # the whole file: it exists
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE))  # fmt: skip
    selected = [line for line in out.stdout.splitlines() if line.startswith(tuple(f + "::" for f in files))]
    assert selected, f"pytest {' '.join(args)} selects no benchmark: {out.stdout[-500:]}{out.stderr[-500:]}"
