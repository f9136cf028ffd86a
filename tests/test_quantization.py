"""Quantization-aware training: the tf_keras twin, tfmot QAT, and the int8 TFLite model."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_shufflenet as ks
from keras_shufflenet.models import _specs as specs
from keras_shufflenet.export import export_tflite
from keras_shufflenet.quantization import quantize_model

from helpers import randomize_batchnorm

SIZE = 64
TWIN_ATOL = 1e-5
# Importing tfmot sets TF_USE_LEGACY_KERAS; the package puts it back.
LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS")


def _pixels(batch, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _randomized(model):
    """Random weights and BatchNorm statistics fitted to pixels, so that every
    weight matters and the outputs change with the input."""
    return randomize_batchnorm(model, weights=True, data=_pixels(8, seed=99))


BUILDERS = {
    "v2": lambda **kw: ks.ShuffleNetV2(alpha=0.5, weights=None, **kw),
    "v1": lambda **kw: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, **kw),
}


@pytest.mark.parametrize(
    "spec",
    [specs.v2_spec(0.5), specs.v2_spec(1.5), specs.v1_spec(1, 0.25), specs.v1_spec(3, 0.5),
     specs.v1_spec(3, 1.0), specs.v1_spec(8, 0.25)],
    ids=str,
)
def test_spec_from_model_round_trip(spec):
    build = ks.ShuffleNetV2 if spec.version == "v2" else ks.ShuffleNetV1
    kwargs = {} if spec.version == "v2" else {"groups": spec.groups}
    model = build(alpha=spec.alpha, weights=None, include_top=False, input_shape=(32, 32, 3),
                  **kwargs)
    assert specs.spec_from_model(model) == spec


def test_other_models_are_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="tiny")
    with pytest.raises(ValueError, match="Received: model.name='tiny'"):
        specs.spec_from_model(model)
    with pytest.raises(ValueError, match="Received: model.name='tiny'"):
        quantize_model(model)


@pytest.mark.parametrize(
    "version,kwargs",
    [
        ("v2", {"classes": 10, "classifier_activation": None}),
        ("v1", {"classes": 10, "classifier_activation": None}),
        ("v2", {"include_top": False, "pooling": "avg"}),
        ("v1", {"include_top": False, "pooling": "avg"}),
        ("v2", {"include_top": False, "pooling": "max", "include_preprocessing": False,
                "input_shape": (None, None, 3)}),
    ],
)
def test_twin_matches_the_keras_model(version, kwargs):
    import tf_keras

    kwargs.setdefault("input_shape", (SIZE, SIZE, 3))
    model = _randomized(BUILDERS[version](**kwargs))
    twin = quantize_model(model, engine="tfmot", quantize=False)
    assert isinstance(twin, tf_keras.Model)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert specs.spec_from_model(twin) == specs.spec_from_model(model)
    x = _pixels(2)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    actual = twin(x, training=False).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TWIN_ATOL * scale)
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # the check is not vacuous


def test_twin_layers_serialize():
    import tf_keras

    from keras_shufflenet.quantization import _configs as configs
    from keras_shufflenet.quantization._layers import ChannelShuffle, ChannelSplit

    x = np.arange(2 * 12, dtype="float32").reshape(1, 1, 2, 12)
    for layer in (ChannelShuffle(3, name="s"), ChannelSplit(2, name="c")):
        restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
        assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
        np.testing.assert_array_equal(np.stack(restored(x)), np.stack(layer(x)))
    shuffled = ChannelShuffle(3)(x).numpy()
    np.testing.assert_array_equal(
        shuffled, keras.ops.convert_to_numpy(ks.layers.ChannelShuffle(3)(x))
    )
    for config in (configs.PassThroughQuantizeConfig(), configs.OutputQuantizeConfig()):
        restored = tf_keras.utils.deserialize_keras_object(
            tf_keras.utils.serialize_keras_object(config)
        )
        assert type(restored) is type(config)


def _convert_int8(qat_model, tmp_path):
    """Full-int8 TFLite model, batch 1, through the package's export."""
    path = export_tflite(qat_model, tmp_path / "qat.tflite", "int8", io_dtype="int8",
                         input_size=SIZE)
    return path.read_bytes()


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file:UserWarning")
@pytest.mark.parametrize("version", ["v2", pytest.param("v1", marks=pytest.mark.slow)])
def test_quantize_model_trains_and_converts_to_all_integer_tflite(version, tmp_path):
    import tf_keras
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from keras_shufflenet.quantization import quantize_scope

    # V2 with logits, V1 (grouped convolutions) with softmax.
    activation = None if version == "v2" else "softmax"
    # Statistics not fitted to pixels: outputs that hardly change with the
    # input, whose int8 steps add up less over 50 layers than those of a
    # network whose every activation varies (which `_randomized` gives).
    model = randomize_batchnorm(BUILDERS[version](
        input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=activation
    ), weights=True)
    # Logits spread over several units, so the int8 output has many steps.
    kernel, bias = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([10 * kernel, bias])
    qat_model = quantize_model(model, engine="tfmot")
    # Same float weights, under tfmot's wrappers.
    dwconv = "stage3_unit2_dwconv" if version == "v1" else "stage3_unit2_branch2_dwconv"
    weights = {w.name: w.numpy() for w in qat_model.weights}
    np.testing.assert_array_equal(
        weights[f"{dwconv}/depthwise_kernel:0"],
        keras.ops.convert_to_numpy(model.get_layer(dwconv).kernel),
    )
    trainable = {w.name for w in qat_model.trainable_weights}
    assert "conv1/kernel:0" in trainable
    assert not any(name.startswith("preprocessing/") for name in trainable)

    x = _pixels(4, seed=1)
    # tfmot's QAT models save to HDF5 (its `.keras` loading is broken,
    # tensorflow/model-optimization#1123).
    qat_model.save(tmp_path / "qat.h5")
    with quantize_scope():
        restored = tf_keras.models.load_model(tmp_path / "qat.h5")
    np.testing.assert_array_equal(restored(x, training=False), qat_model(x, training=False))
    y = np.arange(4) % 10
    # Graph-mode training is traced once (V2); V1 trains eagerly, which keeps
    # the suite fast (tracing the QAT graph takes about ten seconds).
    qat_model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                      run_eagerly=version == "v1")
    history = qat_model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    interpreter = Interpreter(
        model_content=_convert_int8(qat_model, tmp_path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    tensors = interpreter.get_tensor_details()
    assert {t["dtype"] for t in tensors} <= {np.int8, np.int32}, [
        t["name"] for t in tensors if t["dtype"] not in (np.int8, np.int32)
    ]
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "DEQUANTIZE" not in ops and {"CONV_2D", "DEPTHWISE_CONV_2D", "CONCATENATION"} <= ops
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inputs["dtype"] == np.int8 and outputs["dtype"] == np.int8

    in_scale, in_zero = inputs["quantization"]
    out_scale, out_zero = outputs["quantization"]
    results = []
    for image in x:
        quantized = np.clip(np.round(image / in_scale + in_zero), -128, 127).astype("int8")
        interpreter.set_tensor(inputs["index"], quantized[np.newaxis])
        interpreter.invoke()
        results.append((interpreter.get_tensor(outputs["index"])[0].astype("float32") - out_zero)
                       * out_scale)
    results = np.stack(results)
    expected = qat_model(x, training=False).numpy()
    assert np.ptp(expected) > 50 * out_scale  # outputs span enough int8 steps to compare
    # Within a fifth of the output range (V1's softmax: up to a sixth): TFLite
    # folds BN into the kernels and requantizes them, so single steps differ
    # and add up over 50 layers.
    np.testing.assert_allclose(results, expected, rtol=0, atol=0.2 * np.ptp(expected))
    assert (results.argmax(-1) == expected.argmax(-1)).mean() >= 0.75


def _range_vars(qat_model, name):
    """{"min": ..., "max": ...} of the activation range variables of layer `name`."""
    found = {}
    for weight in qat_model.weights:
        prefix, _, variable = weight.name.partition("/")
        variable = variable.split(":")[0]
        if prefix in (name, f"quant_{name}") and variable.endswith(("_min", "_max")) and (
            "kernel" not in variable
        ):
            found.setdefault(variable[-3:], []).append(float(weight.numpy()))
    return found


def test_representative_data_sets_the_activation_ranges():
    """Each range is the min/max of the float tensor it quantizes, widened to
    hold 0, computed here from the Keras 3 model."""
    model = _randomized(BUILDERS["v2"](input_shape=(SIZE, SIZE, 3), classes=10))
    images = _pixels(24, seed=3) * 0.5 + 40  # pixels in [40, 167.5]
    qat_model = quantize_model(model, representative_data=images, engine="tfmot")

    def float_range(layer_name):
        probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
        values = keras.ops.convert_to_numpy(probe(images))
        return min(values.min(), 0.0), max(values.max(), 0.0)

    for name in ("preprocessing", "stage3_unit2_branch2_dwconv_bn", "stage4_unit1_concat"):
        ranges = _range_vars(qat_model, name)
        low, high = float_range(name)
        assert ranges, name
        np.testing.assert_allclose(ranges["min"], low, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(ranges["max"], high, rtol=1e-5, atol=1e-6, err_msg=name)
    (input_quantizer,) = [l for l in qat_model.layers if type(l).__name__ == "QuantizeLayer"]
    assert _range_vars(qat_model, input_quantizer.name) == {
        "min": [0.0], "max": [pytest.approx(float(images.max()))]
    }
    # The softmax head's range is that of the logits, before the softmax.
    logits = keras.Model(model.inputs, model.get_layer("avg_pool").output)(images)
    kernel, bias = model.get_layer("predictions").get_weights()
    logits = keras.ops.convert_to_numpy(logits) @ kernel + bias
    ranges = _range_vars(qat_model, "predictions")
    assert ranges["min"] == [pytest.approx(min(logits.min(), 0), rel=1e-5)]
    assert ranges["max"] == [pytest.approx(max(logits.max(), 0), rel=1e-5)]


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_calibrated_qat_model_answers_like_the_float_model(version):
    """Before any training, fake quantization with calibrated ranges keeps the
    outputs close to the float model's, and their changes from image to image
    alike. (A random network is less robust to int8 than a trained one: here
    the outputs move by up to a fifth of their range, and some answers
    change. For V1 this needs the correction of tfmot's reordering of a
    concatenation's inputs, model-optimization#1179: without it, no top-1
    answer agreed.)"""
    model = _randomized(BUILDERS[version](
        input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None
    ))
    images = _pixels(32, seed=4)
    expected = keras.ops.convert_to_numpy(model(images[16:]))
    calibrated = quantize_model(model, representative_data=images[:16], engine="tfmot")(
        images[16:], training=False)
    calibrated = calibrated.numpy()
    assert np.abs(calibrated - expected).max() < 0.3 * np.ptp(expected)
    varies, expected_varies = calibrated - calibrated.mean(0), expected - expected.mean(0)
    assert np.abs(expected_varies).max() > 0.1 * np.ptp(expected)  # outputs follow the input
    assert np.corrcoef(varies.ravel(), expected_varies.ravel())[0, 1] > 0.75
    assert np.mean(calibrated.argmax(-1) == expected.argmax(-1)) >= 0.6


def test_representative_data_of_the_wrong_shape_is_refused():
    model = BUILDERS["v1"](input_shape=(SIZE, SIZE, 3), classes=10)
    with pytest.raises(ValueError, match=r"Received: representative_data.shape=\(12, 32, 32, 3\)"):
        quantize_model(model, representative_data=_pixels(12, size=32))
    with pytest.raises(ValueError, match="at least 10"):
        quantize_model(model, representative_data=_pixels(3))


def test_keras_3_still_works_after_tfmot(tmp_path):
    from keras_shufflenet.quantization import _imports  # noqa: F401  (imports tfmot)

    assert "tensorflow_model_optimization" in sys.modules
    assert os.environ.get("TF_USE_LEGACY_KERAS") == LEGACY_KERAS
    assert tf.keras.Model is keras.Model
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(32, 32, 3), classes=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.fit(_pixels(2, size=32), np.array([0, 2]), verbose=0)
    assert model.predict(_pixels(1, size=32), verbose=0).shape == (1, 3)
    path = tmp_path / "model.keras"
    model.save(path)
    assert isinstance(keras.saving.load_model(path), keras.Model)


def test_import_keras_shufflenet_imports_neither_tf_keras_nor_tfmot():
    code = (
        "import sys, keras_shufflenet, keras_shufflenet.quantization\n"
        "loaded = {'tf_keras', 'tensorflow_model_optimization'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
