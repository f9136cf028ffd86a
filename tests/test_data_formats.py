"""Both data formats: channels_first builds on JAX and PyTorch with the same
weights and outputs as channels_last, is refused clearly on TensorFlow
without a GPU, and exports as the channels-last phone graph."""

import hashlib
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import torch

import keras_shufflenet as ks
from keras_shufflenet.models import _batch_norm


import reference
from helpers import randomize_batchnorm, tflite_outputs

V2_SEED, V1_SEED = 3, 4
V1_NAME = "shufflenet_g3_wd2"  # groups=3, alpha=0.5: grouped convolutions and shuffles
# Same weights, both layouts: float32 rounding only.
RELATIVE_TOLERANCE = 1e-5
# Against the torch references (as tests/test_parity.py).
REFERENCE_ATOL = 1e-4

WORKER = textwrap.dedent(
    """
    import dataclasses, os, sys
    import numpy as np
    import keras
    import keras_shufflenet as ks
    from keras_shufflenet.weights import _registry

    folder, backend, v2_hash = sys.argv[1:]
    assert keras.backend.backend() == backend, keras.backend.backend()
    x = np.load(f"{folder}/x.npy")
    builders = {
        "v2": lambda **kw: ks.ShuffleNetV2(alpha=0.5, classifier_activation=None, **kw),
        "v1": lambda **kw: ks.ShuffleNetV1(groups=3, alpha=0.5, classifier_activation=None, **kw),
    }

    def run(model, data_format):
        inputs = x.transpose(0, 3, 1, 2) if data_format == "channels_first" else x
        return keras.ops.convert_to_numpy(model(inputs, training=False))

    outputs = {}
    for name, build in builders.items():
        for data_format in ("channels_last", "channels_first"):
            keras.config.set_image_data_format(data_format)
            model = build(weights=f"{folder}/{name}.weights.h5")
            outputs[f"{name}_{data_format}"] = run(model, data_format)
            outputs[f"{name}_{data_format}_reference"] = run(
                build(weights=f"{folder}/{name}.pth"), data_format
            )
        model.save_weights(f"{folder}/{name}_{backend}_first.weights.h5")
        keras.config.set_image_data_format("channels_last")

    # weights="imagenet" converts for channels_first too (a stand-in checkpoint
    # in the offline folder, its hash in the registry).
    entry = next(e for e in _registry.REGISTRY if e.key == ("v2", 0.5, None))
    checkpoint = f"shufflenetv2_x0.5-{v2_hash}.pth"
    stand_in = dataclasses.replace(entry, checkpoint=checkpoint, file_hash=v2_hash)
    _registry.REGISTRY = tuple(stand_in if e is entry else e for e in _registry.REGISTRY)
    os.makedirs(f"{folder}/offline", exist_ok=True)
    if not os.path.exists(f"{folder}/offline/{checkpoint}"):
        os.link(f"{folder}/v2.pth", f"{folder}/offline/{checkpoint}")
    os.environ["KERAS_SHUFFLENET_WEIGHTS_DIR"] = f"{folder}/offline"
    keras.config.set_image_data_format("channels_first")
    outputs["v2_imagenet_channels_first"] = run(builders["v2"](weights="imagenet"), "channels_first")
    np.savez(f"{folder}/{backend}.npz", **outputs)
    """
)


@pytest.fixture(autouse=True)
def _channels_last_after():
    yield
    keras.config.set_image_data_format("channels_last")


@pytest.fixture(scope="module")
def formats_folder(tmp_path_factory):
    """Random pixels, stand-in reference checkpoints with their torch logits,
    and Keras `.weights.h5` files saved on TensorFlow in channels_last."""
    folder = tmp_path_factory.mktemp("formats")
    x = reference.pixels(2, 224, 224, seed=0)  # pytorchcv V1 pools a 7x7 map
    np.save(folder / "x.npy", x)
    torch_models = {
        "v2": reference.torchvision_v2(0.5, seed=V2_SEED),
        "v1": reference.pytorchcv_v1(V1_NAME, seed=V1_SEED),
    }
    expected = {}
    for name, model in torch_models.items():
        torch.save(model.state_dict(), folder / f"{name}.pth")
        expected[f"{name}_reference"] = reference.run_torch(model, x)
    keras_models = {
        "v2": ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None),
        "v1": ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classifier_activation=None),
    }
    for name, model in keras_models.items():
        model = randomize_batchnorm(model, weights=True, data=x)
        model.save_weights(folder / f"{name}.weights.h5")
        expected[name] = model.predict(x, verbose=0)
    v2_hash = hashlib.sha256((folder / "v2.pth").read_bytes()).hexdigest()[:10]
    keras.backend.clear_session()
    return folder, expected, v2_hash


def _relative_error(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_channels_first_matches_channels_last(backend, formats_folder):
    folder, expected, v2_hash = formats_folder
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder), backend, v2_hash],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(folder / f"{backend}.npz")
    for name in ("v2", "v1"):
        last, first = outputs[f"{name}_channels_last"], outputs[f"{name}_channels_first"]
        assert first.shape == last.shape == expected[name].shape
        assert _relative_error(first, last) < RELATIVE_TOLERANCE, name
        assert _relative_error(last, expected[name]) < RELATIVE_TOLERANCE, name
        for data_format in ("channels_last", "channels_first"):
            np.testing.assert_allclose(
                outputs[f"{name}_{data_format}_reference"], expected[f"{name}_reference"],
                rtol=0, atol=REFERENCE_ATOL, err_msg=f"{name} {data_format}",
            )
        # A weights file saved in channels_first loads in channels_last.
        model = keras_model(name)
        model.load_weights(folder / f"{name}_{backend}_first.weights.h5")
        x = np.load(folder / "x.npy")
        assert _relative_error(model.predict(x, verbose=0), expected[name]) < RELATIVE_TOLERANCE
    np.testing.assert_allclose(
        outputs["v2_imagenet_channels_first"], expected["v2_reference"], rtol=0, atol=REFERENCE_ATOL
    )


def keras_model(name):
    if name == "v2":
        return ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None)
    return ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classifier_activation=None)


@pytest.mark.skipif(not _batch_norm.tensorflow_cpu_only(), reason="TensorFlow sees a GPU")
@pytest.mark.parametrize("build", [ks.ShuffleNetV2, ks.ShuffleNetV1])
def test_tensorflow_cpu_refuses_channels_first_clearly(build):
    keras.config.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match=r"TensorFlow has no channels-first convolutions on CPUs"):
        build(weights=None)


def test_channels_first_shapes_and_layers(monkeypatch):
    monkeypatch.setattr(_batch_norm, "tensorflow_cpu_only", lambda: False)  # builds, never runs
    keras.config.set_image_data_format("channels_first")
    model = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=(3, 64, 64))
    assert model.input.shape == (None, 3, 64, 64)
    assert model.get_layer("stage2_unit2_shuffle").data_format == "channels_first"
    assert model.get_layer("stage2_unit1_concat").axis == 1
    assert model.get_layer("conv1_bn").axis == 1
    features = ks.stage_outputs(ks.ShuffleNetV2(alpha=0.5, weights=None, include_top=False))
    assert features["stage4"].shape[1] == 192 and features["conv5"].shape[1] == 1024
    keras.config.set_image_data_format("channels_last")
    same = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=(64, 64, 3))
    assert ks.count_macs(model) == ks.count_macs(same)
    assert ks.count_params(model) == ks.count_params(same)


def test_preprocess_input_normalises_on_the_channel_axis():
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    last = ks.preprocess_input(x, "channels_last", include_preprocessing=False)
    first = ks.preprocess_input(x.transpose(0, 3, 1, 2), "channels_first", include_preprocessing=False)
    np.testing.assert_allclose(first, last.transpose(0, 3, 1, 2), rtol=1e-6)


@pytest.fixture
def both_formats(monkeypatch):
    """A V1 (grouped shuffles) in channels_last and the same model, same
    weights, built in channels_first (on TensorFlow CPU: built, never run)."""
    x = np.random.default_rng(0).uniform(0, 255, (12, 64, 64, 3)).astype("float32")
    last = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=(64, 64, 3), classes=5)
    last = randomize_batchnorm(last, weights=True, data=x)
    monkeypatch.setattr(_batch_norm, "tensorflow_cpu_only", lambda: False)
    keras.config.set_image_data_format("channels_first")
    first = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, input_shape=(3, 64, 64), classes=5)
    first.set_weights(last.get_weights())
    keras.config.set_image_data_format("channels_last")
    return last, first, x


def _op_types(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.mark.slow
def test_channels_first_exports_the_channels_last_phone_graph(both_formats, tmp_path):
    last, first, x = both_formats
    paths = {}
    for name, model in (("last", last), ("first", first)):
        paths[name] = ks.export_tflite(model, tmp_path / f"{name}.tflite", "int8", x)
    assert _op_types(paths["first"]) == _op_types(paths["last"])
    assert "TRANSPOSE" not in _op_types(paths["first"])
    inputs = [np.zeros((1, 64, 64, 3), "uint8"), np.full((1, 64, 64, 3), 50, "uint8")]
    np.testing.assert_array_equal(
        tflite_outputs(paths["first"], inputs), tflite_outputs(paths["last"], inputs)
    )


def test_channels_first_exports_nhwc_onnx(both_formats, tmp_path):
    import onnxruntime

    last, first, x = both_formats
    path = ks.export_onnx(first, tmp_path / "first.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [64, 64, 3]
    (outputs,) = session.run(None, {session.get_inputs()[0].name: x[:2]})
    np.testing.assert_allclose(outputs, last.predict(x[:2], verbose=0), atol=1e-5)


def test_channels_first_with_a_flatten_is_refused_at_export(monkeypatch, tmp_path):
    monkeypatch.setattr(_batch_norm, "tensorflow_cpu_only", lambda: False)
    keras.config.set_image_data_format("channels_first")
    body = ks.ShuffleNetV2(alpha=0.5, weights=None, include_top=False, input_shape=(3, 64, 64))
    model = keras.Model(body.input, keras.layers.Flatten(name="flat")(body.output))
    keras.config.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match=r"channels-last twin.*'flat' is a Flatten"):
        ks.export_tflite(model, tmp_path / "m.tflite", "float32")
    assert not (tmp_path / "m.tflite").exists()
