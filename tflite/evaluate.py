"""Agreement of a `.tflite` model with its Keras model on a folder of images.

    python tflite/evaluate.py --tflite snv2_int8.tflite --model v2 --alpha 1.0 \
        --image_dir imagenet_val_subset/
    python tflite/evaluate.py --tflite my_int8.tflite --keras_model my.keras \
        --image_dir photos/ --crop 224 --limit 200

The folder holds images, or one sub-folder per class (WordNet ids such as
n01440764 give ImageNet labels); see `keras_shufflenet.evaluation`.
"""

import importlib.util
import os
import sys

if importlib.util.find_spec("keras_shufflenet") is None:  # run from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("tflite", None, "The .tflite model.", required=True)
flags.DEFINE_string(
    "image_dir", None, "Folder of images or class sub-folders.", required=True
)
flags.DEFINE_enum("model", "v2", ["v1", "v2"], "ShuffleNet version.")
flags.DEFINE_float("alpha", 1.0, "Width multiplier.")
flags.DEFINE_integer("groups", 3, "V1 group count.")
flags.DEFINE_string("weights", "imagenet", "'imagenet' or a weights file.")
flags.DEFINE_string(
    "keras_model", None, "A saved .keras model (instead of --model etc.)."
)
flags.DEFINE_integer(
    "resize", None, "Shorter side before the crop (default: published/256)."
)
flags.DEFINE_integer("crop", None, "Centre crop; must match the .tflite input.")
flags.DEFINE_integer("limit", None, "Evaluate at most this many images.", lower_bound=1)


def _model_and_size():
    from keras_shufflenet import zoo

    weights = zoo.weights_argument(FLAGS.weights)
    return zoo.load(FLAGS.model, FLAGS.alpha, FLAGS.groups, weights, FLAGS.keras_model)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_shufflenet import evaluation

    try:
        model, resize, crop = _model_and_size()
        if FLAGS.crop and not FLAGS.resize:  # keep the resize/crop ratio
            resize = int(FLAGS.crop * resize / crop)
        resize, crop = FLAGS.resize or resize, FLAGS.crop or crop
        result = evaluation.evaluate_tflite(
            FLAGS.tflite,
            model,
            FLAGS.image_dir,
            resize=resize,
            crop=crop,
            limit=FLAGS.limit,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    app.run(main)
