"""How the layers that tfmot's default 8-bit registry does not know are quantized.

* `ChannelShuffle` and `ChannelSplit` only move values (reshape, transpose,
  split). An int8 tensor moved around keeps its scale and zero point, and the
  TFLite kernels (RESHAPE, TRANSPOSE, SPLIT) require exactly that, so they get
  no weight, activation or output quantizer: `PassThroughQuantizeConfig`.
  Their input already carries a range (a Concatenate's or a ReLU's output,
  maybe shuffled), and tfmot's Concatenate transform can still turn off their (absent) output
  quantizer when they feed a concatenation.
* `preprocessing` (pixels in [0, 255] to normalised values; a `Rescaling`
  in the Keras 3 model, a frozen 1x1 `Conv2D` with a diagonal kernel in the
  twin, see `_twin`) gets `OutputQuantizeConfig`: its output, a new range
  (about [-2.1, 2.6]), is fake-quantized; its kernel is not. A quantized
  weight would be made trainable by tfmot's wrapper whatever the layer says,
  and the normalisation must stay fixed; the converter still quantizes the
  constant kernel per output channel, where a diagonal kernel is exact. Its
  input, the model input, is quantized by the `QuantizeLayer` tfmot puts
  after every input, so an int8 model takes pixels with a scale of about 1.
"""

from keras_shufflenet.quantization import _layers
from keras_shufflenet.quantization._imports import tf_keras, tfmot


@tf_keras.utils.register_keras_serializable(package=_layers.PACKAGE)
class PassThroughQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No quantizer at all: for layers that only move values."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@tf_keras.utils.register_keras_serializable(package=_layers.PACKAGE)
class OutputQuantizeConfig(PassThroughQuantizeConfig):
    """Quantizes the output only (8 bits, asymmetric, moving-average range)."""

    def get_output_quantizers(self, layer):
        return [
            tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]


def quantize_config_for(layer):
    """The config of a layer quantized our way, else `None` (tfmot's registry).

    A new instance per layer: tfmot's Concatenate transform edits the configs
    of the layers that feed a concatenation in place.
    """
    if isinstance(layer, (_layers.ChannelShuffle, _layers.ChannelSplit)):
        return PassThroughQuantizeConfig()
    if layer.name == "preprocessing":
        return OutputQuantizeConfig()
    return None


def custom_objects():
    """Everything a QAT model of this package needs to be cloned or loaded."""
    return {
        "ChannelShuffle": _layers.ChannelShuffle,
        "ChannelSplit": _layers.ChannelSplit,
        "PassThroughQuantizeConfig": PassThroughQuantizeConfig,
        "OutputQuantizeConfig": OutputQuantizeConfig,
    }
