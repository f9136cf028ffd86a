"""Latency table of `.tflite` models, locally (LiteRT) or on a phone over adb.

    python3 -m tflite.benchmark --models snv2_int8.tflite,snv2_fp32.tflite --threads 1,4
    python3 -m tflite.benchmark --models snv2_int8.tflite --adb \
        --benchmark_binary android_aarch64_benchmark_model --gpu --json_out bench.json

On the phone this pushes the model and `benchmark_model` to
/data/local/tmp/keras_shufflenet and runs it with `adb shell`. The same as
`keras-shufflenet benchmark`.
"""

from absl import app, flags

from keras_shufflenet import cli
from keras_shufflenet.cli import _benchmark, _options

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "Comma-separated .tflite files.")
flags.DEFINE_list("threads", ["1"], "Comma-separated CPU thread counts, one row each.")
_options.define_flags((_benchmark.RUNS, _benchmark.WARMUP, _benchmark.JSON_OUT))
flags.DEFINE_string("accelerator", "cpu", "LiteRT accelerator here: cpu or gpu.")
flags.DEFINE_bool("adb", False, "Run on an Android device with benchmark_model.")
flags.DEFINE_string("benchmark_binary", None, "benchmark_model binary for the device (--adb).")
flags.DEFINE_string("serial", None, "adb device serial (--adb).")
flags.DEFINE_bool("gpu", False, "GPU delegate (--adb).")
flags.DEFINE_bool("nnapi", False, "NNAPI delegate (--adb).")
flags.DEFINE_bool("xnnpack", True, "XNNPACK delegate (--adb).")
flags.DEFINE_bool("op_profiling", False, "Per-operator profile (--adb).")


def _benchmark_flags():
    try:
        threads = [int(t) for t in FLAGS.threads]
    except ValueError:
        raise ValueError(f"--threads must be integers. Received: --threads={FLAGS.threads}") from None
    if not FLAGS.models:
        raise ValueError("--models must name at least one .tflite file. Received: --models=None")
    return _benchmark.benchmark(
        FLAGS.models, threads=threads, runs=FLAGS.runs, warmup=FLAGS.warmup,
        accelerator=FLAGS.accelerator, adb=FLAGS.adb,
        benchmark_binary=FLAGS.benchmark_binary, serial=FLAGS.serial, gpu=FLAGS.gpu,
        nnapi=FLAGS.nnapi, xnnpack=FLAGS.xnnpack, op_profiling=FLAGS.op_profiling,
        json_out=FLAGS.json_out,
    )  # fmt: skip


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return cli.run_reporting_errors(lambda: print(_benchmark_flags()))


if __name__ == "__main__":
    app.run(main)
