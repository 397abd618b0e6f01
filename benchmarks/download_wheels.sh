#!/usr/bin/env bash
# Download what benchmarks/gpu_check.sh installs offline into benchmarks/wheels/ (git-ignored):
#   - keras, optuna, mlflow and automl's other runtime dependencies from pyproject.toml, WITHOUT tensorflow
#     (the GPU machine has JAX and PyTorch), plus psutil, as wheels for CPython 3.11 and 3.12 on manylinux x86_64;
#   - an automl wheel built from this checkout (gpu_check.sh installs it with --no-deps).
# Run it on a machine with network access, from anywhere:
#   benchmarks/download_wheels.sh                 # both Python versions
#   PYTHONS="3.12" benchmarks/download_wheels.sh  # only the GPU machine's version
#   CHECK_ONLY=1 benchmarks/download_wheels.sh    # resolve only (pip install --dry-run --report), download nothing
# Then copy benchmarks/wheels/ next to benchmarks/gpu_check.sh on the GPU machine.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
WHEELS="${WHEELS:-$HERE/wheels}"
PYTHONS="${PYTHONS:-3.11 3.12}"
PYTHON="${PYTHON:-python3}"
CHECK_ONLY="${CHECK_ONLY:-0}"
# manylinux tags from glibc 2.17 (CentOS 7) up to 2.28 (any current CUDA image has at least that)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux2010_x86_64 manylinux1_x86_64)

# automl's runtime dependencies as pyproject.toml pins them, less tensorflow (the CUDA build of TF is not wanted there)
mapfile -t REQUIREMENTS < <("$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for requirement in project["dependencies"]:
    name = requirement.split(";")[0].strip()
    if not name.lower().startswith("tensorflow"):
        print(name)
print("psutil>=5.9")
EOF
)
echo "requirements: ${REQUIREMENTS[*]}"
mkdir -p "$WHEELS"

platform_args=()
for platform in "${PLATFORMS[@]}"; do platform_args+=(--platform "$platform"); done

for version in $PYTHONS; do
    abi="cp${version/./}"
    target_args=(--only-binary=:all: --python-version "$version" --implementation cp
                 --abi "$abi" --abi abi3 --abi none "${platform_args[@]}")
    if [[ "$CHECK_ONLY" == "1" ]]; then
        report="$WHEELS/resolve-py$version.json"
        "$PYTHON" -m pip install --dry-run --quiet --ignore-installed --target "$WHEELS/.dry-run" \
            --report "$report" "${target_args[@]}" "${REQUIREMENTS[@]}"
        "$PYTHON" - "$report" "$version" <<'EOF'
import json, sys
items = json.load(open(sys.argv[1]))["install"]
print(f"python {sys.argv[2]}: {len(items)} wheels resolve, e.g. "
      + ", ".join(f"{i['metadata']['name']} {i['metadata']['version']}" for i in items
                  if i["metadata"]["name"].lower() in ("keras", "optuna", "mlflow", "numpy", "scikit-learn")))
if any(i["metadata"]["name"].lower().startswith("tensorflow") for i in items):
    sys.exit("tensorflow slipped into the resolution")
EOF
        continue
    fi
    echo "== wheels for CPython $version"
    "$PYTHON" -m pip download --dest "$WHEELS" "${target_args[@]}" "${REQUIREMENTS[@]}"
done
rm -rf "$WHEELS/.dry-run"

if [[ "$CHECK_ONLY" != "1" ]]; then
    echo "== automl wheel (installed with --no-deps on the GPU machine)"
    "$PYTHON" -m pip wheel --no-deps --wheel-dir "$WHEELS" "$REPO"
    if ls "$WHEELS"/tensorflow-* >/dev/null 2>&1; then
        echo "error: a tensorflow wheel was downloaded" >&2
        exit 1
    fi
    echo "$(ls "$WHEELS"/*.whl | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1) in $WHEELS"
fi
