"""ShuffleNet V1 and V2 for Keras 3, exact to their reference implementations."""

from keras_shufflenet import layers
from keras_shufflenet.builder import stage_outputs
from keras_shufflenet.export import export_tflite
from keras_shufflenet.imagenet import decode_predictions, preprocess_input
from keras_shufflenet.onnx_export import export_onnx
from keras_shufflenet.shufflenet_v1 import ShuffleNetV1
from keras_shufflenet.shufflenet_v2 import ShuffleNetV2

__version__ = "0.1.0"

__all__ = [
    "ShuffleNetV1",
    "ShuffleNetV2",
    "decode_predictions",
    "export_onnx",
    "export_tflite",
    "layers",
    "preprocess_input",
    "stage_outputs",
]
