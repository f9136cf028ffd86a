"""Every use of a private Keras, TensorFlow, tfmot or LiteRT internal, in one place.

Each function says what it relies on and the versions it was checked on, and
raises `InternalsChanged` (naming the attribute and the installed versions)
when that internal is gone, never falling back silently.
`tests/test_compat.py` checks each one against the installed packages, so an
upgrade that moves an internal fails there first.

Checked on: keras 3.10-3.15.1, tensorflow 2.18-2.21, tf_keras 2.21,
tensorflow-model-optimization 0.8.1, ai-edge-litert 2.3.0.
"""

import contextlib
import importlib
from importlib import metadata

KERAS_CHECKED = "keras 3.10-3.15.1"
TFMOT_CHECKED = "tensorflow-model-optimization 0.8.1 with tf_keras 2.21"


class InternalsChanged(RuntimeError):
    """A private internal this package relies on is gone or changed."""


def _installed(*packages):
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _require(owner, attribute, purpose, checked, packages=("keras", "tensorflow")):
    """`getattr(owner, attribute)`, or an `InternalsChanged` that says what changed."""
    if isinstance(owner, str):
        try:
            owner = importlib.import_module(owner)
        except ImportError as error:
            raise InternalsChanged(
                f"{purpose} needs the module {owner!r}, which cannot be imported ({error}). "
                f"Checked on {checked}; installed: {_installed(*packages)}."
            ) from error
    try:
        return getattr(owner, attribute)
    except AttributeError:
        raise InternalsChanged(
            f"{purpose} needs {getattr(owner, '__name__', type(owner).__name__)}.{attribute}, "
            f"which is gone. Checked on {checked}; installed: {_installed(*packages)}."
        ) from None


# ------------------------------------------------------------ TensorFlow Lite


def tflite_flatbuffer_modules():
    """`(flatbuffer_utils, schema_py_generated)` from `tensorflow.lite`: read
    and write `.tflite` flatbuffers as objects (export._requantize). Neither
    is in TensorFlow's public API."""
    utils = "tensorflow.lite.tools.flatbuffer_utils"
    for name in ("read_model_from_bytearray", "convert_object_to_bytearray"):
        _require(utils, name, "Editing int8 .tflite files", "tensorflow 2.18-2.21")
    return importlib.import_module(utils), tflite_schema()


# --------------------------------------------------------------- Keras 3


@contextlib.contextmanager
def grouped_convolutions_as_tf_ops():
    """Traces grouped convolutions as TensorFlow's grouped `Conv2D` op (ONNX export).

    Keras' TensorFlow backend runs a grouped convolution inside an XLA-compiled
    function (TensorFlow has no CPU kernel for it), which tf2onnx cannot
    convert. Replaces `keras.src.backend.tensorflow.nn.conv` while the block
    runs (a process-wide patch: build no other TensorFlow graph meanwhile).
    """
    import keras
    import tensorflow as tf

    backend_nn = "keras.src.backend.tensorflow.nn"
    original = _require(backend_nn, "conv", "ONNX export of grouped convolutions", KERAS_CHECKED)
    module = importlib.import_module(backend_nn)

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = data_format or keras.config.image_data_format()
        grouped = len(inputs.shape) == 4 and inputs.shape[-1] != kernel.shape[-2]
        if data_format != "channels_last" or not grouped:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(
            inputs, kernel, strides, padding.upper(), data_format="NHWC", dilations=dilation_rate
        )

    module.conv = conv
    try:
        yield
    finally:
        module.conv = original


def build_before_fit(model, data_batch):
    """Builds `model`'s optimizer, loss and metrics from `data_batch` and stops
    `fit` from building them again from a first batch (multi-worker training:
    Keras 3 averages that batch across replicas, which fails under
    `MultiWorkerMirroredStrategy`). Uses `Model._symbolic_build` and replaces
    `_maybe_symbolic_build` on this model only."""
    _require(model, "_maybe_symbolic_build", "Multi-worker training", KERAS_CHECKED)
    _require(model, "_symbolic_build", "Multi-worker training", KERAS_CHECKED)(data_batch=data_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def average_scalar_logs_across_workers():
    """Keras 3's TensorFlow trainer reduces each step's logs (scalars) under
    `MultiWorkerMirroredStrategy` with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on a scalar; this averages them over replicas (`axis=None`).
    Replaces `keras.src.backend.tensorflow.trainer.reduce_per_replica` for the
    process, once."""
    trainer = "keras.src.backend.tensorflow.trainer"
    purpose = "Multi-worker training"
    original = _require(trainer, "reduce_per_replica", purpose, KERAS_CHECKED)
    is_multi_worker = _require(trainer, "_collective_all_reduce_multi_worker", purpose, KERAS_CHECKED)
    if getattr(original, "_keras_shufflenet_patch", False):
        return
    from keras import tree

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("mean", "auto") and is_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica._keras_shufflenet_patch = True
    importlib.import_module(trainer).reduce_per_replica = reduce_per_replica


_BACKUP_INTERNALS = (
    "_load_model", "_save_model", "_weights_path", "_training_metadata_path",
    "_current_epoch", "_last_batch_seen",
)  # fmt: skip


def check_backup_and_restore(callback):
    """Checks the `BackupAndRestore` internals `ResumableBackup` overrides and
    reads: its `_load_model`/`_save_model` hooks, its file paths and progress."""
    for name in _BACKUP_INTERNALS:
        _require(callback, name, "Resumable training backups", KERAS_CHECKED)


def set_initial_epoch(model, epoch):
    """Makes the running `fit` start at `epoch` (what `BackupAndRestore` does
    on restore: `fit` reads `Model._initial_epoch` after `on_train_begin`)."""
    _require(model, "_initial_epoch", "Resuming training", KERAS_CHECKED)
    model._initial_epoch = epoch


def tflite_schema():
    """TensorFlow's generated Python module of the TFLite model schema
    (`tensorflow.lite.python.schema_py_generated`: `Model`, `ModelT`,
    `BufferT`, `MetadataT`, `BuiltinOperator`, `TensorType`), with which the
    export adds metadata to a file and `keras-shufflenet info` reads one.
    Checked on tensorflow 2.18-2.21."""
    module = "tensorflow.lite.python.schema_py_generated"
    purpose = "Reading and writing .tflite files"
    for name in ("Model", "ModelT", "BufferT", "MetadataT", "BuiltinOperator", "TensorType"):
        _require(module, name, purpose, "tensorflow 2.18-2.21", ("tensorflow",))
    return importlib.import_module(module)


# ------------------------------------------------------- tf_keras and tfmot

_TFMOT_PACKAGES = ("tensorflow-model-optimization", "tf-keras")
_MODEL_TRANSFORMER = (
    "tensorflow_model_optimization.python.core.quantization.keras."
    "graph_transformations.model_transformer"
)
_QUANTIZE_LAYER = "tensorflow_model_optimization.python.core.quantization.keras.quantize_layer"


def _require_tfmot(owner, attribute, purpose):
    return _require(owner, attribute, purpose, TFMOT_CHECKED, _TFMOT_PACKAGES)


@contextlib.contextmanager
def tfmot_inputs_in_call_order():
    """Corrects tfmot's `ModelTransformer._get_layers` while `quantize_apply` runs.

    It returns the layers named in `layer_names` in the model's layer order,
    not in the order asked for; when a pattern matches, the inputs of a
    multi-input layer come back reordered, so a `Concatenate` whose second
    input was built first (ShuffleNet V1's downsampling units) swaps them
    (tensorflow/model-optimization#1179, #1061). This returns them in the
    order asked for, as the issue proposes.
    """
    transformer = _require_tfmot(_MODEL_TRANSFORMER, "ModelTransformer", "QAT of ShuffleNet V1")
    original = _require_tfmot(transformer, "_get_layers", "QAT of ShuffleNet V1")

    def _get_layers(self, layer_names):
        by_name = {layer["config"]["name"]: layer for layer in self._config["layers"]}
        return [by_name[name] for name in dict.fromkeys(layer_names) if name in by_name]

    transformer._get_layers = _get_layers
    try:
        yield
    finally:
        transformer._get_layers = original


def inbound_layer_names(layer):
    """Names of the layers feeding a tf_keras `layer`, in call order."""
    nodes = _require_tfmot(layer, "_inbound_nodes", "Checking tfmot's QAT graph")
    return [x.name for x in nodes[0].inbound_layers]


def quantize_layer_class():
    """tfmot's `QuantizeLayer` (not exported by `tfmot.quantization.keras`)."""
    return _require_tfmot(_QUANTIZE_LAYER, "QuantizeLayer", "Calibrating QAT ranges")


def weight_quantizers(wrapper):
    """`(weight, quantizer, quantizer variables)` of a tfmot `QuantizeWrapper`."""
    return _require_tfmot(wrapper, "_weight_vars", "Setting QAT weight ranges")


def activation_range_vars(layer):
    """`(key, {"min_var", "max_var"})` of each activation quantizer of a layer
    of a QAT model; `key` names the float tensor it sees: the wrapped layer's
    name (its output), `"logits"` (a softmax head's input) or `"input"`."""
    import tensorflow_model_optimization as tfmot

    purpose = "Calibrating QAT ranges"
    if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
        name = layer.layer.name
        if _require_tfmot(layer, "_output_quantizers", purpose):
            yield name, _require_tfmot(layer, "_output_quantizer_vars", purpose)
        for activation in _require_tfmot(layer, "_quantize_activations", purpose):
            if hasattr(activation, "_pre_activation_vars"):
                yield "logits", activation._pre_activation_vars
            if hasattr(activation, "_post_activation_vars"):
                yield name, activation._post_activation_vars
    elif isinstance(layer, quantize_layer_class()) and layer.quantizer:
        yield "input", _require_tfmot(layer, "quantizer_vars", purpose)


# ---------------------------------------------------------------- LiteRT

LITERT_CHECKED = "ai-edge-litert 2.3.0"


def interpreter_nodes(interpreter):
    """The nodes of a LiteRT `Interpreter` whose tensors are allocated: the
    graph's ops, then one `"DELEGATE"` node per delegate partition, each a dict
    with `index`, `op_name`, `inputs` and `outputs` (tensor indices).

    LiteRT's Python API says nothing public about delegation; this relies on
    `Interpreter._get_ops_details`."""
    details = _require(
        interpreter, "_get_ops_details", "Counting XNNPACK's partitions", LITERT_CHECKED,
        packages=("ai-edge-litert",),
    )  # fmt: skip
    return details()
