"""Where the int8 latency goes: each op type's share, measured by removing it.

For each op type of a `.tflite` graph, two variants are timed side by side
with LiteRT's `Interpreter` (`--threads`, 1 by default; batch 1, zeros in):

- kept: the graph, with the inputs of every op of that type also made graph
  outputs;
- removed: the same, without the ops of that type; their outputs become graph
  inputs (fed zeros; the answers are wrong, only the timing counts).

The difference is the time those ops take. Keeping their inputs as outputs in
both variants stops XNNPACK from pruning everything that fed them and gives
both variants the same memory plan (removing ops alone attributed half of the
latency to nothing). The shares add up to about 100% of the plain graph's
latency, up to noise of a few percent. On a phone, `keras-shufflenet benchmark
MODEL --adb --op-profiling` prints the TFLite profiler's per-op table instead.

    python3 -m benchmarks.tflite_op_attribution                  # int8 V2 1.0x and V1 g3 1.0x
    python3 -m benchmarks.tflite_op_attribution A.tflite B.tflite  # any exports
    python3 -m benchmarks.tflite_op_attribution --threads 2         # where the second thread goes

Writes the table and the numbers under artifacts/benchmarks/.
"""

import argparse
import collections
import json
import statistics
import tempfile
from pathlib import Path

from keras_shufflenet import logs, options  # noqa: E402

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

from ai_edge_litert import schema_py_generated as schema  # noqa: E402
from ai_edge_litert.tools import flatbuffer_utils  # noqa: E402

from keras_shufflenet.runtime import benchmark_interpreter  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "artifacts" / "benchmarks"
_OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def op_type(model, op):
    code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
    return _OP_NAMES[code]


def op_counts(data):
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    return collections.Counter(op_type(model, op) for op in model.subgraphs[0].operators)


def variant(data, kind, remove):
    """The graph with the inputs of the `kind` ops as outputs, and (with
    `remove`) without those ops, their outputs fed as inputs."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    inputs, outputs, kept = list(graph.inputs), list(graph.outputs), []
    for op in graph.operators:
        if op_type(model, op) != kind or set(op.outputs) & set(graph.outputs):
            kept.append(op)
            continue
        for tensor in op.inputs:
            is_constant = tensor < 0 or model.buffers[graph.tensors[tensor].buffer].data is not None
            if not is_constant and tensor not in inputs and tensor not in outputs:
                outputs.append(tensor)
        if remove:
            inputs += [tensor for tensor in op.outputs if tensor not in inputs]
        else:
            kept.append(op)
    graph.operators, graph.inputs, graph.outputs = kept, inputs, outputs
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def attribute(path, rounds, runs, threads):
    """`(full_ms, {op type: (count, ms)})` for the graph in `path`."""
    data = Path(path).read_bytes()
    counts = op_counts(data)
    with tempfile.TemporaryDirectory(prefix="keras_shufflenet_ablation_") as tmp:
        files = {"full": Path(path)}
        for kind in counts:
            for remove in (False, True):
                file = Path(tmp) / f"{kind}_{'removed' if remove else 'kept'}.tflite"
                file.write_bytes(variant(data, kind, remove))
                files[kind, remove] = file
        times = collections.defaultdict(list)
        for _ in range(rounds):
            for key, file in files.items():
                result = benchmark_interpreter(file, num_threads=threads, num_runs=runs, warmup_runs=10)
                times[key].append(result.median_ms)
    median = {key: statistics.median(values) for key, values in times.items()}
    shares = {kind: (counts[kind], median[kind, False] - median[kind, True]) for kind in counts}
    return median["full"], dict(sorted(shares.items(), key=lambda item: -item[1][1]))


def table(name, full_ms, shares, threads=1):
    rows = [f"**{name}**: {full_ms:.3f} ms, {threads} thread{'s' * (threads > 1)}", "", "| op type | ops | ms | share |", "|---|---:|---:|---:|"]
    rows += [f"| {kind} | {count} | {ms:.3f} | {100 * ms / full_ms:.1f}% |" for kind, (count, ms) in shares.items()]
    total = sum(ms for _, ms in shares.values())
    rows.append(f"| all | {sum(c for c, _ in shares.values())} | {total:.3f} | {100 * total / full_ms:.1f}% |")
    return "\n".join(rows)


def default_models(folder):
    """int8 exports (default options) of ShuffleNetV2 1.0x and ShuffleNetV1 g3 1.0x."""
    import keras

    from benchmarks.tflite_latency import calibration_images
    from keras_shufflenet import models
    from keras_shufflenet.export import export_tflite

    images, paths = calibration_images(), []
    for spec in (models.v2_spec(1.0), models.v1_spec(3, 1.0)):
        model = models.build_model(spec, weights=None)
        path = folder / f"{model.name}_int8.tflite"
        export_tflite(model, path, "int8", images, input_size=224)
        keras.backend.clear_session()
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_arguments(parser, (options.VERBOSE,))
    parser.add_argument("models", nargs="*", help=".tflite files (default: export V2 1.0x and V1 g3 1.0x)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in args.models] or default_models(OUT)
    tables, record = [], {"threads": args.threads, "rounds": args.rounds, "runs": args.runs, "models": {}}
    for path in paths:
        full_ms, shares = attribute(path, args.rounds, args.runs, args.threads)
        tables.append(table(path.name, full_ms, shares, args.threads))
        print(tables[-1] + "\n", flush=True)
        record["models"][path.name] = {
            "median_ms": full_ms,
            "op_types": {kind: {"ops": count, "ms": ms} for kind, (count, ms) in shares.items()},
        }
    (OUT / "tflite_op_attribution.md").write_text("\n\n".join(tables) + "\n")
    (OUT / "tflite_op_attribution.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
