"""ShuffleNet V2's deploy graph without channel shuffles (exact, batch 1).

In torchvision's V2 each stride-1 unit splits the shuffled output of the
previous unit in two halves: one passes through, one feeds the branch. No
channel is ever computed on twice by the pass-through path: each channel of
a branch output (a "source") waits a few units as pass-through, then enters
exactly one later unit's branch, or the stage output. Which one is known
when the graph is built (`_exits` follows the shuffles channel by channel),
so each source's 1x1 convolution writes its channels grouped by the unit
that reads them, each group is a contiguous slice, and each unit's branch
input is the concatenation of its slices. The order inside that input (and
the stage output) is absorbed by the weights of the 1x1 and depthwise
convolutions that read it.

Per stride-1 unit this leaves one CONCATENATION and a few slices, where a
shuffle costs a rank-4 TRANSPOSE (byte by byte in int8, about a tenth of
ShuffleNetV2 1.0x's int8 latency) and RESHAPEs around it.
"""

import numpy as np
from keras import layers

from keras_shufflenet import models
from keras_shufflenet.export._layers import ChannelConcat, ChannelSlices


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


def _exits(m, units):
    """Where each channel of each branch output of a stage goes.

    Sources are numbered 0 (unit 1's branch 1), 1 (unit 1's branch 2) and k
    (unit k's branch, k >= 2). Returns `exits[s][i]`, the unit whose branch
    reads channel `i` of source `s` (`units + 1`: the stage output), and the
    logical position of every channel within what reads it.
    """
    y = [p for pair in zip([(0, i) for i in range(m)], [(1, i) for i in range(m)]) for p in pair]
    exits = {0: [None] * m, 1: [None] * m}
    position = {}
    for k in range(2, units + 1):
        x1, x2 = y[:m], y[m:]
        for j, (s, i) in enumerate(x2):
            exits[s][i] = k
            position[s, i] = j
        exits[k] = [None] * m
        y = [p for pair in zip(x1, [(k, i) for i in range(m)]) for p in pair]
    for j, (s, i) in enumerate(y):
        exits[s][i] = units + 1
        position[s, i] = j
    return exits, position


def _concatenate(pieces, name):
    """Concatenates `(tensor, channels)` pieces, the smallest first (they are
    folded first when there are more than XNNPACK takes in one op); returns
    the tensor and its channels in order."""
    pieces = sorted(pieces, key=lambda piece: len(piece[1]))
    if len(pieces) == 1:
        return pieces[0]
    tensors, channels = zip(*pieces)
    return ChannelConcat(name=name)(list(tensors)), [c for group in channels for c in group]


def _stage(port, x, perm, stage, units, m):
    """One stage; returns its output (channels in `perm` order) and `perm`."""
    exits, position = _exits(m, units)
    orders = {s: np.argsort(e, kind="stable") for s, e in exits.items()}
    pieces = {}  # exit unit -> list of (tensor, [(s, i), ...])

    def add_source(s, y):
        order = orders[s]
        ex = np.asarray(exits[s])[order]
        targets, sizes = np.unique(ex, return_counts=True)
        parts = ChannelSlices(sizes, name=f"{stage}_source{s}_slices")(y) if len(sizes) > 1 else [y]
        start = 0
        for target, size, part in zip(targets, sizes, parts):
            pieces.setdefault(int(target), []).append((part, [(s, int(i)) for i in order[start:start + size]]))
            start += size

    def gather(k, name):
        y, channels = _concatenate(pieces.pop(k), name)
        return y, np.asarray([position[c] for c in channels])

    name = f"{stage}_unit1"
    t = port.depthwise_bn(x, f"{name}_branch1_dwconv", perm, strides=2)
    t_b = port.conv_bn(x, f"{name}_branch2_conv1", perm)
    t_b = port.depthwise_bn(t_b, f"{name}_branch2_dwconv", strides=2)
    add_source(0, port.conv_bn(t, f"{name}_branch1_conv", perm, orders[0]))
    add_source(1, port.conv_bn(t_b, f"{name}_branch2_conv2", None, orders[1]))
    for k in range(2, units + 1):
        name = f"{stage}_unit{k}"
        x2, x2_perm = gather(k, f"{name}_gather")
        t = port.conv_bn(x2, f"{name}_branch2_conv1", x2_perm)
        t = port.depthwise_bn(t, f"{name}_branch2_dwconv")
        add_source(k, port.conv_bn(t, f"{name}_branch2_conv2", None, orders[k]))
    return gather(units + 1, f"{stage}_output")


def supports(model, spec):
    """Whether `model` is a plain V2 (the layers this graph is built from)."""
    names = {layer.name for layer in model.layers}
    return (
        spec.splits_channels
        and len(model.inputs) == len(model.outputs) == 1
        and {"conv1", "maxpool", "conv5_relu"} <= names
    )


def fused_stages(port, spec, x, perm=None):
    """Stages 2-4 and `conv5` applied to `x` (the `maxpool` output)."""
    units = spec.stage_repeats
    for stage, channels, repeats in zip(models.STAGE_NAMES, spec.stage_channels, units):
        x, perm = _stage(port, x, perm, stage, repeats, channels // 2)
    return port.conv_bn(x, "conv5", perm)
