#!/usr/bin/env bash
# One device call's worth of GPU checks, in priority order, for a session lent a GPU:
# build the extension against the machine's CUDA torch, run every `cuda`-marked test,
# then time the WLS solver and the ops. Each step has its own time limit so a hang
# in one still leaves the others' results; everything lands in $OUT (default ./gpu-check):
#   nvidia-smi.txt build.log info.txt tests-cuda.log wls-gpu.md ops-gpu.md
#
#   bash tools/gpu_check.sh            # on the GPU machine, from the repository root
#
# Nothing is downloaded: the GPU machine has no network, so the build uses the torch,
# numpy and friends already installed there (--no-deps --no-build-isolation).
#
# The real-image tests and the WLS table read the cxr-dev radiographs, which live beside
# the checkout (../shared/data/cxr-dev) and do not travel to a lent machine with it. Copy
# them into the checkout under a name git ignores and carry that folder (6.5 MB):
#   echo /.gpu-data/ >> .git/info/exclude; mkdir -p .gpu-data; cp -r ../shared/data/cxr-dev .gpu-data/
#   (device run, carry [".gpu-data"]):  bash tools/gpu_check.sh
# The script finds them there; without them those tests skip and the table fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if [ -z "${XVF_CXR_DEV:-}" ] && [ ! -d ../shared/data/cxr-dev ] && [ -d .gpu-data/cxr-dev ]; then
  export XVF_CXR_DEV=$PWD/.gpu-data/cxr-dev
fi
echo "cxr-dev images: ${XVF_CXR_DEV:-../shared/data/cxr-dev}" \
  "($(ls "${XVF_CXR_DEV:-../shared/data/cxr-dev}" 2>/dev/null | wc -l) files)"
export XVF_WITH_CUDA=1 MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

step() {  # step NAME SECONDS COMMAND...: runs COMMAND with a limit, output to $OUT/NAME
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name" 2>&1
  local rc=$?
  echo "   rc=$rc in $((SECONDS - t0))s; last lines:"
  tail -n 5 "$OUT/$name" | sed 's/^/   /'
  return $rc
}

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
step build.log 300 python -m pip install --no-deps --no-build-isolation -v -e . || exit 1
step info.txt 60 xvertfast info
step tests-cuda.log 240 python -m pytest tests -m cuda -q -p no:cacheprovider --durations=10
step wls-gpu.md 180 python bench/wls_table.py --device cuda --sizes 1024 2048 --batch 8
step ops-gpu.md 120 python bench/report.py
echo "results in $OUT"
