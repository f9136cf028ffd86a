"""`keras-shufflenet evaluate` (and `tflite/evaluate.py`): a Keras model and its
exports (`.tflite`, `.onnx`) side by side on a folder of labelled images."""

from keras_shufflenet.cli import _options
from keras_shufflenet.cli._options import Option

IMAGES = Option(
    "images", str, None,
    "folder of images, or of one sub-folder per class (WordNet ids for ImageNet, or the "
    "names of --class-index)", "DIR",
)  # fmt: skip
CLASS_INDEX = Option(
    "class_index", str, None,
    "the model's classes in index order: a JSON list, keras.applications' JSON index, or "
    "one name per line (default: WordNet ids for 1000 classes, else sorted folder names)",
    "FILE",
)  # fmt: skip
LIMIT = Option("limit", int, None, "evaluate at most N images", "N")
EVALUATE_OPTIONS = (
    IMAGES, CLASS_INDEX, *_options.MODEL_OPTIONS, _options.KERAS_MODEL, _options.RESIZE,
    _options.CROP, LIMIT,
)  # fmt: skip


def add_parser(commands):
    p = commands.add_parser(
        "evaluate",
        help="top-1/top-5 of a Keras model and its .tflite/.onnx exports on labelled images",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite and .onnx files")
    _options.add_arguments(p, EVALUATE_OPTIONS)
    p.set_defaults(run=run)


def run(args):
    print(evaluate(args.models, **_options.values(args, EVALUATE_OPTIONS)))


def evaluate(models, images=None, class_index=None, model="v2", alpha=1.0, groups=3,
             weights="imagenet", keras_model=None, resize=None, crop=None, limit=None):
    """Scores the Keras model the options name and the files `models` in one
    pass over `images`; returns the table."""
    import os

    from keras_shufflenet import runtime

    runtime.check_model_files(models)
    if images is None or not os.path.isdir(images):
        raise ValueError(
            "--images must name a folder of images or of class sub-folders. "
            f"Received: --images={images}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer. Received: --limit={limit}")
    classes = runtime.load_class_index(class_index) if class_index is not None else None
    keras_model, resize, crop = _options.load_model(
        model, alpha, groups, weights, keras_model, crop=crop, resize=resize
    )
    comparison = runtime.compare_models(
        keras_model, models, images, resize=resize, crop=crop, limit=limit,
        class_index=classes, progress=True,
    )  # fmt: skip
    return comparison.table()
