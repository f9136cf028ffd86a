"""The exports on ARM64 kernels, as phones run them: int8 outputs bit-identical to
x86, float32 within 1e-5.

The models are exported here (x86, TensorFlow) and run twice with LiteRT's
interpreter: here, and in an emulated aarch64 Python (qemu-user, prepared by
`tools/arm64-litert.sh`), where XNNPACK runs its NEON and
dot-product kernels. Slow (emulation); CI runs it with `-m slow`.
"""

import shlex
import subprocess

import numpy as np
import pytest

import keras_shufflenet as ks
from keras_shufflenet import models

from helpers import ROOT, randomize_batchnorm, tflite_outputs

pytestmark = pytest.mark.slow

ARM64_SCRIPT = ROOT / "tools" / "arm64-litert.sh"
SIZE = 224
# Runs in the emulated Python, which has numpy and ai_edge_litert only.
RUN_ALL = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

folder = sys.argv[1]
for name in sys.argv[2:]:
    interpreter = Interpreter(model_path=f"{folder}/{name}.tflite", num_threads=1)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for x in np.load(f"{folder}/{name}_inputs.npy"):
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).copy())
    np.save(f"{folder}/{name}_arm64.npy", np.stack(outputs))
"""


@pytest.fixture(scope="module")
def arm64_python():
    """The command prefix that runs the emulated aarch64 Python."""
    prepared = subprocess.run(
        ["bash", str(ARM64_SCRIPT)], capture_output=True, text=True, timeout=1200, check=False
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    return shlex.split(prepared.stdout.strip().splitlines()[-1])


def _input_batch(path, pixels):
    """`pixels` as the model takes them: quantized for an int8 input."""
    from ai_edge_litert.interpreter import Interpreter

    (details,) = Interpreter(model_path=str(path)).get_input_details()
    if details["dtype"] == np.float32:
        return pixels[:, None]
    scale, zero_point = details["quantization"]
    limits = np.iinfo(details["dtype"])
    quantized = np.round(pixels / scale + zero_point)
    return np.clip(quantized, limits.min, limits.max).astype(details["dtype"])[:, None]


def test_exports_compute_the_same_on_arm64(arm64_python, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    calibration = rng.uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    names = []
    for spec in (models.v2_spec(1.0), models.v1_spec(3, 1.0), models.v1_spec(2, 1.0)):
        model = randomize_batchnorm(
            models.build_model(spec, weights=None, classifier_activation=None), seed=3
        )
        for quantization in ("int8", "float32"):
            name = f"{spec.default_name}_{quantization}"
            path = tmp_path / f"{name}.tflite"
            data = calibration if quantization == "int8" else None
            ks.export_tflite(model, path, quantization, data, input_size=SIZE)
            np.save(tmp_path / f"{name}_inputs.npy", _input_batch(path, pixels))
            names.append(name)
    (tmp_path / "run_all.py").write_text(RUN_ALL)
    result = subprocess.run(
        [*arm64_python, str(tmp_path / "run_all.py"), str(tmp_path), *names],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for name in names:
        inputs = np.load(tmp_path / f"{name}_inputs.npy")
        x86 = tflite_outputs(tmp_path / f"{name}.tflite", inputs)
        arm64 = np.load(tmp_path / f"{name}_arm64.npy")
        if name.endswith("int8"):
            assert arm64.dtype == np.uint8 and np.array_equal(arm64, x86), name
            assert len(np.unique(x86)) > 20, name  # outputs that tell models apart
        else:
            error = np.abs(arm64 - x86).max() / np.abs(x86).max()
            assert error <= 1e-5, (name, error)
