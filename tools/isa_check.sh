#!/usr/bin/env bash
# The CPU kernels compiled once per instruction set (GCC target_clones, XVF_TARGET_CLONES in
# csrc/include/xvertfast/common.h: guided_pool's row functions) pick their version when the
# extension loads, so a machine with AVX-512 only ever tests the AVX-512 one. This runs their
# tests on emulated CPUs (qemu user mode): Haswell (AVX2, no AVX-512: the x86-64-v3 clone)
# and Nehalem (SSE4.2, no AVX: the baseline clone). First, each clone must give the same bits
# as the one this machine runs (no multiply-add contraction: -ffp-contract=off), compared as
# a digest of the op's outputs on random inputs.
#
#   bash tools/isa_check.sh        # after the build, from the repository root
#
# Needs qemu-x86_64 (Debian: apt-get install qemu-user); without it the check says so and
# exits 0. Emulation is slow: the tests run 10 to 14 times slower than natively (measured on
# test_gradcheck); torch's import alone took 17.6 CPU seconds under qemu -cpu Haswell (2.1 s
# natively; 64 s wall on a machine at load 9), and the whole check 8 minutes wall at load 7-9
# (the tests 116 s on Haswell, 137 s on Nehalem).
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
# the digest of guided_pool's forward and backward outputs on fixed random inputs
DIGEST_SCRIPT=$(mktemp /tmp/xvf_isa_digest.XXXXXX.py)
trap 'rm -f "$DIGEST_SCRIPT"' EXIT
cat > "$DIGEST_SCRIPT" <<'PYEOF'
import hashlib, site, sys
site.addsitedir(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import torch
import xvertfast.ops  # noqa: F401 (loads the extension's ops)
import numpy as np
rng = np.random.default_rng(0)  # integers, scaled: the same inputs on every CPU (torch's randn is not:
def rand(*shape):  # its vector kernels differ by instruction set); 24-bit values, whose products round
    return torch.from_numpy(rng.integers(-(1 << 23), 1 << 23, size=shape).astype(np.float32) / (1 << 23))
y, w, b = rand(2, 1, 67, 91), rand(16, 1, 3, 3), rand(16)
out, argmax = torch.ops.xvertfast.guided_pool(y, w, b, 2)
grads = torch.ops.xvertfast.guided_pool_backward(rand(*out.shape), y, w, argmax, 2, True)
h = hashlib.sha256()
for t in (out, argmax, *grads):
    h.update(t.contiguous().numpy().tobytes())
print("digest", h.hexdigest())
PYEOF
NATIVE=$("$PY" "$DIGEST_SCRIPT" "$SITE" "$PWD" | grep "^digest")
echo "guided_pool on this CPU: $NATIVE"
for cpu in Haswell Nehalem; do
  EMULATED=$("$QEMU" -cpu "$cpu" "$PY" "$DIGEST_SCRIPT" "$SITE" "$PWD" 2>&1 | grep "^digest" || true)
  echo "guided_pool on an emulated $cpu CPU: $EMULATED"
  if [ "$EMULATED" != "$NATIVE" ]; then
    echo "isa_check: guided_pool's $cpu version gives other values than this CPU's"
    exit 1
  fi
done
# Under emulation, the tests that run the op's kernels: every forward (the cloned row functions,
# float32 and float64, each pool and shape), backward and gradcheck test. Left out: opcheck (the
# op's registration: schema, fake tensors, autograd; no instruction set in it), gradgradcheck
# (second order through PyTorch's formula, its forward the float64 one the reference tests run)
# and the whole stage against the formula (PyTorch's convolutions around the same op calls):
# natively 27 of the file's 35 CPU seconds, as many minutes emulated, and no kernel code the
# others miss.
EMULATED_TESTS="not opcheck and not gradgradcheck and not test_stage_same_with_the_formula"
for cpu in Haswell Nehalem; do
  echo "== guided_pool tests on an emulated $cpu CPU (-k '$EMULATED_TESTS')"
  "$QEMU" -cpu "$cpu" "$PY" - "$SITE" "$PWD" "$EMULATED_TESTS" <<'EOF' 2>&1 | grep -v "TCG doesn't support"
import site, sys
site.addsitedir(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import pytest, torch
capability = torch.backends.cpu.get_cpu_capability()
print("torch CPU capability:", capability)
if capability.startswith("AVX512"):
    sys.exit("isa_check: the emulated CPU still reports AVX-512")
sys.exit(pytest.main(["tests/ops/test_guided_pool.py", "-q", "-p", "no:cacheprovider", "-k", sys.argv[3]]))
EOF
done
