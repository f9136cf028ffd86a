"""Rebuilds a Keras 3 ShuffleNet of this package in tf_keras, weights included.

The twin is laid out by the same `_builder.features` as the original, from
tf_keras layers, so it has the same graph and the same layer names; the input,
`preprocessing`, pooling and `predictions` layers are read off the original.

One layer changes type: `preprocessing`, a `Rescaling` (`x * scale + offset`
per channel) in the original, becomes a frozen 1x1 `Conv2D` with the diagonal
kernel `diag(scale)` and the bias `offset`. It computes the same values, but as
one op with weights, which tfmot quantizes like any convolution (per output
channel, so each scale is exact in int8) and TFLite runs as one integer
CONV_2D. A `Rescaling` would become a MUL and an ADD with no quantization range
between them, which the converter leaves in float.
"""

import types

import numpy as np

from keras_shufflenet.models import _blocks, _builder, _specs
from keras_shufflenet.quantization import _layers as twin_layers
from keras_shufflenet.quantization._imports import tf_keras

# Same names as _blocks.KERAS_LAYERS, taken from tf_keras and from our twins.
TF_KERAS_LAYERS = types.SimpleNamespace(
    **{
        name: getattr(twin_layers, name, None) or getattr(tf_keras.layers, name)
        for name in vars(_blocks.KERAS_LAYERS)
    }
)


def _not_supported(model, what):
    return ValueError(
        f"Expected a ShuffleNet built by keras_shufflenet; {what}. "
        f"Received: model.name={model.name!r}"
    )


def _activation_name(model, dense):
    activation = dense.get_config()["activation"]
    if not isinstance(activation, str):
        raise _not_supported(model, "the classifier activation must be a built-in one")
    return activation


def build_twin(model):
    """The tf_keras twin of `model`, with the same float weights."""
    spec = _specs.spec_from_model(model)
    source = {layer.name: layer for layer in model.layers}
    if len(model.inputs) != 1:
        raise _not_supported(model, "it must have one input")
    inputs = tf_keras.Input(shape=tuple(model.inputs[0].shape[1:]), name=model.layers[0].name)
    x = inputs
    if "preprocessing" in source:
        x = tf_keras.layers.Conv2D(
            x.shape[-1], 1, trainable=False, name="preprocessing"
        )(x)
    x = _builder.features(x, spec, nn=TF_KERAS_LAYERS)
    if "avg_pool" in source:
        x = tf_keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif "max_pool" in source:
        x = tf_keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if "predictions" in source:
        dense = source["predictions"]
        x = tf_keras.layers.Dense(
            dense.units, activation=_activation_name(model, dense), name="predictions"
        )(x)
    twin = tf_keras.Model(inputs, x, name=model.name)
    if {layer.name for layer in twin.layers} != set(source):
        raise _not_supported(model, "its layers differ from those the package builds")
    copy_weights(model, twin)
    return twin


def _rescaling_as_conv(rescaling, channels):
    """Kernel and bias of the 1x1 Conv2D that computes `rescaling`."""
    scale = np.broadcast_to(np.asarray(rescaling.scale, "float32"), (channels,))
    offset = np.broadcast_to(np.asarray(rescaling.offset, "float32"), (channels,))
    return [np.diag(scale)[np.newaxis, np.newaxis], offset.copy()]


def copy_weights(model, twin):
    """Copies every weight of `model` into the layer of the same name in `twin`."""
    for layer in twin.layers:
        source = model.get_layer(layer.name)
        if layer.name == "preprocessing":
            values = _rescaling_as_conv(source, layer.input.shape[-1])
        else:
            values = [np.asarray(w) for w in source.get_weights()]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise _not_supported(
                model,
                f"layer {layer.name!r} has weights of shapes {[v.shape for v in values]}, "
                f"expected {expected}",
            )
        if values:
            layer.set_weights(values)
