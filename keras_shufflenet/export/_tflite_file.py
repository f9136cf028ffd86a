"""A `.tflite` file as bytes: metadata in, a description out.

A TFLite file is a flatbuffer of the TFLite model schema; its metadata is
one more buffer, named `TFLITE_METADATA` in the model's `metadata` list, and
the files it names (the label file) follow the flatbuffer as a zip archive,
where MediaPipe and the TFLite Task Library look for them.
"""

import collections
import dataclasses
import io
import zipfile
from pathlib import Path

from keras_shufflenet import _compat
from keras_shufflenet.export import _metadata

METADATA_NAME = "TFLITE_METADATA"


def with_metadata(model, metadata, files=None):
    """`model` (flatbuffer bytes) with `metadata` (a metadata flatbuffer) and
    `files` (`{name: bytes}`, the files it names) attached."""
    import flatbuffers
    import numpy as np

    schema = _compat.tflite_schema()
    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(tree.buffers) - 1
    kept = [m for m in tree.metadata or [] if _text(m.name) != METADATA_NAME]
    tree.metadata = [*kept, entry]
    builder = flatbuffers.Builder(len(model) + len(metadata) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    packed = io.BytesIO(bytes(builder.Output()))
    if files:
        with zipfile.ZipFile(packed, "a") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return packed.getvalue()


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor: its name, shape, type and quantization
    (`(scale, zero_point)`, or `None` for a float tensor)."""

    name: str
    shape: tuple
    dtype: str
    quantization: tuple | None


@dataclasses.dataclass(frozen=True)
class TFLiteFile:
    """What `describe_tflite` reads from a `.tflite` file."""

    path: Path
    size: int
    inputs: list
    outputs: list
    op_counts: collections.Counter
    metadata: _metadata.ModelMetadata | None


def describe_tflite(path):
    """The inputs, outputs, op counts, size and metadata of a `.tflite` file."""
    from keras_shufflenet import _files

    path = _files.existing_file(path, (".tflite",), "model", "TFLite model")
    data = path.read_bytes()
    schema = _compat.tflite_schema()
    try:
        if not schema.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 identifier")
        model = schema.Model.GetRootAs(data, 0)
        subgraph = model.Subgraphs(0)
    except Exception as error:  # noqa: BLE001 - any parse failure is a damaged file
        raise ValueError(
            f"Expected a TFLite model (a TFL3 flatbuffer); {path.name} is not one ({error}). "
            f"Received: model={path}"
        ) from None
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def tensor(index):
        t = subgraph.Tensors(index)
        q = t.Quantization()
        scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
        quantization = None
        if scales is not None:
            quantization = (float(scales[0]), int(q.ZeroPointAsNumpy()[0]))
        dtype = type_names.get(t.Type(), str(t.Type())).lower()
        return TensorInfo(_text(t.Name()), tuple(int(d) for d in t.ShapeAsNumpy()), dtype,
                          quantization)  # fmt: skip

    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    ops = collections.Counter()
    for i in range(subgraph.OperatorsLength()):
        code = codes[subgraph.Operators(i).OpcodeIndex()]
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops[op_names.get(builtin, str(builtin))] += 1
    return TFLiteFile(
        path=path,
        size=len(data),
        inputs=[tensor(subgraph.Inputs(i)) for i in range(subgraph.InputsLength())],
        outputs=[tensor(subgraph.Outputs(i)) for i in range(subgraph.OutputsLength())],
        op_counts=ops,
        metadata=_read_metadata(model, data),
    )


def _read_metadata(model, data):
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            labels = _labels(data, _metadata.label_file_names(buffer))
            return _metadata.read_metadata(buffer, labels)
    return None


def _labels(data, names):
    """The class names of the first label file named, from the file's zip archive."""
    if not names:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            text = archive.read(names[0]).decode("utf-8")
    except (zipfile.BadZipFile, KeyError):
        return None
    return [line for line in text.splitlines() if line]
