"""Convert a ShuffleNet to a batch-1 TFLite model for phones.

    python tflite/convert.py --model shufflenetv2 --alpha 1.0 --quantization int8 \
        --calibration_dir photos/ --output snv2_int8.tflite
    python tflite/convert.py --keras_model finetuned.keras --quantization float16 \
        --output finetuned_fp16.tflite

int8 models are full-integer (int8 or uint8 input and output) and take RGB
pixels in [0, 255]; see `keras_shufflenet.export_tflite`.
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("keras_shufflenet") is None:  # run from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "v2", ["v1", "v2", "shufflenetv1", "shufflenetv2"], "ShuffleNet version.")
flags.DEFINE_float("alpha", 1.0, "Width multiplier.")
flags.DEFINE_integer("groups", 3, "V1 group count.")
flags.DEFINE_string("weights", "imagenet", "'imagenet', 'none' or a weights file.")
flags.DEFINE_string("keras_model", None, "A saved .keras model (instead of --model etc.).")
flags.DEFINE_enum("quantization", "int8", ["int8", "float16", "float32", "dynamic"], "Format.")
flags.DEFINE_string("calibration_dir", None, "Folder of representative images (int8).")
flags.DEFINE_enum("io_dtype", "int8", ["int8", "uint8"], "Input/output type of int8 models.")
flags.DEFINE_integer("input_size", None, "Input height and width (default: the crop, 224).")
flags.DEFINE_string("output", None, "The .tflite file to write.", required=True)


def main(argv):
    del argv
    from keras_shufflenet import zoo
    from keras_shufflenet.export import export_tflite

    try:
        model, resize, crop = zoo.load(
            FLAGS.model, FLAGS.alpha, FLAGS.groups, zoo.weights_argument(FLAGS.weights), FLAGS.keras_model
        )
        size = FLAGS.input_size or crop
        path = export_tflite(
            model,
            FLAGS.output,
            FLAGS.quantization,
            FLAGS.calibration_dir,
            io_dtype=FLAGS.io_dtype,
            input_size=size,
            resize=int(size * resize / crop),
            crop=size,
            progress=True,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB, {FLAGS.quantization})")
    return 0


if __name__ == "__main__":
    app.run(main)
