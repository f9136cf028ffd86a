"""Exports are channels-last: a `"channels_first"` model exports as its
channels-last twin, the same layers with the same weights laid out NHWC.

Phones feed NHWC camera buffers, and the deploy rewrites and LiteRT's
kernels are written for NHWC; a channels-first graph would convert with a
TRANSPOSE around every convolution. Keras keeps convolution and dense kernels
in one layout in both formats, so the twin takes the weights as they are.
"""

import keras

# Layers whose config is rewritten for the twin, beyond `data_format`: their
# channel axis (1 in NCHW) becomes the last one.
_AXIS_LAYERS = ("BatchNormalization", "Concatenate")
# Layers that move values between the channel and the spatial axes: their
# meaning changes with the layout, so no twin is made.
_LAYOUT_DEPENDENT = ("Flatten", "Reshape", "Permute")


def channels_last(model):
    """`model` itself if it is channels-last, else its channels-last twin.

    Raises:
        ValueError: `model` is channels-first and holds a layer whose meaning
            depends on the layout (`Flatten`, `Reshape`, `Permute`) or nested
            models.
    """
    config = model.get_config()
    if not _is_channels_first(config):
        return model
    if not isinstance(config.get("layers"), list):
        raise _unsupported(model, "it is not a functional model")
    for layer in config["layers"]:
        _rewrite(layer, model)
    twin = keras.Model.from_config(config)
    twin.set_weights(model.get_weights())
    if hasattr(model, "_keras_shufflenet_weights"):  # what the metadata names as the source
        twin._keras_shufflenet_weights = model._keras_shufflenet_weights
    return twin


def _is_channels_first(config):
    return any(
        layer.get("config", {}).get("data_format") == "channels_first"
        for layer in config.get("layers", [])
    )


def _unsupported(model, reason):
    return ValueError(
        'A "channels_first" model exports as its channels-last twin, which cannot be made '
        f"for this model: {reason}. Build it under the channels_last data format. "
        f"Received: model.name={model.name!r}"
    )


def _rewrite(layer, model):
    """Rewrites one functional layer config from NCHW to NHWC, in place."""
    kind, config = layer["class_name"], layer["config"]
    if kind in _LAYOUT_DEPENDENT:
        raise _unsupported(model, f"its layer {config['name']!r} is a {kind}")
    if "layers" in config:
        raise _unsupported(model, f"its layer {config['name']!r} is a nested model")
    # Layers build again from the NHWC tensors they are called on.
    layer.pop("build_config", None)
    if "data_format" in config:
        config["data_format"] = "channels_last"
    if kind == "InputLayer":
        batch, channels, *spatial = config["batch_shape"]
        config["batch_shape"] = [batch, *spatial, channels]
    elif kind in _AXIS_LAYERS and config["axis"] in (1, [1]):
        config["axis"] = -1
    elif kind == "Rescaling":
        for key in ("scale", "offset"):
            config[key] = _flat_per_channel(config[key])


def _flat_per_channel(value):
    """`[[[a]], [[b]], [[c]]]` (per channel, NCHW) as `[a, b, c]`; scalars unchanged."""
    if isinstance(value, list):
        return [_scalar(item) for item in value]
    return value


def _scalar(value):
    while isinstance(value, list):
        (value,) = value
    return value
