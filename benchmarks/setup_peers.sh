#!/usr/bin/env bash
# Create the peers' virtual environment for benchmarks/quality.py: AutoKeras 3.0.0 and KerasTuner.
#
# AutoKeras 3.0.0 fails with keras >= 3.13, which automl itself uses, so the peers live in their own venv
# (${PEERS_VENV:-/work/.venvs/peers}). Everything comes from PyPI by package name. benchmarks/quality_peers.py
# runs there and never imports automl.
#
#   benchmarks/setup_peers.sh              # create or update the venv
#   PEERS_VENV=/tmp/peers benchmarks/setup_peers.sh
set -euo pipefail

VENV="${PEERS_VENV:-/work/.venvs/peers}"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip
# TensorFlow 2.20 is the release built against keras 3.10-3.12; tensorboard: KerasTuner on TF imports it.
"$VENV/bin/python" -m pip install \
    "autokeras==3.0.0" \
    "keras>=3.12,<3.13" \
    "tensorflow>=2.18,<2.21" \
    "tensorboard" \
    "keras-tuner>=1.4,<2" \
    "scikit-learn" \
    "pillow" \
    "numpy"
"$VENV/bin/python" - <<'PY'
import autokeras
import keras
import keras_tuner
import tensorflow as tf

print(f"peers venv ok: autokeras {autokeras.__version__}, keras {keras.__version__}, "
      f"keras-tuner {keras_tuner.__version__}, tensorflow {tf.__version__}")
PY
