"""ShuffleNet V2's deploy graph with cheaper shuffles (exact, batch 1).

In torchvision's V2 every stride-1 unit splits the shuffled output of the
previous unit: with `a` the pass-through half and `b` the branch output,

    y = shuffle(concat(a, b)),   next_a = y[:m] = interleave(a_lo, b_lo),
                                 next_x2 = y[m:] = interleave(a_hi, b_hi).

Only `next_a` must be in order (it is passed on); `next_x2` feeds a 1x1
convolution, whose input channels can be permuted in its weights instead.
So this graph transposes half the channels per unit (`a_lo` with `b_lo`),
concatenates the other half as it is, computes `b_lo` and `b_hi` with two
convolutions instead of splitting `b`, and leaves each stage's output in a
permuted order that the next stage's first convolutions (or `conv5`) absorb.
"""

import numpy as np
from keras import layers

from keras_shufflenet import models
from keras_shufflenet.layers import ChannelShuffle, ChannelSplit


class Porter:
    """Creates deploy layers from the source model's layers and `weights`
    (a name -> arrays mapping, possibly already rewritten)."""

    def __init__(self, model, weights):
        self.layers = {layer.name: layer for layer in model.layers}
        self.weights = weights

    def copy(self, name, new_name=None):
        source = self.layers[name]
        config = {**source.get_config(), "name": new_name or name}
        return source.__class__.from_config(config), self.weights[name]

    def apply(self, name, x):
        """Applies a copy of layer `name` to `x`, with its weights."""
        layer, weights = self.copy(name)
        y = layer(x)
        if weights:
            layer.set_weights(weights)
        return y

    def conv_bn(self, x, name, in_perm=None, out=slice(None), suffix="", relu=True):
        """1x1 conv -> BN (-> ReLU) reading channels in `in_perm` order, writing `out`."""
        conv, (kernel,) = self.copy(name, name + suffix)
        if in_perm is not None:
            kernel = kernel[:, :, in_perm, :]
        kernel = kernel[..., out]
        conv_config = {**conv.get_config(), "filters": kernel.shape[-1]}
        conv = conv.__class__.from_config(conv_config)
        y = conv(x)
        conv.set_weights([kernel])
        bn, params = self.copy(name + "_bn", name + suffix + "_bn")
        y = bn(y)
        bn.set_weights([p[out] for p in params])
        return layers.ReLU(name=name + suffix + "_relu")(y) if relu else y

    def depthwise_bn(self, x, name, in_perm=None, strides=1):
        """3x3 depthwise conv -> BN on channels stored in `in_perm` order."""
        perm = slice(None) if in_perm is None else in_perm
        if strides != 1:
            x = layers.ZeroPadding2D(1, name=name + "_pad")(x)
        dw, (kernel,) = self.copy(name)
        y = dw(x)
        dw.set_weights([kernel[:, :, perm, :]])
        bn, params = self.copy(name + "_bn")
        y = bn(y)
        bn.set_weights([p[perm] for p in params])
        return y


def _interleaved(half):
    """Logical positions of `concat(u, v)` inside `interleave(u, v)` (len(u) == half)."""
    return np.concatenate([np.arange(half) * 2, np.arange(half) * 2 + 1])


def _stage(port, x, perm, stage, units, m):
    """One stage; returns its output (channels in `perm` order) and `perm`."""
    lo, hi = slice(0, m // 2), slice(m // 2, m)
    name = f"{stage}_unit1"
    t = port.depthwise_bn(x, f"{name}_branch1_dwconv", perm, strides=2)
    t_b = port.conv_bn(x, f"{name}_branch2_conv1", perm)
    t_b = port.depthwise_bn(t_b, f"{name}_branch2_dwconv", strides=2)
    a_lo = port.conv_bn(t, f"{name}_branch1_conv", perm, lo, "_lo")
    a_hi = port.conv_bn(t, f"{name}_branch1_conv", perm, hi, "_hi")
    b_lo = port.conv_bn(t_b, f"{name}_branch2_conv2", None, lo, "_lo")
    b_hi = port.conv_bn(t_b, f"{name}_branch2_conv2", None, hi, "_hi")
    for i in range(2, units + 1):
        prev, name = name, f"{stage}_unit{i}"
        a = layers.Concatenate(name=f"{prev}_concat_lo")([a_lo, b_lo])
        a = ChannelShuffle(2, name=f"{prev}_shuffle")(a)
        x2 = layers.Concatenate(name=f"{prev}_concat_hi")([a_hi, b_hi])
        t = port.conv_bn(x2, f"{name}_branch2_conv1", _interleaved(m // 2))
        t = port.depthwise_bn(t, f"{name}_branch2_dwconv")
        if i == units:
            b = port.conv_bn(t, f"{name}_branch2_conv2")
            out = layers.Concatenate(name=f"{name}_concat")([a, b])
            return out, _interleaved(m)
        a_lo, a_hi = ChannelSplit(2, name=f"{name}_split")(a)
        b_lo = port.conv_bn(t, f"{name}_branch2_conv2", None, lo, "_lo")
        b_hi = port.conv_bn(t, f"{name}_branch2_conv2", None, hi, "_hi")
    raise ValueError(f"A fused stage needs at least 2 units. Received: units={units}")


def supports(model, spec):
    """Whether `model` is a plain V2 whose widths allow the fused graph."""
    names = {layer.name for layer in model.layers}
    return (
        spec.splits_channels
        and len(model.inputs) == len(model.outputs) == 1
        and all(c % 4 == 0 for c in spec.stage_channels)
        and min(spec.stage_repeats) >= 2
        and {"conv1", "maxpool", "conv5_relu"} <= names
    )


def fused_stages(port, spec, x, perm=None):
    """Stages 2-4 and `conv5` applied to `x` (the `maxpool` output)."""
    units = spec.stage_repeats
    for stage, channels, repeats in zip(models.STAGE_NAMES, spec.stage_channels, units):
        x, perm = _stage(port, x, perm, stage, repeats, channels // 2)
    return port.conv_bn(x, "conv5", perm)
