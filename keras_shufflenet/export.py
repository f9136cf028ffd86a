"""Export to TensorFlow Lite (LiteRT) for phones.

`export_tflite` writes a batch-1 model: float32, float16, dynamic-range or
full-int8 (every op integer, int8 or uint8 input and output). The graph is
the exact `deploy.deployment_model` of the Keras model, converted with Keras'
own LiteRT export (TensorFlow backend). A quantization-aware-trained model
(tf_keras, from `keras_shufflenet.quantization`) converts to full int8 with
the ranges it learnt. The file appears only when complete.
"""

import contextlib
import os
import sys
from pathlib import Path

import keras
import numpy as np

from keras_shufflenet import deploy, files, images

QUANTIZATIONS = ("int8", "float16", "float32", "dynamic")
IO_DTYPES = ("int8", "uint8")
MIN_CALIBRATION_IMAGES = 10
DEFAULT_SIZE = 224


def input_dims(model, input_size=None):
    """`(H, W, C)` of `model`'s input with `input_size` (`H` or `(H, W)`)
    applied; `None` where H or W stays flexible."""
    height, width, channels = model.inputs[0].shape[1:]
    if input_size is None:
        return height, width, channels
    size = (input_size, input_size) if np.ndim(input_size) == 0 else tuple(input_size)
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(
            "`input_size` must be a positive int `H` or a pair `(H, W)`. "
            f"Received: input_size={input_size!r}"
        )
    if any(d is not None and d != s for d, s in zip((height, width), size)):
        raise ValueError(
            f"`input_size` conflicts with the model's input {(height, width)}. "
            f"Received: input_size={input_size!r}"
        )
    return (*map(int, size), channels)


def _input_shape(model, input_size):
    """`input_dims`, with 224 for a flexible H or W."""
    height, width, channels = input_dims(model, input_size)
    return (height or DEFAULT_SIZE, width or DEFAULT_SIZE, channels)


def _size_from_data(model, input_size, data):
    """`input_size`, or the size of the images in `data` for a flexible-size model."""
    if input_size is None and None in model.inputs[0].shape[1:3] and np.ndim(data) == 4:
        return np.shape(data)[1:3]
    return input_size


def representative_images(model, data, input_size=None, resize=None, crop=None):
    """`data` as float32 images `(N, H, W, C)` of `model`'s input size.

    `data` is what `export_tflite` takes as `representative_data`: an array,
    a `tf.data` dataset, or a folder of image files (resized to `resize` and
    centre-cropped to `crop`, default the input size). At least
    `MIN_CALIBRATION_IMAGES`.
    """
    input_shape = _input_shape(model, _size_from_data(model, input_size, data))
    return _calibration_images(data, input_shape, resize, crop)


class StderrProgbar:
    """A `keras.utils.Progbar` drawn on stderr, so stdout keeps only results."""

    def __init__(self, target, unit_name="step"):
        with contextlib.redirect_stdout(sys.stderr):
            self._bar = keras.utils.Progbar(target, unit_name=unit_name)

    def update(self, current):
        with contextlib.redirect_stdout(sys.stderr):
            self._bar.update(current)


def _calibration_images(representative_data, input_shape, resize, crop):
    """Calibration images as a float32 array `(N, H, W, C)`."""
    height, width, channels = input_shape
    data = representative_data
    if isinstance(data, (str, os.PathLike)):
        folder = Path(data)
        if not folder.is_dir():
            raise ValueError(
                "`representative_data` as a path must be a folder of images. "
                f"Received: representative_data={os.fspath(data)!r}"
            )
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        data = images.load_images(paths, resize or max(height, width), crop or height)
    elif _is_dataset(data):
        data = np.stack([np.asarray(x) for x in data.unbatch()]) if _is_batched(data) else np.stack(
            [np.asarray(x) for x in data]
        )
    data = np.asarray(data, dtype="float32")
    if data.ndim != 4 or data.shape[1:] != (height, width, channels):
        raise ValueError(
            f"`representative_data` must hold images of shape {(height, width, channels)} "
            f"(N, H, W, C). Received: representative_data.shape={data.shape}"
        )
    if len(data) < MIN_CALIBRATION_IMAGES:
        raise ValueError(
            f"int8 calibration needs at least {MIN_CALIBRATION_IMAGES} representative images "
            f"(a few hundred is typical). Received: {len(data)} images"
        )
    return data


def _is_dataset(data):
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _is_batched(dataset):
    shape = dataset.element_spec.shape
    return shape.rank == 4


def _converter_options(quantization, calibration, io_dtype, progress=False):
    import tensorflow as tf

    if quantization == "float32":
        return {}
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantization == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    elif quantization == "int8":
        def representative_dataset():
            bar = StderrProgbar(len(calibration), "image") if progress else None
            for i, image in enumerate(calibration, 1):
                yield [image[None]]
                if bar is not None:
                    bar.update(i)

        io_type = tf.int8 if io_dtype == "int8" else tf.uint8
        options.update(
            representative_dataset=representative_dataset,
            target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            inference_input_type=io_type,
            inference_output_type=io_type,
        )
    return options


def _is_qat_model(model):
    return type(model).__module__.startswith("tf_keras")


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
                  io_dtype="int8", input_size=None, resize=None, crop=None, progress=False):
    """Writes `model` as a batch-1 TensorFlow Lite model.

    Args:
        model: A Keras 3 ShuffleNet, or the QAT model that
            `keras_shufflenet.quantization.quantize_model` returns (int8 only,
            no `representative_data` needed).
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
        io_dtype: `"int8"` or `"uint8"` input and output of an int8 model.
            Defaults to `"int8"`.
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
    qat = _is_qat_model(model)
    if qat and quantization != "int8":
        raise ValueError(
            'A quantization-aware-trained model exports as quantization="int8". '
            f"Received: quantization={quantization!r}"
        )
    if not qat and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "TFLite export needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Received: backend={keras.backend.backend()!r}"
        )
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`quantization` must be one of {QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"`io_dtype` must be one of {IO_DTYPES}. Received: io_dtype={io_dtype!r}")
    path = files.output_path(path)
    input_size = _size_from_data(model, input_size, representative_data)
    input_shape = _input_shape(model, input_size)
    calibration = None
    if quantization == "int8" and not qat:
        if representative_data is None:
            raise ValueError(
                'quantization="int8" needs `representative_data` to calibrate activation '
                "ranges. Received: representative_data=None"
            )
        calibration = _calibration_images(representative_data, input_shape, resize, crop)
    import tensorflow as tf

    with files.atomic_output(path, suffix=".tflite") as staged:  # Keras wants the suffix
        if qat:
            staged.write_bytes(_convert_qat(model, input_shape, io_dtype))
        else:
            deploy.deployment_model(model, input_shape).export(
                str(staged),
                format="litert",
                input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)],
                verbose=False,
                **_converter_options(quantization, calibration, io_dtype, progress),
            )
    return path
