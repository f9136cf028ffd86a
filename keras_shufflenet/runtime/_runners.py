"""Exported and Keras models as callables on a batch of model inputs (numpy in, numpy out).

`.tflite` models run image by image through the LiteRT interpreter (int8 and
uint8 inputs quantized with their scale and zero point, outputs
dequantized); `.onnx` models through onnxruntime; Keras models directly.
Which runner takes which file is a row of `keras_shufflenet._formats.FORMATS`.
"""

import os

import numpy as np


class TFLiteRunner:
    """Batch-1 LiteRT interpreter fed with uint8 pixels."""

    def __init__(self, tflite_path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(tflite_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No .tflite model exists at that path. Received: tflite_path={path!r}"
            )
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
            self.input = self.interpreter.get_input_details()[0]
            if self.input["shape"][0] != 1:
                self.interpreter.resize_tensor_input(
                    self.input["index"], [1, *self.input["shape"][1:]]
                )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"{path!r} could not be loaded as a TFLite model: {error}"
            ) from error
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.shape = tuple(int(d) for d in self.input["shape"])
        self.input_type = np.dtype(self.input["dtype"]).name

    def __call__(self, x):
        """`x`: float32 `(1, H, W, C)` model input; returns the float output row."""
        dtype = np.dtype(self.input["dtype"])
        if dtype.kind in "iu":
            scale, zero_point = self.input["quantization"]
            if not scale:
                raise ValueError(
                    f"The .tflite input is {dtype.name} without quantization "
                    "parameters; expected a scale and zero point."
                )
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(dtype))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if np.dtype(self.output["dtype"]).kind in "iu":
            scale, zero_point = self.output["quantization"]
            y = (y.astype(np.float32) - zero_point) * scale
        return np.asarray(y, dtype=np.float32).reshape(-1)


def has_preprocessing(keras_model):
    return any(layer.name == "preprocessing" for layer in keras_model.layers)


class OnnxRunner:
    """onnxruntime on a batch of model inputs."""

    kind = "onnx"

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(
                'Evaluating .onnx models needs onnxruntime: pip install "keras-shufflenet[onnx]"'
            ) from error
        try:
            self.session = onnxruntime.InferenceSession(
                os.fspath(path), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise ValueError(f"{os.fspath(path)!r} could not be loaded as an ONNX model: {error}") from error
        source = self.session.get_inputs()[0]
        self.input = source.name
        self.input_size = tuple(d if isinstance(d, int) else None for d in source.shape[1:3])

    def __call__(self, batch):
        return np.asarray(self.session.run(None, {self.input: batch})[0], np.float32)


class TFLiteBatches:
    """The batch-1 LiteRT runner, image by image over a batch."""

    def __init__(self, path):
        self.runner = TFLiteRunner(path)
        self.kind = f"tflite {self.runner.input_type}"
        self.input_size = self.runner.shape[1:3]

    def __call__(self, batch):
        return np.stack([self.runner(x[None]) for x in batch])


def keras_runner(keras_model):
    """`keras_model` as a callable on a batch of model inputs (numpy out)."""
    import keras

    def run(batch):
        return keras.ops.convert_to_numpy(keras_model(batch, training=False))

    return run
