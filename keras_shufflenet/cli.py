"""The `keras-shufflenet` command: classify images and list the variants."""

import argparse
import sys
import traceback

DEFAULT_RESIZE, DEFAULT_CROP = 256, 224
INFO_FORMAT = "{:<22} {:>11} {:>10} {:>7} {:>12}"

EXAMPLES = """examples:
  keras-shufflenet predict cat.jpg dog.png
  keras-shufflenet predict cat.jpg --model v2 --alpha 2.0 --top 3
  keras-shufflenet predict cat.jpg --model v1 --groups 8 --alpha 1.0
  keras-shufflenet predict cat.jpg --weights my_model.weights.h5
  keras-shufflenet info --model v2
  keras-shufflenet --verbose predict cat.jpg   # tracebacks on errors
"""


def _spec(model, groups, alpha):
    from keras_shufflenet import specs

    return specs.v2_spec(alpha) if model == "v2" else specs.v1_spec(groups, alpha)


def _eval_size(spec, weights):
    """Published evaluation `(resize, crop)` of `spec`, else 256/224."""
    from keras_shufflenet import weights as weights_lib

    weights_lib.check_weights_argument(weights)
    try:
        entry = weights_lib.get_entry(spec)
    except ValueError:
        if weights == "imagenet":
            raise
        return DEFAULT_RESIZE, DEFAULT_CROP
    return entry.resize, entry.crop


def predict(args):
    """Prints the top-k ImageNet classes of each image."""
    from keras_shufflenet import builder, imagenet, images

    if not 1 <= args.top <= imagenet.NUM_CLASSES:
        raise ValueError(f"--top must be in [1, 1000]. Received: --top={args.top}")
    spec = _spec(args.model, args.groups, args.alpha)
    resize, crop = _eval_size(spec, args.weights)
    batch = images.load_images(args.images, resize, crop)  # fails before the build
    model = builder.build_model(spec, weights=args.weights)
    preds = model.predict(batch.astype("float32"), verbose=0)
    for path, top in zip(args.images, imagenet.decode_predictions(preds, top=args.top)):
        print(path)
        for rank, (wnid, name, score) in enumerate(top, 1):
            print(f"  {rank}. {name} ({wnid})  {score * 100:.2f}%")


def _all_specs(model):
    from keras_shufflenet import specs

    v2 = [specs.v2_spec(alpha) for alpha in specs.V2_CHANNELS]
    v1 = [specs.v1_spec(g, a) for g in specs.V1_CHANNELS for a in specs.V1_ALPHAS]
    return {"v1": v1, "v2": v2, "all": v2 + v1}[model]


def _info_row(spec):
    import keras

    from keras_shufflenet import builder, complexity
    from keras_shufflenet import weights as weights_lib

    keras.backend.clear_session()
    model = builder.build_model(spec, weights=None, input_shape=(224, 224, 3))
    top1 = size = "-"
    try:
        entry = weights_lib.get_entry(spec)
        top1, size = f"{entry.top1:.2f}", f"{entry.resize}/{entry.crop}"
    except ValueError:
        pass
    macs = complexity.count_macs(model) / 1e6
    return (
        builder.default_name(spec),
        f"{complexity.count_params(model):,}",
        f"{macs:.1f}",
        top1,
        size,
    )


def info(args):
    """Prints params, MACs and published accuracy of every variant."""
    print(INFO_FORMAT.format("model", "params", "MACs (M)", "top-1", "resize/crop"))
    for spec in _all_specs(args.model):
        print(INFO_FORMAT.format(*_info_row(spec)), flush=True)


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-shufflenet",
        description="ShuffleNet V1/V2 for Keras 3: classify images, list the variants.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show tracebacks on errors"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="classify images with an ImageNet model")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)"
    )
    p.add_argument("--model", choices=("v1", "v2"), default="v2", help="default: v2")
    p.add_argument(
        "--alpha", type=float, default=1.0, help="width multiplier (default: 1.0)"
    )
    p.add_argument("--groups", type=int, default=3, help="V1 group count (default: 3)")
    p.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (default) or a weights file (.weights.h5, .keras, .pth)",
    )
    p.add_argument(
        "--top", type=int, default=5, help="classes shown per image (default: 5)"
    )
    p.set_defaults(run=predict)

    p = commands.add_parser("info", help="params, MACs and top-1 of every variant")
    p.add_argument(
        "--model", choices=("v1", "v2", "all"), default="all", help="default: all"
    )
    p.set_defaults(run=info)
    return parser


def _fail(args, error, code):
    if args.verbose:
        traceback.print_exc()
    message = str(error) if code == 2 else f"{type(error).__name__}: {error}"
    if code == 1 and not args.verbose:
        message += " (rerun with --verbose for the traceback)"
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv=None):
    """Runs the command line `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:  # bad input: files, names, arguments
        return _fail(args, error, 2)
    except Exception as error:  # noqa: BLE001 - reported, exit code 1
        return _fail(args, error, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
