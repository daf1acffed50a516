"""setup.py's own nvcc step (when is a CUDA object compiled again) and the torch it asks for."""

from __future__ import annotations

import glob
import os
import runpy
import subprocess

import pytest
import setuptools
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_setup(monkeypatch, archs: str, glue_check: bool = False):
    """setup.py's definitions for TORCH_CUDA_ARCH_LIST=archs, setup() itself not run. Without nvcc
    the test skips; for the glue check (glue_check=True) through skip_unless_required, so that CI's
    XVF_REQUIRE_GLUE_CHECK=1 makes a missing toolkit a failure there too."""
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", archs)
    monkeypatch.setenv("XVF_WITH_CUDA", "1")
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    monkeypatch.chdir(ROOT)
    try:
        return runpy.run_path(os.path.join(ROOT, "setup.py"))
    except SystemExit as exc:  # no nvcc here: XVF_WITH_CUDA=1 is refused; any other exit is a failure
        if "nvcc was not found" not in str(exc):
            pytest.fail(f"setup.py exited: {exc}")
        reason = f"setup.py needs nvcc for this: {exc}"
        skip_unless_required(reason) if glue_check else pytest.skip(reason)


def run_nvcc_step(ns, build_temp, monkeypatch, nvcc) -> None:
    """setup.py's _compile_cuda into build_temp, with ``nvcc(cmd)`` standing in for each compile."""
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: nvcc(cmd))
    builder = ns["BuildWithNvcc"].__new__(ns["BuildWithNvcc"])
    builder.build_temp = str(build_temp)
    builder._compile_cuda()


def compile_cuda(ns, build_temp, monkeypatch) -> list[list[str]]:
    """The nvcc commands _compile_cuda runs (each one 'succeeds' by touching its object)."""
    ran = []

    def fake_nvcc(cmd):
        ran.append(cmd)
        with open(cmd[cmd.index("-o") + 1], "wb"):
            pass

    run_nvcc_step(ns, build_temp, monkeypatch, fake_nvcc)
    return ran


def test_cuda_objects_compile_again_when_the_archs_change(tmp_path, monkeypatch):
    ns = load_setup(monkeypatch, "8.0;9.0+PTX")
    n = len(ns["CUDA_SOURCES"])
    assert n > 0
    assert len(compile_cuda(ns, tmp_path, monkeypatch)) == n  # a fresh build compiles all
    assert compile_cuda(ns, tmp_path, monkeypatch) == []  # nothing changed: all reused
    ns = load_setup(monkeypatch, "7.5")
    again = compile_cuda(ns, tmp_path, monkeypatch)
    assert len(again) == n and all("arch=compute_75,code=sm_75" in " ".join(c) for c in again)
    assert compile_cuda(ns, tmp_path, monkeypatch) == []


def test_cuda_objects_are_compiled_without_multiply_add_contraction(tmp_path, monkeypatch):
    # the GPU rounds each product and sum as the CPU build does, so the CPU tests of the shared
    # per-pixel math hold for the GPU bit for bit; the CMake build compiles the same way
    ns = load_setup(monkeypatch, "9.0")
    commands = compile_cuda(ns, tmp_path, monkeypatch)
    assert commands and all("--fmad=false" in cmd for cmd in commands)
    assert all(any("-ffp-contract=off" in arg for arg in cmd) for cmd in commands)  # and nvcc's host pass
    assert "-ffp-contract=off" in ns["make_extension"]().extra_compile_args["cxx"]  # the CPU side, where FMA exists
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        cmake = f.read()
    assert "--fmad=false" in cmake and "-ffp-contract=off" in cmake


def test_a_failed_compile_is_not_taken_for_a_done_one(tmp_path, monkeypatch):
    ns = load_setup(monkeypatch, "8.0")
    compile_cuda(ns, tmp_path, monkeypatch)
    ns = load_setup(monkeypatch, "9.0")

    def failing(cmd):
        raise subprocess.CalledProcessError(1, cmd)

    with pytest.raises(subprocess.CalledProcessError):
        run_nvcc_step(ns, tmp_path, monkeypatch, failing)
    # the objects of the 8.0 build are still there, newer than the sources: not reused for 9.0
    assert len(compile_cuda(ns, tmp_path, monkeypatch)) == len(ns["CUDA_SOURCES"])


def test_a_failed_compile_of_the_same_command_is_not_reused(tmp_path, monkeypatch):
    # the sources changed (here: the objects are made older than them), nvcc writes part of an
    # object and fails; the next build, same command, must not take that object for done
    ns = load_setup(monkeypatch, "8.0")
    compile_cuda(ns, tmp_path, monkeypatch)
    for obj in glob.glob(str(tmp_path / "cuda" / "*.o")):
        os.utime(obj, (0, 0))

    def partial_then_fail(cmd):
        with open(cmd[cmd.index("-o") + 1], "wb") as f:
            f.write(b"part of an object")
        raise subprocess.CalledProcessError(1, cmd)

    with pytest.raises(subprocess.CalledProcessError):
        run_nvcc_step(ns, tmp_path, monkeypatch, partial_then_fail)
    # every object is compiled again: the partial ones and any the failure left unbuilt
    assert len(compile_cuda(ns, tmp_path, monkeypatch)) == len(ns["CUDA_SOURCES"])


def run_setup(monkeypatch, argv: list[str], **env: str) -> tuple[dict, dict]:
    """setup.py run as ``setup.py *argv`` (CPU kernels only): its definitions, and what it hands
    setuptools.setup()."""
    captured: dict = {}
    monkeypatch.setenv("XVF_WITH_CUDA", "0")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.setattr("sys.argv", ["setup.py", *argv])
    monkeypatch.chdir(ROOT)
    return runpy.run_path(os.path.join(ROOT, "setup.py")), captured


def setup_arguments(monkeypatch, argv: list[str], **env: str) -> dict:
    """What setup.py hands setuptools.setup() when run as ``setup.py *argv``."""
    return run_setup(monkeypatch, argv, **env)[1]


def test_a_wheel_with_the_extension_asks_for_the_torch_it_was_built_against(monkeypatch):
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    for command in (["bdist_wheel"], ["editable_wheel"], ["dist_info", "--output-dir", "x"]):
        requires = setup_arguments(monkeypatch, command)["install_requires"]
        assert requires[0] == f"torch=={major}.{minor}.*", command
        assert "numpy>=1.24" in requires


def test_the_sdist_and_a_build_without_extension_ask_for_any_recent_torch(monkeypatch):
    assert setup_arguments(monkeypatch, ["sdist"])["install_requires"][0] == "torch>=2.4"
    no_extension = setup_arguments(monkeypatch, ["bdist_wheel"], XVF_NO_EXTENSION="1")
    assert no_extension["ext_modules"] == [] and no_extension["install_requires"][0] == "torch>=2.4"


@pytest.mark.parametrize("version, expected", [
    ("2.13.0+cpu", "torch==2.13.*"),
    ("2.11.1+cu130", "torch==2.11.*"),
    ("2.14.0.dev20261201+cpu", "torch>=2.14.0.dev0,<2.15"),  # a nightly: "==2.14.*" would exclude it
    ("2.14.0a0+git1234abc", "torch>=2.14.0.dev0,<2.15"),  # a source build
])  # fmt: skip
def test_the_torch_pin_admits_the_torch_it_was_built_against(monkeypatch, version, expected):
    from packaging.specifiers import SpecifierSet

    ns, _ = run_setup(monkeypatch, ["bdist_wheel"])
    monkeypatch.setattr(torch, "__version__", version)  # (setup.py's torch is this module)
    requirement = ns["torch_requirement"](True, ["bdist_wheel"])
    assert requirement == expected
    assert SpecifierSet(requirement.removeprefix("torch")).contains(version.split("+")[0])  # pip keeps that torch


def skip_unless_required(reason: str) -> None:
    """Skips the glue check for want of a tool, except where XVF_REQUIRE_GLUE_CHECK=1 (.ci/run sets
    it): CI is the one place the glue meets a compiler before a user's GPU machine, so a torch
    wheel without c10/cuda's headers must fail it there, not pass it as a skip."""
    if os.environ.get("XVF_REQUIRE_GLUE_CHECK", "").strip() not in ("", "0"):
        pytest.fail(f"XVF_REQUIRE_GLUE_CHECK is set, but the glue check {reason}")
    pytest.skip(reason)


@pytest.mark.slow
def test_the_glue_a_cuda_torch_compiles_is_valid_cpp(tmp_path, monkeypatch):
    """Under a CUDA build of torch, setup.py compiles the host glue with XVF_TORCH_CUDA (device
    guards, torch's current stream). CI has only the CPU torch, so that branch would otherwise
    first meet a compiler on a user's GPU machine: here it is checked with setup.py's own
    sources, macros and include paths (syntax and types only; nothing is linked or run)."""
    import concurrent.futures
    import shutil
    import sysconfig

    from torch.utils.cpp_extension import include_paths

    compiler = shutil.which(os.environ.get("CXX", "c++"))
    torch_cuda_headers = os.path.join(include_paths()[0], "c10", "cuda", "CUDAStream.h")
    if compiler is None or not os.path.exists(torch_cuda_headers):
        skip_unless_required("needs a C++ compiler and torch's c10/cuda headers")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    ns = load_setup(monkeypatch, "9.0", glue_check=True)
    cuda_runtime = os.path.join(ns["CUDA_HOME"] or "", "include", "cuda_runtime_api.h")
    if not os.path.exists(cuda_runtime):
        skip_unless_required("needs the CUDA toolkit's headers")
    extension = ns["make_extension"]()
    macros = dict(extension.define_macros)
    assert "XVF_TORCH_CUDA" in macros  # setup.py takes this torch for a CUDA one
    flags = ["-std=c++20", "-fsyntax-only", "-DTORCH_EXTENSION_NAME=_C",
             # torch's CPU wheel ships c10/cuda's headers without the one cmake generates for
             # them, which only sets the Windows export macros
             "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE"]  # fmt: skip
    flags += [f"-D{name}" if value is None else f"-D{name}={value}" for name, value in extension.define_macros]
    flags += [f"-I{d}" for d in [*extension.include_dirs, *include_paths(), sysconfig.get_paths()["include"]]]
    flags += [f for f in extension.extra_compile_args["cxx"] if f.startswith("-f")]
    glue = [s for s in extension.sources if not s.startswith(os.path.join("csrc", "cpu"))]
    assert os.path.join("csrc", "torch", "wls.cpp") in glue
    # Parsing torch's headers is most of a compile (some 20 s a file): csrc/torch's files, which
    # include the same ones, are checked together as one translation unit, and one by one only
    # where that fails, so that an error names its file and a clash of two files' local names
    # (which no build has: each is compiled alone there) fails nothing. Its blind spot: a later
    # file sees the earlier files' includes and macros, so one that lacks an #include it needs
    # (a CUDA-only header, say) passes here and fails in the build; today every one of them gets
    # the CUDA headers through device.h, but a new file that does not may slip by.
    together = [s for s in glue if s.startswith(os.path.join("csrc", "torch"))]
    unity = tmp_path / "torch_glue.cpp"
    unity.write_text("".join(f'#include "{os.path.join(ROOT, s)}"\n' for s in together))
    assert len(together) >= 4 and len(glue) > len(together)  # (bindings.cpp alone)

    def compile_one(source):
        done = subprocess.run([compiler, *flags, source], capture_output=True, text=True, cwd=ROOT)
        return source, done.returncode, done.stderr

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(compile_one, [*(s for s in glue if s not in together), str(unity)]))
        if done[-1][1] != 0:
            done[-1:] = pool.map(compile_one, together)
    failed = [f"{s}:\n{err[-3000:]}" for s, rc, err in done if rc != 0]
    assert not failed, "\n".join(failed)


def hide_nvcc(monkeypatch, tmp_path) -> None:
    """setup.py finds no CUDA toolkit: not $CUDA_HOME's, not PATH's, not /usr/local/cuda's."""
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    monkeypatch.delenv("CUDA_PATH", raising=False)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: not str(p).endswith(os.path.join("bin", "nvcc")) and real_exists(p))


@pytest.mark.parametrize("required", ["1", ""])
def test_without_nvcc_the_glue_check_fails_where_ci_requires_it(tmp_path, monkeypatch, required):
    monkeypatch.setenv("XVF_REQUIRE_GLUE_CHECK", required)
    hide_nvcc(monkeypatch, tmp_path)
    # (caught as BaseException: a skip where a failure is due must fail this test, not skip it)
    with pytest.raises(BaseException, match="nvcc was not found") as outcome:
        load_setup(monkeypatch, "9.0", glue_check=True)
    assert outcome.type is (pytest.fail.Exception if required else pytest.skip.Exception)
    with pytest.raises(BaseException) as outcome:  # the tests of the nvcc step itself just skip
        load_setup(monkeypatch, "9.0")
    assert outcome.type is pytest.skip.Exception


NVCC_13_0 = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2025 NVIDIA Corporation
Built on Wed_Aug_20_01:58:59_PM_PDT_2025
Cuda compilation tools, release 13.0, V13.0.88
Build cuda_13.0.r13.0/compiler.36424714_0
"""
NVCC_12_8 = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2025 NVIDIA Corporation
Built on Fri_Feb_21_20:23:50_PST_2025
Cuda compilation tools, release 12.8, V12.8.93
Build cuda_12.8.r12.8/compiler.35583870_0
"""


@pytest.mark.parametrize("torch_cuda, release", [
    ("12.4", (12, 4)), ("13.0", (13, 0)), ("12.8.1", (12, 8)), (None, None), ("", None), ("twelve", None),
])  # fmt: skip
def test_torchs_cuda_version_is_read_as_major_and_minor(monkeypatch, torch_cuda, release):
    ns, _ = run_setup(monkeypatch, ["bdist_wheel"])
    assert ns["torch_cuda_release"](torch_cuda) == release


@pytest.mark.parametrize("nvcc_output, torch_cuda, refused", [
    (NVCC_13_0, None, False),  # a CPU torch (CI, this machine): the build carries the static runtime
    (NVCC_13_0, "13.0", False),
    (NVCC_13_0, "13.2", False),  # the same major: the same libcudart.so.13
    (NVCC_12_8, "12.4", False),
    (NVCC_13_0, "12.8", True),
    (NVCC_12_8, "13.0", True),
    ("ccache: a wrapper that says no version\n", "12.8", False),  # cannot tell: the build says it did not check
])  # fmt: skip
def test_an_nvcc_of_another_cuda_major_than_torch_is_refused(monkeypatch, nvcc_output, torch_cuda, refused):
    ns, _ = run_setup(monkeypatch, ["bdist_wheel"])
    nvcc_cuda = ns["nvcc_release"](nvcc_output)
    problem = ns["cuda_version_mismatch"](nvcc_cuda, "2.13.0+cu128", torch_cuda, "/opt/cuda/bin/nvcc")
    if not refused:
        assert problem is None
        return
    assert problem.startswith(f"xvertfast: /opt/cuda/bin/nvcc is CUDA {nvcc_cuda[0]}.{nvcc_cuda[1]}, but this torch "
                              f"(2.13.0+cu128) was built with CUDA {torch_cuda}")  # fmt: skip
    assert f"Point CUDA_HOME at a CUDA {torch_cuda.split('.')[0]}.x toolkit" in problem


def test_a_build_against_a_cuda_torch_stops_before_compiling_with_an_nvcc_of_another_major(tmp_path, monkeypatch):
    # every nvcc call answers as CUDA 13.0's
    _, builder, ran = cuda_torch_builder(tmp_path, monkeypatch, "12.8", answers(0, NVCC_13_0))
    with pytest.raises(SystemExit, match=r"is CUDA 13\.0, but this torch .* was built with CUDA 12\.8"):
        builder.build_extensions()
    assert [cmd[1:] for cmd in ran] == [["--version"]]  # asked its version, compiled nothing


@pytest.mark.parametrize("output, release", [
    (NVCC_13_0, (13, 0)),
    (NVCC_12_8, (12, 8)),
    ("Ubuntu clang version 18.1.3, release 18.1 (1ubuntu1)\n", None),  # another tool's release line
    ("ccache version 4.9.1\nrelease 4.9\n", None),
])  # fmt: skip
def test_only_nvccs_own_release_line_is_read_as_the_cuda_version(monkeypatch, output, release):
    ns, _ = run_setup(monkeypatch, ["bdist_wheel"])
    assert ns["nvcc_release"](output) == release


@pytest.mark.parametrize("torch_cuda, nvcc_output, noted", [
    ("12.4", NVCC_12_8, True),  # a newer minor: built, with a note
    ("12.8", NVCC_12_8, False),
    ("12.9", NVCC_12_8, False),  # an older nvcc: its headers are within the newer runtime's
    ("13.0", NVCC_13_0, False),
    (None, NVCC_12_8, False),  # a CPU torch: the static runtime, nothing to match
])  # fmt: skip
def test_an_nvcc_of_a_newer_cuda_minor_than_torch_is_noted(monkeypatch, torch_cuda, nvcc_output, noted):
    ns, _ = run_setup(monkeypatch, ["bdist_wheel"])
    note = ns["newer_cuda_minor_note"](ns["nvcc_release"](nvcc_output), torch_cuda, "/opt/cuda/bin/nvcc")
    if not noted:
        assert note is None
        return
    assert note.startswith("xvertfast: note: /opt/cuda/bin/nvcc is CUDA 12.8, newer than this torch's CUDA 12.4")
    assert "\n" not in note and "CUDA_HOME at a CUDA 12.4 toolkit" in note


class ReachedCompile(Exception):
    """Raised by the stand-in for _compile_cuda: the build got past the version check."""


def cuda_torch_builder(tmp_path, monkeypatch, torch_cuda: str, nvcc_version) -> tuple[dict, object, list]:
    """setup.py's BuildWithNvcc under a CUDA torch ``torch_cuda``, ``nvcc_version(cmd)`` answering
    every nvcc call; returns the namespace, the builder and the list of nvcc commands it runs."""
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)
    ns = load_setup(monkeypatch, "9.0")
    assert ns["TORCH_CUDA"]
    ran = []

    def nvcc(cmd, **kwargs):
        ran.append(cmd)
        return nvcc_version(cmd)

    monkeypatch.setattr(subprocess, "run", nvcc)
    builder = ns["BuildWithNvcc"].__new__(ns["BuildWithNvcc"])
    builder.build_temp = str(tmp_path)
    builder.extensions = [ns["make_extension"]()]
    return ns, builder, ran


def start_cuda_torch_build(tmp_path, monkeypatch, capsys, torch_cuda: str, nvcc_version) -> tuple[dict, list, str]:
    """build_extensions of :func:`cuda_torch_builder`'s builder; returns the namespace, the nvcc
    commands run and what the build step printed, once it reached _compile_cuda (ReachedCompile)
    -- any other outcome fails the test."""
    ns, builder, ran = cuda_torch_builder(tmp_path, monkeypatch, torch_cuda, nvcc_version)
    capsys.readouterr()  # (setup.py's own 'xvertfast build:' line)

    def compile_cuda():
        raise ReachedCompile

    builder._compile_cuda = compile_cuda
    with pytest.raises(ReachedCompile):
        builder.build_extensions()
    return ns, ran, capsys.readouterr().out


def answers(returncode: int, stdout: str, stderr: str = ""):
    """An ``nvcc --version`` stand-in that exits with returncode and prints stdout and stderr."""
    return lambda cmd: subprocess.CompletedProcess(cmd, returncode, stdout=stdout, stderr=stderr)


def cannot_start(cmd):
    raise PermissionError(13, "Permission denied", cmd[0])


@pytest.mark.parametrize("nvcc_version, printed", [
    (answers(0, "ccache: a wrapper that says no version\n"),
     "printed no 'Cuda compilation tools, release X.Y' line; not checked against torch's CUDA 12.8"),
    (answers(1, "", "ccache: error: Could not find compiler \"nvcc\" in PATH\n"),
     "--version` exited with status 1 (ccache: error: Could not find compiler \"nvcc\" in PATH); not checked"),
    (answers(139, ""), "--version` exited with status 139; not checked"),
    (cannot_start, "--version` could not run ([Errno 13] Permission denied"),
    (answers(0, NVCC_12_8), None),  # read, same version: nothing to say
])  # fmt: skip
def test_an_nvcc_version_that_cannot_be_read_is_said_unchecked_and_the_build_goes_on(
    tmp_path, monkeypatch, capsys, nvcc_version, printed
):
    ns, ran, out = start_cuda_torch_build(tmp_path, monkeypatch, capsys, "12.8", nvcc_version)
    assert [cmd[1:] for cmd in ran] == [["--version"]]  # asked once, then on to the compile
    if printed is None:
        assert out == ""
        return
    nvcc = os.path.join(ns["CUDA_HOME"], "bin", "nvcc")
    assert out.startswith(f"xvertfast: could not read the CUDA version: `{nvcc} --version")
    assert printed in out and len(out.splitlines()) == 1


def test_a_build_with_an_nvcc_of_a_newer_cuda_minor_prints_the_note_and_compiles(tmp_path, monkeypatch, capsys):
    ns, _, out = start_cuda_torch_build(tmp_path, monkeypatch, capsys, "12.4", answers(0, NVCC_12_8))
    assert out.startswith(f"xvertfast: note: {os.path.join(ns['CUDA_HOME'], 'bin', 'nvcc')} is CUDA 12.8, newer")
