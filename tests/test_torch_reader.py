"""Tests for the torch-free checkpoint reader, using torch only to make fixtures."""

from __future__ import annotations

import ast
import io
import os
import pickle
import subprocess
import sys
import tracemalloc
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision

from keras_shufflenet.weights import _torch_reader
from keras_shufflenet.weights._torch_reader import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    MAX_TENSOR_ELEMENTS,
    CheckpointError,
    load_torch_state_dict,
)

FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def _save(obj: Any, path: Path, legacy: bool) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _assert_matches(result: dict[str, np.ndarray], expected: dict[str, torch.Tensor]) -> None:
    assert result.keys() == expected.keys()
    for name, tensor in expected.items():
        want = tensor.detach().numpy()
        assert result[name].dtype == want.dtype, name
        assert result[name].flags.c_contiguous and result[name].flags.writeable, name
        np.testing.assert_array_equal(result[name], want, err_msg=name)


def _rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a zip archive, replacing each record by ``edit(name, data)`` or dropping it on None."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            data = edit(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return dst


def _legacy_file(path: Path, main_pickle: bytes, storages: dict[str, np.ndarray] | None = None) -> Path:
    """Write a legacy-format file around ``main_pickle`` and the given storage records."""
    storages = storages or {}
    header = [LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": LEGACY_PROTOCOL, "little_endian": True}]
    records = [np.int64(array.size).astype("<i8").tobytes() + array.tobytes() for array in storages.values()]
    parts = [pickle.dumps(obj, 2) for obj in header] + [main_pickle, pickle.dumps(list(storages), 2)]
    path.write_bytes(b"".join(parts + records))
    return path


def _zip_file(path: Path, data_pkl: bytes, storages: dict[str, np.ndarray] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, array in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", array.tobytes())
    return path


class _Reduce:
    """Pickles as a call of ``func(*args)``, the way a hostile checkpoint runs code."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


class _Pid(tuple):
    """A persistent id to write as such (see ``_PidPickler``)."""


class _PidPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return tuple(obj) if isinstance(obj, _Pid) else None


def _legacy_tensor_pickle(size: tuple[int, ...], view: tuple[str, int, int] | None, numel: int = 10) -> bytes:
    """A main pickle holding one float32 tensor ``w`` at offset 1 of storage "0" (optionally a view of it)."""
    pid = _Pid(("storage", torch.FloatStorage, "0", "cpu", numel, view))
    stride = (1,) * len(size)
    tensor = _Reduce(torch._utils._rebuild_tensor_v2, pid, 1, size, stride, False, OrderedDict())
    buffer = io.BytesIO()
    _PidPickler(buffer, 2).dump({"w": tensor})
    return buffer.getvalue()


def _sample_tensors() -> dict[str, torch.Tensor]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "float32": torch.randn(2, 3),
        "float64": torch.randn(3, dtype=torch.float64),
        "float16": torch.randn(5).half(),
        "int64": torch.tensor([-(2**40), 0, 2**40]),
        "int32": torch.tensor([-5, 7], dtype=torch.int32),
        "int16": torch.tensor([-300, 300], dtype=torch.int16),
        "int8": torch.tensor([-100, 100], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "base": base,
        "transposed": base.t(),
        "slice": base[1:, 2:5],
        "expanded": base[0].expand(3, 6),
        "scalar": torch.tensor(3.5),
        "scalar_int": torch.tensor(7),
        "empty": torch.zeros(0, 3),
        "parameter": torch.nn.Parameter(torch.ones(2, 2)),
    }


@FORMATS
def test_round_trip_dtypes_and_views(tmp_path: Path, legacy: bool) -> None:
    tensors = _sample_tensors()
    _assert_matches(load_torch_state_dict(_save(tensors, tmp_path / "sd.pt", legacy)), tensors)


@FORMATS
def test_round_trip_bfloat16(tmp_path: Path, legacy: bool) -> None:
    tensor = torch.randn(2, 3).bfloat16()
    result = load_torch_state_dict(_save({"w": tensor}, tmp_path / "bf16.pt", legacy))
    assert result["w"].dtype.name == "bfloat16"
    np.testing.assert_array_equal(result["w"].view(np.int16), tensor.view(torch.int16).numpy())


@FORMATS
def test_shufflenet_state_dict(tmp_path: Path, legacy: bool) -> None:
    state = torchvision.models.shufflenet_v2_x0_5().state_dict()
    result = load_torch_state_dict(_save(state, tmp_path / "shufflenet.pt", legacy))
    _assert_matches(result, dict(state))
    assert result["conv1.1.num_batches_tracked"].dtype == np.int64


@FORMATS
@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_state_dict_drops_non_tensors(tmp_path: Path, legacy: bool, wrapper: str) -> None:
    tensors = {"a": torch.ones(2), "b": torch.zeros(3)}
    checkpoint = {wrapper: {**tensors, "note": 1}, "epoch": 5}
    _assert_matches(load_torch_state_dict(_save(checkpoint, tmp_path / "wrapped.pt", legacy)), tensors)


@FORMATS
def test_module_prefix_stripped_only_when_shared(tmp_path: Path, legacy: bool) -> None:
    prefixed = {"module.a": torch.ones(2), "module.b.c": torch.zeros(1)}
    result = load_torch_state_dict(_save(prefixed, tmp_path / "dp.pt", legacy))
    assert set(result) == {"a", "b.c"}
    mixed = {"module.a": torch.ones(2), "b": torch.zeros(1)}
    assert set(load_torch_state_dict(_save(mixed, tmp_path / "mixed.pt", legacy))) == {"module.a", "b"}


def test_legacy_storage_view(tmp_path: Path) -> None:
    storage = {"0": np.arange(10, dtype="<f4")}
    path = _legacy_file(tmp_path / "view.pt", _legacy_tensor_pickle((2,), ("1", 2, 4)), storage)
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], [3.0, 4.0])


def test_tensor_past_storage_end_is_refused(tmp_path: Path) -> None:
    path = _legacy_file(tmp_path / "oob.pt", _legacy_tensor_pickle((100,), None), {"0": np.zeros(10, "<f4")})
    with pytest.raises(CheckpointError, match=r"oob\.pt: tensor w reaches element 100 of a storage with 10"):
        load_torch_state_dict(path)


def test_big_endian_zip(tmp_path: Path) -> None:
    tensors = {"f": torch.randn(4), "i": torch.arange(3, dtype=torch.int32), "h": torch.randn(2).half()}
    src = _save(tensors, tmp_path / "little.pt", legacy=False)
    itemsizes = {"0": 4, "1": 4, "2": 2}

    def to_big(name: str, data: bytes) -> bytes:
        if name.endswith("/byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(data, f"<u{itemsizes[name[-1]]}").astype(f">u{itemsizes[name[-1]]}").tobytes()
        return data

    _assert_matches(load_torch_state_dict(_rewrite_zip(src, tmp_path / "big.pt", to_big)), tensors)


def _hostile_calls(marker: Path) -> list[_Reduce]:
    return [
        _Reduce(os.system, f"touch {marker}"),
        _Reduce(eval, f"open({str(marker)!r}, 'w')"),
        _Reduce(subprocess.Popen, ["touch", str(marker)]),
    ]


@pytest.mark.parametrize("call", range(3), ids=["os.system", "builtins.eval", "subprocess.Popen"])
@FORMATS
def test_hostile_pickle_is_refused(tmp_path: Path, legacy: bool, call: int) -> None:
    marker = tmp_path / "pwned"
    payload = _hostile_calls(marker)[call]
    refused = f"{payload.func.__module__}.{payload.func.__name__}"
    data = pickle.dumps({"w": 1, "x": payload}, 2, fix_imports=False)
    path = _legacy_file(tmp_path / "evil.pt", data) if legacy else _zip_file(tmp_path / "evil.pt", data)
    with pytest.raises(CheckpointError, match=rf"evil\.pt.*refused global {refused}"):
        load_torch_state_dict(path)
    assert not marker.exists()


def test_hostile_payload_is_live(tmp_path: Path) -> None:
    """The os.system payload really runs under a plain unpickler, so the refusals above mean something."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_hostile_calls(marker)[0], 2))
    assert marker.exists()


@pytest.mark.parametrize(
    "global_name", [b"os\nsystem", b"posix\nsystem", b"__builtin__\neval", b"torch\nload", b"numpy\nload"]
)
def test_hand_written_global_is_refused(tmp_path: Path, global_name: bytes) -> None:
    data = b"\x80\x02c" + global_name + b"\nX\x05\x00\x00\x00touch\x85R."
    with pytest.raises(CheckpointError, match="refused global " + global_name.decode().replace("\n", ".")):
        load_torch_state_dict(_zip_file(tmp_path / "evil.pt", data))


@FORMATS
def test_truncated_file(tmp_path: Path, legacy: bool) -> None:
    path = _save({"w": torch.arange(1000, dtype=torch.float32)}, tmp_path / "cut.pt", legacy)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt.*truncated"):
        load_torch_state_dict(path)


def test_zip_missing_data_pkl(tmp_path: Path) -> None:
    src = _save({"w": torch.ones(2)}, tmp_path / "full.pt", legacy=False)
    path = _rewrite_zip(src, tmp_path / "nopkl.pt", lambda name, data: None if name.endswith("data.pkl") else data)
    with pytest.raises(CheckpointError, match=r"nopkl\.pt.*expected one data\.pkl.*found 0"):
        load_torch_state_dict(path)


def test_zip_missing_storage_record(tmp_path: Path) -> None:
    src = _save({"w": torch.ones(2)}, tmp_path / "full.pt", legacy=False)
    path = _rewrite_zip(src, tmp_path / "nodata.pt", lambda name, data: None if name.endswith("data/0") else data)
    with pytest.raises(CheckpointError, match=r"nodata\.pt.*no record full/data/0"):
        load_torch_state_dict(path)


def test_zip_storage_shorter_than_numel(tmp_path: Path) -> None:
    src = _save({"w": torch.ones(8)}, tmp_path / "full.pt", legacy=False)
    path = _rewrite_zip(src, tmp_path / "short.pt", lambda name, data: data[:10] if name.endswith("data/0") else data)
    with pytest.raises(CheckpointError, match=r"short\.pt.*storage 0 is truncated: expected 32 bytes, found 10"):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    "content",
    [b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(range(256)), b"hello, this is text\n", b""],
    ids=["jpeg", "text", "empty"],
)
def test_not_a_checkpoint(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"other\.bin.*found neither"):
        load_torch_state_dict(path)


def test_plain_pickle_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, 2))
    with pytest.raises(CheckpointError, match="found neither"):
        load_torch_state_dict(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"missing\.pt: cannot read file: No such file"):
        load_torch_state_dict(tmp_path / "missing.pt")


def test_checkpoint_without_tensors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="found no tensors"):
        load_torch_state_dict(_save({"epoch": 3}, tmp_path / "empty.pt", legacy=False))


@FORMATS
def test_zero_stride_tensor_is_refused_before_allocating(tmp_path: Path, legacy: bool) -> None:
    """A 10**6 x 10**6 tensor over one element (strides 0) would be copied into 4 TB."""
    path = _save({"w": torch.zeros(1).expand(10**6, 10**6)}, tmp_path / "stride0.pt", legacy)
    limit = f"more than the limit of {MAX_TENSOR_ELEMENTS}"
    with pytest.raises(CheckpointError, match=rf"stride0\.pt: tensor w has 1000000000000 elements, {limit}"):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    ("size", "message"),
    [((2**62, 2**62, 0), f"a dimension of {2**62}, more than the limit"), ((1,) * 65, "65 dimensions, more than")],
    ids=["huge-dimension", "65-dimensions"],
)
def test_sizes_numpy_cannot_hold_are_refused(tmp_path: Path, size: tuple[int, ...], message: str) -> None:
    """Sizes of no more than the limit's elements that numpy still refuses, with a bare ValueError."""
    path = _legacy_file(tmp_path / "odd.pt", _legacy_tensor_pickle(size, None), {"0": np.zeros(10, "<f4")})
    with pytest.raises(CheckpointError, match=rf"odd\.pt: tensor w has {message}"):
        load_torch_state_dict(path)


@FORMATS
def test_element_limit_is_inclusive(tmp_path: Path, legacy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_torch_reader, "MAX_TENSOR_ELEMENTS", 6)
    at_limit = {"w": torch.arange(6.0).reshape(2, 3)}
    _assert_matches(load_torch_state_dict(_save(at_limit, tmp_path / "six.pt", legacy)), at_limit)
    over = {"w": torch.arange(6.0), "v": torch.zeros(1).expand(7)}  # storages fit, the tensor does not
    with pytest.raises(CheckpointError, match=r"seven\.pt: tensor v has 7 elements, more than the limit of 6"):
        load_torch_state_dict(_save(over, tmp_path / "seven.pt", legacy))


@pytest.mark.parametrize(
    "case", ["zip-storage", "legacy-storage", "legacy-view", "legacy-record"], ids=lambda case: case
)
def test_storage_over_element_limit_is_refused(tmp_path: Path, case: str) -> None:
    """Storage sizes, view sizes and legacy record headers are bounded like tensors (not just by the file size)."""
    huge = 2**40
    record = {"0": np.zeros(10, "<f4")}
    if case == "zip-storage":
        path = _zip_file(tmp_path / "big.pt", _legacy_tensor_pickle((2,), None, numel=huge), record)
    elif case == "legacy-storage":
        path = _legacy_file(tmp_path / "big.pt", _legacy_tensor_pickle((2,), None, numel=huge), record)
    elif case == "legacy-view":
        path = _legacy_file(tmp_path / "big.pt", _legacy_tensor_pickle((2,), ("1", 2, huge)), record)
    else:
        path = _legacy_file(tmp_path / "big.pt", _legacy_tensor_pickle((2,), None), record)
        data = path.read_bytes()
        at = data.rindex(np.int64(10).astype("<i8").tobytes())
        path.write_bytes(data[:at] + np.int64(huge).astype("<i8").tobytes() + data[at + 8 :])
    what = "view of storage 0" if case == "legacy-view" else "storage 0"
    with pytest.raises(CheckpointError, match=rf"big\.pt: {what} has {huge} elements, more than the limit"):
        load_torch_state_dict(path)


def test_zip_record_declared_short_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _save({"w": torch.ones(8)}, tmp_path / "full.pt", legacy=False)
    path = _rewrite_zip(src, tmp_path / "short.pt", lambda name, data: data[:10] if name.endswith("data/0") else data)
    opened = []
    open_member = zipfile.ZipFile.open

    def spy(archive: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(getattr(name, "filename", name))
        return open_member(archive, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    with pytest.raises(CheckpointError, match=r"short\.pt.*storage 0 is truncated: expected 32 bytes, found 10"):
        load_torch_state_dict(path)
    assert "full/data.pkl" in opened and "full/data/0" not in opened


def test_legacy_record_read_only_as_far_as_its_storage_declares(tmp_path: Path) -> None:
    """A record whose header claims 4 MB for a storage of 10 elements is not read in full."""
    records = {"0": np.arange(2**20, dtype="<f4")}
    path = _legacy_file(tmp_path / "long.pt", _legacy_tensor_pickle((2,), None, numel=10), records)
    tracemalloc.start()
    try:
        result = load_torch_state_dict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(result["w"], [1.0, 2.0])
    assert peak < 2**20


# Peak memory of this process, in bytes. On Linux, ru_maxrss is inherited across
# fork and exec (a child starts at its parent's peak, here pytest's with torch
# loaded), so read the peak of this process's own memory, VmHWM, where there is one.
_PEAK_LOAD = """
import importlib.util, os, resource, sys

def peak():
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

spec = importlib.util.spec_from_file_location("torch_reader", sys.argv[1])
reader = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = reader
spec.loader.exec_module(reader)
before = peak()
arrays = reader.load_torch_state_dict(sys.argv[2])
print(peak() - before, {k: v.tolist() for k, v in arrays.items()})
"""


def _load_measuring_peak(path: Path) -> tuple[int, dict[str, Any]]:
    """Load ``path`` in a fresh interpreter; return its peak memory growth in bytes and the arrays as lists."""
    command = [sys.executable, "-c", _PEAK_LOAD, _torch_reader.__file__, str(path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    growth, arrays = done.stdout.split(" ", 1)
    return int(growth), ast.literal_eval(arrays)


def _zip_padded_with_zeros(src: Path, dst: Path, padded: str, zeros: int) -> Path:
    """Copy ``src`` deflated, appending ``zeros`` zero bytes to record ``padded`` (streamed, so ~1 MB per GB)."""
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as new:
        for name in old.namelist():
            if not name.endswith(padded):
                new.writestr(name, old.read(name))
                continue
            with new.open(name, "w", force_zip64=True) as member:
                member.write(old.read(name))
                for _ in range(zeros // len(chunk)):
                    member.write(chunk)
    return dst


def test_zip_storage_record_read_only_as_far_as_tensors_reach(tmp_path: Path) -> None:
    """A 16-byte tensor in a record of 1 GB of zeros (1 MB deflated) must not inflate the record."""
    src = _save({"w": torch.arange(4.0)}, tmp_path / "small.pt", legacy=False)
    path = _zip_padded_with_zeros(src, tmp_path / "bomb.pt", "/data/0", 2**30)
    assert path.stat().st_size < 2**21
    assert zipfile.ZipFile(path).getinfo("small/data/0").file_size == 16 + 2**30
    growth, arrays = _load_measuring_peak(path)
    assert arrays == {"w": [0.0, 1.0, 2.0, 3.0]}
    assert growth < 100 * 2**20


def test_zip_pickle_record_read_as_a_stream(tmp_path: Path) -> None:
    """The unpickler stops at the pickle's end: 256 MB of zeros after it are never inflated."""
    src = _save({"w": torch.arange(4.0)}, tmp_path / "small.pt", legacy=False)
    path = _zip_padded_with_zeros(src, tmp_path / "bomb.pt", "/data.pkl", 2**28)
    growth, arrays = _load_measuring_peak(path)
    assert arrays == {"w": [0.0, 1.0, 2.0, 3.0]}
    assert growth < 100 * 2**20
