"""Export to TensorFlow Lite (LiteRT) for phones.

`export_tflite` writes a batch-1 model: float32, float16, dynamic-range or
full-int8 (every op integer, uint8 or int8 input and output). The graph is
the exact `deploy.deployment_model` of the Keras model, converted with Keras'
own LiteRT export (TensorFlow backend); an int8 file then loses the
requantizations the converter puts before slices (`_requantize`). A
quantization-aware-trained model of `keras_shufflenet.quantization` converts
to full int8 with the ranges it learnt: a Keras 3 one (`engine="keras"`) as
the same deploy graph, its ranges in fake-quant ops (`_qat_deploy`); a
tf_keras one (tfmot) as it is. Every file carries TFLite model metadata (`_metadata`: name,
description, licence, the input image and its normalisation, and the class
names), which MediaPipe Tasks' `ImageClassifier` needs. The file appears only
when complete.
"""

import os

import keras

from keras_shufflenet import _files, _imagenet, _progress
from keras_shufflenet.export import (
    _deploy,
    _layout,
    _metadata,
    _qat_deploy,
    _requantize,
    _tflite_file,
)
from keras_shufflenet.export._calibration import (
    calibration_images,
    check_representative_folder,
    input_shape_of,
    size_from_data,
)

QUANTIZATIONS = ("int8", "float16", "float32", "dynamic")
IO_DTYPES = ("uint8", "int8")
HEAD = "predictions"


def check_tflite_arguments(quantization="int8", io_dtype="uint8", representative_data=None,
                           needs_data=True):
    """Checks `export_tflite`'s options, before any model is built or converted."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"`io_dtype` must be one of {IO_DTYPES}. Received: io_dtype={io_dtype!r}")
    if quantization == "int8" and needs_data:
        if representative_data is None:
            raise ValueError(
                'quantization="int8" needs `representative_data`, calibration images '
                "(--calibration-dir, a folder of them, on the command line), to calibrate "
                "activation ranges. Received: representative_data=None"
            )
        check_representative_folder(representative_data)


def _converter_options(quantization, calibration, io_dtype, progress=False):
    import tensorflow as tf

    if quantization == "float32":
        return {}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantization == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    elif quantization == "int8":
        io_type = tf.int8 if io_dtype == "int8" else tf.uint8
        options.update(inference_input_type=io_type, inference_output_type=io_type)
        if calibration is None:  # quantization-aware: the ranges are in the graph
            return options

        def representative_dataset():
            bar = _progress.StderrProgbar(len(calibration), "image") if progress else None
            for i, image in enumerate(calibration, 1):
                yield [image[None]]
                if bar is not None:
                    bar.update(i)

        options.update(
            representative_dataset=representative_dataset,
            target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        )
    return options


def is_qat_model(model):
    """Whether `model` is a QAT model of `keras_shufflenet.quantization`
    (tfmot's tf_keras one, or a Keras 3 one)."""
    return type(model).__module__.startswith("tf_keras") or _qat_deploy.is_keras_qat_model(model)


def _convert_qat(model, input_shape, io_dtype):
    """Full-int8 flatbuffer of a tf_keras QAT model (its fake-quant ranges).

    A concrete function converts in seconds; `from_keras_model` would first
    write a SavedModel of every tf_keras layer.
    """
    import tensorflow as tf

    signature = tf.TensorSpec((1, *input_shape), tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.experimental_lower_to_saved_model = False
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = (
        tf.int8 if io_dtype == "int8" else tf.uint8
    )
    return converter.convert()


def export_tflite(model, path, quantization="int8", representative_data=None, *,
                  io_dtype="uint8", labels=None, input_size=None, resize=None, crop=None,
                  progress=False):
    """Writes `model` as a batch-1 TensorFlow Lite model.

    Args:
        model: A Keras 3 ShuffleNet, or the QAT model that
            `keras_shufflenet.quantization.quantize_model` returns (int8 only,
            no `representative_data` needed): a Keras 3 one exports to the
            same graph as post-training quantization, with its learnt ranges.
            A `"channels_first"` model exports as its channels-last twin:
            the same NHWC phone graph (`_layout`).
        path: Output `.tflite` path. Written atomically.
        quantization: `"int8"` (full integer: every op and the input and
            output are integer), `"float16"` (float16 weights),
            `"float32"`, or `"dynamic"` (int8 weights, float activations).
            Defaults to `"int8"`.
        representative_data: Calibration images for `"int8"`, as the model
            takes them (RGB in [0, 255] with in-model preprocessing): an
            array `(N, H, W, 3)`, a `tf.data.Dataset` of images or batches,
            or a folder of image files (resized to `resize` and centre-cropped
            to `crop`). At least 10 images. Defaults to `None`.
        io_dtype: `"uint8"` or `"int8"` input and output of an int8 model.
            `"uint8"` takes the camera's bytes as they are, and is what
            MediaPipe Tasks accepts. Defaults to `"uint8"`.
        labels: The class names in output order, written into the file's
            metadata (its label file). Defaults to `None`: ImageNet's class
            names for a 1000-class model, else none. A model without its
            classifier (`include_top=False`) takes none.
        input_size: `H` or `(H, W)` for models built with a flexible input
            size. Defaults to the model's size, else the size of array
            `representative_data`, else 224.
        resize, crop: Evaluation resize/crop for a folder of calibration
            images. Default to the input size.
        progress: Show a progress bar over the int8 calibration images on
            stderr. Defaults to `False`.

    Returns:
        The `Path` written.
    """
    qat = is_qat_model(model)
    tfmot_qat = qat and not _qat_deploy.is_keras_qat_model(model)
    if qat and quantization != "int8":
        raise ValueError(
            'A quantization-aware-trained model exports as quantization="int8". '
            f"Received: quantization={quantization!r}"
        )
    if not tfmot_qat and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "TFLite export needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend={keras.backend.backend()!r}"
        )
    check_tflite_arguments(quantization, io_dtype, representative_data, needs_data=not qat)
    if not qat:
        model = _layout.channels_last(model)
    path = _files.output_path(path)
    labels = class_names(model, labels)
    input_size = size_from_data(model, input_size, representative_data)
    input_shape = input_shape_of(model, input_size)
    calibration = None
    if quantization == "int8" and not qat:
        calibration = calibration_images(representative_data, input_shape, resize, crop)
    import tensorflow as tf

    with _files.atomic_output(path, suffix=".tflite") as staged:  # Keras wants the suffix
        if tfmot_qat:
            staged.write_bytes(_convert_qat(model, input_shape, io_dtype))
        else:
            if qat:
                deployed = _qat_deploy.deployment_model(model, input_shape)
            else:
                # Float models are what LiteRT's GPU accelerator runs: keep them
                # compilable there. int8 keeps XNNPACK's grouped kernels.
                split_groups = quantization in ("float32", "float16")
                deployed = _deploy.deployment_model(model, input_shape, split_groups)
            deployed.export(
                str(staged),
                format="litert",
                input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)],
                verbose=False,
                **_converter_options(quantization, calibration, io_dtype, progress),
            )
            if quantization == "int8":
                staged.write_bytes(_requantize.without_requantizations(staged.read_bytes()))
        input_dtype = io_dtype if quantization == "int8" else "float32"
        metadata = model_metadata(model, quantization, input_dtype, input_shape, labels)
        files = {_metadata.LABELS_FILE: _metadata.labels_file(labels)} if labels else None
        staged.write_bytes(_tflite_file.with_metadata(
            staged.read_bytes(), _metadata.metadata_buffer(metadata), files
        ))  # fmt: skip
    return path


def _has_head(model):
    """Whether `model` ends in the classifier (`quant_predictions` in a QAT model)."""
    return any(layer.name in (HEAD, f"quant_{HEAD}") for layer in model.layers)


def class_names(model, labels=None):
    """The class names the export writes: `labels` checked against the
    model, else ImageNet's for a 1000-class classifier, else `None`."""
    classes = int(model.output_shape[-1])
    if labels is None:
        if _has_head(model) and classes == _imagenet.NUM_CLASSES:
            return tuple(name for _, name in _imagenet.class_index())
        return None
    if isinstance(labels, str) or not all(isinstance(name, str) for name in labels):
        raise ValueError(
            f"`labels` must be a list of class names (strings). Received: labels={labels!r:.80}"
        )
    if not _has_head(model):
        raise ValueError(
            "`labels` name the classes of a classifier; this model has no `predictions` "
            f"head (include_top=False). Received: labels of {len(labels)} classes"
        )
    if len(labels) != classes:
        raise ValueError(
            f"`labels` must name each of the model's {classes} classes. "
            f"Received: {len(labels)} labels"
        )
    return tuple(labels)


def model_metadata(model, quantization, input_dtype, input_shape, labels):
    """The `_metadata.ModelMetadata` of an export of `model`."""
    from keras_shufflenet import __version__
    from keras_shufflenet.models import _specs
    from keras_shufflenet.weights import _registry

    try:
        spec = _specs.spec_from_model(model)
        family = f"{spec.family} ({spec.describe()})"
    except ValueError:
        spec, family = None, "A Keras model"
    weights = getattr(model, "_keras_shufflenet_weights", None)
    license, origin = "Apache-2.0 (keras-shufflenet); the weights carry their source's terms", (
        "not recorded"
    )
    if weights == "imagenet" and spec is not None:
        entry = _registry.get_entry(spec)
        license, origin = entry.terms, f"ImageNet, converted from {entry.source}"
    elif weights is not None:
        origin = f"from the file {os.path.basename(str(weights))}"
    height, width = input_shape[:2]
    inside = any(layer.name == "preprocessing" for layer in model.layers)
    mean, std = (0.0,), (1.0,)
    if not inside:  # the app normalises: (pixel / 255 - mean) / std
        mean = tuple(255 * m for m in _imagenet.MEAN)
        std = tuple(255 * s for s in _imagenet.STD)
    if _has_head(model):
        output_name = "probability"
        output = f"scores of {model.output_shape[-1]} classes, {input_dtype}"
    else:
        output_name = "features"
        output = f"features {tuple(model.output_shape[1:])}, {input_dtype}"
    return _metadata.ModelMetadata(
        name=model.name,
        description=f"{family}, {quantization}; weights: {origin}. Exported by keras-shufflenet.",
        version=__version__,
        author="keras-shufflenet",
        license=license,
        input_description=(
            f"RGB image, {height}x{width}, {input_dtype}, pixels in [0, 255]"
            + (" (normalised inside the model)" if inside else "")
        ),
        output_name=output_name,
        output_description=output,
        mean=mean,
        std=std,
        labels=labels,
    )
