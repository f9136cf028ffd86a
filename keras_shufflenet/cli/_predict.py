"""`keras-shufflenet predict`: the top classes of images, with an ImageNet
model or a saved one (its class names: `--class-index`, else those saved
beside it)."""

from keras_shufflenet import options

PREDICT_OPTIONS = (*options.MODEL_OPTIONS, options.KERAS_MODEL, options.CLASS_INDEX)


def add_parser(commands):
    p = commands.add_parser("predict", help="classify images with an ImageNet or a saved model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    options.add_arguments(p, PREDICT_OPTIONS)
    p.add_argument("--top", type=int, default=5, help="classes shown per image (default: 5)")
    p.set_defaults(run=run)


def run(args):
    """Prints the top-k classes of each image."""
    from keras_shufflenet import _imagenet, _images, models

    if not 1 <= args.top <= _imagenet.NUM_CLASSES:
        raise ValueError(
            f"--top must be in [1, {_imagenet.NUM_CLASSES}]. Received: --top={args.top}"
        )
    given = options.values(args, PREDICT_OPTIONS)
    class_index = given.pop("class_index")
    if given["keras_model"] is None:
        options.check_model_source(given["weights"])
        spec = options.spec_for(given["model"], given["alpha"], given["groups"])
        resize, crop = options.eval_size(spec, given["weights"])
        batch = _images.load_images(args.images, resize, crop)  # fails before the build
        model = models.build_model(spec, weights=options.parse_weights(given["weights"]))
    else:
        model, resize, crop = options.load_model(**given)
        batch = _images.load_images(args.images, resize, crop)
    names = options.class_names(class_index, given["keras_model"])
    preds = model.predict(batch.astype("float32"), verbose=0)
    if names is None and preds.shape[-1] == _imagenet.NUM_CLASSES:
        tops = [[(f"{name} ({wnid})", score) for wnid, name, score in top]
                for top in _imagenet.decode_predictions(preds, top=args.top)]  # fmt: skip
    else:
        tops = [_top(scores, names, args.top) for scores in preds]
    for path, top in zip(args.images, tops):
        print(path)
        for rank, (name, score) in enumerate(top, 1):
            print(f"  {rank}. {name}  {score * 100:.2f}%")


def _top(scores, names, k):
    """`[(name, score)]` of the `k` best classes (named `class N` without names)."""
    if names is not None and len(names) != len(scores):
        raise ValueError(
            f"The class index names {len(names)} classes and the model has {len(scores)}. "
            f"Received: {len(names)} classes"
        )
    best = scores.argsort(kind="stable")[::-1][:k]
    return [(names[i] if names is not None else f"class {i}", float(scores[i])) for i in best]
