"""`keras-shufflenet convert-weights`: a reference torch checkpoint to `.weights.h5`."""

from keras_shufflenet import options

DESCRIPTION = (
    "Converts a torchvision (V2) or pytorchcv (V1) checkpoint, or one fine-tuned from "
    "them, to a Keras .weights.h5 file for machines without internet or torch. The "
    "checkpoint is read without running code from it."
)


def add_parser(commands):
    p = commands.add_parser(
        "convert-weights",
        help="convert a reference torch checkpoint (.pth) to Keras .weights.h5",
        description=DESCRIPTION,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the .pth (or .pt) state dict")
    options.add_arguments(p, (options.MODEL, options.ALPHA, options.GROUPS))
    p.add_argument("--classes", type=int, default=1000, help="classifier size (default: 1000)")
    top = p.add_mutually_exclusive_group()
    top.add_argument("--include-top", dest="include_top", action="store_true", default=True,
                     help="keep the classifier (default)")  # fmt: skip
    top.add_argument("--no-top", dest="include_top", action="store_false",
                     help="backbone only, for include_top=False models")  # fmt: skip
    p.add_argument("--output", required=True, metavar="PATH",
                   help="the .weights.h5 file to write (with --preset: the preset folder)")  # fmt: skip
    p.add_argument("--preset", action="store_true",
                   help="write a keras-hub preset folder of ShuffleNetImageClassifier instead, "
                        'ready for keras_hub.upload_preset (needs "keras-shufflenet[hub]")')  # fmt: skip
    p.set_defaults(run=run)


def run(args):
    """Converts a reference torch checkpoint to a Keras `.weights.h5` file."""
    from keras_shufflenet import _files, _progress, models
    from keras_shufflenet.weights import _store

    _files.existing_file(args.checkpoint, _store.TORCH_SUFFIXES, "CHECKPOINT", "torch checkpoint")
    spec = options.spec_for(args.model, args.alpha, args.groups)
    if args.preset:
        _write_preset(args, spec)
        return
    _files.output_path(args.output, (".weights.h5",), "--output")
    bar = _progress.StderrProgbar(2, "step")  # read and convert, then save
    model = models.build_model(
        spec, weights=args.checkpoint, include_top=args.include_top, classes=args.classes
    )
    bar.update(1)
    with _files.atomic_output(args.output) as staged:
        model.save_weights(staged)
    bar.update(2)
    top = "with" if args.include_top else "without"
    size = _files.megabytes(args.output)
    print(f"wrote {args.output} ({size}, {model.name} {top} the classifier)")


def _write_preset(args, spec):
    from keras_shufflenet import hub

    if not args.include_top:
        raise ValueError("A preset holds the classifier: --preset takes no --no-top. Received: --no-top")
    hub.save_preset(
        args.checkpoint, args.output, version=spec.version, alpha=spec.alpha,
        groups=spec.groups if spec.version == "v1" else None, num_classes=args.classes,
    )
    print(f"wrote {args.output} (keras-hub preset of {spec.default_name})")
