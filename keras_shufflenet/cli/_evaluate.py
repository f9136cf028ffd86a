"""`keras-shufflenet evaluate` (and `tflite/evaluate.py`): how a `.tflite`
model's answers compare with its Keras model's on a folder of images."""

from keras_shufflenet.cli import _options
from keras_shufflenet.cli._options import Option

IMAGES = Option(
    "images", str, None,
    "folder of images, or of one sub-folder per class (WordNet ids for ImageNet)", "DIR",
)  # fmt: skip
LIMIT = Option("limit", int, None, "evaluate at most N images", "N")
EVALUATE_OPTIONS = (
    IMAGES, *_options.MODEL_OPTIONS, _options.KERAS_MODEL, _options.RESIZE, _options.CROP, LIMIT,
)  # fmt: skip


def add_parser(commands):
    p = commands.add_parser(
        "evaluate", help="agreement of a .tflite model with its Keras model on images"
    )
    p.add_argument("tflite", metavar="MODEL", help="the .tflite file")
    _options.add_arguments(p, EVALUATE_OPTIONS)
    p.set_defaults(run=run)


def run(args):
    print(evaluate(args.tflite, **_options.values(args, EVALUATE_OPTIONS)))


def evaluate(tflite, images=None, model="v2", alpha=1.0, groups=3, weights="imagenet",
             keras_model=None, resize=None, crop=None, limit=None):
    """Evaluates `tflite` against the Keras model the options name; returns the summary."""
    import os

    from keras_shufflenet import runtime

    runtime.check_model_file(tflite)
    if images is None or not os.path.isdir(images):
        raise ValueError(
            f"--images must name a folder of images or of class sub-folders. Received: --images={images}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer. Received: --limit={limit}")
    keras_model, resize, crop = _options.load_model(
        model, alpha, groups, weights, keras_model, crop=crop, resize=resize
    )
    result = runtime.evaluate_tflite(tflite, keras_model, images, resize=resize, crop=crop, limit=limit)
    return result.summary()
