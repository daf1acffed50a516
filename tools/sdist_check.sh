#!/usr/bin/env bash
# What `pip install` gives someone without this checkout: build the source distribution,
# check that it holds every file the repository tracks (the C++/CUDA sources and headers
# setup.py globs, the CMake build, the tests), build a wheel from the unpacked sdist alone,
# install that wheel apart from the checkout and run the README's quickstart (`xvertfast
# demo`: the bundled model, sample and evaluation) with it, from another folder.
#
#   bash tools/sdist_check.sh      # from the repository root, in the venv the build used
#
# The wheel is built with the CPU kernels only (XVF_WITH_CUDA=0), to save CI the nvcc time
# that the main build already spends: about 4 minutes on 2 cores. Needs `build`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m build --sdist --no-isolation --outdir "$work/dist" . > "$work/sdist.log" 2>&1 ||
  { tail -n 30 "$work/sdist.log"; exit 1; }
sdist=$(ls "$work"/dist/xvertfast-*.tar.gz)
echo "sdist: $(basename "$sdist"), $(du -h "$sdist" | cut -f1)"

# every tracked file is in it, except the CI's own and git's
top=$(basename "$sdist" .tar.gz)
tar tzf "$sdist" | sed -n "s|^$top/||p" | sort > "$work/in_sdist"
git ls-files | grep -v -e '^\.ci/' -e '^\.gitignore$' | sort > "$work/tracked"
missing=$(comm -23 "$work/tracked" "$work/in_sdist")
if [ -n "$missing" ]; then
  echo "sdist_check: tracked files missing from the sdist (MANIFEST.in):"
  echo "$missing"
  exit 1
fi
echo "sdist holds all $(wc -l < "$work/tracked") tracked files"

mkdir "$work/src"
tar xzf "$sdist" -C "$work/src"
(cd "$work/src/$top" && XVF_WITH_CUDA=0 python -m pip wheel -q --no-build-isolation --no-deps -w "$work/wheel" .) \
  > "$work/wheel.log" 2>&1 || { tail -n 40 "$work/wheel.log"; exit 1; }
wheel=$(ls "$work"/wheel/xvertfast-*.whl)
echo "wheel: $(basename "$wheel"), $(du -h "$wheel" | cut -f1)"
python -m pip install -q --no-deps --target "$work/site" "$wheel"

# from another folder, with the wheel's package first on the path (before this checkout's
# editable install)
mkdir "$work/run"
cd "$work/run"
export PYTHONPATH="$work/site"
python - "$work/site" <<'EOF'
import os, sys
import xvertfast
import torch  # noqa: F401  (first: the extension links against torch's libraries)
from xvertfast import _C  # noqa: F401  the compiled extension came with the wheel
site = os.path.realpath(sys.argv[1])
assert os.path.realpath(xvertfast.__file__).startswith(site + os.sep), xvertfast.__file__
from xvertfast.eval._brisque import load_model
load_model()  # the BRISQUE model files are package data too
print("wheel's package imported from", os.path.dirname(xvertfast.__file__), "with its extension")
EOF
python -m xvertfast demo > demo.log 2>&1 || { tail -n 40 demo.log; exit 1; }
test -s xvertfast-demo/enhanced/cr_chest_pa_mono1.dcm
test -s xvertfast-demo/report/report.html
echo "the wheel's quickstart wrote xvertfast-demo/enhanced and xvertfast-demo/report"
