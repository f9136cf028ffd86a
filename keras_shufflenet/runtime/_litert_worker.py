"""Runs one `.tflite` with LiteRT's `CompiledModel` on an accelerator; a child process.

    python3 _litert_worker.py REQUEST.json

Started by `keras_shufflenet.runtime._accelerator` as a file, not as a module of
the package, so that this process imports numpy and ai_edge_litert only:
LiteRT's GPU accelerator crashes in a process that has imported TensorFlow,
and a model it cannot compile may kill the process (SIGILL), which the parent
then reports. The request names the model, the accelerator, an input `.npy`
(a batch of inputs, one run each), the timed and warm-up runs, and where to
write the outputs (`.npy`) and the report (`.json`: `fully_accelerated`,
`latencies_ms`).
"""

import json
import sys
import time

import numpy as np


def _compiled_model(path, accelerator):
    """`(CompiledModel, fully accelerated)`. A GPU model that the GPU alone cannot
    compile (an op it refuses) runs with the CPU taking those ops; then it is
    not fully accelerated, whatever `is_fully_accelerated()` says (LiteRT 2.3
    answers True there)."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator as Accelerator
    from ai_edge_litert.options import Options

    def compile_for(accelerators):
        return CompiledModel.from_file(path, options=Options(hardware_accelerators=accelerators))

    if accelerator == "cpu":
        return compile_for(Accelerator.CPU), True
    try:
        return compile_for(Accelerator.GPU), True
    except RuntimeError:
        return compile_for(Accelerator.GPU | Accelerator.CPU), False


def _run(model, inputs, outputs, array):
    inputs[0].write(np.ascontiguousarray(array))
    model.run_by_index(0, inputs, outputs)


def main(request_path):
    with open(request_path, encoding="utf-8") as file:
        request = json.load(file)
    model, whole = _compiled_model(request["model"], request["accelerator"])
    report = {"fully_accelerated": whole and bool(model.is_fully_accelerated())}
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    batch = np.load(request["inputs"])
    details = model.get_output_tensor_details(model.get_signature_by_index(0)["key"])
    (output,) = details.values()
    dtype, size = np.dtype(output["dtype"]), int(np.prod(output["shape"]))
    results = []
    for array in batch:
        _run(model, inputs, outputs, array)
        results.append(outputs[0].read(size, dtype).reshape(output["shape"]))
    np.save(request["outputs"], np.stack(results))
    for _ in range(request.get("warmup_runs", 0)):
        _run(model, inputs, outputs, batch[0])
    latencies = []
    for _ in range(request.get("num_runs", 0)):
        start = time.perf_counter()
        _run(model, inputs, outputs, batch[0])
        latencies.append((time.perf_counter() - start) * 1000.0)
    report["latencies_ms"] = latencies
    with open(request["report"], "w", encoding="utf-8") as file:
        json.dump(report, file)


if __name__ == "__main__":
    main(sys.argv[1])
