"""`keras-shufflenet info`: params, MACs and published accuracy of every
variant; with a `.tflite` file, what that file holds."""

INFO_FORMAT = "{:<22} {:>11} {:>10} {:>7} {:>12}"


def add_parser(commands):
    p = commands.add_parser(
        "info", help="params, MACs and top-1 of every variant, or what a .tflite file holds"
    )
    p.add_argument(
        "file", nargs="?", metavar="MODEL.tflite",
        help="a .tflite file: its inputs, outputs, ops, size and metadata",
    )  # fmt: skip
    p.add_argument("--model", choices=("v1", "v2", "all"), default="all", help="default: all")
    p.set_defaults(run=run)


def _all_specs(family):
    from keras_shufflenet import models

    v2 = [models.v2_spec(alpha) for alpha in models.V2_ALPHAS]
    v1 = [models.v1_spec(g, a) for g in models.V1_GROUPS for a in models.V1_ALPHAS]
    return {"v1": v1, "v2": v2, "all": v2 + v1}[family]


def _row(spec):
    import keras

    from keras_shufflenet import models, weights
    from keras_shufflenet.models import _complexity

    keras.backend.clear_session()
    model = models.build_model(spec, weights=None, input_shape=(224, 224, 3))
    top1 = size = "-"
    try:
        entry = weights.get_entry(spec)
        top1, size = f"{entry.top1:.2f}", f"{entry.resize}/{entry.crop}"
    except ValueError:
        pass
    return (
        spec.default_name,
        f"{_complexity.count_params(model):,}",
        f"{_complexity.count_macs(model) / 1e6:.1f}",
        top1,
        size,
    )


def run(args):
    """Prints params, MACs and published accuracy of every variant, or describes `args.file`."""
    if args.file is not None:
        print(describe_file(args.file))
        return
    print(INFO_FORMAT.format("model", "params", "MACs (M)", "top-1", "resize/crop"))
    for spec in _all_specs(args.model):
        print(INFO_FORMAT.format(*_row(spec)), flush=True)


def _tensor_line(kind, tensor):
    quantization = "float" if tensor.quantization is None else (
        f"scale {tensor.quantization[0]:.6g}, zero point {tensor.quantization[1]}"
    )
    shape = "x".join(map(str, tensor.shape))
    return f"{kind:<8}{tensor.dtype:<9}{shape:<18}{quantization}  ({tensor.name})"


def _numbers(values):
    return ", ".join(f"{v:g}" for v in values)


def describe_file(path):
    """The text `info MODEL.tflite` prints: inputs, outputs, ops, size, metadata."""
    from keras_shufflenet import _files
    from keras_shufflenet.export import _tflite_file

    described = _tflite_file.describe_tflite(path)
    ops = ", ".join(f"{name} {count}" for name, count in described.op_counts.most_common())
    lines = [
        f"{described.path.name}: {_files.megabytes(described.path)}",
        *(_tensor_line("input", t) for t in described.inputs),
        *(_tensor_line("output", t) for t in described.outputs),
        f"ops     {sum(described.op_counts.values())}: {ops}",
    ]
    metadata = described.metadata
    if metadata is None:
        return "\n".join([*lines, "metadata  none (MediaPipe Tasks needs it)"])
    labels = "none" if metadata.labels is None else f"{len(metadata.labels)} classes"
    if metadata.labels:
        more = ", ..." if len(metadata.labels) > 3 else ""
        labels += f" ({', '.join(metadata.labels[:3])}{more})"
    return "\n".join([
        *lines,
        "metadata",
        f"  name           {metadata.name}",
        f"  description    {metadata.description}",
        f"  version        {metadata.version}",
        f"  license        {metadata.license}",
        f"  input          {metadata.input_description}",
        f"  normalisation  mean {_numbers(metadata.mean)}, std {_numbers(metadata.std)}",
        f"  output         {metadata.output_description}",
        f"  labels         {labels}",
    ])  # fmt: skip
