"""A Keras model and its `.tflite`/`.onnx` exports side by side on labelled images.

    python3 -m tflite.evaluate --models=snv2_int8.tflite,snv2_fp32.tflite --model v2 \
        --alpha 1.0 --images imagenet_val/
    python3 -m tflite.evaluate --models=my_int8.tflite --keras_model my.keras \
        --images flowers/val --class_index flowers.txt --limit 200

The folder holds images, or one sub-folder per class (WordNet ids such as
n01440764 give ImageNet labels). The same as `keras-shufflenet evaluate`.
"""

from keras_shufflenet import logs

if __name__ == "__main__":  # first: TensorFlow logs as it loads
    logs.quiet_program()

from absl import app, flags  # noqa: E402

from keras_shufflenet import cli, options  # noqa: E402

FLAGS = flags.FLAGS
options.define_flags((options.VERBOSE,))
flags.DEFINE_list("models", None, "Comma-separated .tflite and .onnx files.")
options.define_flags(options.EVALUATE_OPTIONS)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = options.values(FLAGS, options.EVALUATE_OPTIONS)
    return cli.run_reporting_errors(
        lambda: print(cli.evaluate(FLAGS.models or [], **values)), FLAGS.verbose
    )


if __name__ == "__main__":
    app.run(main)
