"""Convert a ShuffleNet to a batch-1 TFLite model for phones.

    python3 -m tflite.convert --model shufflenetv2 --alpha 1.0 --quantization int8 \
        --calibration_dir photos/ --output snv2_int8.tflite
    python3 -m tflite.convert --keras_model finetuned.keras --quantization float16 \
        --output finetuned_fp16.tflite

int8 models are full-integer (uint8 input and output, or int8) and take RGB
pixels in [0, 255]; see `keras_shufflenet.export_tflite`. The same as
`keras-shufflenet export --format tflite`.
"""

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from keras_shufflenet import cli, options  # noqa: E402

FLAGS = flags.FLAGS
options.define_flags((options.VERBOSE,))
options.define_flags(options.EXPORT_OPTIONS, quantization="int8", io_dtype="uint8")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = options.values(FLAGS, options.EXPORT_OPTIONS)
    return cli.run_reporting_errors(
        lambda: print(cli.export(format="tflite", **values)), FLAGS.verbose
    )


if __name__ == "__main__":
    app.run(main)
