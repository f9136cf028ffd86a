"""ONNX export: onnxruntime gives the Keras outputs, dynamic batch, errors write nothing."""

import os
import sys

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tf2onnx

import keras_shufflenet as ks
from helpers import randomize_batchnorm

SIZE = 64
ATOL = 1e-4


def _pixels(n, height=SIZE, width=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype("float32")


def _randomized(model):
    """Random weights and BatchNorm statistics fitted to pixels: outputs that
    depend on the input, so that a rewrite near the input shows in them."""
    return randomize_batchnorm(model, weights=True, data=_pixels(8, seed=99))


def _session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _assert_matches_keras(session, model, x):
    outputs = session.run(None, {"input": x})
    expected = model.predict(x, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    assert len(outputs) == len(expected)
    for y, e in zip(outputs, expected):
        assert y.shape == e.shape
        np.testing.assert_allclose(y, e, rtol=0, atol=ATOL)


def _stages_model():
    """A detection-style backbone: the three stage outputs of a flexible-size V1."""
    backbone = ks.ShuffleNetV1(groups=8, alpha=0.25, weights=None, include_top=False)
    return keras.Model(backbone.inputs, list(ks.stage_outputs(backbone).values()))


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def small_model():
    """One model for the error tests, which leave it unchanged."""
    return ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(SIZE, SIZE, 3))


# (build, export keyword arguments, ONNX input dims, ONNX output dims by name)
CASES = {
    "v2_0.5x": (
        lambda: ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None),
        {},
        ["batch", SIZE, SIZE, 3],
        {"output": ["batch", 1000]},
    ),
    "v1_g3_0.5x_opset14": (
        lambda: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None),
        {"opset": 14},
        ["batch", SIZE, SIZE, 3],
        {"output": ["batch", 1000]},
    ),
    # include_top=False, several outputs, a flexible size fixed by `input_size`.
    "v1_g8_0.25x_stages": (
        _stages_model,
        {"input_size": SIZE},
        ["batch", SIZE, SIZE, 3],
        {
            "output_0": ["batch", SIZE // 8, SIZE // 8, 96],
            "output_1": ["batch", SIZE // 16, SIZE // 16, 192],
            "output_2": ["batch", SIZE // 32, SIZE // 32, 384],
        },
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_matches_keras_at_batch_1_and_4(case, tmp_path, capsys):
    build, kwargs, input_dims, output_dims = CASES[case]
    model = _randomized(build())
    path = ks.export_onnx(model, tmp_path / "m.onnx", **kwargs, progress=True)
    assert path == tmp_path / "m.onnx" and sorted(os.listdir(tmp_path)) == ["m.onnx"]
    captured = capsys.readouterr()
    assert captured.out == "" and "4/4" in captured.err  # progress on stderr only

    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    assert {o.domain: o.version for o in saved.opset_import}[""] == kwargs.get("opset", 17)
    assert [i.name for i in saved.graph.input] == ["input"]
    assert _dims(saved.graph.input[0]) == input_dims
    assert {o.name: _dims(o) for o in saved.graph.output} == output_dims
    assert [o.name for o in saved.graph.output] == sorted(output_dims)  # in the model's order

    session = _session(path)  # one file, two batch sizes
    _assert_matches_keras(session, model, _pixels(1, seed=1))
    _assert_matches_keras(session, model, _pixels(4, seed=2))


def test_flexible_input_size_stays_symbolic(tmp_path):
    model = _randomized(ks.ShuffleNetV2(alpha=0.5, weights=None, include_top=False, pooling="avg"))
    assert model.input.shape[1:3] == (None, None)
    path = ks.export_onnx(model, tmp_path / "m.onnx")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file
    saved = onnx.load(str(path))
    assert _dims(saved.graph.input[0]) == ["batch", "height", "width", 3]
    assert _dims(saved.graph.output[0]) == ["batch", 1024]
    session = _session(path)
    _assert_matches_keras(session, model, _pixels(2, 64, 64, seed=3))
    _assert_matches_keras(session, model, _pixels(1, 96, 80, seed=4))


@pytest.mark.parametrize("opset", [13, 19, "17", 17.0, True, None])
def test_bad_opset_writes_nothing(opset, small_model, tmp_path):
    with pytest.raises(ValueError, match=rf"from 14 to 18 .*Received: opset={opset!r}$"):
        ks.export_onnx(small_model, tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_size": 96}, "conflicts with the model's input (64, 64). Received: input_size=96"),
        ({"input_size": 0}, "Received: input_size=0"),
        ({"input_size": (64,)}, "Received: input_size=(64,)"),
        ({"input_size": "64"}, "Received: input_size='64'"),
    ],
)
def test_bad_input_size_writes_nothing(kwargs, message, small_model, tmp_path):
    with pytest.raises(ValueError) as info:
        ks.export_onnx(small_model, tmp_path / "m.onnx", **kwargs)
    assert str(info.value).endswith(message)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_non_models(small_model, tmp_path):
    with pytest.raises(ValueError, match="folder of the output file does not exist"):
        ks.export_onnx(small_model, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match=r"Received: model=builtins.str"):
        ks.export_onnx("model.keras", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def _fail_conversion(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported ops: Counter({'FancyOp': 1})")

    monkeypatch.setattr(tf2onnx.convert, "from_function", broken)
    return "Unsupported ops: Counter({'FancyOp': 1})"


def _identity_conversion(monkeypatch):
    """tf2onnx "converts" to a valid one-node graph at once (for failures after it)."""
    from onnx import TensorProto, helper

    def convert(function, input_signature, opset):
        shape = [None, SIZE, SIZE, 3]
        graph = helper.make_graph(
            [helper.make_node("Identity", ["input"], ["output"])],
            "identity",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), None

    monkeypatch.setattr(tf2onnx.convert, "from_function", convert)


def _fail_check(monkeypatch):
    _identity_conversion(monkeypatch)

    def broken(*args, **kwargs):
        raise onnx.checker.ValidationError("Node (x) has input size 0 not in range")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    return "Node (x) has input size 0 not in range"


@pytest.mark.parametrize("failure", [_fail_conversion, _fail_check])
def test_conversion_failure_is_a_clear_error_and_writes_nothing(failure, small_model, tmp_path, monkeypatch):
    reason = failure(monkeypatch)
    existing = tmp_path / "m.onnx"
    existing.write_bytes(b"previous export")
    with pytest.raises(ValueError) as info:
        ks.export_onnx(small_model, existing)
    assert str(info.value) == (
        f"tf2onnx could not convert 'shufflenet_v2_0.5x' to ONNX opset 17: {reason}"
    )
    assert existing.read_bytes() == b"previous export"  # untouched
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # no partial file


def test_failed_write_leaves_no_partial_file(small_model, tmp_path, monkeypatch):
    _identity_conversion(monkeypatch)
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        ks.export_onnx(small_model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_tf2onnx_names_the_extra(small_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` fails
    with pytest.raises(ImportError, match=r'pip install "keras-shufflenet\[onnx\]"'):
        ks.export_onnx(small_model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
