"""Latency table of `.tflite` models, locally (LiteRT) or on a phone over adb.

    python tflite/benchmark.py --models snv2_int8.tflite,snv2_fp32.tflite --threads 1,4
    python tflite/benchmark.py --models snv2_int8.tflite --adb \
        --benchmark_binary android_aarch64_benchmark_model --use_gpu --json_out bench.json

On the phone this pushes the model and `benchmark_model` to
/data/local/tmp/keras_shufflenet and runs it with `adb shell`; see
`keras_shufflenet.benchmarking`.
"""

import importlib.util
import json
import os
import sys

if importlib.util.find_spec("keras_shufflenet") is None:  # run from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from keras_shufflenet import benchmarking

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "Comma-separated .tflite files.", required=True)
flags.DEFINE_list("threads", ["1"], "Comma-separated CPU thread counts, one row each.")
flags.DEFINE_integer("num_runs", 50, "Timed runs.", lower_bound=1)
flags.DEFINE_integer("warmup_runs", 5, "Untimed runs first.", lower_bound=0)
flags.DEFINE_bool("adb", False, "Run on an Android device with benchmark_model.")
flags.DEFINE_string("benchmark_binary", None, "benchmark_model binary for the device.")
flags.DEFINE_string("serial", None, "adb device serial.")
flags.DEFINE_bool("use_gpu", False, "GPU delegate (--adb).")
flags.DEFINE_bool("use_nnapi", False, "NNAPI delegate (--adb).")
flags.DEFINE_bool("use_xnnpack", True, "XNNPACK delegate (--adb).")
flags.DEFINE_bool("op_profiling", False, "Per-operator profile (--adb).")
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")


def _threads():
    try:
        threads = [int(t) for t in FLAGS.threads]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise app.UsageError(
            f"--threads must be positive integers. Received: {FLAGS.threads}"
        )
    return threads


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.adb and not FLAGS.benchmark_binary:
        raise app.UsageError("--adb needs --benchmark_binary.")
    if not FLAGS.adb and (FLAGS.use_gpu or FLAGS.use_nnapi or FLAGS.op_profiling):
        raise app.UsageError("--use_gpu, --use_nnapi and --op_profiling need --adb.")
    missing = [m for m in FLAGS.models if not os.path.isfile(m)]
    if missing:
        print(
            f"error: No .tflite model exists at {', '.join(missing)}", file=sys.stderr
        )
        return 2
    results = []
    try:
        for model in FLAGS.models:
            for threads in _threads():
                common = {
                    "num_threads": threads,
                    "num_runs": FLAGS.num_runs,
                    "warmup_runs": FLAGS.warmup_runs,
                }
                if FLAGS.adb:
                    results.append(
                        benchmarking.benchmark_adb(
                            model,
                            FLAGS.benchmark_binary,
                            use_xnnpack=FLAGS.use_xnnpack,
                            use_gpu=FLAGS.use_gpu,
                            use_nnapi=FLAGS.use_nnapi,
                            op_profiling=FLAGS.op_profiling,
                            serial=FLAGS.serial,
                            **common,
                        )
                    )
                else:
                    results.append(benchmarking.benchmark_local(model, **common))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(benchmarking.format_table(results))
    for result in results:
        if result.op_profile:
            print(f"\n{result.model} ({result.threads} threads):\n{result.op_profile}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump([r.to_dict() for r in results], f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
