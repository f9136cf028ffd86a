"""Mirrored inference: the deploy graph without padding ops.

PyTorch pads a 3x3 window by one pixel on every side. At stride 2 on an even
size the last padded pixel is never read, so the reference pads before the
image where TFLite's SAME padding pads after it, and an exact port keeps
explicit PAD ops. XNNPACK fuses a PAD into the convolution that follows it,
but not into a max pool (0.13 ms of ShuffleNetV2 1.0x int8 here). On the
image reversed in height and width, the padding the reference needs falls
where SAME puts it (at odd sizes both pad one pixel on each side): the
network runs on the mirrored image with its kernels flipped and SAME
padding, and the global pooling before its head makes the output the same.

The mirror is one REVERSE_V2 of height, width and channels: LiteRT reverses
that contiguous block in 0.004 ms at 224x224 (height and width alone take
0.17 ms). The first convolution's kernel, and the preprocessing offset
before it, take the reversed channel order. Models whose output keeps a
spatial layout (backbones, `pooling=None`) are returned as they are.
"""

import keras
from keras import layers

from keras_shufflenet.export import _graph
from keras_shufflenet.export._graph import Replacement
from keras_shufflenet.export._layers import (
    ChannelConcat,
    ChannelGather,
    ChannelOffset,
    ChannelSplit,
    MirrorImage,
    Removed,
)
from keras_shufflenet.layers import ChannelShuffle

# Layers that compute each pixel from that pixel alone.
_PIXELWISE = (
    layers.BatchNormalization, layers.ReLU, layers.Activation, layers.Add, layers.Concatenate,
    layers.Identity, layers.Dropout, ChannelConcat, ChannelSplit, ChannelGather, ChannelShuffle,
    Removed, ChannelOffset,
)
_GLOBAL_POOLS = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)
_CONVOLUTIONS = (layers.Conv2D, layers.DepthwiseConv2D)


def _window(layer):
    """`(kernel, strides)` of a windowed layer (convolution or pool), else None."""
    if isinstance(layer, _CONVOLUTIONS):
        if tuple(layer.dilation_rate) != (1, 1):
            return None
        return tuple(layer.kernel_size), tuple(layer.strides)
    if isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
        return tuple(layer.pool_size), tuple(layer.strides)
    return None


def _pads_like_torch(pad, readers, producer):
    """Whether ZeroPadding2D `pad` followed by its readers (VALID) equals those
    readers with SAME padding on the mirrored map: a 1-pixel pad before
    3x3 windows at stride 1 or 2. A max pool's zeros equal SAME's ignored
    padding only on non-negative input (after a ReLU)."""
    if tuple(map(tuple, pad.padding)) != ((1, 1), (1, 1)) or not readers:
        return False
    for reader in readers:
        window = _window(reader)
        if (
            window is None or window[0] != (3, 3) or not set(window[1]) <= {1, 2}
            or reader.padding != "valid" or isinstance(reader, layers.AveragePooling2D)
            or isinstance(reader, layers.MaxPooling2D) and not isinstance(producer, layers.ReLU)
        ):  # fmt: skip
            return False
    return True


def _symmetric(layer):
    """Whether a windowed layer without a ZeroPadding2D before it commutes with the mirror."""
    kernel, strides = _window(layer)
    if kernel == (1, 1) and strides == (1, 1):
        return True
    return layer.padding == "same" and strides == (1, 1) and all(k % 2 for k in kernel)


def _plan(model):
    """`(padded readers, first convolution)` of a mirrorable `model`, else None."""
    if any(len(out.shape) != 2 for out in model.outputs) or len(model.inputs) != 1:
        return None
    by_name = {layer.name: layer for layer in model.layers}
    readers = _graph.readers(model)
    producer = {name: made[0] for name, made in _graph.producers(readers).items()}
    padded = set()
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer) or len(keras.tree.flatten(layer.input)[0].shape) != 4:
            continue  # after the global pooling, nothing is spatial
        if isinstance(layer, layers.ZeroPadding2D):
            after = readers.get(layer.name, [])
            if not _pads_like_torch(layer, after, by_name.get(producer.get(layer.name))):
                return None
            padded.update(reader.name for reader in after)
        elif _window(layer) is not None:
            if layer.name not in padded and not _symmetric(layer):
                return None
        elif not isinstance(layer, _PIXELWISE + _GLOBAL_POOLS):
            return None
    # The channels stay reversed up to the first (dense) convolution.
    first_conv = _graph.first_convolution(
        model.layers[0], readers, through=(ChannelOffset, layers.ZeroPadding2D)
    )
    if first_conv is None or first_conv.groups != 1:
        return None
    return padded, first_conv.name


def mirrored(model):
    """`model` computed on the mirrored image without PAD ops (see above), or
    `model` itself where its output is not invariant to the mirror."""
    plan = _plan(model)
    if plan is None:
        return model
    padded, first_conv = plan
    inputs = keras.Input(batch_shape=model.input.shape, dtype=model.input.dtype, name=model.input.name)
    replacements = _replacements(model, padded, first_conv)
    return _graph.rewritten(model, inputs, replacements, first=MirrorImage(name="mirror"))


def _replacements(model, padded, first_conv):
    """Padding removed, the `padded` layers with SAME padding, every kernel
    flipped, and the first convolution and the offset before it in the
    reversed channel order."""
    replaced = {}
    for layer in model.layers:
        if isinstance(layer, layers.ZeroPadding2D):
            replaced[layer.name] = Replacement(Removed(name=layer.name))
            continue
        config, weights = {}, None
        if layer.name in padded:
            config["padding"] = "same"
        if isinstance(layer, ChannelOffset):
            config["offset"] = layer.offset[::-1]
        if isinstance(layer, _CONVOLUTIONS):
            weights = layer.get_weights()
            weights[0] = weights[0][::-1, ::-1]
            if layer.name == first_conv:
                weights[0] = weights[0][:, :, ::-1]
        if config or weights is not None:
            new_layer = layer.__class__.from_config({**layer.get_config(), **config}) if config else None
            replaced[layer.name] = Replacement(new_layer, weights)
    return replaced
