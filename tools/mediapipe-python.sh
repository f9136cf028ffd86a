#!/usr/bin/env bash
# Prepares a Python with MediaPipe Tasks (mediapipe 1.2.2) in its own virtual environment, once,
# under a cache folder; then prints the path of its python. mediapipe pins absl-py ~=2.3 and
# tensorflow-model-optimization (the test extra) ~=1.2, so the two cannot share one environment.
#
#   MEDIAPIPE_PYTHON=$(tools/mediapipe-python.sh)     # first call: about a minute (PyPI)
#   $MEDIAPIPE_PYTHON -c "import mediapipe"
#
# Only mediapipe (and numpy) are importable there: export with this package, classify there.
# tests/test_mediapipe.py runs there (KERAS_SHUFFLENET_MEDIAPIPE_PYTHON, which .ci/run sets from
# this script's output); KERAS_SHUFFLENET_MEDIAPIPE_DIR moves the cache folder.
set -euo pipefail
venv=${KERAS_SHUFFLENET_MEDIAPIPE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keras-shufflenet-mediapipe}
version=${MEDIAPIPE_VERSION:-1.2.2}
if ! "$venv/bin/python" -c "import mediapipe" >/dev/null 2>&1; then
  # venv needs ensurepip, which some distributions ship apart (python3-venv): virtualenv then.
  python3 -m venv "$venv" >&2 || {
    python3 -m pip install -q virtualenv >&2 && python3 -m virtualenv -q "$venv" >&2
  }
  "$venv/bin/python" -m pip install -q "mediapipe==$version" >&2
fi
echo "$venv/bin/python"
