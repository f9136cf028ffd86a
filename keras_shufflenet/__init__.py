"""ShuffleNet V1 and V2 for Keras 3, exact to their reference implementations.

The public API is what this module exports, plus the `layers`,
`quantization`, `export`, `runtime` and `weights` subpackages; modules and
names that start with an underscore are private. The names load on first
use; the package's Keras layers are registered on import, so that
`keras.saving.load_model` finds them, except in the `keras-shufflenet`
command, which imports TensorFlow only once its C++ log lines are kept out.
"""

import importlib
import os
import sys

__version__ = "0.1.0"

_EXPORTS = {
    "ShuffleNetV1": "keras_shufflenet.models",
    "ShuffleNetV2": "keras_shufflenet.models",
    "count_macs": "keras_shufflenet.models",
    "count_params": "keras_shufflenet.models",
    "decode_predictions": "keras_shufflenet.models",
    "preprocess_input": "keras_shufflenet.models",
    "stage_outputs": "keras_shufflenet.models",
    "export_onnx": "keras_shufflenet.export",
    "export_tflite": "keras_shufflenet.export",
    "load_image": "keras_shufflenet._images",
    "load_images": "keras_shufflenet._images",
}
_SUBPACKAGES = ("export", "layers", "models", "quantization", "runtime", "weights")

__all__ = [*_EXPORTS, "layers"]


def _running_the_command():
    """Whether this process is `keras-shufflenet` (or `python -m keras_shufflenet.cli`)."""
    argv = getattr(sys, "orig_argv", sys.argv)
    script = os.path.basename(argv[1]) if len(argv) > 1 else ""
    return script == "keras-shufflenet" or argv[1:3] == ["-m", "keras_shufflenet.cli"]


if not _running_the_command():
    from keras_shufflenet import layers  # noqa: E402  (registers the serializable layers)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"keras_shufflenet.{name}")
    else:
        raise AttributeError(f"module 'keras_shufflenet' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS, *_SUBPACKAGES})
