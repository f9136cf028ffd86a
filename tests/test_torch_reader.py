"""Tests for the torch-free checkpoint reader, using torch only to make fixtures."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision

from keras_shufflenet.weights._torch_reader import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
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


def _zip_file(path: Path, data_pkl: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
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


def _legacy_tensor_pickle(size: tuple[int, ...], view: tuple[str, int, int] | None) -> bytes:
    """A main pickle holding one float32 tensor ``w`` at offset 1 of storage "0" (optionally a view of it)."""
    pid = _Pid(("storage", torch.FloatStorage, "0", "cpu", 10, view))
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
