"""Quantization-aware training as a plain Keras 3 model (`engine="keras"`).

`quantize` rebuilds a ShuffleNet of this package with fake quantization
exactly where its full-int8 export (`export_tflite(..., "int8")`: the deploy
graph, converted, its requantizations before slices removed) quantizes:

- the input: `[0, 255]` fixed with the in-model preprocessing (the uint8
  input is the pixels' bytes), learnt otherwise; then the preprocessing,
  which the deploy graph runs as `x + offset / scale` (an int8 ADD of an
  int8 constant, quantized) with the scale folded into `conv1`'s kernel
  (`QuantConv2D(input_scale=...)`);
- every convolution with its BatchNorm folded (`QuantConv2D`,
  `QuantDepthwiseConv2D`: per-channel symmetric weights), its output, after
  the ReLU where one follows, per tensor;
- V1's average-pool shortcut (an int8 depthwise convolution in the deploy
  graph), each residual add after its ReLU (TFLite's ADD rescales its
  inputs, so they keep their own ranges), the global average pool, the
  logits and, after a softmax, TFLite's fixed `[0, 255/256]`;
- nothing after moves that keep their input's scale (max pools, padding,
  shuffles, splits, concatenations); the tensors whose values meet in
  concatenations through moves only share one range, the one scale the
  int8 file gives them (`export._requantize`): V2's branch outputs of a
  stage, which the deploy graph's slices and concatenations link; V1's
  branch output and pooled shortcut of a stride-2 unit.

The ranges are `FakeQuant` layers (trainable min and max, initialised from
`representative_data` as calibration would, else `[-6, 6]`, `[0, 6]` after
a ReLU). `deploy_parts` gives the export the float model back (unfolded
weights) and the learnt range of each float layer's output.
"""

import os

import keras
import numpy as np
from keras import layers

from keras_shufflenet.models import _builder, _specs
from keras_shufflenet.quantization._keras_layers import (
    FakeQuant,
    QuantConv2D,
    QuantDense,
    QuantDepthwiseConv2D,
)

# Layers that only move values (the int8 graph keeps their input's scale)
# and link tensors into one scale when a concatenation joins them.
_LINKING = ("Concatenate", "ChannelSplit", "ChannelShuffle")
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)  # TFLite's int8 softmax output: scale 1/256
INPUT_RANGE = (0.0, 255.0)  # pixels with in-model preprocessing: the uint8 input's bytes
HEAD = "predictions"
INPUT = "input"  # the site of the model's input
MIN_RANGE = 1e-3  # the narrowest calibrated range (a zero width would divide by 0)
SOFTMAX = "predictions_softmax"


def _not_supported(model, what):
    return ValueError(
        f"Expected a ShuffleNet built by keras_shufflenet; {what}. "
        f"Received: model.name={model.name!r}"
    )


def _kind(layer):
    return type(layer).__name__


def _graph(model):
    """`(readers, producers)`: layer name -> the layers reading its output, and
    layer name -> the layers it reads (each layer is called once)."""
    producer = {id(t): layer for layer in model.layers for t in keras.tree.flatten(layer.output)}
    readers, producers = {}, {}
    for layer in model.layers[1:]:
        for tensor in keras.tree.flatten(layer.input):
            readers.setdefault(producer[id(tensor)].name, []).append(layer)
            producers.setdefault(layer.name, []).append(producer[id(tensor)])
    return readers, producers


def _fused(model, readers):
    """`{conv name: (bn, relu or None)}` for every convolution followed by its BatchNorm."""
    fused = {}
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            bn = readers.get(layer.name, [])
            if len(bn) != 1 or not isinstance(bn[0], layers.BatchNormalization):
                raise _not_supported(model, f"{layer.name!r} is not followed by a BatchNorm alone")
            bn = bn[0]
            after = readers.get(bn.name, [])
            relu = after[0] if len(after) == 1 and isinstance(after[0], layers.ReLU) else None
            fused[layer.name] = (bn, relu)
    return fused


def _sites(model, producers, fused):
    """The float layers whose outputs are quantized (`INPUT`: the input)."""
    sites = [INPUT]
    for layer in model.layers[1:]:
        if layer.name in fused:
            bn, relu = fused[layer.name]
            sites.append((relu or bn).name)
        elif layer.name == "preprocessing" or _kind(layer) == "Concatenate" or isinstance(
            layer, (layers.AveragePooling2D, layers.GlobalAveragePooling2D, layers.Dense)
        ):
            sites.append(layer.name)
        elif isinstance(layer, layers.ReLU) and isinstance(producers[layer.name][0], layers.Add):
            sites.append(layer.name)
    return sites


def _shared_groups(model, producers, sites):
    """`{site or move: group}` for the sites whose values meet in
    concatenations through moves only: the int8 graph gives them one scale
    (see the module docstring)."""
    parent = {}

    def root(name):
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for layer in model.layers:
        if _kind(layer) in _LINKING:
            for source in producers[layer.name]:
                parent[root(source.name)] = root(layer.name)
    groups = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    shared = {}
    for members in groups.values():
        sources = [m for m in members if m in sites and _kind(model.get_layer(m)) not in _LINKING]
        if len(sources) > 1:
            group = _common_prefix(sources)
            shared.update({member: group for member in members})
    return shared


def _common_prefix(names):
    prefix = os.path.commonprefix(names)
    return prefix.rsplit("_", 1)[0] if "_" in prefix else prefix or names[0]


def check_model(model):
    """The spec of `model`, or a ValueError where Keras QAT cannot take it."""
    spec = _specs.spec_from_model(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise _not_supported(model, "it must have one input and one output")
    if keras.config.image_data_format() != "channels_last" or getattr(
        model.get_layer("conv1"), "data_format", "channels_last"
    ) != "channels_last":
        raise _not_supported(model, 'Keras QAT builds "channels_last" models (the export\'s layout)')
    if HEAD in [layer.name for layer in model.layers]:
        activation = model.get_layer(HEAD).get_config()["activation"]
        if activation not in ("linear", "softmax", None):
            raise _not_supported(model, 'the classifier activation must be None or "softmax"')
    return spec


def quantize(model, images=None):
    """The Keras 3 QAT model of `model` (see the module docstring), its
    ranges calibrated on `images` (float32 `(N, H, W, C)`) if given."""
    check_model(model)
    readers, producers = _graph(model)
    fused = _fused(model, readers)
    folded = {layer.name for pair in fused.values() for layer in pair if layer is not None}
    sites = _sites(model, producers, fused)
    shared = _shared_groups(model, producers, sites)
    # Concatenations inside a shared range add no quantization of their own.
    sites = [site for site in sites
             if not (site in shared and _kind(model.get_layer(site)) in _LINKING)]
    initial = _calibrated_ranges(model, sites, images) if images is not None else {}
    has_preprocessing = any(layer.name == "preprocessing" for layer in model.layers)
    quantizers = {}

    def quantize_output(site, x, relu=False):
        group = shared.get(site)
        key = group or site
        if key not in quantizers:
            low, high = (0.0, 6.0) if relu else (-6.0, 6.0)
            kwargs = {}
            if site == INPUT and has_preprocessing:
                (low, high), kwargs = INPUT_RANGE, {"trainable": False}
            quantizers[key] = FakeQuant(low, high, name=f"{key}_quant", **kwargs)
        quantizer = quantizers[key]
        quantizer.sites.append(site)
        return quantizer(x)

    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name=model.layers[0].name)
    tensors = {id(model.inputs[0]): quantize_output(INPUT, inputs)}
    input_scale = None
    copied = []  # (float layer, qat layer) pairs with weights to copy
    for layer in model.layers[1:]:
        if layer.name in folded:
            continue
        args = [tensors[id(t)] for t in keras.tree.flatten(layer.input)]
        x = args[0] if len(args) == 1 else args
        source = layer
        if layer.name == "preprocessing":
            scale, offset = _rescaling_constants(layer, model.inputs[0].shape[-1])
            input_scale = scale
            offset = _as_int8_constant(offset / scale)
            y = layers.Rescaling(1.0, offset=[float(v) for v in offset], name="preprocessing")(x)
        elif layer.name in fused:
            bn, relu = fused[layer.name]
            config = layer.get_config()
            if isinstance(layer, layers.DepthwiseConv2D):
                new = QuantDepthwiseConv2D.from_config({**config, "epsilon": bn.epsilon})
            else:
                scale = input_scale if _reads_input_scale(model, layer, readers) else None
                new = QuantConv2D.from_config(
                    {**config, "epsilon": bn.epsilon,
                     "input_scale": None if scale is None else [float(s) for s in scale]}
                )
            y = new(x)
            copied.append((layer, new, bn))
            source = bn
            if relu is not None:
                y = layers.ReLU.from_config(relu.get_config())(y)
                source = relu
        elif layer.name == HEAD:
            config = layer.get_config()
            softmax = config["activation"] == "softmax"
            new = QuantDense.from_config({**config, "activation": None})
            y = new(x)
            copied.append((layer, new, None))
            y = quantize_output(layer.name, y)
            if softmax:
                y = layers.Softmax(name=SOFTMAX)(y)
                y = FakeQuant(*SOFTMAX_RANGE, sites=[SOFTMAX], trainable=False,
                              in_training=False, name=f"{SOFTMAX}_quant")(y)
            tensors[id(layer.output)] = y
            continue
        else:
            y = layer.__class__.from_config(layer.get_config())(x)
        if source.name in sites:
            y = quantize_output(source.name, y, relu=isinstance(source, layers.ReLU))
        for old, new in zip(keras.tree.flatten(source.output), keras.tree.flatten(y)):
            tensors[id(old)] = new
    qat_model = keras.Model(inputs, tensors[id(model.outputs[0])], name=model.name)
    for layer, new, bn in copied:
        values = [np.asarray(w) for w in layer.get_weights()]
        if bn is not None:
            values += [np.asarray(w) for w in bn.get_weights()]
        new.set_weights(values)
    for quantizer in quantizers.values():
        if quantizer.trainable and initial:
            low = min(initial[site][0] for site in quantizer.sites)
            high = max(initial[site][1] for site in quantizer.sites)
            low, high = min(low, 0.0), max(high, 0.0)
            # A tensor that is 0 on every image (a dead ReLU) still gets int8 steps.
            high = max(high, low + MIN_RANGE)
            quantizer.set_weights([np.float32(low), np.float32(high)])
    weights = getattr(model, "_keras_shufflenet_weights", None)
    if weights is not None:  # for the export's metadata (not saved)
        qat_model._keras_shufflenet_weights = weights
    return qat_model


def _reads_input_scale(model, conv, readers):
    """Whether `conv` is the convolution that reads the preprocessing."""
    layer = model.get_layer("preprocessing") if any(
        l.name == "preprocessing" for l in model.layers) else None
    while layer is not None:
        following = readers.get(layer.name, [])
        if len(following) != 1:
            return False
        layer = following[0]
        if layer is conv:
            return True
        if not isinstance(layer, layers.ZeroPadding2D):
            return False
    return False


def _as_int8_constant(values):
    """`values` as TFLite stores a constant operand of an int8 op: per
    tensor, on the range from their min to their max (widened to hold 0)."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    quantized = keras.quantizers.fake_quant_with_min_max_vars(
        keras.ops.convert_to_tensor(values), low, high, num_bits=8
    )
    return keras.ops.convert_to_numpy(quantized)


def _rescaling_constants(rescaling, channels):
    scale = np.broadcast_to(np.asarray(rescaling.scale, "float32"), (channels,))
    offset = np.broadcast_to(np.asarray(rescaling.offset, "float32"), (channels,))
    return scale.astype("float32"), offset.astype("float32")


def _calibrated_ranges(model, sites, images, batch_size=16):
    """`{site: (min, max)}` of the float model's tensors on `images`, as
    calibration measures them; a softmax head's site holds its logits' range."""
    outputs, logits_of, offset = {}, None, None
    for site in sites:
        if site == "preprocessing":  # quantized as `x + offset / scale` (see above)
            scale, offset = _rescaling_constants(model.get_layer(site), model.inputs[0].shape[-1])
            offset = offset / scale
        if site in (INPUT, "preprocessing"):
            outputs[site] = model.inputs[0]
        elif site == HEAD and model.get_layer(HEAD).get_config()["activation"] == "softmax":
            outputs[site], logits_of = model.get_layer(HEAD).input, model.get_layer(HEAD)
        else:
            outputs[site] = model.get_layer(site).output
    probe = keras.Model(model.inputs, outputs)
    ranges = {}
    for start in range(0, len(images), batch_size):
        values = probe(images[start:start + batch_size], training=False)
        for site, value in values.items():
            value = keras.ops.convert_to_numpy(value)
            if site == HEAD and logits_of is not None:
                kernel, bias = logits_of.get_weights()
                value = value @ kernel + bias
            elif site == "preprocessing":
                value = value + offset
            low, high = float(value.min()), float(value.max())
            if site in ranges:
                low, high = min(low, ranges[site][0]), max(high, ranges[site][1])
            ranges[site] = (low, high)
    return ranges


def is_qat_model(model):
    """Whether `model` is a Keras 3 QAT model of `quantize`."""
    return isinstance(model, keras.Model) and any(isinstance(l, FakeQuant) for l in model.layers)


def is_qat_file(path):
    """Whether the `.keras` file at `path` holds a QAT model of `quantize`,
    read from its config without loading it (`False` for anything else)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        layers_ = config["config"]["layers"]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return False
    name = keras.saving.get_registered_name(FakeQuant)
    return any(isinstance(layer, dict) and layer.get("registered_name") == name for layer in layers_)


def deploy_parts(qat_model):
    """`(float_model, ranges)` of a QAT model: the float ShuffleNet with its
    weights (kernels and BatchNorms unfolded, as learnt) and `{site: (min,
    max)}`, the learnt range of each float layer's output that is quantized."""
    spec = _specs.spec_from_model(qat_model)
    names = {layer.name for layer in qat_model.layers}
    include_top = HEAD in names
    float_model = _builder.build_model(
        spec,
        include_top=include_top,
        weights=None,
        input_shape=tuple(qat_model.inputs[0].shape[1:]),
        pooling="avg" if "avg_pool" in names else "max" if "max_pool" in names else None,
        classes=qat_model.get_layer(HEAD).units if include_top else 1000,
        classifier_activation="softmax" if SOFTMAX in names else None,
        include_preprocessing="preprocessing" in names,
        name=qat_model.name,
    )
    for layer in float_model.layers:
        if not layer.weights or isinstance(layer, layers.BatchNormalization):
            continue
        source = qat_model.get_layer(layer.name)
        values = source.get_weights()
        if isinstance(source, (QuantConv2D, QuantDepthwiseConv2D)):
            kernel, gamma, beta, mean, variance = values
            layer.set_weights([kernel])
            float_model.get_layer(f"{layer.name}_bn").set_weights([gamma, beta, mean, variance])
        else:
            layer.set_weights(values)
    ranges = {}
    for layer in qat_model.layers:
        if isinstance(layer, FakeQuant):
            low, high = (float(v) for v in layer.get_weights())
            ranges.update({site: (low, high) for site in layer.sites})
    weights = getattr(qat_model, "_keras_shufflenet_weights", None)
    if weights is not None:
        float_model._keras_shufflenet_weights = weights
    return float_model, ranges
