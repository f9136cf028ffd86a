"""int8 flatbuffers without the requantizations the converter puts before splits.

A concatenation takes one scale for its inputs and output, so the converter
gives each of ShuffleNet V2's deploy concatenations (`_deploy_v2`) the range
calibrated on it and requantizes what feeds it: 53 int8 `QUANTIZE` ops in V2
1.0x, each over a whole branch output, before the slices that cut it (now
SPLITs). But every value a stage's splits and concatenations move is a value
of one of the stage's branch outputs, already clipped to that output's range:
the requantizations only coarsen values (or widen ranges no value reaches).
`without_requantizations` gives every tensor a stage's splits, slices and
concatenations link one scale, the one whose range covers all the branch
outputs' ranges (usually the converter gave them all the same already),
moves the branch convolutions' outputs to it,
removes the `QUANTIZE` ops and rescales the biases of the convolutions that
read changed tensors (a bias is quantized with input scale x weight scale).
The float graph is untouched; the int8 outputs move by a quantum or so.

Measured on V2 1.0x int8 with LiteRT's Interpreter: 206 ops become 153, and
the second thread, which spent its time waking for each small copy, gains
more (docs/phones.md, "Two threads").
"""

import numpy as np

from keras_shufflenet import _compat

# Ops that only move int8 values and so keep (or, QUANTIZE, change) their scale.
_MOVES = ("STRIDED_SLICE", "SPLIT", "CONCATENATION", "QUANTIZE")
# Ops that read a tensor with its scale and hold a bias quantized with it.
_BIASED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def without_requantizations(flatbuffer):
    """`flatbuffer` (a full-int8 `.tflite` model, bytes) with one scale and
    zero point on each group of tensors linked by slices, concatenations and
    int8 requantizations: those whose range covers the group's sources (the
    tensors other ops make), and the requantizations this makes no-ops
    removed. A group is left as it is where a source whose scale would change
    is not a convolution's output, or a tensor whose scale would change is a
    graph output or is read by anything but moves and convolutions' data
    inputs."""
    utils, schema = _compat.tflite_flatbuffer_modules()
    model = utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}

    def kind(op):
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    int8 = schema.TensorType.INT8
    moves = [
        op for op in graph.operators
        if kind(op) in _MOVES and all(graph.tensors[t].type == int8 for t in _variable_inputs(model, op))
        and all(graph.tensors[t].type == int8 for t in op.outputs)
    ]  # fmt: skip
    groups = _linked_groups(model, moves)
    readers = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(int(t), []).append(op)
    makers = {int(t): op for op in graph.operators for t in op.outputs}
    made_by_moves = {int(t) for op in moves for t in op.outputs}
    old_params = {}  # tensor -> its params before, where they change
    for members in groups:
        sources = {_params(graph.tensors[t]) for t in members if t not in made_by_moves}
        if None in sources:
            continue
        target = _covering(sources)
        changed = [t for t in members if _params(graph.tensors[t]) != target]
        if any(
            t in graph.outputs or not _reads_freely(kind, readers.get(t, []), t)
            or (t not in made_by_moves and (t not in makers or kind(makers[t]) not in _BIASED))
            for t in changed
        ):  # fmt: skip
            continue
        for t in changed:
            old_params[t] = _params(graph.tensors[t])
            graph.tensors[t].quantization.scale = np.array([target[0]], "float32")
            graph.tensors[t].quantization.zeroPoint = np.array([target[1]], "int64")
    _drop_identity_requantizations(graph, kind)
    for op in graph.operators:
        if kind(op) in _BIASED and int(op.inputs[0]) in old_params and len(op.inputs) > 2 and op.inputs[2] >= 0:
            _rescale_bias(model, graph.tensors[op.inputs[2]], old_params[int(op.inputs[0])][0],
                          _params(graph.tensors[op.inputs[0]])[0])
    return bytes(utils.convert_object_to_bytearray(model))


def _variable_inputs(model, op):
    graph = model.subgraphs[0]
    return [int(t) for t in op.inputs if t >= 0 and model.buffers[graph.tensors[t].buffer].data is None]


def _params(tensor):
    """`(scale, zero_point)` of a per-tensor quantized tensor, else None."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def _covering(params):
    """The int8 `(scale, zero_point)` whose range covers those of all `params`."""
    if len(params) == 1:
        return next(iter(params))
    low = min((-128 - zero) * scale for scale, zero in params)
    high = max((127 - zero) * scale for scale, zero in params)
    scale = (high - low) / 255
    return float(np.float32(scale)), int(np.clip(np.round(-128 - low / scale), -128, 127))


def _linked_groups(model, moves):
    """The tensors linked by `moves` (inputs and outputs), as lists."""
    parent = {}

    def root(t):
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    for op in moves:
        for t in [*_variable_inputs(model, op), *(int(t) for t in op.outputs)]:
            parent[root(t)] = root(int(op.outputs[0]))
    groups = {}
    for t in list(parent):
        groups.setdefault(root(t), []).append(t)
    return list(groups.values())


def _reads_freely(kind, readers, tensor):
    """Whether every reader of `tensor` takes a new scale: a move, or a
    convolution reading it as its data (its bias is rescaled)."""
    return all(kind(op) in _MOVES or (kind(op) in _BIASED and int(op.inputs[0]) == tensor) for op in readers)


def _drop_identity_requantizations(graph, kind):
    """Removes the QUANTIZE ops whose input and output share their params."""
    alias, kept = {}, []
    for op in graph.operators:
        if kind(op) == "QUANTIZE" and _params(graph.tensors[op.inputs[0]]) == _params(graph.tensors[op.outputs[0]]) \
                and graph.tensors[op.inputs[0]].type == graph.tensors[op.outputs[0]].type \
                and int(op.outputs[0]) not in graph.outputs:
            alias[int(op.outputs[0])] = int(op.inputs[0])
            continue
        kept.append(op)
    for op in kept:
        op.inputs = np.array([alias.get(int(t), int(t)) for t in op.inputs], dtype=np.int32)
    graph.operators = kept


def _rescale_bias(model, bias, old_input_scale, new_input_scale):
    """Requantizes an int32 bias for a new input scale (same real values)."""
    buffer = model.buffers[bias.buffer]
    old_scale = np.asarray(bias.quantization.scale, "float64")
    new_scale = old_scale * (new_input_scale / old_input_scale)
    values = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), np.int32)
    values = np.clip(np.round(values * (old_scale / new_scale)), -(2**31), 2**31 - 1).astype(np.int32)
    buffer.data = np.frombuffer(values.tobytes(), np.uint8)
    bias.quantization.scale = new_scale.astype("float32")
