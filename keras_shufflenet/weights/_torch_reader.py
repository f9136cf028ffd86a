"""Read PyTorch state dicts into numpy arrays, without torch and without running pickled code.

Both of ``torch.save``'s formats are understood: the zip archive (the default)
and the legacy stream (``_use_new_zipfile_serialization=False``). Pickles go
through an allow-list: only the globals torch needs to rebuild tensors resolve,
each to a local stand-in, so a hostile file is refused before anything runs.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"

# The most elements one tensor, storage or storage view may have. The largest
# ShuffleNet tensor is the V2 2.0x classifier weight, 1000 x 2048 = 2,048,000
# elements (conv5's 976 x 2048 comes next); 2**26 (67,108,864, 256 MiB as
# float32) leaves a 32x margin and still refuses crafted sizes (a 10**6 x 10**6
# tensor of zero strides, a storage of 2**40 elements) before anything is
# allocated or read.
MAX_TENSOR_ELEMENTS = 2**26
# numpy's limit on the number of dimensions of an array.
_MAX_DIMS = 64

_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class CheckpointError(ValueError):
    """A file could not be read as a PyTorch state dict."""


class _NotAPickle(CheckpointError):
    """Bytes that do not parse as a pickle."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a typed storage class such as ``torch.FloatStorage``."""

    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id: ``numel`` elements from ``offset`` of record ``key``."""

    key: str
    dtype: np.dtype
    offset: int
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor to cut out of its storage once the storage bytes are known."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _check_elements(what: str, count: int) -> None:
    """Refuse more than ``MAX_TENSOR_ELEMENTS`` elements, before anything is allocated or read for them."""
    if count > MAX_TENSOR_ELEMENTS:
        raise CheckpointError(f"{what} has {count} elements, more than the limit of {MAX_TENSOR_ELEMENTS}")


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise CheckpointError(f"expected a non-negative int {what}, found {value!r:.80}")
    return value


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)):
        raise CheckpointError(f"expected a tuple {what}, found {values!r:.80}")
    return tuple(_int(v, what) for v in values)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor``."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError(f"expected a storage to rebuild a tensor from, found {storage!r:.80}")
    return _TensorRef(storage, _int(storage_offset, "storage offset"), _ints(size, "size"), _ints(stride, "stride"))


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``; autograd details are dropped."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> Any:
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its data."""
    return data


def _rebuild_parameter_with_state(data: Any, requires_grad: Any, backward_hooks: Any, state: Any) -> Any:
    """Stand-in for ``torch._utils._rebuild_parameter_with_state``: a parameter is its data."""
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
}


def _storage_type(name: str) -> _StorageType:
    if name == "BFloat16Storage":
        try:
            import ml_dtypes
        except ImportError:
            raise CheckpointError("torch.BFloat16Storage needs the ml_dtypes package, which is not installed") from None
        return _StorageType(np.dtype(ml_dtypes.bfloat16))
    return _StorageType(np.dtype(_STORAGE_DTYPES[name]))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor-rebuilding globals and records the storages it meets."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _storage_type(name)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        raise CheckpointError(f"refused global {module}.{name}: only the globals that rebuild tensors are allowed")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(
                f"expected a ('storage', type, key, location, numel) persistent id, found {pid!r:.80}"
            )
        storage_type, key, numel = pid[1], pid[2], _int(pid[4], "storage size")
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise CheckpointError(f"expected a storage type and a str key in persistent id, found {pid!r:.80}")
        _check_elements(f"storage {key}", numel)
        self.storages[key] = _StorageRef(key, storage_type.dtype, 0, numel)
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return self.storages[key]
        if not (isinstance(view, tuple) and len(view) == 3):
            raise CheckpointError(f"expected (key, offset, size) view metadata, found {view!r:.80}")
        offset, size = _int(view[1], "view offset"), _int(view[2], "view size")
        _check_elements(f"view of storage {key}", size)
        return _StorageRef(key, storage_type.dtype, offset, size)


def _unpickle(file: BinaryIO, what: str) -> tuple[Any, dict[str, _StorageRef]]:
    """Load one pickle from ``file``; return it with the storages it refers to."""
    unpickler = _RestrictedUnpickler(file)
    try:
        return unpickler.load(), unpickler.storages
    except CheckpointError:
        raise
    except Exception as err:  # a malformed pickle can fail in many ways
        raise _NotAPickle(f"{what} is not a valid pickle ({type(err).__name__}: {err})") from None


def _storage_array(ref: _StorageRef, data: bytes, byteorder: str) -> np.ndarray:
    """View a storage record as a 1-d native-order array of ``ref``'s elements."""
    itemsize = ref.dtype.itemsize
    needed = (ref.offset + ref.numel) * itemsize
    if len(data) < needed:
        raise CheckpointError(f"storage {ref.key} is truncated: expected {needed} bytes, found {len(data)}")
    array = np.frombuffer(data, dtype=ref.dtype, count=ref.numel, offset=ref.offset * itemsize)
    if byteorder != sys.byteorder and itemsize > 1:
        array = array.view(f"u{itemsize}").byteswap().view(ref.dtype)
    return array


def _check_tensor_size(name: str, tensor: _TensorRef) -> None:
    """Refuse a tensor whose size could not be a ShuffleNet layer's, before its storage is read."""
    if len(tensor.size) != len(tensor.stride):
        raise CheckpointError(f"tensor {name} has size {tensor.size!r:.80} but stride {tensor.stride!r:.80}")
    if len(tensor.size) > _MAX_DIMS:
        raise CheckpointError(f"tensor {name} has {len(tensor.size)} dimensions, more than the limit of {_MAX_DIMS}")
    _check_elements(f"tensor {name}", math.prod(tensor.size))
    if tensor.size and max(tensor.size) > MAX_TENSOR_ELEMENTS:  # an empty tensor with a huge dimension
        raise CheckpointError(
            f"tensor {name} has a dimension of {max(tensor.size)}, more than the limit of {MAX_TENSOR_ELEMENTS}"
        )


def _tensor_array(name: str, tensor: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """Cut a contiguous copy of ``tensor`` out of its storage, refusing reads past its end."""
    _check_tensor_size(name, tensor)
    if 0 in tensor.size:
        return np.empty(tensor.size, storage.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if last >= storage.size:
        raise CheckpointError(f"tensor {name} reaches element {last} of a storage with {storage.size} elements")
    strides = tuple(s * storage.itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(storage[tensor.offset :], tensor.size, strides, writeable=False)
    return view.copy()


def _state_dict_of(obj: Any) -> dict[str, _TensorRef]:
    """Unwrap ``{'state_dict': ...}`` / ``{'model': ...}``, keep tensors, strip a shared ``module.``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict state dict, found {type(obj).__name__}")
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    tensors = {key: value for key, value in obj.items() if isinstance(value, _TensorRef)}
    if not tensors:
        raise CheckpointError("expected a state dict of tensors, found no tensors")
    if not all(isinstance(key, str) for key in tensors):
        raise CheckpointError("expected str keys in the state dict")
    if all(key.startswith("module.") for key in tensors):
        tensors = {key.removeprefix("module."): value for key, value in tensors.items()}
    return tensors


def _materialize(obj: Any, read_record: Callable[[str, int], bytes], byteorder: str) -> dict[str, np.ndarray]:
    """Turn the unpickled object into ``{name: array}``, reading each storage record once.

    Every tensor's size is checked before any record is read, and each record is
    read only as far as its tensors reach: ``read_record(key, nbytes)`` returns at
    most ``nbytes`` bytes of record ``key`` (fewer when the record is shorter).
    """
    tensors = _state_dict_of(obj)
    needed: dict[str, int] = {}
    for name, tensor in tensors.items():
        _check_tensor_size(name, tensor)
        ref = tensor.storage
        needed[ref.key] = max(needed.get(ref.key, 0), (ref.offset + ref.numel) * ref.dtype.itemsize)
    records = {key: read_record(key, nbytes) for key, nbytes in needed.items()}
    storages: dict[_StorageRef, np.ndarray] = {}
    arrays = {}
    for name, tensor in tensors.items():
        ref = tensor.storage
        if ref not in storages:
            storages[ref] = _storage_array(ref, records[ref.key], byteorder)
        arrays[name] = _tensor_array(name, tensor, storages[ref])
    return arrays


def _open_member(archive: zipfile.ZipFile, name: str) -> BinaryIO:
    try:
        return archive.open(name)
    except KeyError:
        raise CheckpointError(f"zip archive has no record {name}") from None
    except Exception as err:  # zipfile errors on damaged archives
        raise CheckpointError(f"cannot read record {name} ({type(err).__name__}: {err})") from None


def _read_member(archive: zipfile.ZipFile, name: str, nbytes: int, what: str | None = None) -> bytes:
    """The first ``nbytes`` bytes of record ``name``, inflating no more than that.

    With ``what`` (the storage the record holds), a record that declares fewer
    than ``nbytes`` bytes is refused as truncated before any of it is read;
    without, a shorter record is returned as it is.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(f"zip archive has no record {name}") from None
    if what is not None and info.file_size < nbytes:
        raise CheckpointError(f"{what} is truncated: expected {nbytes} bytes, found {info.file_size}")
    with _open_member(archive, name) as member:
        try:
            return member.read(nbytes)
        except Exception as err:  # zipfile, zlib and EOF errors on damaged archives
            raise CheckpointError(f"cannot read record {name} ({type(err).__name__}: {err})") from None


def _load_zip(file: BinaryIO) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(f"expected a complete zip archive, found a truncated or corrupt one ({err})") from None
    with archive:
        pickles = [name for name in archive.namelist() if name == "data.pkl" or name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"expected one data.pkl in the zip archive, found {len(pickles)}")
        prefix = pickles[0].removesuffix("data.pkl")
        byteorder = "little"
        if prefix + "byteorder" in archive.namelist():
            # Enough to show a wrong value in the message below, never a whole inflated record.
            byteorder = _read_member(archive, prefix + "byteorder", 64).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"expected byteorder 'little' or 'big', found {byteorder!r:.40}")
        # The unpickler reads the record as a stream and stops at the pickle's end.
        with _open_member(archive, pickles[0]) as member:
            obj, _ = _unpickle(member, pickles[0])

        def read_record(key: str, nbytes: int) -> bytes:
            return _read_member(archive, f"{prefix}data/{key}", nbytes, f"storage {key}")

        return _materialize(obj, read_record, byteorder)


def _is_legacy(file: BinaryIO) -> bool:
    """Whether ``file`` starts with the legacy magic number pickle (consuming it)."""
    try:
        magic, _ = _unpickle(file, "magic number")
    except _NotAPickle:
        return False
    return type(magic) is int and magic == LEGACY_MAGIC


def _load_legacy(file: BinaryIO) -> dict[str, np.ndarray]:
    version, _ = _unpickle(file, "protocol version")
    if version != LEGACY_PROTOCOL:
        raise CheckpointError(f"expected legacy protocol version {LEGACY_PROTOCOL}, found {version!r:.40}")
    _unpickle(file, "sys_info")
    obj, storages = _unpickle(file, "main pickle")
    keys, _ = _unpickle(file, "storage key list")
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        raise CheckpointError(f"expected a list of storage keys, found {keys!r:.80}")
    file_size = os.fstat(file.fileno()).st_size
    # The records follow one another: an 8-byte element count, then the elements.
    # Note where each lies (skipping its bytes); the tensors' reads come after.
    records: dict[str, tuple[int, int]] = {}
    for key in keys:
        if key not in storages:
            raise CheckpointError(f"storage {key} is listed but never used")
        header = file.read(8)
        if len(header) < 8:
            raise CheckpointError(f"storage {key} is truncated: expected an 8-byte size, found {len(header)} bytes")
        (numel,) = struct.unpack("<q", header)
        _check_elements(f"storage {key}", _int(numel, f"size of storage {key}"))
        nbytes = numel * storages[key].dtype.itemsize
        if nbytes > file_size - file.tell():
            raise CheckpointError(
                f"storage {key} is truncated: expected {nbytes} bytes, found {file_size - file.tell()}"
            )
        records[key] = (file.tell(), nbytes)
        file.seek(nbytes, os.SEEK_CUR)

    def read_record(key: str, nbytes: int) -> bytes:
        if key not in records:
            raise CheckpointError(f"storage {key} is used but has no record")
        start, size = records[key]
        file.seek(start)
        return file.read(min(nbytes, size))

    return _materialize(obj, read_record, "little")


def load_torch_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a ``torch.save``'d state dict (zip or legacy format) into ``{name: contiguous array}``.

    Raises ``CheckpointError`` naming the file for anything unreadable, truncated or not allow-listed.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            if file.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
                return _load_zip(file)
            file.seek(0)
            if not _is_legacy(file):
                raise CheckpointError("expected a torch checkpoint (a zip archive or legacy torch file), found neither")
            return _load_legacy(file)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read file: {err.strerror or err}") from None
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
