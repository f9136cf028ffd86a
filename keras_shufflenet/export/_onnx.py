"""Export to ONNX through tf2onnx, with a dynamic batch dimension.

`export_onnx` converts the Keras model's own inference graph (TensorFlow
backend) to an ONNX model with the model's input and outputs: NHWC float32
`[batch, H, W, 3]` in (RGB pixels in [0, 255] with in-model preprocessing),
named `"input"`, and `"output"` out (`"output_0"`, ... for several outputs).
The batch dimension is symbolic (`"batch"`); H and W are the model's, and
symbolic too (`"height"`, `"width"`) for a model built with a flexible input
size unless `input_size` fixes them. The graph is checked with `onnx.checker`
and the file appears only when complete.

The graph keeps the Keras model's NHWC layout, so tf2onnx puts transposes
to and from NCHW around the convolutions, and each channel shuffle is a
Reshape/Transpose/Reshape (every tensor stays at rank <= 4; the shapes are
constants where the model's input size is fixed).

tf2onnx and onnx are imported only here, when an export runs:
`pip install "keras-shufflenet[onnx]"`.
"""

import contextlib
import logging

import keras

from keras_shufflenet import _compat, _files, _progress
from keras_shufflenet.export import _layout
from keras_shufflenet.export._calibration import input_dims
from keras_shufflenet.export._tflite import is_qat_model

# tf2onnx 1.17 supports and tests opsets 14 to 18; onnxruntime runs them all.
OPSETS = range(14, 19)
DEFAULT_OPSET = 17
INPUT_NAME = "input"
DYNAMIC_DIMS = ("batch", "height", "width")
INSTALL_HINT = 'pip install "keras-shufflenet[onnx]"'


def check_converters():
    """`(onnx, tf2onnx)`, or an ImportError that says what to install."""
    try:
        import onnx
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs the tf2onnx and onnx packages: {INSTALL_HINT} "
            f"(or pip install tf2onnx onnxruntime). Received: {error}"
        ) from error
    return onnx, tf2onnx


def check_opset(opset):
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(
            f"`opset` must be an int from {OPSETS.start} to {OPSETS.stop - 1} (the opsets "
            f"tf2onnx supports). Received: opset={opset!r}"
        )


def _name_dynamic_dims(model_proto):
    """Names the unknown dimensions of the graph's inputs and outputs."""
    graph = model_proto.graph
    named = [(value, DYNAMIC_DIMS) for value in graph.input]
    named += [(value, DYNAMIC_DIMS[:1]) for value in graph.output]
    for value, names in named:
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if not dim.HasField("dim_value"):
                dim.dim_param = name


@contextlib.contextmanager
def _quiet_tf2onnx():
    """tf2onnx logs every conversion step at INFO; keep its warnings only."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _convert(model, dims, opset, onnx, tf2onnx, bar):
    """The checked ONNX `ModelProto` of `model` for input `[None, *dims]`."""
    import tensorflow as tf

    single = len(model.outputs) == 1

    def serve(x):
        outputs = model(x, training=False)
        if single:
            return {"output": outputs}
        flat = tf.nest.flatten(outputs)
        digits = len(str(len(flat) - 1))  # tf2onnx orders the outputs by name
        return {f"output_{i:0{digits}d}": y for i, y in enumerate(flat)}

    signature = [tf.TensorSpec((None, *dims), tf.float32, name=INPUT_NAME)]
    function = tf.function(serve, input_signature=signature)
    with _compat.grouped_convolutions_as_tf_ops():
        function.get_concrete_function()  # traced once, and reused by tf2onnx
    bar.update(1)
    with _quiet_tf2onnx():
        model_proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    bar.update(2)
    _name_dynamic_dims(model_proto)
    onnx.checker.check_model(model_proto, full_check=True)
    bar.update(3)
    return model_proto


def export_onnx(model, path, opset=DEFAULT_OPSET, *, input_size=None, progress=False):
    """Writes `model` as an ONNX model with a dynamic batch dimension.

    Conversion goes through tf2onnx (`pip install "keras-shufflenet[onnx]"`)
    and needs the TensorFlow backend. The ONNX model takes what the Keras
    model takes: NHWC float32 `[batch, H, W, 3]` (RGB pixels in [0, 255] when
    built with `include_preprocessing=True`), input `"input"`, output
    `"output"`; onnxruntime gives the Keras outputs to float32 rounding.

    Args:
        model: A Keras 3 model, such as a ShuffleNet (any `include_top`,
            `pooling` or backbone built from `stage_outputs`).
            A `"channels_first"` model exports as its channels-last twin
            (NHWC input, as the phone graphs).
        path: Output `.onnx` path. Written atomically: on any failure no
            file is left and an existing file is untouched.
        opset: ONNX opset, from 14 to 18 (those tf2onnx supports).
            Defaults to `17`.
        input_size: `H` or `(H, W)` to fix the input size of a model built
            with a flexible one. Defaults to the model's size; a flexible
            size stays symbolic (`"height"`, `"width"`) in the ONNX graph.
        progress: Show a progress bar of the conversion steps on stderr.
            Defaults to `False`.

    Returns:
        The `Path` written.
    """
    if not isinstance(model, keras.Model) or is_qat_model(model):
        raise ValueError(
            "`export_onnx` takes a Keras 3 model (a QAT model exports with `export_tflite`). "
            f"Received: model={type(model).__module__}.{type(model).__name__}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "ONNX export needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend={keras.backend.backend()!r}"
        )
    check_opset(opset)
    model = _layout.channels_last(model)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            "`export_onnx` takes a model with one image input (batch, H, W, C). "
            f"Received: input shapes {[tuple(t.shape) for t in model.inputs]}"
        )
    dims = input_dims(model, input_size)
    path = _files.output_path(path)
    onnx, tf2onnx = check_converters()
    bar = _progress.StderrProgbar(4, "step") if progress else _progress.NoProgress()
    try:
        model_proto = _convert(model, dims, opset, onnx, tf2onnx, bar)
    except Exception as error:  # noqa: BLE001 - tf2onnx raises anything; re-raised with context
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"tf2onnx could not convert {model.name!r} to ONNX opset {opset}: {reason}"
        ) from error
    with _files.atomic_output(path) as staged:
        staged.write_bytes(model_proto.SerializeToString())
    bar.update(4)
    return path
