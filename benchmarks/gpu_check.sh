#!/usr/bin/env bash
# automl trial throughput on one GPU with KERAS_BACKEND=jax: 1 vs 4 trials sharing the GPU. Under 8 minutes.
#
# For a machine with an NVIDIA GPU, JAX (CUDA) and PyTorch, no TensorFlow and no network. It installs keras, optuna,
# mlflow and automl's other dependencies offline from benchmarks/wheels/ (made by benchmarks/download_wheels.sh on
# a machine with network), automl itself with --no-deps, then runs benchmarks/gpu_throughput.py:
#   - processes: the overhead benchmark's automl arm in K workers at once on the same GPU, each with every K-th of
#     the 20 fixed configs (10 epochs), XLA_PYTHON_CLIENT_PREALLOCATE=false, XLA_PYTHON_CLIENT_MEM_FRACTION=0.2;
#   - native (when automl's SearchConfig has trials_per_gpu): automl.search(workers=K, trials_per_gpu=K) on a study
#     with the same configs enqueued.
# Results: benchmarks/results/gpu/gpu_results.{md,json}.
#
#   benchmarks/gpu_check.sh                # on the GPU machine, from anywhere
#   DRY_RUN=1 benchmarks/gpu_check.sh      # any machine with jax: no install, JAX on CPU, 4 configs x 2 epochs, 1 vs 2
# Knobs (environment): PYTHON, WHEELS, OUT, TRIALS, EPOCHS, CONCURRENCY ("1 4"), MODE (auto|processes|native),
# LIMIT_S (total seconds, default 450).
set -euo pipefail

started=$(date +%s)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-$HERE/wheels}"
OUT="${OUT:-$HERE/results/gpu}"
DRY_RUN="${DRY_RUN:-0}"
LIMIT_S="${LIMIT_S:-450}"
MODE="${MODE:-auto}"

export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false     # every process (the parent too) takes GPU memory as it needs it
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.2}"
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

if [[ "$DRY_RUN" == "1" ]]; then
    export JAX_PLATFORMS=cpu
    TRIALS="${TRIALS:-4}"; EPOCHS="${EPOCHS:-2}"; CONCURRENCY="${CONCURRENCY:-1 2}"
    OUT="${OUT_DRY:-$REPO/benchmarks/.work/gpu-dry-run}"
    echo "DRY_RUN=1: no install; JAX on CPU; $TRIALS configs x $EPOCHS epochs; concurrency $CONCURRENCY; out $OUT"
else
    TRIALS="${TRIALS:-20}"; EPOCHS="${EPOCHS:-10}"; CONCURRENCY="${CONCURRENCY:-1 4}"
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        echo "no wheels in $WHEELS: run benchmarks/download_wheels.sh on a machine with network, copy the folder here" >&2
        exit 2
    fi
    nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader || echo "warning: nvidia-smi failed" >&2
    # keep the machine's own numpy/jax/torch/CUDA packages exactly as they are
    constraints="$(mktemp)"
    "$PYTHON" -m pip list --format=freeze 2>/dev/null \
        | grep -iE '^(numpy|scipy|ml[-_]dtypes|jax|jaxlib|jax[-_]cuda[0-9a-z_-]*|torch|triton|nvidia[-_][a-z0-9_-]*)==' \
        > "$constraints" || true
    echo "== pinned from this machine: $(tr '\n' ' ' < "$constraints")"
    mapfile -t REQUIREMENTS < <("$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for requirement in project["dependencies"]:
    name = requirement.split(";")[0].strip()
    if not name.lower().startswith("tensorflow"):
        print(name)
print("psutil>=5.9")
EOF
)
    echo "== installing offline: ${REQUIREMENTS[*]}"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" -c "$constraints" "${REQUIREMENTS[@]}"
    echo "== automl --no-deps (pip's note that automl requires tensorflow is expected: JAX is the backend here)"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" --no-deps automl
    rm -f "$constraints"
    echo "== installed in $(( $(date +%s) - started )) s"
fi

"$PYTHON" - <<'EOF'
import jax, keras, optuna, mlflow
print(f"jax {jax.__version__} devices {jax.devices()}; keras {keras.__version__} backend {keras.backend.backend()}; "
      f"optuna {optuna.__version__}; mlflow {mlflow.__version__}")
EOF

left=$(( LIMIT_S - ($(date +%s) - started) ))
if (( left < 60 )); then
    echo "only $left s left of LIMIT_S=$LIMIT_S after the install; not starting" >&2
    exit 3
fi
# the python side skips a measurement that would not fit; timeout is the backstop (results are written as we go)
status=0
timeout --signal=INT --kill-after=20 "$left" \
    "$PYTHON" -m benchmarks.gpu_throughput --mode "$MODE" --concurrency $CONCURRENCY --configs "$TRIALS" \
    --epochs "$EPOCHS" --deadline-s $(( left - 15 )) --timeout $(( left - 15 )) --out "$OUT" || status=$?
echo "== gpu_check finished in $(( $(date +%s) - started )) s (exit $status); results in $OUT/gpu_results.md"
exit $status
