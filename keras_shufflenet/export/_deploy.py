"""The inference graph exported to phones: the same function, cheaper ops.

`deployment_model` rebuilds a ShuffleNet with a fixed batch-1 input and
exact rewrites that mobile runtimes reward (a plain V2 gets the shuffle-free
stages of `_deploy_v2`; then `_mirror` removes the PAD ops):

- Preprocessing `x * scale + offset` (per channel) becomes `x + offset / scale`
  with `scale` folded into `conv1`'s kernel: one add instead of a multiply
  and an add, both of which int8 kernels run slowly at full resolution.
  (Folding the offset too would change the values `conv1` sees at the
  zero-padded border, so it stays an add, done on rows of `W * C` values,
  which vectorises where a 3-wide broadcast does not.)
- An average pool (ShuffleNet V1's shortcut) becomes the equal depthwise
  convolution with weights `1 / k**2`: XNNPACK runs int8 depthwise
  convolutions but not int8 average pools, which would split the graph.
- A channel shuffle whose every consumer starts with a per-channel op or a
  dense 1x1 convolution is dropped, and its permutation is applied to the
  consumers' weights instead.
- ShuffleNet V1's shuffle between two grouped 1x1 convolutions (with the
  depthwise convolution between them) becomes slices and one concatenation
  (`_layers.ChannelGather`): the first convolution writes each of its
  groups' channels sorted by the group of the second that reads them, so
  each (first group, second group) pair is a contiguous slice; the depthwise
  convolution and the second convolution take the new order in their
  weights. After a dense first convolution (the first unit) no op is left.
  Measured on V1 g3 1.0x int8: 9 slices per unit beat the TRANSPOSE (2.54 ->
  2.43 ms; keeping the transposes of grouped units, 2.47 ms). With more
  pairs than MAX_GATHER_PIECES (g4: 16, g8: 64, slices of a few channels)
  the TRANSPOSE stays, except in the first unit.
- For float models (`split_groups=True`), a grouped convolution whose input or
  output channels per group are not a multiple of 4 (ShuffleNet V1's 1x1
  convolutions around a narrow bottleneck: g2 1.0x, g3 0.25-0.75x, g4 1.0x,
  g8 1.0x) is computed group by group
  (SPLIT, one CONV_2D per group with its BatchNorm folded in, CONCATENATION):
  LiteRT's GPU accelerator dies (SIGILL) compiling such a grouped CONV_2D.
"""

import keras
import numpy as np
from keras import layers

from keras_shufflenet import models
from keras_shufflenet.export import _deploy_v2, _graph, _mirror
from keras_shufflenet.export._layers import ChannelGather, ChannelOffset, GroupwiseConv2D, Removed
from keras_shufflenet.layers import ChannelShuffle


# LiteRT's GPU accelerator (ai-edge-litert 2.3, WebGPU on Mesa lavapipe 25) kills
# the process compiling a grouped CONV_2D whose input or output channels per
# group are not a multiple of this (measured: 200->50 and 50->176 in 2 groups
# crash; 240->60 in 3 and 48->176 in 2 compile).
GPU_GROUP_MULTIPLE = 4


def _gpu_unsafe_groups(layer):
    """Whether `layer` is a grouped convolution LiteRT's GPU accelerator cannot compile."""
    if not isinstance(layer, layers.Conv2D) or isinstance(layer, layers.DepthwiseConv2D):
        return False
    per_group = (layer.filters // layer.groups, layer.input.shape[-1] // layer.groups)
    return layer.groups > 1 and any(c % GPU_GROUP_MULTIPLE for c in per_group)


def _fold_batch_norm_into(conv, readers, weights):
    """Folds the BatchNorm that alone reads `conv` into its kernel and a bias;
    returns the BatchNorm's name (now an identity), or None if there is none."""
    bn = readers.get(conv.name, [])
    if len(bn) != 1 or not isinstance(bn[0], layers.BatchNormalization):
        return None
    bn = bn[0]
    gamma, beta, mean, variance = weights[bn.name]
    scale = gamma / np.sqrt(variance + bn.epsilon)
    kernel, *bias = weights[conv.name]
    bias = bias[0] if bias else np.zeros_like(mean)
    weights[conv.name] = [kernel * scale, beta + (bias - mean) * scale]
    weights[bn.name] = []
    return bn.name


def _shuffle_permutation(channels, groups):
    """`perm` with `shuffled[..., k] == x[..., perm[k]]` (paper order)."""
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


def _absorbs_permutation(layer, readers):
    """Whether `layer` (and what follows it) can take permuted input channels."""
    if isinstance(layer, layers.ZeroPadding2D):
        return all(_absorbs_permutation(r, readers) for r in readers.get(layer.name, []))
    if isinstance(layer, layers.DepthwiseConv2D):
        bn = readers.get(layer.name, [])
        return (
            len(bn) == 1
            and isinstance(bn[0], layers.BatchNormalization)
            and all(_absorbs_permutation(r, readers) for r in readers.get(bn[0].name, []))
        )
    return isinstance(layer, layers.Conv2D) and layer.groups == 1 and not isinstance(
        layer, layers.DepthwiseConv2D
    )


def _permute_inputs(layer, inverse, readers, weights):
    """Reorders the input-channel axis of `layer` (and its per-channel successors)."""
    if isinstance(layer, layers.ZeroPadding2D):
        for reader in readers.get(layer.name, []):
            _permute_inputs(reader, inverse, readers, weights)
    elif isinstance(layer, layers.DepthwiseConv2D):
        weights[layer.name] = [w[:, :, inverse, :] for w in weights[layer.name]]
        bn = readers[layer.name][0]
        weights[bn.name] = [w[inverse] for w in weights[bn.name]]
        for reader in readers.get(bn.name, []):
            _permute_inputs(reader, inverse, readers, weights)
    else:  # dense 1x1 convolution
        kernel, *rest = weights[layer.name]
        weights[layer.name] = [kernel[:, :, inverse, :], *rest]


# Above this many (first group, second group) slices a V1 shuffle after a
# grouped convolution stays a TRANSPOSE (measured for g3's 9, see above).
MAX_GATHER_PIECES = 9


def _chain(start, readers, kinds):
    """The layers after `start`, one reader each, if they are of `kinds` in
    order (a `None` kind may be absent); else None."""
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


def _gather_shuffles(model, readers, weights):
    """Rewrites V1's shuffles between grouped convolutions as gathers;
    returns `{shuffle name: [(start, stop), ...]}` (empty: no op needed)."""
    by_name = {layer.name: layer for layer in model.layers}
    producers = _graph.producers(readers)
    gathers = {}
    for shuffle in model.layers:
        if not isinstance(shuffle, ChannelShuffle):
            continue
        made = [by_name[name] for name in (producers.get(shuffle.name) or [None]) if name]
        relu = made[0] if len(made) == 1 else None
        bn = by_name.get(producers.get(relu.name, [None])[0]) if relu is not None else None
        conv = by_name.get(producers.get(bn.name, [None])[0]) if bn is not None else None
        after = _chain(shuffle, readers, (None, layers.DepthwiseConv2D, layers.BatchNormalization, layers.Conv2D))
        if not (
            isinstance(relu, layers.ReLU) and isinstance(bn, layers.BatchNormalization)
            and type(conv) is layers.Conv2D and after and type(after[-1]) is layers.Conv2D
            and len(readers.get(conv.name, [])) == len(readers.get(bn.name, [])) == 1
        ):  # fmt: skip
            continue
        channels, groups, first_groups = shuffle.output.shape[-1], shuffle.groups, conv.groups
        if first_groups > 1 and first_groups * groups > MAX_GATHER_PIECES:
            continue
        dwconv, dw_bn, expand = after[-3:]
        # Logical channel c of the first convolution goes to shuffled position
        # `position[c]`, read by group `position[c] // per_group` of `expand`.
        position = np.argsort(_shuffle_permutation(channels, groups))
        per_group, first_per_group = channels // groups, channels // first_groups
        reader_group, writer_group = position // per_group, np.arange(channels) // first_per_group
        stored = np.lexsort((np.arange(channels), reader_group, writer_group))
        weights[conv.name] = [weights[conv.name][0][..., stored], *weights[conv.name][1:]]
        weights[bn.name] = [w[stored] for w in weights[bn.name]]
        # Runs of equal (writer, reader) group in the stored order, gathered by reader.
        keys = list(zip(writer_group[stored], reader_group[stored]))
        starts = [i for i in range(channels) if i == 0 or keys[i] != keys[i - 1]]
        runs = sorted(zip(starts, [*starts[1:], channels]), key=lambda run: keys[run[0]][::-1])
        gathered = np.concatenate([stored[a:b] for a, b in runs])  # logical channel per position
        new_position = position[gathered]  # its place in the shuffled order
        weights[dwconv.name] = [weights[dwconv.name][0][:, :, new_position, :]]
        weights[dw_bn.name] = [w[new_position] for w in weights[dw_bn.name]]
        kernel, *rest = weights[expand.name]
        out_per_group = kernel.shape[-1] // groups
        new_kernel = np.empty_like(kernel)
        for g in range(groups):
            rows = new_position[g * per_group:(g + 1) * per_group] - g * per_group
            cols = slice(g * out_per_group, (g + 1) * out_per_group)
            new_kernel[:, :, :, cols] = kernel[:, :, rows, cols]
        weights[expand.name] = [new_kernel, *rest]
        gathers[shuffle.name] = [] if [a for a, _ in runs] == starts else runs
    return gathers


def deployment_model(model, input_shape, split_groups=False):
    """An equivalent model with a batch-1 `input_shape` and the rewrites above
    (`split_groups`: compute the grouped convolutions that LiteRT's GPU
    accelerator cannot compile group by group), computed on the mirrored
    image where the output allows it (`_mirror`: no PAD ops)."""
    return _mirror.mirrored(_rewritten(model, input_shape, split_groups))


def _rewritten(model, input_shape, split_groups):
    readers = _graph.readers(model)
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}
    offset = _fold_preprocessing(model, readers, weights)
    inputs = keras.Input(batch_shape=(1, *input_shape), name=model.input.name)
    try:
        spec = models.spec_from_model(model)
    except ValueError:
        spec = None
    if spec is not None and _deploy_v2.supports(model, spec):
        return _fused_v2(model, spec, inputs, weights, offset)
    dropped = _drop_absorbable_shuffles(model, readers, weights)
    gathers = _gather_shuffles(model, readers, weights)
    dropped |= {name for name, runs in gathers.items() if not runs}
    groupwise = set()
    if split_groups:
        for layer in filter(_gpu_unsafe_groups, model.layers):
            folded = _fold_batch_norm_into(layer, readers, weights)
            if folded is not None:
                groupwise.add(layer.name)
                dropped.add(folded)
    for layer in model.layers:
        if isinstance(layer, layers.AveragePooling2D) and layer.padding == "valid":
            kh, kw = layer.pool_size
            channels = layer.input.shape[-1]
            weights[layer.name] = [np.full((kh, kw, channels, 1), 1.0 / (kh * kw), "float32")]

    def clone(layer):
        if layer.name in dropped:
            return Removed(name=layer.name)
        if isinstance(layer, layers.AveragePooling2D) and layer.padding == "valid":
            return layers.DepthwiseConv2D(
                layer.pool_size, strides=layer.strides, use_bias=False, name=layer.name
            )
        if gathers.get(layer.name):
            return ChannelGather(gathers[layer.name], name=layer.name)
        if offset is not None and layer.name == "preprocessing":
            return ChannelOffset(offset, name=layer.name)
        if layer.name in groupwise:
            return GroupwiseConv2D.from_config({**layer.get_config(), "use_bias": True})
        return layer.__class__.from_config(layer.get_config())

    deployed = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    for layer in deployed.layers:
        if weights.get(layer.name):
            layer.set_weights(weights[layer.name])
    return deployed


def _fold_preprocessing(model, readers, weights):
    """Folds the `preprocessing` scale into the first conv; returns the offset left."""
    layer = next((l for l in model.layers if l.name == "preprocessing"), None)
    if not isinstance(layer, layers.Rescaling):
        return None
    channels = model.input.shape[-1]
    scale = np.broadcast_to(np.asarray(layer.scale, "float32"), (channels,))
    offset = np.broadcast_to(np.asarray(layer.offset, "float32"), (channels,))
    for conv in _first_conv_path(layer, readers):
        kernel, *rest = weights[conv.name]
        weights[conv.name] = [kernel * scale[None, None, :, None], *rest]
    return offset / scale


def _drop_absorbable_shuffles(model, readers, weights):
    """Names of shuffles whose permutation went into their consumers' weights."""
    dropped = set()
    for layer in model.layers:
        if isinstance(layer, ChannelShuffle):
            consumers = readers.get(layer.name, [])
            if consumers and all(_absorbs_permutation(r, readers) for r in consumers):
                channels = layer.output.shape[-1]
                inverse = np.argsort(_shuffle_permutation(channels, layer.groups))
                for consumer in consumers:
                    _permute_inputs(consumer, inverse, readers, weights)
                dropped.add(layer.name)
    return dropped


def _fused_v2(model, spec, inputs, weights, offset):
    port = _deploy_v2.Porter(model, weights)
    x = inputs
    if offset is not None:
        x = ChannelOffset(offset, name="preprocessing")(x)
    for name in ("conv1_pad", "conv1", "conv1_bn", "conv1_relu", "maxpool_pad", "maxpool"):
        x = port.apply(name, x)
    x = _deploy_v2.fused_stages(port, spec, x)
    names = [layer.name for layer in model.layers]
    for name in names[names.index("conv5_relu") + 1:]:
        x = port.apply(name, x)
    return keras.Model(inputs, x, name=model.name)


def _first_conv_path(layer, readers):
    """The convolution(s) reached from `layer` through padding only."""
    found = []
    for reader in readers.get(layer.name, []):
        if isinstance(reader, (layers.ZeroPadding2D, layers.Identity)):
            found += _first_conv_path(reader, readers)
        elif isinstance(reader, layers.Conv2D) and not isinstance(reader, layers.DepthwiseConv2D):
            found.append(reader)
        else:
            raise ValueError(
                "Preprocessing can only be folded into a following convolution. "
                f"Received: layer {reader.name!r} after {layer.name!r}"
            )
    return found
