"""int8 TFLite latency of ShuffleNets against MobileNetV2, measured side by side.

Exports every model with `keras_shufflenet.export_tflite` (default options:
preprocessing inside, uint8 input and output) and Keras' MobileNetV2 1.0 with
the plain converter recipe (`model.export(format="litert")` with
`Optimize.DEFAULT`, a representative dataset and int8 builtins), both with
the input and output type of `--io-dtype` (uint8, the camera's bytes, as
MediaPipe takes them: LiteRT turns them into int8 with one QUANTIZE outside
XNNPACK, single-threaded, the same op in both), and, when
`litert-torch` is installed (`pip install -e ".[peer]"`), the peer a user
would pick instead: torchvision's `shufflenet_v2_x1_0` quantized to full int8
by PT2E (per-channel symmetric) and converted by `litert-torch`. Then, with
each thread count of `--threads` (1 and 2: phones run 2-4 threads on their
big cores), times every file, batch 1, with both of LiteRT's runners, one
after the other: the `litert-benchmark` command (a `CompiledModel`) and the
`Interpreter` most apps call, interleaving the models round by round. A
ratio to MobileNetV2 (or to the peer) is the median over rounds of that
round's ratio. Then it times the pattern of an app that runs another model
between two calls:
ShuffleNetV2 1.0x int8, MobileNetV2 and the peer invoked once each in turn
(`Interpreter`, caches cold), `--runs` times per round. Prints markdown tables
and writes them, with the raw numbers, under artifacts/benchmarks/.

    python3 -m benchmarks.tflite_latency --rounds 5 --runs 100 --threads 1 2
    python3 -m benchmarks.tflite_latency --quantizations int8 --io-dtype int8
    python3 -m benchmarks.tflite_latency --models published   # the 15 with weights, then the plot

`--models published` measures every variant with published weights and
redraws the latency-versus-accuracy plot (`benchmarks/plot_latency_accuracy.py`).
"""

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path

from keras_shufflenet import logs, options  # noqa: E402

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

if importlib.util.find_spec("litert_torch") is not None:
    # torchvision before TensorFlow: triton, which it loads, kills the process
    # when its LLVM loads after TensorFlow's (see the README's Development notes).
    import torchvision  # noqa: F401

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_shufflenet import models  # noqa: E402
from keras_shufflenet.runtime import benchmark_interpreter, benchmark_local  # noqa: E402
from keras_shufflenet.export import export_tflite  # noqa: E402
from benchmarks.plot_latency_accuracy import model_name

OUT = Path(__file__).resolve().parents[1] / "artifacts" / "benchmarks"
BASELINE = "MobileNetV2 1.0"
PEER = "torchvision ShuffleNetV2 1.0x (litert-torch)"
OURS = ("ShuffleNetV2 1.0x", "int8")
TIMERS = {"litert-benchmark": benchmark_local, "interpreter": benchmark_interpreter}
# The selection: every V2 width and V1 g3 1.0x.
DEFAULT_MODELS = (*(("v2", alpha, None) for alpha in models.V2_ALPHAS), ("v1", 1.0, 3))


def shufflenets(selection):
    """`{name: builder}` of the `"default"` or `"published"` (with weights) models."""
    from keras_shufflenet.weights import REGISTRY

    keys = DEFAULT_MODELS if selection == "default" else [entry.key for entry in REGISTRY]
    builders = {}
    for version, alpha, groups in keys:
        spec = options.spec_for(version, alpha, groups)
        builders[model_name(version, alpha, groups)] = (
            lambda spec=spec: models.build_model(spec, weights=None)
        )
    return builders


def calibration_images(count=32, seed=0):
    """Smooth random images: latency does not depend on the calibration content."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (count, 14, 14, 3)).astype("float32")
    return tf.image.resize(small, (224, 224)).numpy()


def export_mobilenet_v2(path, images, io_dtype="uint8"):
    model = keras.applications.MobileNetV2(weights=None)
    scaled = images / 127.5 - 1.0

    def representative_dataset():
        for image in scaled:
            yield [image[None]]

    model.export(
        str(path),
        format="litert",
        input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.float32)],
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_dataset,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        inference_input_type=tf.as_dtype(io_dtype),
        inference_output_type=tf.as_dtype(io_dtype),
    )


def export_torchvision_peer(path, images):
    """torchvision's `shufflenet_v2_x1_0` as `litert-torch` documents full
    int8: PT2E with per-channel symmetric weights, calibrated on `images`
    (NCHW, normalised outside the model, as torchvision expects)."""
    import litert_torch
    import torch
    import torchvision
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    batches = torch.from_numpy(((images / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype("float32"))
    model = torchvision.models.shufflenet_v2_x1_0().eval()
    sample = (batches[:1],)
    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    prepared = prepare_pt2e(torch.export.export(model, sample).module(), quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(batch[None])
    converted = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))


def export_all(folder, quantizations, models, reuse=False, io_dtype="uint8"):
    """Exports every model (or, with `reuse`, keeps the files already there);
    int8 files take and give `io_dtype`."""
    images = calibration_images()
    files = {}
    io = f"_{io_dtype}_io"
    for name, build in models.items():
        paths = {q: folder / f"{name.replace(' ', '_')}_{q}{io * (q == 'int8')}.tflite" for q in quantizations}
        files.update({(name, q): path for q, path in paths.items()})
        if reuse and all(path.exists() for path in paths.values()):
            continue
        model = build()
        for quantization, path in paths.items():
            data = images if quantization == "int8" else None
            export_tflite(model, path, quantization, data, input_size=224, io_dtype=io_dtype)
        keras.backend.clear_session()
    files[(BASELINE, "int8")] = folder / f"MobileNetV2_int8{io}.tflite"
    if not (reuse and files[(BASELINE, "int8")].exists()):
        export_mobilenet_v2(files[(BASELINE, "int8")], images, io_dtype)
    if importlib.util.find_spec("litert_torch") is None:
        print(f"litert-torch is not installed: no {PEER!r} row (pip install -e \".[peer]\")")
    else:
        files[(PEER, "int8")] = folder / "torchvision_shufflenet_v2_x1_0_litert_torch_int8.tflite"
        if not (reuse and files[(PEER, "int8")].exists()):
            export_torchvision_peer(files[(PEER, "int8")], images)
    return files


def measure(files, rounds, runs, threads):
    """`{timer: {model: [latency of each round]}}`: one timer after the
    other, and with each, every model in turn in each round, ShuffleNetV2
    1.0x int8, MobileNetV2 and the peer first and next to each other, so
    that their ratios compare runs a few seconds apart on a machine whose
    speed drifts. (With the timers interleaved, the `Interpreter` timed at
    2 threads right after a `litert-benchmark` process took up to 1.5 times
    as long.)"""
    order = sorted(files, key=lambda key: key not in (OURS, (BASELINE, "int8"), (PEER, "int8")))
    times = {timer: {key: [] for key in files} for timer in TIMERS}
    for timer, run in TIMERS.items():
        for _ in range(rounds):
            for key in order:
                result = run(files[key], num_threads=threads, num_runs=runs, warmup_runs=10)
                times[timer][key].append(result.median_ms)
    return times


def measure_alternating(files, rounds, runs, threads):
    """`{model: [median latency of each round]}` for ShuffleNetV2 1.0x int8,
    MobileNetV2 and the peer, each invoked once in turn with LiteRT's
    `Interpreter` (each call finds the caches holding the others' data)."""
    from ai_edge_litert.interpreter import Interpreter

    keys = [key for key in (OURS, (BASELINE, "int8"), (PEER, "int8")) if key in files]
    interpreters = {}
    for key in keys:
        interpreter = Interpreter(model_path=str(files[key]), num_threads=threads)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        interpreters[key] = interpreter
    times = {key: [] for key in keys}
    for _ in range(rounds):
        this_round = {key: np.empty(runs) for key in keys}
        for run in range(runs):
            for key, interpreter in interpreters.items():
                start = time.perf_counter()
                interpreter.invoke()
                this_round[key][run] = time.perf_counter() - start
        for key in keys:
            times[key].append(float(np.median(this_round[key])) * 1e3)
    return times


def median_ratio(numerators, denominators):
    """The median over rounds of one round's ratio."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def threads_table(files, times):
    """The markdown table and the JSON record of one thread count's `times`."""
    latency = {t: {key: statistics.median(v) for key, v in by_model.items()} for t, by_model in times.items()}
    base = {timer: times[timer][(BASELINE, "int8")] for timer in TIMERS}
    ratio = {t: {key: median_ratio(v, base[t]) for key, v in by_model.items()} for t, by_model in times.items()}
    header = "| model | format | size (MB) |" + "".join(
        f" {timer} (ms) | ratio to int8 MobileNetV2 |" for timer in TIMERS
    )
    rows = [header, "|---|---|---:|" + "---:|---:|" * len(TIMERS)]
    for (name, quantization), path in files.items():
        cells = "".join(
            f" {latency[t][(name, quantization)]:.2f} | {ratio[t][(name, quantization)]:.3f} |"
            for t in TIMERS
        )
        rows.append(f"| {name} | {quantization} | {path.stat().st_size / 2**20:.2f} |{cells}")
    record = {
        "results": [
            {"model": n, "format": q, "size_bytes": files[(n, q)].stat().st_size,
             **{f"median_ms_{t}": latency[t][(n, q)] for t in TIMERS},
             **{f"ratio_to_mobilenetv2_int8_{t}": ratio[t][(n, q)] for t in TIMERS},
             # The plot and older readers take litert-benchmark's figure.
             "median_ms": latency["litert-benchmark"][(n, q)]}
            for (n, q) in files
        ],
    }  # fmt: skip
    summary = []
    for timer in TIMERS:
        if OURS in files:
            record[f"ratio_v2_1x_int8_to_mobilenetv2_int8_{timer}"] = ratio[timer][OURS]
            line = f"{timer}: ShuffleNetV2 1.0x int8 / MobileNetV2 int8 = {ratio[timer][OURS]:.3f}"
            if (PEER, "int8") in files:
                to_peer = median_ratio(times[timer][OURS], times[timer][(PEER, "int8")])
                record[f"ratio_v2_1x_int8_to_peer_{timer}"] = to_peer
                line += f", / {PEER} = {to_peer:.3f}"
            summary.append(line)
    return "\n".join(rows) + "\n\n" + "\n".join(summary), record


def alternating_table(files, rounds, runs, thread_counts, record):
    """The table of `measure_alternating` at each thread count (added to `record`)."""
    rows = ["| threads | model | ms | ratio to int8 MobileNetV2 |", "|---:|---|---:|---:|"]
    for threads in thread_counts:
        times = measure_alternating(files, rounds, runs, threads)
        base = times[(BASELINE, "int8")]
        record[f"alternating_threads_{threads}"] = {
            name: {"median_ms": statistics.median(v), "ratio_to_mobilenetv2_int8": median_ratio(v, base)}
            for (name, _), v in times.items()
        }
        for (name, _), v in times.items():
            rows.append(f"| {threads} | {name} | {statistics.median(v):.2f} | {median_ratio(v, base):.3f} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_arguments(parser, (options.VERBOSE,))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quantizations", default="int8,float16,float32")
    parser.add_argument("--models", choices=("default", "published"), default="default",
                        help="every V2 width and V1 g3 1.0x, or every variant with weights")
    parser.add_argument("--io-dtype", choices=("uint8", "int8"), default="uint8",
                        help="input and output type of every int8 file, MobileNetV2's too")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the .tflite files a previous run exported, if all are there")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    files = export_all(OUT, args.quantizations.split(","), shufflenets(args.models), args.reuse, args.io_dtype)
    tables = [f"int8 files take and give {args.io_dtype}; load average {os.getloadavg()[0]:.2f} at the start", ""]
    record = {"threads": args.threads, "rounds": args.rounds, "runs": args.runs, "io_dtype": args.io_dtype,
              "load_average_start": os.getloadavg()[0]}
    for threads in args.threads:
        table, record[f"threads_{threads}"] = threads_table(files, measure(files, args.rounds, args.runs, threads))
        tables += [f"**{threads} thread{'s' * (threads > 1)}**", "", table, ""]
        print(tables[-3] + "\n", flush=True)
    # The plot takes the first thread count's figures.
    record["results"] = record[f"threads_{args.threads[0]}"]["results"]
    record["plot_threads"] = args.threads[0]
    alternating = alternating_table(files, args.rounds, args.runs, args.threads, record)
    tables += ["**Another model between calls** (Interpreter; each model once in turn)", "", alternating, ""]
    print(alternating)
    record["load_average_end"] = os.getloadavg()[0]
    tables.append(f"load average {record['load_average_end']:.2f} at the end")
    table = "\n".join(tables)
    stem = "tflite_latency" if args.models == "default" else "tflite_latency_published"
    (OUT / f"{stem}.json").write_text(json.dumps(record, indent=2))
    (OUT / f"{stem}.md").write_text(table + "\n")
    if args.models == "published":
        from benchmarks import plot_latency_accuracy

        plot_latency_accuracy.main([str(OUT / f"{stem}.json")])


if __name__ == "__main__":
    main()
