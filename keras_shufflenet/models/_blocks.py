"""Building blocks shared by ShuffleNet V1 and V2.

Convolutions and pools with stride 2 pad explicitly, one pixel on every side,
then use `"valid"`: Keras' `"same"` pads only bottom/right at stride 2, while
the reference (PyTorch) models pad symmetrically. BatchNorm uses PyTorch's
epsilon and momentum so converted statistics mean the same thing.

Every block takes the layer namespace as `nn` (Keras 3 by default), so the
quantization subpackage rebuilds the same graph from tf_keras layers. As in
`keras.applications`, the channel axis follows
`keras.config.image_data_format()` when the blocks are laid out.
"""

import types

import keras
from keras import layers

from keras_shufflenet.models._batch_norm import BatchNormalization
from keras_shufflenet.models._layers import ChannelShuffle, ChannelSplit

KERAS_LAYERS = types.SimpleNamespace(
    **{name: getattr(layers, name) for name in (
        "Add", "AveragePooling2D", "Concatenate", "Conv2D",
        "DepthwiseConv2D", "MaxPooling2D", "ReLU", "ZeroPadding2D",
    )},
    BatchNormalization=BatchNormalization,
    ChannelShuffle=ChannelShuffle,
    ChannelSplit=ChannelSplit,
)

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def channel_axis():
    """The channel axis of `keras.config.image_data_format()`: -1 or 1."""
    return 1 if keras.config.image_data_format() == "channels_first" else -1


def _padding(x, strides, name, nn):
    """Returns (x, padding) so that a 3x3 window pads like PyTorch's padding=1."""
    if strides == 1:
        return x, "same"
    return nn.ZeroPadding2D(1, name=f"{name}_pad")(x), "valid"


def batch_norm(x, name, nn=KERAS_LAYERS):
    return nn.BatchNormalization(
        axis=channel_axis(), epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name
    )(x)


def conv_bn(x, filters, *, name, kernel_size=1, strides=1, groups=1, relu=True,
            nn=KERAS_LAYERS):
    """Conv (no bias) -> BN -> optional ReLU, named `name`, `name_bn`, `name_relu`."""
    padding = "valid"
    if kernel_size == 3:
        x, padding = _padding(x, strides, name, nn)
    x = nn.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=False,
        name=name,
    )(x)
    x = batch_norm(x, name=f"{name}_bn", nn=nn)
    if relu:
        x = nn.ReLU(name=f"{name}_relu")(x)
    return x


def depthwise_bn(x, *, name, strides=1, nn=KERAS_LAYERS):
    """3x3 depthwise conv (no bias) -> BN, named `name` and `name_bn`."""
    x, padding = _padding(x, strides, name, nn)
    x = nn.DepthwiseConv2D(
        3, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    return batch_norm(x, name=f"{name}_bn", nn=nn)


def stem(x, filters, nn=KERAS_LAYERS):
    """`conv1` (3x3 stride 2) -> BN -> ReLU -> `maxpool` (3x3 stride 2)."""
    x = conv_bn(x, filters, kernel_size=3, strides=2, name="conv1", nn=nn)
    # The input is non-negative after ReLU, so zero padding acts like the
    # -inf padding of PyTorch's max pool.
    x = nn.ZeroPadding2D(1, name="maxpool_pad")(x)
    return nn.MaxPooling2D(3, strides=2, name="maxpool")(x)


def v2_unit(x, out_channels, *, strides, name, nn=KERAS_LAYERS):
    """ShuffleNet V2 unit (paper Fig. 3c/d, torchvision's InvertedResidual)."""
    branch_channels = out_channels // 2
    if strides == 1:
        shortcut, x = nn.ChannelSplit(2, name=f"{name}_split")(x)
    else:
        shortcut = depthwise_bn(x, strides=strides, name=f"{name}_branch1_dwconv", nn=nn)
        shortcut = conv_bn(shortcut, branch_channels, name=f"{name}_branch1_conv", nn=nn)
    x = conv_bn(x, branch_channels, name=f"{name}_branch2_conv1", nn=nn)
    x = depthwise_bn(x, strides=strides, name=f"{name}_branch2_dwconv", nn=nn)
    x = conv_bn(x, branch_channels, name=f"{name}_branch2_conv2", nn=nn)
    x = nn.Concatenate(axis=channel_axis(), name=f"{name}_concat")([shortcut, x])
    return nn.ChannelShuffle(2, name=f"{name}_shuffle")(x)


def v1_unit(x, out_channels, *, strides, groups, first_groups, name, nn=KERAS_LAYERS):
    """ShuffleNet V1 unit (paper Fig. 2b/c, pytorchcv's ShuffleUnit).

    `first_groups` is the group count of the first 1x1 conv: 1 in the very
    first unit, whose input (the stem) is too narrow to group.
    """
    in_channels = x.shape[channel_axis()]
    bottleneck = out_channels // 4
    if strides != 1:
        # The pooled shortcut is concatenated, so the branch adds the rest.
        out_channels -= in_channels
    y = conv_bn(x, bottleneck, groups=first_groups, name=f"{name}_compress", nn=nn)
    if groups > 1:
        y = nn.ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y = depthwise_bn(y, strides=strides, name=f"{name}_dwconv", nn=nn)
    if strides == 1:
        y = conv_bn(y, out_channels, groups=groups, relu=False, name=f"{name}_expand", nn=nn)
        y = nn.Add(name=f"{name}_add")([y, x])
        return nn.ReLU(name=f"{name}_relu")(y)
    # The reference applies ReLU after the concatenation. The pooled shortcut
    # averages a ReLU output, so it is non-negative already and only the main
    # branch needs the ReLU, which then fuses into its convolution (a ReLU
    # after a concatenation cannot fuse, and XNNPACK leaves int8 RELU out).
    y = conv_bn(y, out_channels, groups=groups, name=f"{name}_expand", nn=nn)
    x = nn.ZeroPadding2D(1, name=f"{name}_pool_pad")(x)
    # Averaging over zero padding matches PyTorch's count_include_pad=True.
    x = nn.AveragePooling2D(3, strides=strides, name=f"{name}_pool")(x)
    return nn.Concatenate(axis=channel_axis(), name=f"{name}_concat")([y, x])
