"""Running a `.tflite` on LiteRT's accelerators (`CompiledModel`): GPU or CPU.

`run_compiled` says whether the model is fully accelerated, returns its
outputs for the inputs given and, when asked, times it. LiteRT's GPU
accelerator (ML Drift over WebGPU) crashes in a process that has imported
TensorFlow, and a model it cannot compile can kill the process (SIGILL), so
every run happens in a child Python (`_litert_worker.py`, started as a file:
it imports numpy and ai_edge_litert only) and its death is reported here as
an `AcceleratorError`.
"""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_shufflenet import _files

ACCELERATORS = ("cpu", "gpu")
WORKER = Path(__file__).with_name("_litert_worker.py")
# What LiteRT's WebGPU delegate prints when the machine has no GPU device, and
# before the ops it leaves to the CPU (LiteRT 2.3).
_NO_ADAPTER = "No adapters found"
_REFUSED_OPS = "not supported by GPU delegate"


class AcceleratorError(OSError):
    """LiteRT's accelerator could not run the model (no device, a crash, an error)."""


@dataclasses.dataclass
class CompiledRun:
    """One model on one accelerator.

    Attributes:
        model: Path of the `.tflite` file.
        accelerator: `"gpu"` or `"cpu"`.
        fully_accelerated: Whether every op runs on that accelerator.
        outputs: The output of each input, stacked (first axis: the inputs).
        latencies_ms: The timed runs, in milliseconds (empty if none asked).
    """

    model: str
    accelerator: str
    fully_accelerated: bool
    outputs: np.ndarray
    latencies_ms: list

    @property
    def median_ms(self):
        return float(np.median(self.latencies_ms)) if self.latencies_ms else None


def check_accelerator(accelerator):
    if accelerator not in ACCELERATORS:
        raise ValueError(
            f"`accelerator` must be one of {ACCELERATORS}. Received: accelerator={accelerator!r}"
        )


def run_compiled(model_path, inputs, accelerator="gpu", num_runs=0, warmup_runs=0, timeout=900):
    """Runs `model_path` on `accelerator` in a child process.

    Args:
        model_path: A `.tflite` file with one input and one output.
        inputs: Model inputs, one per run: an array `(N, *input_shape)` of the
            input's dtype.
        accelerator: `"gpu"` (LiteRT's GPU accelerator) or `"cpu"`.
            Defaults to `"gpu"`.
        num_runs: Timed runs on the first input after the outputs are read.
            Defaults to `0`.
        warmup_runs: Untimed runs before them. Defaults to `0`.
        timeout: Seconds the child may take. Defaults to `900`.

    Returns:
        A `CompiledRun`.

    Raises:
        AcceleratorError: no GPU device, or the accelerator failed or killed
            the child (the reason says which).
    """
    check_accelerator(accelerator)
    path = _files.existing_file(model_path, (".tflite",), "model_path", ".tflite model")
    with tempfile.TemporaryDirectory(prefix="keras_shufflenet_litert_") as folder:
        folder = Path(folder)
        np.save(folder / "inputs.npy", np.asarray(inputs))
        request = {
            "model": os.fspath(path.resolve()),
            "accelerator": accelerator,
            "inputs": os.fspath(folder / "inputs.npy"),
            "outputs": os.fspath(folder / "outputs.npy"),
            "report": os.fspath(folder / "report.json"),
            "num_runs": num_runs,
            "warmup_runs": warmup_runs,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        try:
            child = subprocess.run(
                [sys.executable, os.fspath(WORKER), os.fspath(folder / "request.json")],
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as error:
            raise AcceleratorError(
                f"LiteRT's {accelerator} accelerator took more than {timeout} s on {path}"
            ) from error
        output = child.stderr + child.stdout
        if child.returncode != 0 or not (folder / "report.json").is_file() or no_device(output):
            raise AcceleratorError(failure(path, accelerator, child.returncode, output))
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        outputs = np.load(folder / "outputs.npy")
    return CompiledRun(
        model=os.fspath(model_path),
        accelerator=accelerator,
        fully_accelerated=report["fully_accelerated"],
        outputs=outputs,
        latencies_ms=report["latencies_ms"],
    )


def no_device(output):
    """Whether a LiteRT process's `output` says it found no GPU device."""
    return _NO_ADAPTER in output


def refused_ops(output):
    """Whether a LiteRT process's `output` says the GPU left ops to the CPU."""
    return _REFUSED_OPS in output


def failure(path, accelerator, returncode, output, tool="LiteRT"):
    """Why a LiteRT process (`tool`, `returncode`, its `output`) failed on `path`, in one sentence."""
    if accelerator == "gpu" and no_device(output):
        return (
            "No GPU device found for LiteRT's GPU accelerator (WebGPU found no adapter). "
            "Expected a GPU with a Vulkan driver (on a machine without one, Mesa's lavapipe "
            f"25 provides a software device). Received: accelerator='gpu', model={path}"
        )
    if returncode < 0:  # killed by a signal
        name = signal.Signals(-returncode).name
        return (
            f"LiteRT's {accelerator} accelerator killed the process ({name}) while compiling "
            f"or running {path}: an op it cannot take. Received: model={path}"
        )
    return (
        f"{tool} failed on {os.fspath(path)!r} with the {accelerator} accelerator (exit code "
        f"{returncode}): {tool_reason(output)}"
    )


def tool_reason(text, lines=3):
    """A tool's failure on one line: its last lines naming an error, else its last line."""
    kept = [
        line.strip(" \t└")
        for line in text.strip().splitlines()
        if line.strip()
        and not line.startswith(("INFO:", "I0000", "VERBOSE:", "WARNING:"))
    ]
    errors = [
        line
        for line in kept
        if re.search(r"error|fail|not found|abort", line, re.IGNORECASE)
    ]
    chosen = list(dict.fromkeys(errors))[-lines:] or kept[-1:]
    return " | ".join(chosen) or "(no output)"
