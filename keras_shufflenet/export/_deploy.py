"""The inference graph exported to phones: the same function, cheaper ops.

`deployment_model` clones a ShuffleNet onto a fixed batch-1 input with the
replacements of the passes below (in order, each on the weights the ones
before left), then removes the PAD ops (`_mirror`). A plain V2 gets
the first pass only, then its stages rebuilt without shuffles (`_deploy_v2`).
The passes:

- `_fold_preprocessing_scale`: preprocessing `x * scale + offset` (per
  channel) becomes `x + offset / scale` with `scale` folded into `conv1`'s
  kernel: one add instead of a multiply and an add, both of which int8
  kernels run slowly at full resolution. (Folding the offset too would change
  the values `conv1` sees at the zero-padded border, so it stays an add.)
- `_absorb_shuffles`: a channel shuffle whose every consumer starts with a
  per-channel op or a dense 1x1 convolution is removed, and its permutation
  goes into the consumers' weights instead.
- `_gather_grouped_shuffles`: ShuffleNet V1's shuffle between two grouped 1x1
  convolutions (with the depthwise convolution between them) becomes slices
  and one concatenation (`_layers.ChannelGather`): the first convolution
  writes each of its groups' channels sorted by the group of the second that
  reads them, so each (first group, second group) pair is a contiguous
  slice; the depthwise convolution and the second convolution take the new
  order in their weights. After a dense first convolution (the first unit)
  no op is left. Measured on V1 g3 1.0x int8: 9 slices per unit beat the
  TRANSPOSE (2.54 -> 2.43 ms; keeping the transposes of grouped units,
  2.47 ms). With more pairs than MAX_GATHER_PIECES (g4: 16, g8: 64, slices
  of a few channels) the TRANSPOSE stays, except in the first unit.
- `_average_pools_as_depthwise`: an average pool (ShuffleNet V1's shortcut)
  becomes the equal depthwise convolution with weights `1 / k**2`: XNNPACK
  runs int8 depthwise convolutions but not int8 average pools, which would
  split the graph.
- `_split_gpu_unsafe_groups` (float models, `split_groups=True`): a grouped
  convolution whose input or output channels per group are not a multiple of
  4 (ShuffleNet V1's 1x1 convolutions around a narrow bottleneck: g2 1.0x,
  g3 0.25-0.75x, g4 1.0x, g8 1.0x) is computed group by group (SPLIT, one
  CONV_2D per group with its BatchNorm folded in, CONCATENATION): LiteRT's
  GPU accelerator dies (SIGILL) compiling such a grouped CONV_2D.
"""

import types

import keras
import numpy as np
from keras import layers

from keras_shufflenet.export import _deploy_v2, _graph, _mirror
from keras_shufflenet.export._graph import Replacement
from keras_shufflenet.export._layers import ChannelGather, ChannelOffset, GroupwiseConv2D, Removed
from keras_shufflenet.layers import ChannelShuffle

# LiteRT's GPU accelerator (ai-edge-litert 2.3, WebGPU on Mesa lavapipe 25) kills
# the process compiling a grouped CONV_2D whose input or output channels per
# group are not a multiple of this (measured: 200->50 and 50->176 in 2 groups
# crash; 240->60 in 3 and 48->176 in 2 compile).
GPU_GROUP_MULTIPLE = 4

# Above this many (first group, second group) slices a V1 shuffle after a
# grouped convolution stays a TRANSPOSE (measured for g3's 9, see above).
MAX_GATHER_PIECES = 9


def deployment_model(model, input_shape, split_groups=False):
    """An equivalent model with a batch-1 `input_shape` and the rewrites above
    (`split_groups`: compute the grouped convolutions that LiteRT's GPU
    accelerator cannot compile group by group), computed on the mirrored
    image where the output allows it (`_mirror`: no PAD ops)."""
    plain_v2 = _deploy_v2.applies_to(model)
    if plain_v2:  # its shuffles are `_deploy_v2`'s
        passes = [_fold_preprocessing_scale]
    else:
        passes = [*_PASSES, _split_gpu_unsafe_groups] if split_groups else _PASSES
    inputs = keras.Input(batch_shape=(1, *input_shape), name=model.input.name)
    deployed = _graph.rewritten(model, inputs, _replacements(model, passes))
    if plain_v2:
        deployed = _deploy_v2.shuffle_free_model(deployed)
    return _mirror.mirrored(deployed)


def _replacements(model, passes):
    """The replacements of `passes` run in order, each seeing the weights that
    the ones before it left (a read-only `name -> arrays` mapping)."""
    readers = _graph.readers(model)
    replaced = {}
    weights = {layer.name: layer.get_weights() for layer in model.layers}
    for find in passes:
        for name, replacement in find(model, readers, types.MappingProxyType(weights)).items():
            replaced[name] = replaced.get(name, Replacement()).then(replacement)
            if replacement.weights is not None:
                weights[name] = replacement.weights
    return replaced


def _fold_preprocessing_scale(model, readers, weights):
    """The `preprocessing` Rescaling as a `ChannelOffset`, its scale in the
    kernel of the convolution that reads it."""
    layer = next((l for l in model.layers if l.name == "preprocessing"), None)
    if not isinstance(layer, layers.Rescaling):
        return {}
    conv = _graph.first_convolution(layer, readers, through=(layers.ZeroPadding2D, layers.Identity))
    if conv is None:
        raise ValueError(
            "Preprocessing can only be folded into a following convolution. "
            f"Received: layers {[r.name for r in readers.get(layer.name, [])]} after {layer.name!r}"
        )
    channels = model.input.shape[-1]
    scale = np.broadcast_to(np.asarray(layer.scale, "float32"), (channels,))
    offset = np.broadcast_to(np.asarray(layer.offset, "float32"), (channels,))
    kernel, *rest = weights[conv.name]
    return {
        layer.name: Replacement(ChannelOffset(offset / scale, name=layer.name)),
        conv.name: Replacement(weights=[kernel * scale[None, None, :, None], *rest]),
    }


def _shuffle_permutation(channels, groups):
    """`perm` with `shuffled[..., k] == x[..., perm[k]]` (paper order)."""
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


def _absorb_shuffles(model, readers, weights):
    """Removes the shuffles whose consumers can take permuted input channels;
    the consumers' weights read the channels in the unshuffled order."""
    replaced = {}
    for shuffle in model.layers:
        if not isinstance(shuffle, ChannelShuffle):
            continue
        consumers = readers.get(shuffle.name, [])
        if consumers and all(_absorbs_permutation(r, readers) for r in consumers):
            channels = shuffle.output.shape[-1]
            unshuffle = np.argsort(_shuffle_permutation(channels, shuffle.groups))
            for consumer in consumers:
                replaced.update(_permuted_inputs(consumer, unshuffle, readers, weights))
            replaced[shuffle.name] = Replacement(Removed(name=shuffle.name))
    return replaced


def _absorbs_permutation(layer, readers):
    """Whether `layer` (and what follows it) can take permuted input channels:
    a dense convolution, or per-channel layers followed by one."""
    if isinstance(layer, layers.ZeroPadding2D):
        return all(_absorbs_permutation(r, readers) for r in readers.get(layer.name, []))
    if isinstance(layer, layers.DepthwiseConv2D):
        bn = readers.get(layer.name, [])
        return (
            len(bn) == 1
            and isinstance(bn[0], layers.BatchNormalization)
            and all(_absorbs_permutation(r, readers) for r in readers.get(bn[0].name, []))
        )
    return isinstance(layer, layers.Conv2D) and layer.groups == 1


def _permuted_inputs(layer, order, readers, weights):
    """Weights of `layer` (and its per-channel successors, up to the dense
    convolutions) that read input channel `order[k]` at position `k`."""
    if isinstance(layer, layers.ZeroPadding2D):
        replaced = {}
        for reader in readers.get(layer.name, []):
            replaced.update(_permuted_inputs(reader, order, readers, weights))
        return replaced
    if isinstance(layer, layers.DepthwiseConv2D):
        bn = readers[layer.name][0]
        replaced = {
            layer.name: Replacement(weights=[w[:, :, order, :] for w in weights[layer.name]]),
            bn.name: Replacement(weights=[w[order] for w in weights[bn.name]]),
        }
        for reader in readers.get(bn.name, []):
            replaced.update(_permuted_inputs(reader, order, readers, weights))
        return replaced
    kernel, *rest = weights[layer.name]  # a dense convolution
    return {layer.name: Replacement(weights=[kernel[:, :, order, :], *rest])}


def _grouped_shuffle(shuffle, by_name, readers, producers):
    """`(conv, bn, dwconv, dw_bn, expand)` around a V1 shuffle
    `conv -> bn -> relu -> shuffle -> [pad] -> dwconv -> dw_bn -> expand`
    (each the only reader of the one before, `expand` grouped), else None."""
    made = producers.get(shuffle.name, [])
    relu = by_name[made[0]] if len(made) == 1 else None
    bn = by_name.get(producers.get(relu.name, [None])[0]) if relu is not None else None
    conv = by_name.get(producers.get(bn.name, [None])[0]) if bn is not None else None
    after = _chain(shuffle, readers, (None, layers.DepthwiseConv2D, layers.BatchNormalization, layers.Conv2D))
    if not (
        isinstance(relu, layers.ReLU) and isinstance(bn, layers.BatchNormalization)
        and type(conv) is layers.Conv2D and after and type(after[-1]) is layers.Conv2D
        and after[-1].groups > 1  # else `_absorb_shuffles` removes the shuffle
        and len(readers.get(conv.name, [])) == len(readers.get(bn.name, [])) == 1
    ):  # fmt: skip
        return None
    return (conv, bn, *after[-3:])


def _chain(start, readers, kinds):
    """The layers after `start`, one reader each, if they are of `kinds` in
    order (a `None` kind, a ZeroPadding2D, may be absent); else None."""
    chain, layer = [], start
    for kind in kinds:
        following = readers.get(layer.name, [])
        if len(following) != 1:
            return None
        if not isinstance(following[0], kind or layers.ZeroPadding2D):
            if kind is None:
                continue
            return None
        layer = following[0]
        chain.append(layer)
    return chain


def _gather_grouped_shuffles(model, readers, weights):
    """V1's shuffles between grouped convolutions as `ChannelGather`s of the
    (first group, second group) slices (or removed where the slices are
    already in order), with the channel orders in the weights around them."""
    by_name = {layer.name: layer for layer in model.layers}
    producers = _graph.producers(readers)
    replaced = {}
    for shuffle in model.layers:
        if not isinstance(shuffle, ChannelShuffle):
            continue
        around = _grouped_shuffle(shuffle, by_name, readers, producers)
        if around is None:
            continue
        conv, bn, dwconv, dw_bn, expand = around
        channels, groups, first_groups = shuffle.output.shape[-1], shuffle.groups, conv.groups
        if first_groups > 1 and first_groups * groups > MAX_GATHER_PIECES:
            continue
        # Logical channel c of the first convolution goes to shuffled position
        # `position[c]`, read by group `position[c] // per_group` of `expand`.
        position = np.argsort(_shuffle_permutation(channels, groups))
        per_group, first_per_group = channels // groups, channels // first_groups
        reader_group, writer_group = position // per_group, np.arange(channels) // first_per_group
        # The first convolution writes its channels sorted by (writer, reader) group.
        write_order = np.lexsort((np.arange(channels), reader_group, writer_group))
        kernel, *rest = weights[conv.name]
        replaced[conv.name] = Replacement(weights=[kernel[..., write_order], *rest])
        replaced[bn.name] = Replacement(weights=[w[write_order] for w in weights[bn.name]])
        # Runs of equal (writer, reader) group in the written order, gathered by reader.
        keys = list(zip(writer_group[write_order], reader_group[write_order]))
        starts = [i for i in range(channels) if i == 0 or keys[i] != keys[i - 1]]
        runs = sorted(zip(starts, [*starts[1:], channels]), key=lambda run: keys[run[0]][::-1])
        gathered = np.concatenate([write_order[a:b] for a, b in runs])  # logical channel per position
        gathered_position = position[gathered]  # its place in the shuffled order
        replaced[dwconv.name] = Replacement(weights=[weights[dwconv.name][0][:, :, gathered_position, :]])
        replaced[dw_bn.name] = Replacement(weights=[w[gathered_position] for w in weights[dw_bn.name]])
        kernel, *rest = weights[expand.name]
        out_per_group = kernel.shape[-1] // groups
        expand_kernel = np.empty_like(kernel)
        for g in range(groups):
            rows = gathered_position[g * per_group:(g + 1) * per_group] - g * per_group
            cols = slice(g * out_per_group, (g + 1) * out_per_group)
            expand_kernel[:, :, :, cols] = kernel[:, :, rows, cols]
        replaced[expand.name] = Replacement(weights=[expand_kernel, *rest])
        in_order = [a for a, _ in runs] == starts
        replaced[shuffle.name] = Replacement(
            Removed(name=shuffle.name) if in_order else ChannelGather(runs, name=shuffle.name)
        )
    return replaced


def _gpu_unsafe_groups(layer):
    """Whether `layer` is a grouped convolution LiteRT's GPU accelerator cannot compile."""
    if not isinstance(layer, layers.Conv2D):  # not a DepthwiseConv2D either
        return False
    per_group = (layer.filters // layer.groups, layer.input.shape[-1] // layer.groups)
    return layer.groups > 1 and any(c % GPU_GROUP_MULTIPLE for c in per_group)


def _split_gpu_unsafe_groups(model, readers, weights):
    """The grouped convolutions LiteRT's GPU accelerator cannot compile as
    `GroupwiseConv2D`s, with the BatchNorm that alone reads each folded in."""
    replaced = {}
    for conv in filter(_gpu_unsafe_groups, model.layers):
        bn = readers.get(conv.name, [])
        if len(bn) != 1 or not isinstance(bn[0], layers.BatchNormalization):
            continue
        bn = bn[0]
        gamma, beta, mean, variance = weights[bn.name]
        scale = gamma / np.sqrt(variance + bn.epsilon)
        kernel, *bias = weights[conv.name]
        bias = bias[0] if bias else np.zeros_like(mean)
        replaced[conv.name] = Replacement(
            GroupwiseConv2D.from_config({**conv.get_config(), "use_bias": True}),
            [kernel * scale, beta + (bias - mean) * scale],
        )
        replaced[bn.name] = Replacement(Removed(name=bn.name), [])
    return replaced


def _average_pools_as_depthwise(model, readers, weights):
    """Unpadded average pools as depthwise convolutions with weights `1 / k**2`."""
    replaced = {}
    for pool in model.layers:
        if isinstance(pool, layers.AveragePooling2D) and pool.padding == "valid":
            kh, kw = pool.pool_size
            conv = layers.DepthwiseConv2D(pool.pool_size, strides=pool.strides, use_bias=False, name=pool.name)
            kernel = np.full((kh, kw, pool.input.shape[-1], 1), 1.0 / (kh * kw), "float32")
            replaced[pool.name] = Replacement(conv, [kernel])
    return replaced


# Every model's passes; float models add `_split_gpu_unsafe_groups`.
_PASSES = (
    _fold_preprocessing_scale,
    _absorb_shuffles,
    _gather_grouped_shuffles,
    _average_pools_as_depthwise,
)
