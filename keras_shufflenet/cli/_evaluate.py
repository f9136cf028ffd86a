"""`keras-shufflenet evaluate` (and `tflite/evaluate.py`): a Keras model and its
exports (`.tflite`, `.onnx`) side by side on a folder of labelled images."""

from keras_shufflenet import options


def add_parser(commands):
    p = commands.add_parser(
        "evaluate",
        help="top-1 (top-5 above 5 classes) of a Keras model and its .tflite/.onnx exports "
        "on labelled images",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite and .onnx files")
    options.add_arguments(p, options.EVALUATE_OPTIONS)
    p.set_defaults(run=run)


def run(args):
    print(evaluate(args.models, **options.values(args, options.EVALUATE_OPTIONS)))


def evaluate(models, images=None, class_index=None, model="v2", alpha=1.0, groups=3,
             weights="imagenet", keras_model=None, resize=None, crop=None, limit=None):
    """Scores the Keras model the options name and the files `models` in one
    pass over `images`; returns the table."""
    import os

    from keras_shufflenet import runtime
    from keras_shufflenet.runtime import _evaluation

    _evaluation.check_model_files(models)
    if images is None or not os.path.isdir(images):
        raise ValueError(
            "--images must name a folder of images or of class sub-folders. "
            f"Received: --images={images}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer. Received: --limit={limit}")
    classes = options.class_names(class_index, keras_model)
    keras_model, resize, crop = options.load_model(
        model, alpha, groups, weights, keras_model, crop=crop, resize=resize
    )
    comparison = runtime.compare_models(
        keras_model, models, images, resize=resize, crop=crop, limit=limit,
        class_index=classes, progress=True,
    )  # fmt: skip
    return comparison.table()
