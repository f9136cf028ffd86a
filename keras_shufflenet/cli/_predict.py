"""`keras-shufflenet predict`: the top ImageNet classes of images."""

from keras_shufflenet import options


def add_parser(commands):
    p = commands.add_parser("predict", help="classify images with an ImageNet model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    options.add_arguments(p, options.MODEL_OPTIONS)
    p.add_argument("--top", type=int, default=5, help="classes shown per image (default: 5)")
    p.set_defaults(run=run)


def run(args):
    """Prints the top-k ImageNet classes of each image."""
    from keras_shufflenet import _imagenet, _images, models

    if not 1 <= args.top <= _imagenet.NUM_CLASSES:
        raise ValueError(
            f"--top must be in [1, {_imagenet.NUM_CLASSES}]. Received: --top={args.top}"
        )
    given = options.values(args, options.MODEL_OPTIONS)
    options.check_model_source(given["weights"])
    spec = options.spec_for(given["model"], given["alpha"], given["groups"])
    resize, crop = options.eval_size(spec, given["weights"])
    batch = _images.load_images(args.images, resize, crop)  # fails before the build
    model = models.build_model(spec, weights=options.parse_weights(given["weights"]))
    preds = model.predict(batch.astype("float32"), verbose=0)
    for path, top in zip(args.images, _imagenet.decode_predictions(preds, top=args.top)):
        print(path)
        for rank, (wnid, name, score) in enumerate(top, 1):
            print(f"  {rank}. {name} ({wnid})  {score * 100:.2f}%")
