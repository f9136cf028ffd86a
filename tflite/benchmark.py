"""Latency table of `.tflite` models, locally (LiteRT) or on a phone over adb.

    python3 -m tflite.benchmark --models snv2_int8.tflite,snv2_fp32.tflite --threads 1,4
    python3 -m tflite.benchmark --models snv2_int8.tflite --adb \
        --benchmark_binary android_aarch64_benchmark_model --gpu --json_out bench.json

On the phone this pushes the model and `benchmark_model` to
/data/local/tmp/keras_shufflenet and runs it with `adb shell`. The same as
`keras-shufflenet benchmark`.
"""

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from keras_shufflenet import cli, options  # noqa: E402

FLAGS = flags.FLAGS
options.define_flags((options.VERBOSE,))
flags.DEFINE_list("models", None, "Comma-separated .tflite files.")
options.define_flags(options.BENCHMARK_OPTIONS)


def _benchmark_flags():
    if not FLAGS.models:
        raise ValueError("--models must name at least one .tflite file. Received: --models=None")
    return cli.benchmark(FLAGS.models, **options.values(FLAGS, options.BENCHMARK_OPTIONS))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return cli.run_reporting_errors(lambda: print(_benchmark_flags()), FLAGS.verbose)


if __name__ == "__main__":
    app.run(main)
