#!/usr/bin/env bash
# The CPU kernels compiled once per instruction set (GCC target_clones, XVF_TARGET_CLONES in
# csrc/include/xvertfast/common.h: guided_pool's row functions) pick their version when the
# extension loads, so a machine with AVX-512 only ever tests the AVX-512 one. This runs their
# tests on emulated CPUs (qemu user mode): Haswell (AVX2, no AVX-512: the x86-64-v3 clone)
# and Nehalem (SSE4.2, no AVX: the baseline clone).
#
#   bash tools/isa_check.sh        # after the build, from the repository root
#
# Needs qemu-x86_64 (Debian: apt-get install qemu-user); without it the check says so and
# exits 0. Emulation is slow: about 1.5 minutes per CPU on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU=${QEMU:-qemu-x86_64}
if ! command -v "$QEMU" >/dev/null 2>&1; then
  echo "isa_check: $QEMU not found (apt-get install qemu-user): the per-ISA clones were not checked"
  exit 0
fi
# the interpreter itself (not a venv's symlink) and the venv's site folder, added with its
# .pth files: under qemu, Python cannot find its venv from /proc/self/exe
PY=$(python -c 'import os, sys; print(os.path.realpath(sys.executable))')
SITE=$(python -c 'import site; print(site.getsitepackages()[0])')
for cpu in Haswell Nehalem; do
  echo "== guided_pool tests on an emulated $cpu CPU"
  "$QEMU" -cpu "$cpu" "$PY" - "$SITE" "$PWD" <<'EOF' 2>&1 | grep -v "TCG doesn't support"
import site, sys
site.addsitedir(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import pytest, torch
capability = torch.backends.cpu.get_cpu_capability()
print("torch CPU capability:", capability)
if capability.startswith("AVX512"):
    sys.exit("isa_check: the emulated CPU still reports AVX-512")
sys.exit(pytest.main(["tests/ops/test_guided_pool.py", "-q", "-p", "no:cacheprovider"]))
EOF
done
