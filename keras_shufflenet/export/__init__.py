"""Exports for phones and other runtimes: TFLite (LiteRT) through the exact
deploy graph, and ONNX through tf2onnx. The formats the command line writes
are listed in one table, `keras_shufflenet._formats`."""

from keras_shufflenet.export._onnx import DEFAULT_OPSET, OPSETS, export_onnx
from keras_shufflenet.export._tflite import IO_DTYPES, QUANTIZATIONS, export_tflite

__all__ = ["DEFAULT_OPSET", "IO_DTYPES", "OPSETS", "QUANTIZATIONS", "export_onnx", "export_tflite"]
