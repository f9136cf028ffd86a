"""Exports for phones and other runtimes: TFLite (LiteRT) through the exact
deploy graph, ONNX through tf2onnx, and the calibration images they share."""

from keras_shufflenet.export._calibration import (
    MIN_CALIBRATION_IMAGES,
    check_input_size,
    input_dims,
    representative_images,
)
from keras_shufflenet.export._onnx import DEFAULT_OPSET, OPSETS, check_converters, check_opset, export_onnx
from keras_shufflenet.export._tflite import (
    IO_DTYPES,
    QUANTIZATIONS,
    check_tflite_arguments,
    export_tflite,
    is_qat_model,
)

__all__ = [
    "DEFAULT_OPSET",
    "IO_DTYPES",
    "MIN_CALIBRATION_IMAGES",
    "OPSETS",
    "QUANTIZATIONS",
    "check_converters",
    "check_input_size",
    "check_opset",
    "check_tflite_arguments",
    "export_onnx",
    "export_tflite",
    "input_dims",
    "is_qat_model",
    "representative_images",
]
