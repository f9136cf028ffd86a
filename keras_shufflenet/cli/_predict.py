"""`keras-shufflenet predict`: the top ImageNet classes of images."""

from keras_shufflenet.cli import _options


def add_parser(commands):
    p = commands.add_parser("predict", help="classify images with an ImageNet model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    _options.add_arguments(p, _options.MODEL_OPTIONS)
    p.add_argument("--top", type=int, default=5, help="classes shown per image (default: 5)")
    p.set_defaults(run=run)


def run(args):
    """Prints the top-k ImageNet classes of each image."""
    from keras_shufflenet import _images, models

    if not 1 <= args.top <= models.NUM_CLASSES:
        raise ValueError(f"--top must be in [1, {models.NUM_CLASSES}]. Received: --top={args.top}")
    options = _options.values(args, _options.MODEL_OPTIONS)
    _options.check_model_source(options["weights"])
    spec = _options.spec_for(options["model"], options["alpha"], options["groups"])
    resize, crop = _options.eval_size(spec, options["weights"])
    batch = _images.load_images(args.images, resize, crop)  # fails before the build
    model = models.build_model(spec, weights=_options.parse_weights(options["weights"]))
    preds = model.predict(batch.astype("float32"), verbose=0)
    for path, top in zip(args.images, models.decode_predictions(preds, top=args.top)):
        print(path)
        for rank, (wnid, name, score) in enumerate(top, 1):
            print(f"  {rank}. {name} ({wnid})  {score * 100:.2f}%")
