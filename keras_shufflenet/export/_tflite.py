"""Export to TensorFlow Lite (LiteRT) for phones.

`export_tflite` writes a batch-1 model: float32, float16, dynamic-range or
full-int8 (every op integer, int8 or uint8 input and output). The graph is
the exact `deploy.deployment_model` of the Keras model, converted with Keras'
own LiteRT export (TensorFlow backend); an int8 file then loses the
requantizations the converter puts before slices (`_requantize`). A
quantization-aware-trained model (tf_keras, from
`keras_shufflenet.quantization`) converts to full int8 with the ranges it
learnt. The file appears only when complete.
"""

import keras

from keras_shufflenet import _files, _progress
from keras_shufflenet.export import _deploy, _requantize
from keras_shufflenet.export._calibration import (
    calibration_images,
    check_representative_folder,
    input_shape_of,
    size_from_data,
)

QUANTIZATIONS = ("int8", "float16", "float32", "dynamic")
IO_DTYPES = ("int8", "uint8")


def check_tflite_arguments(quantization="int8", io_dtype="int8", representative_data=None,
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
        def representative_dataset():
            bar = _progress.StderrProgbar(len(calibration), "image") if progress else None
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


def is_qat_model(model):
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
    qat = is_qat_model(model)
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
    check_tflite_arguments(quantization, io_dtype, representative_data, needs_data=not qat)
    path = _files.output_path(path)
    input_size = size_from_data(model, input_size, representative_data)
    input_shape = input_shape_of(model, input_size)
    calibration = None
    if quantization == "int8" and not qat:
        calibration = calibration_images(representative_data, input_shape, resize, crop)
    import tensorflow as tf

    with _files.atomic_output(path, suffix=".tflite") as staged:  # Keras wants the suffix
        if qat:
            staged.write_bytes(_convert_qat(model, input_shape, io_dtype))
        else:
            # Float models are what LiteRT's GPU accelerator runs: keep them
            # compilable there. int8 keeps XNNPACK's grouped kernels.
            split_groups = quantization in ("float32", "float16")
            _deploy.deployment_model(model, input_shape, split_groups).export(
                str(staged),
                format="litert",
                input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)],
                verbose=False,
                **_converter_options(quantization, calibration, io_dtype, progress),
            )
            if quantization == "int8":
                staged.write_bytes(_requantize.without_requantizations(staged.read_bytes()))
    return path
