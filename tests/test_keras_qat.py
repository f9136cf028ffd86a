"""Quantization-aware training as a Keras 3 model (`quantize_model(engine="keras")`):
training on every backend, `.keras` files, and the int8 export with the learnt ranges."""

import collections
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import keras_shufflenet as ks
from keras_shufflenet.quantization import quantize_model
from keras_shufflenet.quantization._keras_layers import FakeQuant

from helpers import randomize_batchnorm
from test_export import XNNPACK_INT8_OPS, _run

SIZE = 48
BUILDERS = {
    "v2": lambda: ks.ShuffleNetV2(alpha=0.5, weights=None, classes=5, input_shape=(SIZE, SIZE, 3)),
    "v1": lambda: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classes=5,
                                  classifier_activation=None, input_shape=(SIZE, SIZE, 3)),
}


def _pixels(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def _qat_model(version):
    """A QAT model of a randomised network (weights, BatchNorm statistics
    fitted to pixels), calibrated on 16 images."""
    keras.utils.set_random_seed(0)
    model = randomize_batchnorm(BUILDERS[version](), weights=True, data=_pixels(8, seed=9))
    return model, quantize_model(model, representative_data=_pixels(16, seed=1))


def _ranges(qat_model):
    return {l.name: [float(v) for v in l.get_weights()] for l in qat_model.layers
            if isinstance(l, FakeQuant)}


def _file_ops(path):
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())


def _site_tensors(path, qat_model):
    """`{site: (scale, zero point)}` of the int8 file's tensors that the QAT
    model's ranges quantize (found by their names), and the interpreter."""
    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=(
                                  OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    sites = {site for l in qat_model.layers if isinstance(l, FakeQuant) for site in l.sites}
    found = {}
    for tensor in interpreter.get_tensor_details():
        first = tensor["name"].split(";")[0]
        for site in sites:
            if (f"/{site}_1/" in first and len(tensor["shape"]) in (2, 4)  # not a constant
                    and len(tensor["quantization_parameters"]["scales"]) == 1):
                found.setdefault(site, tensor)
    return found, interpreter


@pytest.mark.parametrize("version", ["v2", pytest.param("v1", marks=pytest.mark.slow)])
def test_trained_qat_model_exports_the_ptq_graph_with_its_ranges(version, tmp_path):
    model, qat_model = _qat_model(version)
    assert not any(type(l).__module__.startswith(("tf_keras", "tensorflow_model_opt"))
                   for l in qat_model.layers)
    before, weights = _ranges(qat_model), [w.numpy() for w in qat_model.trainable_weights]
    # A few large steps: weights and ranges move away from the float model's.
    qat_model.compile(optimizer=keras.optimizers.Adam(3e-2), loss="sparse_categorical_crossentropy"
                      if version == "v2" else keras.losses.SparseCategoricalCrossentropy(True))
    qat_model.fit(_pixels(16, seed=2), np.arange(16) % 5, batch_size=8, epochs=1, verbose=0)
    after = _ranges(qat_model)
    # Ranges learn where values are clipped (calibration covered these pixels).
    assert sum(before[name] != after[name] for name in before) >= 5
    assert before["input_quant"] == after["input_quant"] == [0.0, 255.0]  # the uint8 pixels
    moved = [np.abs(w - v.numpy()).max() for w, v in zip(weights, qat_model.trainable_weights)
             if v.path.endswith(("kernel", "gamma"))]
    assert len(moved) > 60 and min(moved) > 0  # every convolution and folded BatchNorm

    path = ks.export_tflite(qat_model, tmp_path / "qat.tflite", "int8")
    ptq = ks.export_tflite(model, tmp_path / "ptq.tflite", "int8", _pixels(16, seed=1))
    # The same phone graph as post-training quantization: one XNNPACK
    # partition, no TRANSPOSE or PAD, integer tensors of rank <= 4, uint8 io.
    assert _file_ops(path) == _file_ops(ptq)
    x = _pixels(8, seed=3)
    y, interpreter = _run(path, x)
    names = collections.Counter(interpreter._interpreter.NodeName(i)
                                for i in range(interpreter._interpreter.NumNodes()))
    assert names["DELEGATE"] == 1 and set(names) - {"REVERSE_V2"} <= XNNPACK_INT8_OPS, names
    assert names["TRANSPOSE"] == names["PAD"] == 0
    details = interpreter.get_tensor_details()
    assert {str(np.dtype(t["dtype"])) for t in details} <= {"int8", "uint8", "int32"}
    assert max(len(t["shape"]) for t in details) <= 4
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8

    # Every learnt range is the scale of the tensors it quantizes in the file.
    sites, interpreter = _site_tensors(path, qat_model)
    ranges = {site: after[l.name] for l in qat_model.layers if isinstance(l, FakeQuant)
              for site in l.sites}
    assert len(sites) >= len(ranges) - 2, set(ranges) - set(sites)  # all but input and softmax
    for site, tensor in sites.items():
        low, high = ranges[site]
        scale = tensor["quantization_parameters"]["scales"][0]
        np.testing.assert_allclose(scale, (high - low) / 255, rtol=1e-5, err_msg=site)

    # The first convolution (folded BatchNorm, per-channel weights, the
    # preprocessing's scale in its kernel) computes what the QAT model
    # does, within one quantum: its output is only mirrored in the file.
    image = np.round(x[:1])
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image.astype("uint8"))
    interpreter.invoke()
    conv1 = sites["conv1_relu"]
    scale, zero = conv1["quantization"]
    actual = (interpreter.get_tensor(conv1["index"])[0].astype("float32") - zero) * scale
    probe = keras.Model(qat_model.inputs, qat_model.get_layer("conv1_relu_quant").output)
    expected = keras.ops.convert_to_numpy(probe(image))[0, ::-1, ::-1]
    steps = np.abs(actual - expected) / scale
    assert steps.max() <= 1.01 and np.mean(steps > 0.5) < 0.01, (steps.max(), np.mean(steps > 0.5))

    # The outputs follow the QAT model's (a random network amplifies each
    # quantum layer by layer: compared loosely here, tightly on a trained
    # model in the slow test below).
    expected = keras.ops.convert_to_numpy(qat_model(x))
    (out_scale, _), ptp = interpreter.get_output_details()[0]["quantization"], np.ptp(expected)
    assert ptp > 20 * out_scale
    assert np.abs(y - expected).max() < 0.3 * ptp
    assert np.corrcoef(y.ravel(), expected.ravel())[0, 1] > 0.9


def test_qat_model_saves_and_loads_as_keras(tmp_path):
    _, qat_model = _qat_model("v2")
    qat_model.save(tmp_path / "qat.keras")
    restored = keras.saving.load_model(tmp_path / "qat.keras")
    x = _pixels(2, seed=4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)),
                                  keras.ops.convert_to_numpy(qat_model(x)))
    assert _ranges(restored) == _ranges(qat_model)
    shared = restored.get_layer("stage3_quant")  # V2's stage branches share one range
    assert len(shared.sites) == 9 and shared.sites == qat_model.get_layer("stage3_quant").sites


@pytest.mark.slow
def test_command_exports_a_qat_keras_file_without_calibration_images(tmp_path, capsys):
    """`keras-shufflenet export --keras-model qat.keras` takes the learnt
    ranges (no --calibration-dir); a float model's file still needs images."""
    from keras_shufflenet import cli

    model, qat_model = _qat_model("v2")
    qat_model.save(tmp_path / "qat.keras")
    model.save(tmp_path / "float.keras")
    out = tmp_path / "qat.tflite"
    code = cli.main(["export", "--keras-model", str(tmp_path / "qat.keras"), "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    x = _pixels(4, seed=5)
    y, _ = _run(out, x)
    expected, _ = _run(ks.export_tflite(qat_model, tmp_path / "python.tflite", "int8"), x)
    np.testing.assert_array_equal(y, expected)
    capsys.readouterr()
    code = cli.main(["export", "--keras-model", str(tmp_path / "float.keras"),
                     "--output", str(tmp_path / "float.tflite")])
    assert code == 2 and "--calibration-dir" in capsys.readouterr().err
    assert not (tmp_path / "float.tflite").exists()


def test_bad_arguments_are_refused():
    model = BUILDERS["v2"]()
    with pytest.raises(ValueError, match="Received: engine='tflite'"):
        quantize_model(model, engine="tflite")
    with pytest.raises(ValueError, match="Received: quantize=False"):
        quantize_model(model, quantize=False)
    with pytest.raises(ValueError, match="Received: model.name="):
        quantize_model(ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation="sigmoid"))


WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_shufflenet as ks
    from keras_shufflenet.quantization import quantize_model

    folder, backend = sys.argv[1:]
    assert keras.backend.backend() == backend, keras.backend.backend()
    assert not {"tf_keras", "tensorflow_model_optimization"} & set(sys.modules)
    keras.utils.set_random_seed(0)
    x = np.load(f"{folder}/x.npy")
    model = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classes=5,
                            classifier_activation=None, input_shape=x.shape[1:])
    qat_model = quantize_model(model, representative_data=x)
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in qat_model.trainable_weights]
    qat_model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat_model.fit(x, np.arange(len(x)) % 5, batch_size=8, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in qat_model.trainable_weights]
    names = [w.path for w in qat_model.trainable_weights]
    moved = {n for n, b, a in zip(names, before, after) if np.abs(b - a).max() > 0}
    assert any(n.endswith("/kernel") for n in moved) and any(n.endswith("/max") for n in moved)
    qat_model.save(f"{folder}/qat.keras")
    np.save(f"{folder}/{backend}.npy", keras.ops.convert_to_numpy(qat_model(x[:4])))
    """
)


@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_trained_on_another_backend_exports_in_tensorflow(backend, tmp_path):
    """QAT with `fit` on JAX or PyTorch, saved as `.keras`, exported here."""
    x = _pixels(16, seed=5)[:, :32, :32]
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), backend], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    qat_model = keras.saving.load_model(tmp_path / "qat.keras")
    expected = np.load(tmp_path / f"{backend}.npy")
    # The same model here: equal up to float rounding (a value on a rounding
    # boundary may move by one quantum of a range).
    actual = keras.ops.convert_to_numpy(qat_model(x[:4]))
    assert np.mean(np.abs(actual - expected) < 1e-4) > 0.9
    path = ks.export_tflite(qat_model, tmp_path / "qat.tflite", "int8")
    y, interpreter = _run(path, x[:4])
    names = collections.Counter(interpreter._interpreter.NodeName(i)
                                for i in range(interpreter._interpreter.NumNodes()))
    assert names["DELEGATE"] == 1 and names["TRANSPOSE"] == names["PAD"] == 0, names
    assert np.corrcoef(y.ravel(), actual.ravel())[0, 1] > 0.9


@pytest.mark.slow
def test_int8_file_of_a_trained_model_answers_like_the_qat_model(tmp_path):
    """On a trained model (the procedural task of `training.synthetic`), the
    int8 file's logits stay within a few quantization steps of the QAT
    model's, and it gives the QAT model's top-1 answer wherever that answer
    is not a near tie. (Measured, 8 epochs: 96.0% agreement overall, 99.7%
    where the top two logits are more than 4 steps apart (69% of the
    images), 98.8% above 2 steps; 12 epochs, 74%
    top-1: 96.0%, 99.3% above 2 steps, 100% above 4; logits 3 steps apart at
    the 99th percentile, 6 at most.)"""
    from training import synthetic

    keras.utils.set_random_seed(0)
    x, y = synthetic.make_dataset(3000, image_size=SIZE, seed=0)
    held_out, _ = synthetic.make_dataset(500, image_size=SIZE, seed=1)
    x, held_out = x.astype("float32"), held_out.astype("float32")
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, classes=synthetic.NUM_CLASSES,
                            classifier_activation=None, input_shape=(SIZE, SIZE, 3))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    qat_model = quantize_model(model, representative_data=x[:200])
    qat_model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    qat_model.fit(x[:1000], y[:1000], batch_size=64, epochs=1, verbose=0)

    path = ks.export_tflite(qat_model, tmp_path / "qat.tflite", "int8")
    actual, interpreter = _run(path, held_out)
    expected = keras.ops.convert_to_numpy(qat_model.predict(held_out, verbose=0))
    scale, _ = interpreter.get_output_details()[0]["quantization"]
    steps = np.abs(actual - expected) / scale
    top_two = np.sort(expected, -1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) / scale > 4  # more than the logits' 99th percentile
    agree = actual.argmax(-1) == expected.argmax(-1)
    print(f"top-1 agreement {agree.mean():.4f} ({agree[clear].mean():.4f} on the "
          f"{clear.mean():.0%} without near ties), logit steps: median {np.median(steps):.2f}, "
          f"99th percentile {np.percentile(steps, 99):.2f}, max {steps.max():.2f}")
    assert agree[clear].mean() >= 0.99 and clear.mean() > 0.5 and agree.mean() >= 0.9
    assert np.percentile(steps, 99) <= 4 and steps.max() <= 10
