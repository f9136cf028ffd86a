"""`keras-shufflenet export` (and `tflite/convert.py`): write a model of a
variant or of a saved model in one of the formats of `_formats.FORMATS`."""

from keras_shufflenet import _formats, options

ALL_OPTIONS = (options.FORMAT, *options.EXPORT_OPTIONS, options.OPSET)


def add_parser(commands):
    p = commands.add_parser(
        "export", help="write a .tflite (int8, float16, ...), .onnx or .keras model"
    )
    options.add_arguments(p, ALL_OPTIONS)
    p.set_defaults(run=run)


def run(args):
    print(export(**options.values(args, ALL_OPTIONS)))


def _check(format, output, input_size, weights, keras_model, **format_options):
    """Every export option, checked before a model is built; returns the `Format`."""
    from keras_shufflenet import _files
    from keras_shufflenet.export import _calibration

    if format not in _formats.FORMATS:
        raise ValueError(
            f"--format must be one of {tuple(_formats.FORMATS)}. Received: --format={format}"
        )
    if output is None:
        raise ValueError("--output is required: the file to write. Received: --output=None")
    chosen = _formats.FORMATS[format]
    _files.output_path(output, (chosen.suffix,), "--output")
    given = {"input_size": input_size, **format_options}
    _check_applies(chosen, {name: value for name, value in given.items() if value is not None})
    _calibration.check_input_size(input_size)
    chosen.check(**{name: given[name] for name in chosen.options}, keras_model=keras_model)
    options.check_model_source(weights, keras_model)
    return chosen


def _check_applies(chosen, given):
    """Refuses the options `given` that `chosen` does not take, naming the
    formats that do take them."""
    refused = {}
    for name in given:
        if name not in chosen.options:
            takers = tuple(f.name for f in _formats.FORMATS.values() if name in f.options)
            refused.setdefault(takers, []).append(f"--{name.replace('_', '-')}")
    for takers, flags in refused.items():
        verb = "apply" if len(flags) > 1 else "applies"
        raise ValueError(
            f"{', '.join(flags)} only {verb} to --format {' or '.join(takers)}. "
            f"Received: --format={chosen.name}"
        )


def export(format="tflite", output=None, quantization=None, calibration_dir=None, io_dtype=None,
           class_index=None, opset=None, input_size=None, model="v2", alpha=1.0, groups=3,
           weights="imagenet", keras_model=None):
    """Writes the model the options name; returns a line that says what was written."""
    from keras_shufflenet import _files

    format_options = {"quantization": quantization, "calibration_dir": calibration_dir,
                      "io_dtype": io_dtype, "class_index": class_index, "opset": opset}  # fmt: skip
    chosen = _check(format, output, input_size, weights, keras_model, **format_options)
    if "class_index" in chosen.options:  # the names, for the file's metadata
        format_options["class_index"] = options.class_names(class_index, keras_model)
    keras_model, resize, crop = options.load_model(
        model, alpha, groups, weights, keras_model, crop=input_size
    )
    taken = {"input_size": input_size, **format_options}
    path, what = chosen.export(
        keras_model, output, resize, crop, **{name: taken[name] for name in chosen.options}
    )
    return f"wrote {path} ({_files.megabytes(path)}, {what})"
