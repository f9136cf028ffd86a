"""`keras-shufflenet benchmark` (and `tflite/benchmark.py`): latency of `.tflite`
models with LiteRT here, or on a phone over adb."""

import json

from keras_shufflenet import options


def add_parser(commands):
    p = commands.add_parser(
        "benchmark", help="latency of .tflite models (LiteRT here, or a phone over adb)"
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files")
    options.add_arguments(p, options.BENCHMARK_OPTIONS)
    p.set_defaults(run=run)


def run(args):
    print(benchmark(args.models, **options.values(args, options.BENCHMARK_OPTIONS)))


def _check_runtimes(runtimes, accelerator, adb):
    from keras_shufflenet.runtime import _benchmark

    for runtime in runtimes:
        _benchmark.check_runtime(runtime)
    if adb and list(runtimes) != list(options.RUNTIME.default):
        raise ValueError(
            "--runtime applies to this machine; on a phone benchmark_model runs the model. "
            f"Received: --adb --runtime={' '.join(runtimes)}"
        )
    if accelerator == "gpu" and "interpreter" in runtimes:
        raise ValueError(
            "LiteRT's Interpreter runs on the CPU here; the GPU accelerator takes --runtime "
            "compiled. Received: --accelerator=gpu --runtime=interpreter"
        )


def _check_phone_options(adb, accelerator, **phone_options):
    if adb and accelerator != "cpu":
        raise ValueError(
            "--accelerator applies to this machine; on a phone use --gpu (benchmark_model's "
            f"GPU delegate). Received: --adb --accelerator={accelerator}"
        )
    if adb and not phone_options["benchmark_binary"]:
        raise ValueError(
            "--adb needs --benchmark-binary, the TFLite benchmark_model built for "
            "the phone. Received: --benchmark-binary=None"
        )
    phone_only = [
        option.flag for option in options.PHONE_OPTIONS
        if phone_options[option.name] not in (None, option.default)
    ]  # fmt: skip
    if not adb and phone_only:
        raise ValueError(
            f"{', '.join(phone_only)} only apply with --adb. Received: {' '.join(phone_only)}"
        )


def benchmark(models, *, threads=(1,), runs=50, warmup=5, accelerator="cpu",
              runtime=("compiled",), adb=False, benchmark_binary=None, serial=None, gpu=False,
              nnapi=False, xnnpack=True, op_profiling=False, json_out=None):
    """Measures every model at every thread count with every runtime; returns
    the table (and the operator profiles, when asked for) as text."""
    from keras_shufflenet import _files
    from keras_shufflenet.runtime import _accelerator, _benchmark
    from keras_shufflenet.runtime import benchmark_adb, benchmark_interpreter, benchmark_local

    _accelerator.check_accelerator(accelerator)
    _check_runtimes(runtime, accelerator, adb)
    _check_phone_options(
        adb, accelerator, benchmark_binary=benchmark_binary, serial=serial, gpu=gpu,
        nnapi=nnapi, xnnpack=xnnpack, op_profiling=op_profiling,
    )  # fmt: skip
    for model in models:  # every input before any measurement
        _benchmark.check_model_file(model)
    for count in threads:
        _benchmark.check_counts(num_threads=count, num_runs=runs, warmup_runs=warmup)
    if json_out is not None:
        _files.output_path(json_out, (".json",), "--json-out")
    results = []
    for model in models:
        for count in threads:
            common = {"num_threads": count, "num_runs": runs, "warmup_runs": warmup}
            if adb:
                results.append(benchmark_adb(
                    model, benchmark_binary, use_xnnpack=xnnpack, use_gpu=gpu,
                    use_nnapi=nnapi, op_profiling=op_profiling, serial=serial, **common,
                ))  # fmt: skip
                continue
            for name in runtime:
                if name == "interpreter":
                    results.append(benchmark_interpreter(model, **common))
                else:
                    results.append(benchmark_local(model, accelerator=accelerator, **common))
    text = [_benchmark.format_table(results)]
    text += [
        f"\n{r.model} ({r.threads} threads):\n{r.op_profile}" for r in results if r.op_profile
    ]
    if json_out is not None:
        with _files.atomic_output(json_out) as staged:
            staged.write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return "\n".join(text)
