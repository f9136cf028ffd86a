"""LiteRT's GPU accelerator: every published variant's float export runs there
fully accelerated and agrees with the CPU interpreter.

The GPU side runs in a child process (`runtime.run_compiled`): LiteRT's GPU
accelerator crashes in a process that has imported TensorFlow. Without a GPU
device these tests skip; CI installs a software one (Mesa lavapipe 25,
`tools/install-vulkan-lavapipe.sh`) and runs them.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_shufflenet as ks
from keras_shufflenet import models, runtime, weights

from helpers import randomize_batchnorm, tflite_outputs

SIZE = 128  # every published variant at a size the software GPU compiles quickly
RTOL = 1e-2  # the GPU computes in float16 by default


def _pixels(n=1, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 1, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def gpu(tmp_path_factory):
    """Skips the module's GPU tests where LiteRT finds no GPU device."""
    path = tmp_path_factory.mktemp("gpu_probe") / "probe.tflite"
    inputs = keras.Input(batch_shape=(1, 8, 8, 3))
    keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs)).export(
        str(path), format="litert", verbose=False
    )
    try:
        runtime.run_compiled(path, np.zeros((1, 1, 8, 8, 3), "float32"), "gpu")
    except runtime.AcceleratorError as error:
        if "No GPU device" in str(error):
            pytest.skip(f"no GPU device for LiteRT's GPU accelerator: {error}")
        raise


def _export(spec, path, quantization):
    model = models.build_model(spec, weights=None, classifier_activation=None)
    randomize_batchnorm(model, seed=1)
    ks.export_tflite(model, path, quantization, input_size=SIZE)
    return path


def _assert_runs_fully_on_the_gpu(path):
    inputs = _pixels(2)
    run = runtime.run_compiled(path, inputs, "gpu")
    assert run.fully_accelerated
    expected = tflite_outputs(path, inputs)
    error = np.abs(run.outputs.reshape(expected.shape) - expected).max()
    assert error <= RTOL * np.abs(expected).max(), (error, np.abs(expected).max())


def _spec(entry):
    if entry.groups is None:
        return models.v2_spec(entry.alpha)
    return models.v1_spec(entry.groups, entry.alpha)


# One variant in the default run (a V1 whose grouped convolutions the GPU
# compiler needs split; the float16 test covers V2); the others in the slow
# run, which CI also runs.
DEFAULT_RUN = {"shufflenet_g2_w1"}


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, marks=() if e.name in DEFAULT_RUN else pytest.mark.slow) for e in weights.REGISTRY],
    ids=lambda e: e.name,
)
def test_float32_export_of_every_published_variant_runs_fully_on_the_gpu(entry, gpu, tmp_path):
    _assert_runs_fully_on_the_gpu(_export(_spec(entry), tmp_path / "m.tflite", "float32"))


@pytest.mark.parametrize(
    "spec",
    [models.v2_spec(1.0), pytest.param(models.v1_spec(3, 1.0), marks=pytest.mark.slow)],
    ids=["v2_1x", "v1_g3_1x"],
)
def test_float16_export_runs_fully_on_the_gpu(spec, gpu, tmp_path):
    _assert_runs_fully_on_the_gpu(_export(spec, tmp_path / "m.tflite", "float16"))


class _FiveDimensionalShuffle(keras.layers.Layer):
    """The usual channel shuffle: reshape to rank 5, transpose, reshape back."""

    def call(self, x):
        _, height, width, channels = x.shape
        x = keras.ops.reshape(x, (-1, height, width, 2, channels // 2))
        x = keras.ops.transpose(x, (0, 1, 2, 4, 3))
        return keras.ops.reshape(x, (-1, height, width, channels))


def test_a_five_dimensional_shuffle_is_not_fully_accelerated(gpu, tmp_path):
    inputs = keras.Input(batch_shape=(1, 16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.Conv2D(4, 1)(_FiveDimensionalShuffle()(x))
    path = tmp_path / "five_d.tflite"
    keras.Model(inputs, x).export(str(path), format="litert", verbose=False)
    x = _pixels(1, 16)
    run = runtime.run_compiled(path, x, "gpu")
    assert not run.fully_accelerated
    expected = tflite_outputs(path, x)[0]
    error = np.abs(run.outputs.reshape(expected.shape) - expected).max()
    assert error <= RTOL * np.abs(expected).max()
    result = runtime.benchmark_local(path, num_runs=2, warmup_runs=0, accelerator="gpu")
    assert result.fully_accelerated is False
    result = runtime.benchmark_local(
        _export(models.v2_spec(0.5), tmp_path / "v2.tflite", "float32"),
        num_runs=2, warmup_runs=0, accelerator="gpu",
    )  # fmt: skip
    assert result.fully_accelerated is True and result.accelerator == "gpu"


def test_benchmark_without_a_gpu_device_exits_2(tmp_path):
    inputs = keras.Input(batch_shape=(1, 8, 8, 3))
    path = tmp_path / "m.tflite"
    keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs)).export(str(path), format="litert", verbose=False)
    env = {"VK_ICD_FILENAMES": str(tmp_path / "no_driver.json")}  # Vulkan finds no device
    result = subprocess.run(
        [sys.executable, "-m", "keras_shufflenet.cli", "benchmark", str(path), "--accelerator",
         "gpu", "--runs", "2"],
        capture_output=True, text=True, env={**__import__("os").environ, **env}, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: No GPU device found for LiteRT's GPU accelerator (WebGPU found no adapter). "
        "Expected a GPU with a Vulkan driver (on a machine without one, Mesa's lavapipe 25 "
        f"provides a software device). Received: accelerator='gpu', model={path}"
    ]


def test_an_op_that_kills_the_gpu_compiler_is_reported(gpu, tmp_path):
    # A grouped 1x1 convolution with 25 input channels per group: LiteRT's GPU
    # accelerator dies compiling it, which the export avoids (see _deploy).
    inputs = keras.Input(batch_shape=(1, 8, 8, 50))
    path = tmp_path / "grouped.tflite"
    keras.Model(inputs, keras.layers.Conv2D(176, 1, groups=2)(inputs)).export(
        str(path), format="litert", verbose=False
    )
    with pytest.raises(runtime.AcceleratorError, match=r"killed the process \(SIGILL\)"):
        runtime.run_compiled(path, np.zeros((1, 1, 8, 8, 50), "float32"), "gpu")


def test_group_by_group_convolutions_are_exact():
    from keras_shufflenet.export._deploy import deployment_model
    from keras_shufflenet.export._layers import GroupwiseConv2D

    model = randomize_batchnorm(ks.ShuffleNetV1(groups=2, alpha=1.0, weights=None,
                                                classifier_activation=None), seed=2)  # fmt: skip
    deployed = deployment_model(model, (64, 64, 3), split_groups=True)
    # g2 1.0x: 25 or 50 channels per group around the bottleneck of stages 2 and 3
    # (11 grouped first convolutions, 12 grouped last ones).
    assert sum(isinstance(layer, GroupwiseConv2D) for layer in deployed.layers) == 23
    x = _pixels(2, 64)[:, 0]
    expected = model.predict(x, verbose=0)
    got = np.concatenate([deployed.predict(x[i : i + 1], verbose=0) for i in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
