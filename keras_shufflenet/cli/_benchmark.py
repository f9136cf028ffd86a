"""`keras-shufflenet benchmark` (and `tflite/benchmark.py`): latency of `.tflite`
models with LiteRT here, or on a phone over adb."""

import json

from keras_shufflenet.cli._options import Option

THREADS = Option("threads", int, [1], "CPU thread counts, one row each", "N")
RUNS = Option("runs", int, 50, "timed runs", "N")
WARMUP = Option("warmup", int, 5, "untimed runs first", "N")
JSON_OUT = Option("json_out", str, None, "also write the results as JSON", "PATH")
PHONE_FLAGS = {
    "benchmark_binary": "--benchmark-binary",
    "serial": "--serial",
    "gpu": "--gpu",
    "nnapi": "--nnapi",
    "op_profiling": "--op-profiling",
}


def add_parser(commands):
    p = commands.add_parser(
        "benchmark", help="latency of .tflite models (LiteRT here, or a phone over adb)"
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files")
    p.add_argument("--threads", type=int, nargs="+", default=THREADS.default,
                   help="CPU thread counts, one row each (default: 1)")  # fmt: skip
    p.add_argument("--runs", type=int, default=RUNS.default, help="timed runs (default: 50)")
    p.add_argument("--warmup", type=int, default=WARMUP.default,
                   help="untimed runs first (default: 5)")  # fmt: skip
    p.add_argument("--accelerator", default="cpu", metavar="{cpu,gpu}",
                   help="LiteRT accelerator here: cpu (default) or gpu, LiteRT's GPU "
                   "accelerator (WebGPU on Vulkan)")  # fmt: skip
    p.add_argument("--adb", action="store_true", help="run on an Android device with benchmark_model")
    p.add_argument("--benchmark-binary", metavar="PATH",
                   help="TFLite benchmark_model binary for the device (with --adb)")  # fmt: skip
    p.add_argument("--serial", help="adb device serial (with --adb)")
    p.add_argument("--gpu", action="store_true", help="GPU delegate (with --adb)")
    p.add_argument("--nnapi", action="store_true", help="NNAPI delegate (with --adb)")
    p.add_argument("--no-xnnpack", dest="xnnpack", action="store_false",
                   help="without the XNNPACK delegate (with --adb)")  # fmt: skip
    p.add_argument("--op-profiling", action="store_true",
                   help="print benchmark_model's per-operator profile (with --adb)")  # fmt: skip
    p.add_argument("--json-out", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(run=run)


def run(args):
    print(benchmark(
        args.models, threads=args.threads, runs=args.runs, warmup=args.warmup,
        accelerator=args.accelerator, adb=args.adb,
        benchmark_binary=args.benchmark_binary, serial=args.serial, gpu=args.gpu,
        nnapi=args.nnapi, xnnpack=args.xnnpack, op_profiling=args.op_profiling,
        json_out=args.json_out,
    ))  # fmt: skip


def benchmark(models, *, threads=(1,), runs=50, warmup=5, accelerator="cpu", adb=False,
              benchmark_binary=None,
              serial=None, gpu=False, nnapi=False, xnnpack=True, op_profiling=False,
              json_out=None):
    """Measures every model at every thread count; returns the table (and the
    operator profiles, when asked for) as text."""
    from keras_shufflenet import _files, runtime

    runtime.check_accelerator(accelerator)
    if adb and accelerator != "cpu":
        raise ValueError(
            "--accelerator applies to this machine; on a phone use --gpu (benchmark_model's "
            f"GPU delegate). Received: --adb --accelerator={accelerator}"
        )
    if adb and not benchmark_binary:
        raise ValueError(
            "--adb needs --benchmark-binary, the TFLite benchmark_model built for "
            "the phone. Received: --benchmark-binary=None"
        )
    if not adb:
        given = {"benchmark_binary": benchmark_binary, "serial": serial, "gpu": gpu,
                 "nnapi": nnapi, "op_profiling": op_profiling}  # fmt: skip
        phone_only = [PHONE_FLAGS[name] for name, value in given.items() if value]
        phone_only += [] if xnnpack else ["--no-xnnpack"]
        if phone_only:
            raise ValueError(
                f"{', '.join(phone_only)} only apply with --adb. Received: {' '.join(phone_only)}"
            )
    for model in models:  # every input before any measurement
        runtime.check_model_file(model)
    for count in threads:
        runtime.check_counts(num_threads=count, num_runs=runs, warmup_runs=warmup)
    if json_out is not None:
        _files.output_path(json_out, (".json",), "--json-out")
    results = []
    for model in models:
        for count in threads:
            common = {"num_threads": count, "num_runs": runs, "warmup_runs": warmup}
            if adb:
                results.append(runtime.benchmark_adb(
                    model, benchmark_binary, use_xnnpack=xnnpack, use_gpu=gpu,
                    use_nnapi=nnapi, op_profiling=op_profiling, serial=serial, **common,
                ))  # fmt: skip
            else:
                results.append(runtime.benchmark_local(model, accelerator=accelerator, **common))
    text = [runtime.format_table(results)]
    text += [
        f"\n{r.model} ({r.threads} threads):\n{r.op_profile}" for r in results if r.op_profile
    ]
    if json_out is not None:
        with _files.atomic_output(json_out) as staged:
            staged.write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return "\n".join(text)
