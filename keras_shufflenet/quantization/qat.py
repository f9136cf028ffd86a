"""Quantization-aware training (tfmot, default 8-bit scheme) of a tf_keras twin.

What tfmot's default scheme does with this graph (checked in
`tests/test_quantization.py` by converting to an all-integer TFLite model):

* Conv2D (grouped ones too, V1) and DepthwiseConv2D followed by BatchNorm: no
  fake quant between them; the kernel is fake-quantized per output channel
  (per tensor for the depthwise kernel, whose last axis has size 1) and the BN
  output, or the ReLU's when one follows, is fake-quantized. The TFLite
  converter folds the BN into the convolution.
* Concatenate: its inputs are not quantized, its output is (TFLite adds an
  int8 requantize where an input, e.g. V2's pass-through half, has another
  scale); Add, AveragePooling2D, GlobalAveragePooling2D, ReLU and the
  Dense head quantize their outputs; ZeroPadding2D and MaxPooling2D keep
  their input's scale.
* The layers the registry lacks get the configs of `configs`; `preprocessing`
  is a frozen 1x1 Conv2D in the twin (see `twin`).

tfmot starts every range at [-6, 6] and learns it in training. For the
weights, whose range is known, `quantize` sets it from the weights right away,
so the QAT model is usable before the first step; activation ranges still
need training (or a few steps on representative data).
"""

from keras_shufflenet.quantization import configs
from keras_shufflenet.quantization._imports import tf_keras, tfmot


def quantize_scope():
    """`tfmot.quantization.keras.quantize_scope` with this package's objects,
    e.g. to load a saved QAT model."""
    return tfmot.quantization.keras.quantize_scope(configs.custom_objects())


def quantize(twin):
    """Annotates every layer of the tf_keras `twin` and applies QAT."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def _annotate(layer):
        return annotate(layer, quantize_config=configs.quantize_config_for(layer))

    with quantize_scope():
        annotated = tf_keras.models.clone_model(twin, clone_function=_annotate)
        model = tfmot.quantization.keras.quantize_apply(annotated)
    for layer in model.layers:
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
            _set_weight_ranges(layer)
    return model


def _set_weight_ranges(wrapper):
    """Sets each weight quantizer's range from its weight, as a training step would."""
    # (weight, quantizer, quantizer variables), as built by QuantizeWrapper.
    for weight, quantizer, variables in wrapper._weight_vars:
        quantizer(weight, training=True, weights=variables)
