"""TFLite model metadata: what MediaPipe Tasks (and the TFLite Task Library
before it) read from a classifier's file.

The metadata is a flatbuffer of the TFLite metadata schema
(`metadata_schema.fbs`, file identifier `M001`), written here with the
`flatbuffers` package that TensorFlow already needs, table by table, by the
field numbers of the schema (`_SLOTS`). This package uses a handful of its
tables, and the schema only ever adds fields, so the writer stays small and
no metadata library is needed at export time; the tests read the files back
with MediaPipe's generated module and classify with MediaPipe's
`ImageClassifier` (docs/phones.md says why this way).

`ModelMetadata` holds the model's name, description, version, author and
licence, and one subgraph with:

- the input: an RGB image (`ImageProperties`), its value range (`Stats`:
  [0, 255]) and `NormalizationOptions` mean 0 / std 1, since the graph
  normalises inside: MediaPipe then feeds a float32 input the pixels as they
  are, and a uint8 input the camera's bytes;
- the output: class scores, with the label file (`TENSOR_AXIS_LABELS`, one
  class name a line) when the model has class names.

`read_metadata` reads back the fields `keras-shufflenet info` shows.
"""

import dataclasses

import flatbuffers
from flatbuffers import number_types, table

FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # the schema features used here: its first version
LABELS_FILE = "labels.txt"

# Field numbers of the schema's tables (a union takes two: its type, then its value).
_SLOTS = {
    "ModelMetadata": ("name", "description", "version", "subgraph_metadata", "author",
                      "license", "associated_files", "min_parser_version"),
    "SubGraphMetadata": ("name", "description", "input_tensor_metadata",
                         "output_tensor_metadata"),
    "TensorMetadata": ("name", "description", "dimension_names", "content", "process_units",
                       "stats", "associated_files"),
    "Content": ("content_properties_type", "content_properties", "range"),
    "ImageProperties": ("color_space", "default_size"),
    "FeatureProperties": (),
    "ProcessUnit": ("options_type", "options"),
    "NormalizationOptions": ("mean", "std"),
    "Stats": ("max", "min"),
    "AssociatedFile": ("name", "description", "type"),
}  # fmt: skip
# Enum values of the schema.
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES = 2, 1  # ContentProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions
_RGB = 1  # ColorSpaceType
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_BYTE_FIELDS = {"content_properties_type", "options_type", "color_space", "type"}


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What a classifier's file says about itself.

    Attributes:
        name: The model's name.
        description: Family, width, groups, weights and input, for people.
        version: Version of the package that wrote the file.
        author: Who wrote the file.
        license: The terms of the weights (see `weights.WeightsEntry.terms`).
        input_description: The input, for people.
        output_name: The output's name: `"probability"` for class scores.
        mean, std: The `NormalizationOptions` of the input (one value or one
            per channel): an app feeds `(pixel - mean) / std` to a float input.
        value_range: `(min, max)` of the input's pixels.
        output_description: The output, for people.
        labels: The class names in output order, or `None` (feature
            extractors, models without class names).
    """

    name: str
    description: str
    version: str
    author: str
    license: str
    input_description: str
    output_name: str
    output_description: str
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    value_range: tuple = (0.0, 255.0)
    labels: tuple | None = None


# ------------------------------------------------------------------ write


class _Writer:
    """Builds tables bottom-up: children first, then the table that holds them."""

    def __init__(self):
        self.builder = flatbuffers.Builder(1024)

    def table(self, kind, **fields):
        offsets = {name: self._value(value) for name, value in fields.items() if value is not None}
        slots = _SLOTS[kind]
        self.builder.StartObject(len(slots))
        for name, value in offsets.items():
            slot = slots.index(name)
            if name in _BYTE_FIELDS:
                self.builder.PrependInt8Slot(slot, value, 0)
            else:
                self.builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        return self.builder.EndObject()

    def _value(self, value):
        if isinstance(value, str):
            return self.builder.CreateString(value)
        if isinstance(value, _Floats):
            return self.builder.CreateNumpyVector(_float32(value.values))
        if isinstance(value, list):  # of table offsets
            self.builder.StartVector(4, len(value), 4)
            for offset in reversed(value):
                self.builder.PrependUOffsetTRelative(offset)
            return self.builder.EndVector()
        return value  # a table offset or an enum value

    def finish(self, root):
        self.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
        return bytes(self.builder.Output())


@dataclasses.dataclass(frozen=True)
class _Floats:
    values: tuple


def _float32(values):
    import numpy as np

    return np.asarray(values, np.float32)


def metadata_buffer(metadata):
    """The `ModelMetadata` flatbuffer of `metadata` (a `ModelMetadata`)."""
    w = _Writer()
    image = w.table("ImageProperties", color_space=_RGB)
    normalization = w.table("NormalizationOptions", mean=_Floats(metadata.mean),
                            std=_Floats(metadata.std))  # fmt: skip
    low, high = metadata.value_range
    image_tensor = w.table(
        "TensorMetadata",
        name="image",
        description=metadata.input_description,
        content=w.table("Content", content_properties_type=_IMAGE_PROPERTIES,
                        content_properties=image),  # fmt: skip
        process_units=[w.table("ProcessUnit", options_type=_NORMALIZATION_OPTIONS,
                               options=normalization)],  # fmt: skip
        stats=w.table("Stats", max=_Floats((high,)), min=_Floats((low,))),
    )
    labels = None
    if metadata.labels is not None:
        labels = [w.table("AssociatedFile", name=LABELS_FILE, description="class names",
                          type=_TENSOR_AXIS_LABELS)]  # fmt: skip
    output_tensor = w.table(
        "TensorMetadata",
        name=metadata.output_name,
        description=metadata.output_description,
        content=w.table("Content", content_properties_type=_FEATURE_PROPERTIES,
                        content_properties=w.table("FeatureProperties")),  # fmt: skip
        associated_files=labels,
    )
    subgraph = w.table("SubGraphMetadata", input_tensor_metadata=[image_tensor],
                       output_tensor_metadata=[output_tensor])  # fmt: skip
    root = w.table(
        "ModelMetadata",
        name=metadata.name,
        description=metadata.description,
        version=metadata.version,
        subgraph_metadata=[subgraph],
        author=metadata.author,
        license=metadata.license,
        min_parser_version=MIN_PARSER_VERSION,
    )
    return w.finish(root)


def labels_file(labels):
    """The label file's bytes: one class name a line, in output order."""
    return "".join(f"{name}\n" for name in labels).encode("utf-8")


# ------------------------------------------------------------------- read


class _Table:
    """One table of a flatbuffer, its fields found by name (`_SLOTS`)."""

    def __init__(self, kind, buffer, position):
        self.kind, self._table = kind, table.Table(buffer, position)

    def _offset(self, name):
        return self._table.Offset(4 + 2 * _SLOTS[self.kind].index(name))

    def string(self, name):
        offset = self._offset(name)
        return self._table.String(offset + self._table.Pos).decode("utf-8") if offset else None

    def byte(self, name):
        offset = self._offset(name)
        return self._table.Get(number_types.Int8Flags, offset + self._table.Pos) if offset else 0

    def floats(self, name):
        offset = self._offset(name)
        if not offset:
            return ()
        return tuple(float(v) for v in
                     self._table.GetVectorAsNumpy(number_types.Float32Flags, offset))  # fmt: skip

    def child(self, name, kind):
        offset = self._offset(name)
        if not offset:
            return None
        return _Table(kind, self._table.Bytes, self._table.Indirect(offset + self._table.Pos))

    def children(self, name, kind):
        offset = self._offset(name)
        if not offset:
            return []
        start, count = self._table.Vector(offset), self._table.VectorLen(offset)
        return [_Table(kind, self._table.Bytes, self._table.Indirect(start + 4 * i))
                for i in range(count)]  # fmt: skip


def _root(buffer):
    buffer = bytearray(buffer)
    if not flatbuffers.util.BufferHasIdentifier(buffer, 0, FILE_IDENTIFIER):
        raise ValueError(
            f"Expected TFLite model metadata (file identifier {FILE_IDENTIFIER.decode()}). "
            f"Received: {bytes(buffer[4:8])!r}"
        )
    position = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0)
    return _Table("ModelMetadata", buffer, position)


def read_metadata(buffer, labels=None):
    """The `ModelMetadata` in a metadata flatbuffer; `labels` are the class
    names of its label file, when the caller found it."""
    root = _root(buffer)
    subgraph = root.children("subgraph_metadata", "SubGraphMetadata")[0]
    image = subgraph.children("input_tensor_metadata", "TensorMetadata")[0]
    output = subgraph.children("output_tensor_metadata", "TensorMetadata")[0]
    normalization = [unit.child("options", "NormalizationOptions")
                     for unit in image.children("process_units", "ProcessUnit")
                     if unit.byte("options_type") == _NORMALIZATION_OPTIONS]  # fmt: skip
    stats = image.child("stats", "Stats")
    return ModelMetadata(
        name=root.string("name"),
        description=root.string("description"),
        version=root.string("version"),
        author=root.string("author"),
        license=root.string("license"),
        input_description=image.string("description"),
        output_name=output.string("name"),
        output_description=output.string("description"),
        mean=normalization[0].floats("mean") if normalization else (),
        std=normalization[0].floats("std") if normalization else (),
        value_range=(stats.floats("min")[0], stats.floats("max")[0]) if stats else (),
        labels=tuple(labels) if labels is not None else None,
    )


def label_file_names(buffer):
    """Names of the output's `TENSOR_AXIS_LABELS` files in a metadata flatbuffer."""
    names = []
    root = _root(buffer)
    for subgraph in root.children("subgraph_metadata", "SubGraphMetadata"):
        for tensor in subgraph.children("output_tensor_metadata", "TensorMetadata"):
            for file in tensor.children("associated_files", "AssociatedFile"):
                if file.byte("type") == _TENSOR_AXIS_LABELS:
                    names.append(file.string("name"))
    return names
