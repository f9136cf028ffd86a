"""ShuffleNet V2's deploy graph without channel shuffles (exact, batch 1).

In torchvision's V2 each stride-1 unit splits the shuffled output of the
previous unit in two halves: one passes through, one feeds the branch. No
channel is ever computed on twice by the pass-through path: each channel of
a branch output (a "source") waits a few units as pass-through, then enters
exactly one later unit's branch, or the stage output. Which one is known
when the graph is built (`_channel_readers` follows the shuffles channel by
channel), so each source's 1x1 convolution writes its channels grouped by
the unit that reads them, and each unit's branch input is the concatenation
of its groups. The order inside that input (and the stage output) is
absorbed by the weights of the 1x1 and depthwise convolutions that read it.

The groups about halve from one reader to the next (half of a source goes to
the next unit, a quarter to the one after, ...), so a chain of SPLITs in
halves cuts them apart, each group padded with a few copies of another
channel that its reader gives zero weights (`_split_plan`). XNNPACK runs a
SPLIT as plain copies on the calling thread, where a STRIDED_SLICE of the
same channels wakes the thread pool: at 2 threads a slice took 2-3 times its
1-thread time (docs/phones.md, "Two threads").

Per stride-1 unit this leaves one CONCATENATION and a few SPLITs, where a
shuffle costs a rank-4 TRANSPOSE (byte by byte in int8, about a tenth of
ShuffleNetV2 1.0x's int8 latency) and RESHAPEs around it.
"""

import keras
import numpy as np
from keras import layers

from keras_shufflenet import models
from keras_shufflenet.export._layers import ChannelConcat, ChannelSplit

_STEM = ("preprocessing", "conv1_pad", "conv1", "conv1_bn", "conv1_relu", "maxpool_pad", "maxpool")


def applies_to(model):
    """Whether `model` is a plain V2 (the layers this graph is built from)."""
    try:
        spec = models.spec_from_model(model)
    except ValueError:
        return False
    names = {layer.name for layer in model.layers}
    return (
        spec.splits_channels
        and len(model.inputs) == len(model.outputs) == 1
        and {"conv1", "maxpool", "conv5_relu"} <= names
    )


def shuffle_free_model(model):
    """`model` (a plain V2, see `applies_to`) with its stages rebuilt without
    shuffles; the stem and the head are copies."""
    source = SourceLayers(model)
    inputs = keras.Input(batch_shape=model.input.shape, name=model.input.name)
    x = inputs
    for name in _STEM:
        if name in source.layers:
            x = source.apply(name, x)
    x = shuffle_free_stages(source, models.spec_from_model(model), x)
    names = [layer.name for layer in model.layers]
    for name in names[names.index("conv5_relu") + 1:]:
        x = source.apply(name, x)
    return keras.Model(inputs, x, name=model.name)


class SourceLayers:
    """The layers of the source model, copied with their weights onto new
    tensors, with their input and output channels reordered on request."""

    def __init__(self, model):
        self.layers = {layer.name: layer for layer in model.layers}

    def _copy(self, name):
        source = self.layers[name]
        return source.__class__.from_config(source.get_config()), source.get_weights()

    def apply(self, name, x):
        """Applies a copy of layer `name` to `x`, with its weights."""
        layer, weights = self._copy(name)
        y = layer(x)
        if weights:
            layer.set_weights(weights)
        return y

    def conv_bn_relu(self, x, name, input_order=None, output_channels=slice(None)):
        """1x1 conv -> BN -> ReLU `name` on `x`, whose channel `k` is the
        source's input channel `input_order[k]` (none where it is -1),
        writing the source's output channels `output_channels` in that order
        (a channel may be written twice)."""
        conv, (kernel,) = self._copy(name)
        if input_order is not None:  # -1: a channel it does not read (zero weights)
            order = np.asarray(input_order)
            kernel = np.where((order >= 0)[:, None], kernel[:, :, np.maximum(order, 0), :], 0)
        kernel = kernel[..., output_channels]
        conv = conv.__class__.from_config({**conv.get_config(), "filters": kernel.shape[-1]})
        y = conv(x)
        conv.set_weights([kernel])
        bn, params = self._copy(name + "_bn")
        y = bn(y)
        bn.set_weights([p[output_channels] for p in params])
        return layers.ReLU(name=name + "_relu")(y)

    def depthwise_bn(self, x, name, channel_order=None, strides=1):
        """3x3 depthwise conv -> BN `name` on `x`, whose channel `k` is the
        source's channel `channel_order[k]` (so is the output's; where it is
        -1, a padding channel that no reader reads, the last one's copy)."""
        order = slice(None) if channel_order is None else channel_order
        if strides != 1:
            x = layers.ZeroPadding2D(1, name=name + "_pad")(x)
        dw, (kernel,) = self._copy(name)
        y = dw(x)
        dw.set_weights([kernel[:, :, order, :]])
        bn, params = self._copy(name + "_bn")
        y = bn(y)
        bn.set_weights([p[order] for p in params])
        return y


def _channel_readers(branch_channels, units):
    """Where each channel of each branch output of a stage goes.

    Sources are numbered 0 (unit 1's branch 1), 1 (unit 1's branch 2) and k
    (unit k's branch, k >= 2). Returns `reader[s][i]`, the unit whose branch
    reads channel `i` of source `s` (`units + 1`: the stage output), and
    `position[s, i]`, the channel's place in what reads it (unshuffled).
    """

    def interleaved(first, second):  # a shuffle of 2 groups
        return [channel for pair in zip(first, second) for channel in pair]

    def source(s):
        return [(s, i) for i in range(branch_channels)]

    unit_output = interleaved(source(0), source(1))  # (source, channel) pairs
    reader = {0: [None] * branch_channels, 1: [None] * branch_channels}
    position = {}
    for k in range(2, units + 1):
        passed_on, branch_input = unit_output[:branch_channels], unit_output[branch_channels:]
        for j, (s, i) in enumerate(branch_input):
            reader[s][i] = k
            position[s, i] = j
        reader[k] = [None] * branch_channels
        unit_output = interleaved(passed_on, source(k))
    for j, (s, i) in enumerate(unit_output):
        reader[s][i] = units + 1
        position[s, i] = j
    return reader, position


def _split_plan(groups, width):
    """How a source's output, `width` channels, splits in halves into its
    readers' groups of channels, or None where it cannot.

    `groups` are `(reader, channels)` in the order written. Returns a tree:
    `("leaf", reader, channels)`, where `None` channels are padding (a copy
    of another channel, which the reader does not read), or `("split",
    [first, rest])`: one SPLIT in halves, the first group and the rest.
    Groups about halve from reader to reader, so little padding is needed.
    (Splits in 4, the first group in two parts, moved fewer bytes in fewer
    ops but measured slower at 1 and 2 threads: more concatenation inputs.)
    """
    (reader, first), rest = groups[0], groups[1:]
    if not rest:
        return ("leaf", reader, [*first, *[None] * (width - len(first))]) if width >= len(first) else None
    half = width // 2
    if width % 2 or len(first) > half:
        return None
    rest_plan = _split_plan(rest, half)
    return rest_plan and ("split", [("leaf", reader, [*first, *[None] * (half - len(first))]), rest_plan])


def _narrowest_split_plan(groups):
    """The `_split_plan` with the least padding."""
    total = sum(len(channels) for _, channels in groups)
    return next(plan for width in range(total, 4 * total) if (plan := _split_plan(groups, width)))


def _leaves(plan):
    return [plan] if plan[0] == "leaf" else [leaf for part in plan[1] for leaf in _leaves(part)]


def _written_channels(plan):
    """The source's channels in the order its convolution writes them (a
    padding channel repeats the first)."""
    channels = [i for _, _, group in _leaves(plan) for i in group]
    first = next(i for i in channels if i is not None)
    return [first if i is None else i for i in channels]


def _concatenated(slices, name):
    """Concatenates `(tensor, channels)` slices, the smallest first (they are
    folded first when there are more than XNNPACK takes in one op); returns
    the tensor and its channels in order."""
    slices = sorted(slices, key=lambda piece: len(piece[1]))
    if len(slices) == 1:
        return slices[0]
    tensors, channels = zip(*slices)
    return ChannelConcat(name=name)(list(tensors)), [c for group in channels for c in group]


def _stage(source, x, input_order, stage, units, branch_channels):
    """One stage on `x` (channels in `input_order`); returns its output and
    the output's channel order."""
    reader, position = _channel_readers(branch_channels, units)
    # Each source writes its channels grouped by the unit that reads them,
    # padded so that SPLITs into equal parts cut them apart.
    plans = {}
    for s, r in reader.items():
        order = np.argsort(r, kind="stable")
        readers = np.asarray(r)[order]
        plans[s] = _narrowest_split_plan([(int(k), [int(i) for i in order[readers == k]]) for k in np.unique(readers)])
    slices_for = {}  # reading unit -> [(tensor, [(source, channel or None), ...]), ...]

    def write(s, output):
        """Cuts source `s`'s `output` apart by reading unit."""

        def cut(plan, tensor, depth):
            if plan[0] == "leaf":
                _, k, channels = plan
                slices_for.setdefault(k, []).append((tensor, [(s, i) for i in channels]))
                return
            parts = ChannelSplit(len(plan[1]), name=f"{stage}_source{s}_split{depth}")(tensor)
            for part, piece in zip(plan[1], parts):
                cut(part, piece, depth + 1)

        cut(plans[s], output, 0)

    def input_of(k, name):
        """What unit `k` (or the stage output) reads, and its channel order
        (-1: padding)."""
        y, channels = _concatenated(slices_for.pop(k), name)
        return y, np.asarray([position.get(c, -1) for c in channels])

    name = f"{stage}_unit1"
    branch1 = source.depthwise_bn(x, f"{name}_branch1_dwconv", input_order, strides=2)
    branch2 = source.conv_bn_relu(x, f"{name}_branch2_conv1", input_order)
    branch2 = source.depthwise_bn(branch2, f"{name}_branch2_dwconv", strides=2)
    write(0, source.conv_bn_relu(branch1, f"{name}_branch1_conv", input_order, _written_channels(plans[0])))
    write(1, source.conv_bn_relu(branch2, f"{name}_branch2_conv2", None, _written_channels(plans[1])))
    for k in range(2, units + 1):
        name = f"{stage}_unit{k}"
        branch_input, branch_order = input_of(k, f"{name}_gather")
        branch = source.conv_bn_relu(branch_input, f"{name}_branch2_conv1", branch_order)
        branch = source.depthwise_bn(branch, f"{name}_branch2_dwconv")
        write(k, source.conv_bn_relu(branch, f"{name}_branch2_conv2", None, _written_channels(plans[k])))
    return input_of(units + 1, f"{stage}_output")


def shuffle_free_stages(source, spec, x):
    """Stages 2-4 and `conv5` applied to `x` (the `maxpool` output)."""
    order = None
    for stage, channels, repeats in zip(models.STAGE_NAMES, spec.stage_channels, spec.stage_repeats):
        x, order = _stage(source, x, order, stage, repeats, channels // 2)
    return source.conv_bn_relu(x, "conv5", order)
