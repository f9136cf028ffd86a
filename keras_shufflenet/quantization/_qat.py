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
* The layers the registry lacks get the configs of `_configs`; `preprocessing`
  is a frozen 1x1 Conv2D in the twin (see `_twin`).

tfmot starts every range at [-6, 6] and learns it in training as a moving
average (decay 0.999, so it takes thousands of steps to forget the start).
For the weights, whose range is known, `quantize` sets it from the weights
right away. `calibrate` sets every activation range from representative data,
as post-training quantization would (min and max over the data, widened to
hold 0), so QAT starts where PTQ ends instead of at [-6, 6].
"""

import numpy as np

from keras_shufflenet import _compat
from keras_shufflenet.quantization import _configs
from keras_shufflenet.quantization._imports import tf_keras, tfmot


def quantize_scope():
    """`tfmot.quantization.keras.quantize_scope` with this package's objects,
    e.g. to load a saved QAT model."""
    return tfmot.quantization.keras.quantize_scope(_configs.custom_objects())


def quantize(twin):
    """Annotates every layer of the tf_keras `twin` and applies QAT."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def _annotate(layer):
        return annotate(layer, quantize_config=_configs.quantize_config_for(layer))

    with quantize_scope(), _compat.tfmot_inputs_in_call_order():
        annotated = tf_keras.models.clone_model(twin, clone_function=_annotate)
        model = tfmot.quantization.keras.quantize_apply(annotated)
    _check_inputs_in_order(twin, model)
    for layer in model.layers:
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
            _set_weight_ranges(layer)
    return model


def _check_inputs_in_order(twin, model):
    """Raises if a layer of the QAT `model` takes its inputs in another order than in `twin`."""
    by_source = {_unwrapped_name(layer): layer for layer in model.layers}
    source_name = {layer.name: _unwrapped_name(layer) for layer in model.layers}
    for layer in twin.layers:
        if isinstance(layer.input, list):
            expected = _compat.inbound_layer_names(layer)
            found = [
                source_name.get(name, name)
                for name in _compat.inbound_layer_names(by_source[layer.name])
            ]
            if found != expected:
                raise RuntimeError(
                    f"tfmot reordered the inputs of {layer.name!r}: expected {expected}, "
                    f"got {found}"
                )


def _unwrapped_name(layer):
    """The name of the layer a tfmot wrapper wraps, or of `layer` itself."""
    if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper):
        return layer.layer.name
    return layer.name


def _set_weight_ranges(wrapper):
    """Sets each weight quantizer's range from its weight, as a training step would."""
    for weight, quantizer, variables in _compat.weight_quantizers(wrapper):
        quantizer(weight, training=True, weights=variables)


def calibrate(qat_model, twin, images, batch_size=16):
    """Sets every activation range of `qat_model` from the float `twin` on `images`.

    Each range becomes the min and max, over `images` (float32 pixels,
    `(N, H, W, C)`), of the float tensor it quantizes (widened to hold 0, as
    TFLite requires): the input for tfmot's `QuantizeLayer`, a layer's output
    for its output and post-activation quantizers, the logits for the
    pre-activation quantizer of a softmax head.
    """
    ranges = _RangeTracker()
    probe = _probe_model(twin)
    has_head = "predictions" in {layer.name for layer in twin.layers}
    head = twin.get_layer("predictions").get_weights() if has_head else None
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], "float32")
        ranges.update("input", batch)
        outputs = {name: value.numpy() for name, value in probe(batch, training=False).items()}
        if head is not None:
            kernel, bias = head
            outputs["logits"] = outputs.pop("predictions_input") @ kernel + bias
        for name, value in outputs.items():
            ranges.update(name, value)
    for layer in qat_model.layers:
        for key, variables in _compat.activation_range_vars(layer):
            low, high = ranges[key]
            variables["min_var"].assign(np.minimum(low, 0.0))
            variables["max_var"].assign(np.maximum(high, 0.0))


class _RangeTracker(dict):
    def update(self, name, values):
        low, high = float(np.min(values)), float(np.max(values))
        if name in self:
            low, high = min(low, self[name][0]), max(high, self[name][1])
        self[name] = (low, high)


def _probe_model(twin):
    """The twin with every layer's output (and the head's input) as outputs."""
    outputs = {}
    for layer in twin.layers[1:]:
        if not isinstance(layer.output, list):  # ChannelSplit: no quantizer
            outputs[layer.name] = layer.output
    if "predictions" in outputs:
        outputs["predictions_input"] = twin.get_layer("predictions").input
    return tf_keras.Model(twin.inputs, outputs)
