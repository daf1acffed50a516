"""Build of the ``xvertfast._C`` torch extension.

Host C++ (the torch glue and the OpenMP CPU kernels) is compiled by torch's
``BuildExtension``. The ``.cu`` kernels include no torch header; they are
compiled here with nvcc whenever nvcc is found -- also on machines without a
GPU and with the CPU wheel of torch -- and linked in with the static CUDA
runtime, so a CUDA compile error fails every build that has nvcc. With a CUDA
build of torch they link torch's shared CUDA runtime instead, so nvcc must be
of torch's CUDA major version: the build stops and says so otherwise.

Switches (environment variables):
  XVF_WITH_CUDA=0|1      force the CUDA kernels off / on (on without nvcc is an error)
  FORCE_CUDA=1           same as XVF_WITH_CUDA=1
  TORCH_CUDA_ARCH_LIST   e.g. "8.0;9.0+PTX" (the default)
  MAX_JOBS               parallel compile jobs
  CUDA_HOME              CUDA toolkit root (default: CUDA_PATH, then from nvcc on PATH, /usr/local/cuda)
  XVF_DEBUG=1            -O0 -g build

Install with ``pip install --no-build-isolation .`` (torch must already be installed).
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError:  # pragma: no cover - explained to the user
    sys.exit(
        "xvertfast: torch must be installed before building (pip install torch), and the build "
        "must see it: use `pip install --no-build-isolation .`"
    )

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0;9.0+PTX"


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")


def find_cuda_home() -> str | None:
    """CUDA toolkit root: $CUDA_HOME, then $CUDA_PATH, then the toolkit of nvcc on PATH, then /usr/local/cuda."""

    def is_toolkit(root: str | None) -> bool:
        return bool(root) and os.path.exists(os.path.join(root, "bin", "nvcc")) and os.path.exists(
            os.path.join(root, "include", "cuda_runtime.h")
        )

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:  # PATH may hold a wrapper or symlink: try its folder and its real folder
        candidates += [os.path.dirname(os.path.dirname(p)) for p in (nvcc, os.path.realpath(nvcc))]
    candidates.append("/usr/local/cuda")
    return next((c for c in candidates if is_toolkit(c)), None)


def want_cuda(cuda_home: str | None) -> bool:
    flag = _env_flag("XVF_WITH_CUDA")
    if flag is None and _env_flag("FORCE_CUDA"):
        flag = True
    if flag is False:
        return False
    if flag and cuda_home is None:
        sys.exit("xvertfast: XVF_WITH_CUDA=1/FORCE_CUDA=1 but nvcc was not found (set CUDA_HOME)")
    return cuda_home is not None


def gencode_flags(arch_list: str) -> tuple[list[str], list[str]]:
    """nvcc -gencode flags and the readable arch names for TORCH_CUDA_ARCH_LIST syntax."""
    flags, names = [], []
    for item in re.split(r"[;\s,]+", arch_list.strip()):
        if not item:
            continue
        ptx = item.endswith("+PTX")
        num = item.replace("+PTX", "").replace(".", "")
        if not num.isdigit():
            sys.exit(f"xvertfast: cannot parse TORCH_CUDA_ARCH_LIST entry {item!r}")
        flags += ["-gencode", f"arch=compute_{num},code=sm_{num}"]
        names.append(f"sm_{num}")
        if ptx:
            flags += ["-gencode", f"arch=compute_{num},code=compute_{num}"]
            names.append(f"compute_{num}")
    return flags, names


def nvcc_release(version_output: str) -> tuple[int, int] | None:
    """(major, minor) of the CUDA toolkit ``nvcc --version`` printed (its "Cuda compilation tools,
    release 13.0, V13.0.88" line), or None where the output has no such line (a wrapper that prints
    something else): another tool's "release 18.1" is not taken for a CUDA version."""
    found = re.search(r"Cuda compilation tools, release (\d+)\.(\d+)", version_output)
    return (int(found.group(1)), int(found.group(2))) if found else None


def read_nvcc_release(nvcc: str) -> tuple[tuple[int, int] | None, str]:
    """The CUDA (major, minor) of ``nvcc --version``, or None and why it could not be read (the
    command failed to start or exited non-zero, or printed no CUDA release): a broken wrapper
    leaves the version unchecked rather than ending the build with a bare traceback."""
    command = f"`{nvcc} --version`"
    try:
        done = subprocess.run([nvcc, "--version"], capture_output=True, text=True)
    except OSError as exc:
        return None, f"{command} could not run ({exc})"
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "").strip().splitlines()
        return None, f"{command} exited with status {done.returncode}" + (f" ({said[0]})" if said else "")
    release = nvcc_release(done.stdout)
    return release, "" if release else f"{command} printed no 'Cuda compilation tools, release X.Y' line"


def torch_cuda_release(torch_cuda: str | None) -> tuple[int, int] | None:
    """(major, minor) of ``torch.version.cuda`` ("12.4"), or None for a CPU build of torch (or a
    version it cannot read): what nvcc's release is checked against."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\..*)?", torch_cuda or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def cuda_version_mismatch(release: tuple[int, int] | None, torch_version: str, torch_cuda: str | None,
                          nvcc: str) -> str | None:  # fmt: skip
    """Why ``nvcc`` of CUDA ``release`` (nvcc_release; None: unknown) must not compile the kernels
    for torch ``torch_version`` built with CUDA ``torch_cuda`` (``torch.version.cuda``), or None.
    Against a CUDA build of torch the extension links the toolkit's shared ``libcudart.so.<major>``
    beside torch's own runtime: of another major version it either fails to load (every op, the
    CPU ones too, then falls back to PyTorch) or loads and cannot start under a driver too old for
    it. torch's own check of this runs only for extensions that list .cu sources, and this one
    compiles them itself. A CPU build of torch has no runtime to match: the build then carries
    the static one, of whatever version."""
    torch_release = torch_cuda_release(torch_cuda)
    if torch_release is None or release is None or release[0] == torch_release[0]:
        return None
    torch_major = torch_release[0]
    return (f"xvertfast: {nvcc} is CUDA {release[0]}.{release[1]}, but this torch ({torch_version}) "
            f"was built with CUDA {torch_cuda}: the extension would link CUDA {release[0]}'s runtime "
            f"beside torch's CUDA {torch_major} one, and fail to load or fail on the GPU. Point "
            f"CUDA_HOME at a CUDA {torch_major}.x toolkit (e.g. CUDA_HOME=/usr/local/cuda-{torch_cuda}), or "
            "build without the CUDA kernels with XVF_WITH_CUDA=0 (GPUs then take the slower paths)")


def newer_cuda_minor_note(release: tuple[int, int] | None, torch_cuda: str | None, nvcc: str) -> str | None:
    """A one-line note where ``nvcc`` is of torch's CUDA major but a newer minor (nvcc 12.8 under a
    cu124 torch), or None. The build goes on -- one major shares its runtime's ABI, as torch's own
    check (a warning only) holds -- but the kernels then run on torch's older runtime, and their
    PTX needs a driver of nvcc's release: the note names the toolkit to use should they fail."""
    torch_release = torch_cuda_release(torch_cuda)
    if torch_release is None or release is None or release[0] != torch_release[0] or release[1] <= torch_release[1]:
        return None
    return (f"xvertfast: note: {nvcc} is CUDA {release[0]}.{release[1]}, newer than this torch's CUDA "
            f"{torch_cuda}, whose runtime the kernels will use; usually fine within one major version, but "
            f"should the CUDA ops fail (a driver older than CUDA {release[0]}.{release[1]} cannot load their "
            f"PTX), rebuild with CUDA_HOME at a CUDA {torch_cuda} toolkit")


def max_jobs() -> int:
    try:
        return max(1, int(os.environ.get("MAX_JOBS", "")))
    except ValueError:
        return os.cpu_count() or 1


CUDA_HOME = find_cuda_home()
NVCC = os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else None
WITH_CUDA = want_cuda(CUDA_HOME)
DEBUG = bool(_env_flag("XVF_DEBUG"))
ARCH_FLAGS, ARCH_NAMES = gencode_flags(os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_ARCHS)
TORCH_CUDA = bool(torch.version.cuda) and WITH_CUDA

HOST_SOURCES = sorted(
    [os.path.join("csrc", "bindings.cpp")]
    + glob.glob(os.path.join("csrc", "torch", "*.cpp"))
    + glob.glob(os.path.join("csrc", "cpu", "*.cpp"))
)
CUDA_SOURCES = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
HEADERS = glob.glob(os.path.join(ROOT, "csrc", "**", "*.h"), recursive=True) + glob.glob(
    os.path.join(ROOT, "csrc", "**", "*.cuh"), recursive=True
)


class BuildWithNvcc(BuildExtension):
    """Compiles the torch-free .cu files with nvcc, then lets torch build the rest."""

    def build_extensions(self) -> None:
        if TORCH_CUDA:  # (only when building: an sdist or a metadata query needs no nvcc check)
            release, unread = read_nvcc_release(NVCC)
            if release is None:
                print(f"xvertfast: could not read the CUDA version: {unread}; not checked against "
                      f"torch's CUDA {torch.version.cuda}", flush=True)
            problem = cuda_version_mismatch(release, torch.__version__, torch.version.cuda, NVCC)
            if problem:
                sys.exit(problem)
            note = newer_cuda_minor_note(release, torch.version.cuda, NVCC)
            if note:
                print(note, flush=True)
        if WITH_CUDA:
            for ext in self.extensions:
                ext.extra_objects = list(ext.extra_objects or []) + self._compile_cuda()
        super().build_extensions()

    def _compile_cuda(self) -> list[str]:
        out_dir = os.path.join(os.path.abspath(self.build_temp), "cuda")
        os.makedirs(out_dir, exist_ok=True)
        newest_header = max((os.path.getmtime(h) for h in HEADERS), default=0.0)
        # which nvcc: another toolkit at the same path must compile again too
        st = os.stat(os.path.realpath(NVCC))
        toolkit = f"{os.path.realpath(NVCC)} {st.st_size} {st.st_mtime_ns}"
        jobs = []
        for src in CUDA_SOURCES:
            obj = os.path.join(out_dir, os.path.basename(src) + ".o")
            cmd = [
                NVCC, "-c", os.path.join(ROOT, src), "-o", obj, "-std=c++17",
                "-I", os.path.join(ROOT, "csrc", "include"), "-Xcompiler", "-fPIC,-ffp-contract=off",
                "--expt-relaxed-constexpr", "--extended-lambda", "-lineinfo",
                # no multiply-add contraction: the kernels then round every product and sum as
                # the CPU build does (no FMA), so the per-pixel arithmetic the CPU tests check is
                # the GPU's bit for bit (the float32 WLS weights' log/exp polynomials, their 16-bit
                # interpolation weights, the entropy bins). Math-library calls are not: float64
                # WLS weights and the entropy's -p log p call CUDA's log/exp on the GPU and
                # glibc's on the CPU, which may differ in the last bit. The kernels are
                # memory-bound, FMA bought little
                "--fmad=false",
                *(["-O0", "-g", "-G"] if DEBUG else ["-O3"]), *ARCH_FLAGS,
            ]  # fmt: skip
            # An object is reused only if it was compiled by this command (the archs, the
            # debug switch) and this nvcc, after its source and the headers last changed:
            # otherwise the extension would report the new archs over the old kernels.
            record = obj + ".cmd"
            wanted = " ".join(cmd) + "\n" + toolkit + "\n"
            try:
                with open(record) as f:
                    same_command = f.read() == wanted
            except OSError:
                same_command = False
            stale = not same_command or not os.path.exists(obj) or os.path.getmtime(obj) < max(
                os.path.getmtime(src), newest_header
            )
            jobs.append((obj, record, wanted, cmd if stale else None))

        def run(job):
            obj, record, wanted, cmd = job
            if cmd is not None:
                print("nvcc:", " ".join(cmd), flush=True)
                if os.path.exists(record):
                    os.remove(record)  # a failed compile leaves no record of success
                subprocess.run(cmd, check=True)
                with open(record, "w") as f:
                    f.write(wanted)
            return obj

        with concurrent.futures.ThreadPoolExecutor(max_workers=max_jobs()) as pool:
            return list(pool.map(run, jobs))


def make_extension() -> CppExtension:
    cxx = ["-O0", "-g"] if DEBUG else ["-O3"]
    # -fno-trapping-math: no code relies on floating-point exceptions, and without it GCC
    # keeps a select whose arm could raise one as a branch, which leaves the loop scalar (the
    # WLS edge weights, csrc/include/xvertfast/float_math.h). Values are unchanged (no
    # reassociation or contraction is allowed by it).
    # -ffp-contract=off: products and sums rounded as written, as on the GPU (--fmad=false), also
    # where the target has FMA and the compiler would contract by default (Clang; GCC in GNU
    # mode, e.g. on aarch64): the CPU's and the GPU's loops then agree bit for bit where they are
    # arithmetic alone (float64 log/exp are each platform's own library's, see _compile_cuda).
    cxx += ["-fopenmp", "-fno-trapping-math", "-ffp-contract=off", "-Wall", "-Wno-unknown-pragmas"]
    macros = []
    include_dirs = [os.path.join(ROOT, "csrc", "include")]
    library_dirs, libraries, link_args = [], [], ["-fopenmp"]
    if WITH_CUDA:
        macros += [("XVF_WITH_CUDA", None), ("XVF_CUDA_ARCHS", f'"{",".join(ARCH_NAMES)}"')]
        library_dirs.append(os.path.join(CUDA_HOME, "lib64"))
        if TORCH_CUDA:
            # Share the CUDA runtime torch has already loaded (same streams, same context).
            macros.append(("XVF_TORCH_CUDA", None))
            include_dirs.append(os.path.join(CUDA_HOME, "include"))
            libraries += ["c10_cuda", "cudart"]
        else:
            # CPU torch: nothing provides libcudart, so carry the static runtime.
            libraries += ["cudart_static", "rt", "pthread", "dl"]
    return CppExtension(
        name="xvertfast._C",
        sources=HOST_SOURCES,
        include_dirs=include_dirs,
        define_macros=macros,
        extra_compile_args={"cxx": cxx},
        library_dirs=library_dirs,
        libraries=libraries,
        extra_link_args=link_args,
    )


#: What xvertfast needs at run time besides torch.
REQUIRES = ["numpy>=1.24", "scipy>=1.10", "pillow>=10", "tifffile>=2023.1", "tqdm>=4.60", "safetensors>=0.4"]


def torch_requirement(with_extension: bool, commands: list[str]) -> str:
    """The torch a build asks for. A wheel (or an install) holding the compiled extension needs
    the minor release of torch it was compiled against: libtorch's C++ ABI changes between
    them, and a ``_C`` built against one either fails to load under another (every op then
    falls back to PyTorch, with a warning) or loads and misbehaves. The source distribution,
    which compiles against whatever torch the installing machine has, and a build without the
    extension need only a torch new enough."""
    if not with_extension or "sdist" in commands:
        return "torch>=2.4"
    public = torch.__version__.split("+")[0]  # "2.13.0" of "2.13.0+cpu"
    major, minor = public.split(".")[:2]
    if re.search(r"(a|b|rc|\.?dev)\d*$", public):  # a nightly or source build (2.14.0.dev20261201, 2.14.0a0):
        # "==2.14.*" excludes pre-releases, so pip would try to replace it; a pre-release bound admits them
        return f"torch>={major}.{minor}.0.dev0,<{major}.{int(minor) + 1}"
    return f"torch=={major}.{minor}.*"


if _env_flag("XVF_NO_EXTENSION"):
    ext_modules, cmdclass = [], {}
else:
    ext_modules, cmdclass = [make_extension()], {"build_ext": BuildWithNvcc.with_options(use_ninja=True)}

print(
    f"xvertfast build: CUDA kernels {'ON (' + ','.join(ARCH_NAMES) + ')' if WITH_CUDA else 'OFF'}"
    f", torch {torch.__version__} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU'})",
    flush=True,
)

setup(
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    install_requires=[torch_requirement(bool(ext_modules), sys.argv[1:]), *REQUIRES],
)
