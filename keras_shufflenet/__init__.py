"""ShuffleNet V1 and V2 for Keras 3, exact to their reference implementations.

The public API is what this module exports, plus the `layers`,
`quantization`, `export`, `runtime` and `weights` subpackages; modules and
names that start with an underscore are private. Names load on first use, so
`import keras_shufflenet` (and the `keras-shufflenet` command's `--help`)
does not import TensorFlow.
"""

import importlib

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
}
_SUBPACKAGES = ("export", "layers", "models", "quantization", "runtime", "weights")

__all__ = [*_EXPORTS, "layers"]


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
