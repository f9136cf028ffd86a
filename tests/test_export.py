"""TFLite export: exactness of the deployment graph, int8 graphs phones take, errors."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import keras_shufflenet as ks
from keras_shufflenet.export._deploy import deployment_model
from keras_shufflenet.export import export_tflite
from helpers import randomize_batchnorm

# Ops the XNNPACK delegate takes in int8 (TensorFlow Lite's
# tensorflow/lite/delegates/xnnpack/README.md, "Quantized operators").
XNNPACK_INT8_OPS = {
    "ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
    "AVERAGE_POOL_2D", "MEAN", "PAD", "RESHAPE", "SOFTMAX", "SPLIT", "TRANSPOSE", "DELEGATE",
    # Channel slices with unit strides (ShuffleNet V2's deploy graph).
    "STRIDED_SLICE",
    # Requantization where a concatenation's inputs carry different scales.
    "QUANTIZE",
}
SIZE = 64


def _pixels(n, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _run(path, x):
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        value = image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(image[None] / scale + zero), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        results.append(y[0])
    return np.stack(results), interpreter


def _file_ops(path):
    """Op counts of a `.tflite` file, as written (before any delegate takes them)."""
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())


def _randomized(model):
    """Random weights and BatchNorm statistics fitted to pixels: outputs that
    depend on the input, so that a rewrite near the input shows in them."""
    return randomize_batchnorm(model, weights=True, data=_pixels(8, seed=99))


MODELS = {
    "v2": lambda **kw: ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None, **kw),
    "v1": lambda **kw: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classifier_activation=None, **kw),
}


@pytest.fixture(autouse=True)
def _clear_session():
    keras.utils.set_random_seed(0)  # the same random weights, whatever ran before
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("version", sorted(MODELS))
def test_deployment_model_is_exact(version):
    model = _randomized(MODELS[version]())
    deployed = deployment_model(model, (SIZE, SIZE, 3))
    x = _pixels(2)
    # Logits of order 1 (up to about 5): float32 rounding differs by 1e-5 at most.
    np.testing.assert_allclose(deployed.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=0, atol=5e-5)  # fmt: skip
    if version == "v2":
        assert not any(layer.name == "preprocessing" and isinstance(layer, keras.layers.Rescaling)
                       for layer in deployed.layers)


@pytest.mark.parametrize(
    "make, size",
    [(lambda: MODELS["v1"](pooling="max", include_top=False, input_shape=(None, None, 3)), 33),
     (lambda: MODELS["v2"](include_preprocessing=False, input_shape=(None, None, 3)), 47)],
    ids=["v1-max-pooled-33px", "v2-no-preprocessing-47px"],
)
def test_deployment_model_mirrors_the_image_exactly(make, size):
    """Odd sizes pad on both sides, even ones before the image (the other tests)."""
    model = _randomized(make())
    deployed = deployment_model(model, (size, size, 3))
    assert "mirror" in [layer.name for layer in deployed.layers]
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in deployed.layers)
    x = _pixels(2, size=size)
    np.testing.assert_allclose(deployed.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=0, atol=5e-5)  # fmt: skip


def test_deployment_model_keeps_feature_maps_unmirrored():
    model = _randomized(MODELS["v2"](include_top=False))
    deployed = deployment_model(model, (SIZE, SIZE, 3))
    assert "mirror" not in [layer.name for layer in deployed.layers]
    x = _pixels(1)
    np.testing.assert_allclose(deployed.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=0, atol=5e-5)  # fmt: skip


@pytest.mark.parametrize("version", sorted(MODELS))
def test_float32_export_equals_keras(version, tmp_path):
    model = _randomized(MODELS[version]())
    path = export_tflite(model, tmp_path / "m.tflite", "float32", input_size=SIZE)
    x = _pixels(3)
    y, interpreter = _run(path, x)
    np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=0, atol=5e-5)
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, SIZE, SIZE, 3]


@pytest.mark.parametrize("version", sorted(MODELS))
@pytest.mark.parametrize("io_dtype", ["uint8", pytest.param("int8", marks=pytest.mark.slow)])
def test_int8_export_is_fully_integer_and_phone_friendly(version, io_dtype, tmp_path):
    model = _randomized(MODELS[version]())
    calibration = _pixels(16, seed=1)
    path = export_tflite(model, tmp_path / "m.tflite", "int8", calibration, io_dtype=io_dtype)
    x = _pixels(8, seed=2)
    y, interpreter = _run(path, x)
    details = interpreter.get_tensor_details()
    assert interpreter.get_input_details()[0]["dtype"] == np.dtype(io_dtype)
    assert interpreter.get_output_details()[0]["dtype"] == np.dtype(io_dtype)
    assert {str(np.dtype(t["dtype"])) for t in details} <= {"int8", "uint8", "int32"}
    assert max(len(t["shape"]) for t in details) <= 4  # GPU delegate / NNAPI limit
    names = [interpreter._interpreter.NodeName(i) for i in range(interpreter._interpreter.NumNodes())]
    ops = collections.Counter(names)
    # The mirror of the image (export._mirror), then no PAD: one REVERSE_V2
    # that LiteRT runs before the delegate in a few microseconds (after the
    # QUANTIZE that turns a uint8 input into int8).
    first = names[1] if io_dtype == "uint8" else names[0]
    assert first == "REVERSE_V2" and ops.pop("REVERSE_V2") == 1 and ops["PAD"] == 0
    assert set(ops) <= XNNPACK_INT8_OPS, ops
    assert ops["DELEGATE"] == 1  # one XNNPACK partition: every op above is delegated
    assert not {"SHAPE", "PACK", "GATHER"} & set(ops)  # what a dynamic batch leaves
    # Shuffles become slices and concatenations (export._deploy_v2 for V2,
    # export._deploy's gathers for V1 g3).
    assert ops["TRANSPOSE"] == 0
    if version == "v2":  # no requantization before splits (export._requantize)
        file_ops = _file_ops(path)
        assert file_ops["QUANTIZE"] == (2 if io_dtype == "uint8" else 0)
        # Sources cut by SPLITs, which XNNPACK runs without waking its threads
        # (export._deploy_v2; a STRIDED_SLICE costs 2-3x as much at 2 threads).
        assert file_ops["STRIDED_SLICE"] == 0 and file_ops["SPLIT"] > 0
    # The int8 logits follow the float ones, and so do their changes from image
    # to image. (A random network is not robust to int8: its top-1 answers
    # among 1000 classes often change, so they are not compared.)
    expected = model.predict(x, verbose=0)
    assert np.abs(y - expected).max() < 0.3 * np.ptp(expected)
    varies, expected_varies = y - y.mean(0), expected - expected.mean(0)
    assert np.abs(expected_varies).max() > 0.1 * np.ptp(expected)  # outputs follow the input
    assert np.corrcoef(varies.ravel(), expected_varies.ravel())[0, 1] > 0.6


@pytest.mark.slow
def test_float16_and_dynamic_exports(tmp_path):
    model = _randomized(MODELS["v2"]())
    x = _pixels(2)
    expected = model.predict(x, verbose=0)
    for quantization, atol in [("float16", 5e-2), ("dynamic", 0.5)]:
        path = export_tflite(model, tmp_path / f"{quantization}.tflite", quantization, input_size=SIZE)
        y, _ = _run(path, x)
        np.testing.assert_allclose(y, expected, atol=atol * np.abs(expected).max())


@pytest.mark.slow
def test_representative_data_as_dataset_and_folder(tmp_path):
    from PIL import Image

    model = MODELS["v2"]()
    data = _pixels(12)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(4)
    export_tflite(model, tmp_path / "a.tflite", "int8", dataset, input_size=SIZE)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(data):
        Image.fromarray(image.astype("uint8")).save(folder / f"{i}.png")
    export_tflite(model, tmp_path / "b.tflite", "int8", folder, input_size=SIZE)
    assert (tmp_path / "a.tflite").stat().st_size > 0 and (tmp_path / "b.tflite").stat().st_size > 0


def test_calibration_folder_skips_files_that_are_not_images(tmp_path):
    from PIL import Image

    from keras_shufflenet.export._calibration import representative_images

    data = _pixels(10).astype("uint8")
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for i, image in enumerate(data):
        Image.fromarray(image).save(folder / ("more" if i % 2 else ".") / f"{i}.PNG")
    (folder / "README.txt").write_text("taken with my phone")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "more" / "notes.md").write_text("-")
    images = representative_images(MODELS["v2"](), folder, input_size=SIZE)
    assert images.shape == (10, SIZE, SIZE, 3)
    # Sorted by path: the top folder's images, then those of "more".
    order = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    np.testing.assert_array_equal(images, data[order].astype("float32"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantization": "int4"}, "Received: quantization='int4'"),
        ({"quantization": "int8"}, "Received: representative_data=None"),
        ({"quantization": "int8", "representative_data": _pixels(3)}, "Received: 3 images"),
        ({"quantization": "int8", "representative_data": np.zeros((12, 32, 32, 3))}, "Received: representative_data.shape=(12, 32, 32, 3)"),
        ({"quantization": "int8", "representative_data": _pixels(12), "io_dtype": "int16"}, "Received: io_dtype='int16'"),
    ],
)
def test_bad_arguments_leave_no_file(kwargs, message, tmp_path):
    model = MODELS["v2"](input_shape=(SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_tflite(model, tmp_path / "m.tflite", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "call, written",
    [("ks.export_tflite(model, 'm.tflite', 'float32')", "m.tflite"),
     ("ks.export_onnx(model, 'm.onnx')", "m.onnx")],
    ids=["tflite", "onnx"],
)
def test_other_backends_get_a_clear_error(call, written, tmp_path):
    from helpers import run_python

    script = (
        "import keras_shufflenet as ks\n"
        "model = ks.ShuffleNetV2(alpha=0.5, weights=None)\n"
        "try:\n"
        f"    {call}\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = run_python(tmp_path, "-c", script, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs the TensorFlow backend" in result.stdout
    assert "Received: backend='jax'" in result.stdout
    assert not (tmp_path / written).exists()
