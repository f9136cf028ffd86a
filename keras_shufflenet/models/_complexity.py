"""Parameter and multiply-add (MAC) counts of Keras models.

MACs are counted as torchvision and the papers count them: convolutions
(grouped and depthwise) and fully-connected layers; normalisation,
activations, pooling and additions are not counted.
"""

import math

from keras import layers


def count_params(model):
    """Trainable parameters (what torchvision reports)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _layer_macs(layer):
    if isinstance(layer, layers.DepthwiseConv2D):
        h, w, c = _pixels_and_channels(layer, layer.output.shape)
        return h * w * c * math.prod(layer.kernel_size)
    if isinstance(layer, layers.Conv2D):
        h, w, c = _pixels_and_channels(layer, layer.output.shape)
        in_channels = _pixels_and_channels(layer, layer.input.shape)[2] // layer.groups
        return h * w * c * in_channels * math.prod(layer.kernel_size)
    if isinstance(layer, layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def _pixels_and_channels(layer, shape):
    """`(height, width, channels)` of a convolution's NHWC or NCHW `shape`."""
    if layer.data_format == "channels_first":
        return (*shape[2:], shape[1])
    return tuple(shape[1:])


def count_macs(model):
    """Multiply-adds of one forward pass of one image; needs a static input size."""
    shape = model.inputs[0].shape[1:]
    if None in shape:
        raise ValueError(
            "Counting MACs needs a model built with a fixed input size, e.g. "
            f"input_shape=(224, 224, 3). Received: input shape {tuple(shape)}"
        )
    return sum(_layer_macs(layer) for layer in model.layers)
