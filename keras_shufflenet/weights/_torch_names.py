"""Ports reference PyTorch state dicts onto ShuffleNet Keras models.

One small name-mapping function per checkpoint format (torchvision V2,
pytorchcv V1) and one port function per layer type; the model code knows
nothing about PyTorch.
"""

import re

import numpy as np
from keras import layers

from keras_shufflenet.weights._torch_reader import CheckpointError

_UNIT = re.compile(r"stage(\d)_unit(\d+)_(\w+)")

_TORCHVISION_UNIT = {
    "branch1_dwconv": "branch1.0",
    "branch1_dwconv_bn": "branch1.1",
    "branch1_conv": "branch1.2",
    "branch1_conv_bn": "branch1.3",
    "branch2_conv1": "branch2.0",
    "branch2_conv1_bn": "branch2.1",
    "branch2_dwconv": "branch2.3",
    "branch2_dwconv_bn": "branch2.4",
    "branch2_conv2": "branch2.5",
    "branch2_conv2_bn": "branch2.6",
}
_TORCHVISION_TOP = {
    "conv1": "conv1.0",
    "conv1_bn": "conv1.1",
    "conv5": "conv5.0",
    "conv5_bn": "conv5.1",
    "predictions": "fc",
}

_PYTORCHCV_UNIT = {
    "compress": "compress_conv1",
    "compress_bn": "compress_bn1",
    "dwconv": "dw_conv2",
    "dwconv_bn": "dw_bn2",
    "expand": "expand_conv3",
    "expand_bn": "expand_bn3",
}
_PYTORCHCV_TOP = {
    "conv1": "features.init_block.conv",
    "conv1_bn": "features.init_block.bn",
    "predictions": "output",
}


def torchvision_v2_prefix(layer_name):
    """`stage2_unit1_branch2_conv1` -> `stage2.0.branch2.0` (torchvision)."""
    match = _UNIT.fullmatch(layer_name)
    if match:
        stage, unit, part = match.groups()
        return f"stage{stage}.{int(unit) - 1}.{_TORCHVISION_UNIT[part]}"
    return _TORCHVISION_TOP[layer_name]


def pytorchcv_v1_prefix(layer_name):
    """`stage2_unit1_compress` -> `features.stage1.unit1.compress_conv1` (pytorchcv)."""
    match = _UNIT.fullmatch(layer_name)
    if match:
        stage, unit, part = match.groups()
        return f"features.stage{int(stage) - 1}.unit{unit}.{_PYTORCHCV_UNIT[part]}"
    return _PYTORCHCV_TOP[layer_name]


PREFIX_FUNCTIONS = {"torchvision": torchvision_v2_prefix, "pytorchcv": pytorchcv_v1_prefix}


def port_conv(tensors):
    """Torch (out, in/groups, kh, kw) -> Keras (kh, kw, in/groups, out)."""
    return [tensors["weight"].transpose(2, 3, 1, 0)]


def port_depthwise(tensors):
    """Torch (channels, 1, kh, kw) -> Keras (kh, kw, channels, 1)."""
    return [tensors["weight"].transpose(2, 3, 0, 1)]


def port_bn(tensors):
    return [tensors[k] for k in ("weight", "bias", "running_mean", "running_var")]


def port_dense(tensors):
    return [tensors["weight"].T, tensors["bias"]]


# Order matters: DepthwiseConv2D is not a Conv2D subclass, but keep specific first.
_PORTS = (
    (layers.DepthwiseConv2D, port_depthwise, ("weight",)),
    (layers.Conv2D, port_conv, ("weight",)),
    (layers.BatchNormalization, port_bn, ("weight", "bias", "running_mean", "running_var")),
    (layers.Dense, port_dense, ("weight", "bias")),
)

# Tensors a reference checkpoint holds that carry no model weight.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def assign_state_dict(model, spec, state_dict, source="checkpoint"):
    """Copies a reference state dict into `model`, checking it covers it exactly.

    Every weighted layer of `model` must find its tensors with the right
    shapes, and every tensor of the checkpoint must be used, except the
    classifier's when the model has no classifier.
    """
    prefix_of = PREFIX_FUNCTIONS[spec.checkpoint_format]
    used, updates, problems = set(), [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        port, keys = next((p, k) for cls, p, k in _PORTS if isinstance(layer, cls))
        prefix = prefix_of(layer.name)
        names = [f"{prefix}.{k}" for k in keys]
        missing = [n for n in names if n not in state_dict]
        if missing:
            problems.append(f"missing {', '.join(missing)} for layer {layer.name!r}")
            continue
        values = port({k: np.asarray(state_dict[n]) for k, n in zip(keys, names)})
        expected = [tuple(w.shape) for w in layer.weights]
        received = [v.shape for v in values]
        if expected != received:
            problems.append(
                f"layer {layer.name!r} expects shapes {expected}, the checkpoint "
                f"gives {received} (from {prefix}.*)"
            )
            continue
        used.update(names)
        updates.append((layer, values))
    has_top = any(layer.name == "predictions" for layer in model.layers)
    head = prefix_of("predictions") + "."
    unused = sorted(
        k
        for k in state_dict
        if k not in used
        and not k.endswith(_IGNORED_SUFFIXES)
        and (has_top or not k.startswith(head))
    )
    if unused:
        shown = ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else "")
        problems.append(f"{len(unused)} unexpected tensors: {shown}")
    if problems:
        raise CheckpointError(
            f"{source} does not match {model.name} ({spec.family} {spec.describe()}): "
            + "; ".join(problems[:5])
        )
    for layer, values in updates:
        layer.set_weights([v.astype(w.dtype) for v, w in zip(values, layer.weights)])
