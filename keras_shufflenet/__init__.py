"""ShuffleNet V1 and V2 for Keras 3, exact to their reference implementations.

The public API is what this module exports, plus the subpackages `layers`,
`export`, `quantization`, `runtime`, `weights`, `models` (the variants as
data), `hub` (the keras-hub family; needs keras-hub), `options` (the
options every front end shares), `logs` (other libraries' log lines kept
out of the programs' output) and `distribute`
(multi-worker and resumable training); modules and names that start with an
underscore are private. The names load on first use; the package's Keras
layers are registered on import, so that `keras.saving.load_model` finds them,
except in the project's programs (the `keras-shufflenet` command, and
`python -m training.NAME`, `tflite.NAME`, `benchmarks.NAME`), which import
TensorFlow only once its log lines are kept out (`keras_shufflenet.logs`).
"""

__version__ = "0.1.0"

_EXPORTS = {
    "ShuffleNetV1": "keras_shufflenet.models._applications",
    "ShuffleNetV2": "keras_shufflenet.models._applications",
    "count_macs": "keras_shufflenet.models._complexity",
    "count_params": "keras_shufflenet.models._complexity",
    "decode_predictions": "keras_shufflenet._imagenet",
    "export_onnx": "keras_shufflenet.export",
    "export_tflite": "keras_shufflenet.export",
    "load_image": "keras_shufflenet._images",
    "load_images": "keras_shufflenet._images",
    "preprocess_input": "keras_shufflenet._imagenet",
    "stage_outputs": "keras_shufflenet.models._builder",
}
_SUBPACKAGES = (
    "distribute", "export", "hub", "layers", "logs", "models", "options", "quantization", "runtime",
    "weights",
)  # fmt: skip

__all__ = list(_EXPORTS)


def _running_a_program():
    """Whether this process is `keras-shufflenet` (or `python -m keras_shufflenet.cli`)
    or one of the programs run as `python -m training.NAME`, `tflite.NAME`, `benchmarks.NAME`."""
    import os
    import re
    import sys

    argv = getattr(sys, "orig_argv", sys.argv)
    script = os.path.basename(argv[1]) if len(argv) > 1 else ""
    module = argv[2] if len(argv) > 2 and argv[1] == "-m" else ""
    return script == "keras-shufflenet" or bool(
        re.fullmatch(r"keras_shufflenet\.cli|(training|tflite|benchmarks)\.\w+", module)
    )


if not _running_a_program():
    from keras_shufflenet import layers  # noqa: E402  (registers the serializable layers)
    from keras_shufflenet.quantization import _keras_layers  # noqa: E402, F401  (and Keras QAT's)


def __getattr__(name):
    from importlib import import_module

    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = import_module(f"keras_shufflenet.{name}")
    else:
        raise AttributeError(f"module 'keras_shufflenet' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS, *_SUBPACKAGES})
