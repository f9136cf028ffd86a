"""The models build and compute the same outputs under JAX and PyTorch."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_shufflenet as ks

from helpers import randomize_batchnorm

MODELS = {
    "v2": lambda: ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None),
    "v1": lambda: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classifier_activation=None),
}

WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_shufflenet as ks

    folder, backend = sys.argv[1:]
    assert keras.backend.backend() == backend, keras.backend.backend()
    x = np.load(f"{folder}/x.npy")
    builders = {
        "v2": lambda: ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None),
        "v1": lambda: ks.ShuffleNetV1(groups=3, alpha=0.5, weights=None, classifier_activation=None),
    }
    outputs = {}
    for name, build in builders.items():
        model = build()
        model.load_weights(f"{folder}/{name}.weights.h5")
        outputs[name] = keras.ops.convert_to_numpy(model(x, training=False))
        restored = keras.saving.load_model(f"{folder}/{name}.keras")
        outputs[name + "_keras"] = keras.ops.convert_to_numpy(restored(x, training=False))
    np.savez(f"{folder}/{backend}.npz", **outputs)
    """
)


@pytest.fixture(scope="module")
def tensorflow_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 80, 3)).astype("float32")
    np.save(folder / "x.npy", x)
    outputs = {}
    for name, build in MODELS.items():
        # Random weights and BatchNorm statistics, outputs that depend on the
        # input: the check covers every layer.
        model = randomize_batchnorm(build(), weights=True, data=x)
        model.save_weights(folder / f"{name}.weights.h5")
        model.save(folder / f"{name}.keras")
        outputs[name] = model.predict(x, verbose=0)
    keras.backend.clear_session()
    return folder, outputs


@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.slow), "torch"])
def test_backend_matches_tensorflow(backend, tensorflow_outputs):
    folder, expected = tensorflow_outputs
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder), backend],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(folder / f"{backend}.npz")
    for name, reference in expected.items():
        np.testing.assert_allclose(outputs[name], reference, atol=1e-4)
        np.testing.assert_allclose(outputs[name + "_keras"], reference, atol=1e-4)
