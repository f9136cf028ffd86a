"""absl flags shared by the training programs, and what they turn into.

The model options are the library's (`keras_shufflenet.options`), as in
the `keras-shufflenet` command and the programs in tflite/.
"""

import os

from absl import flags

from keras_shufflenet import options
from training import data

FLAGS = flags.FLAGS


def define_model_flags(weights="none"):
    options.define_flags(options.MODEL_OPTIONS, weights=weights)
    flags.DEFINE_integer("image_size", 224, "Training crop and model input size.")


def define_output_flags():
    """`--progress` (Keras' progress) and `--verbose` (other libraries' log
    lines, which `keras_shufflenet.logs` keeps out otherwise)."""
    flags.DEFINE_integer("progress", 1, "Keras progress: 0 silent, 1 bar, 2 a line per epoch.")
    options.define_flags((options.VERBOSE,))


def define_data_flags():
    flags.DEFINE_enum("data", "tfrecord", list(data.SOURCES),
                      "tfrecord: ImageNet TFRecord shards; tfds: imagenet2012 through TFDS; "
                      "folder: class sub-folders; synthetic: procedural shapes (smoke tests).")
    flags.DEFINE_string("train_data", None, "tfrecord: glob of training shards (train-*); "
                        "folder: folder of class sub-folders; tfds: split (default 'train').")
    flags.DEFINE_string("val_data", None, "As --train_data, for validation "
                        "(tfds default 'validation').")
    flags.DEFINE_integer("num_classes", 1000, "Number of classes.")
    flags.DEFINE_integer("label_offset", 0, "Subtracted from stored labels: 1 for ImageNet "
                         "TFRecords made by the TF/TPU scripts (labels 1..1000).")
    flags.DEFINE_integer("eval_resize", None, "Evaluation resize (default: the weights' "
                         "metadata, e.g. 256 for 224).")
    flags.DEFINE_integer("eval_crop", None, "Evaluation centre crop (default: --image_size).")
    flags.DEFINE_float("min_crop_area", 0.08, "Smallest area of the random-resized crop.")
    flags.DEFINE_float("color_jitter", 0.4, "Brightness/contrast/saturation jitter (0: off).")
    flags.DEFINE_boolean("flip", True, "Random horizontal flips.")
    flags.DEFINE_integer("train_examples", None, "Training examples per epoch (default: "
                         "counted for folders, 1281167 for ImageNet, 4096 synthetic).")
    flags.DEFINE_integer("val_examples", None, "Validation examples (synthetic; or a limit).")
    flags.DEFINE_integer("shuffle_buffer", 8192, "Records in the shuffle buffer.")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data_dir.")
    flags.DEFINE_string("tfds_manual_dir", None, "Folder holding ILSVRC2012_img_{train,val}.tar.")
    flags.DEFINE_integer("synthetic_size", 64, "Side of the synthetic images.")
    flags.DEFINE_integer("seed", 0, "Random seed.")


def spec():
    return options.spec_for(FLAGS.model, FLAGS.alpha, FLAGS.groups)


def weights():
    return options.parse_weights(FLAGS.weights)


def eval_size(weights_value=None):
    """`(resize, crop)`: the flags, else the weights' metadata scaled to --image_size."""
    crop = FLAGS.eval_crop or FLAGS.image_size
    return options.eval_size(spec(), weights_value, crop=crop, resize=FLAGS.eval_resize)


def data_config(weights_value=None):
    """The `data.DataConfig` of the flags."""
    resize, crop = eval_size(weights_value)
    train, val = FLAGS.train_data, FLAGS.val_data
    if FLAGS.data == "tfds":
        train, val = train or "train", val or "validation"
    return data.DataConfig(
        source=FLAGS.data,
        train=train,
        val=val,
        num_classes=FLAGS.num_classes,
        label_offset=FLAGS.label_offset,
        image_size=FLAGS.image_size,
        eval_resize=resize,
        eval_crop=crop,
        min_crop_area=FLAGS.min_crop_area,
        color_jitter=FLAGS.color_jitter,
        flip=FLAGS.flip,
        train_examples=FLAGS.train_examples,
        val_examples=FLAGS.val_examples,
        shuffle_buffer=FLAGS.shuffle_buffer,
        tfds_data_dir=FLAGS.tfds_data_dir,
        tfds_manual_dir=FLAGS.tfds_manual_dir,
        synthetic_size=FLAGS.synthetic_size,
        seed=FLAGS.seed,
    )


def has_validation():
    return FLAGS.data in ("synthetic", "tfds") or FLAGS.val_data is not None


def default_out_dir(program):
    """`artifacts/training/PROGRAM` under the checkout (git-ignored)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, "artifacts", "training", program)


__all__ = [
    "data_config", "define_data_flags", "define_model_flags", "define_output_flags", "eval_size",
    "spec",
]  # fmt: skip
