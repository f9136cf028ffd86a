"""`keras-shufflenet export` (and `tflite/convert.py`): write a `.tflite`,
`.onnx` or `.keras` model of a variant or of a saved model."""

from keras_shufflenet.cli import _options
from keras_shufflenet.cli._options import Option

SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras"}
FORMAT = Option(
    "format", str, "tflite", "tflite (batch 1), onnx (dynamic batch) or keras",
    "{tflite,onnx,keras}",
)  # fmt: skip
QUANTIZATION = Option(
    "quantization", str, None,
    "tflite: int8 (default; every op integer), float16, float32 or dynamic",
    "{int8,float16,float32,dynamic}",
)  # fmt: skip
CALIBRATION_DIR = Option(
    "calibration_dir", str, None, "tflite int8: a folder of representative images", "DIR"
)
IO_DTYPE = Option(
    "io_dtype", str, None, "tflite int8: int8 (default) or uint8 input and output", "{int8,uint8}"
)
OPSET = Option("opset", int, None, "onnx: ONNX opset, 14 to 18 (default: 17)")
OUTPUT = Option("output", str, None, "the .tflite, .onnx or .keras file to write", "PATH")
TFLITE_OPTIONS = (QUANTIZATION, CALIBRATION_DIR, IO_DTYPE)
EXPORT_OPTIONS = (
    *_options.MODEL_OPTIONS, _options.KERAS_MODEL, *TFLITE_OPTIONS, _options.INPUT_SIZE, OUTPUT,
)  # fmt: skip


def add_parser(commands):
    p = commands.add_parser(
        "export", help="write a .tflite (int8, float16, ...), .onnx or .keras model"
    )
    _options.add_arguments(p, (FORMAT, *EXPORT_OPTIONS, OPSET))
    p.set_defaults(run=run)


def run(args):
    options = _options.values(args, (FORMAT, *EXPORT_OPTIONS, OPSET))
    print(export(**options))


def _check(format, output, quantization, calibration_dir, io_dtype, opset, input_size,
           weights, keras_model):
    """Every export option, checked before a model is built."""
    from keras_shufflenet import _files, export

    if format not in SUFFIXES:
        raise ValueError(f"--format must be one of {tuple(SUFFIXES)}. Received: --format={format}")
    if output is None:
        raise ValueError("--output is required: the file to write. Received: --output=None")
    _files.output_path(output, (SUFFIXES[format],), "--output")
    given = {"--quantization": quantization, "--calibration-dir": calibration_dir,
             "--io-dtype": io_dtype}  # fmt: skip
    tflite_only = [flag for flag, value in given.items() if value is not None]
    if format != "tflite" and tflite_only:
        raise ValueError(
            f"{', '.join(tflite_only)} only apply to --format tflite. Received: --format={format}"
        )
    if opset is not None and format != "onnx":
        raise ValueError(f"--opset only applies to --format onnx. Received: --format={format}")
    if input_size is not None and format == "keras":
        raise ValueError(
            "--input-size does not apply to --format keras (the saved model keeps its input "
            f"shape). Received: --input-size={input_size}"
        )
    export.check_input_size(input_size)
    if format == "onnx":
        export.check_opset(export.DEFAULT_OPSET if opset is None else opset)
        export.check_converters()  # a missing package fails before the build
    if format == "tflite":
        export.check_tflite_arguments(quantization, io_dtype, calibration_dir)
    _options.check_model_source(weights, keras_model)


def export(format="tflite", output=None, quantization=None, calibration_dir=None, io_dtype=None,
           opset=None, input_size=None, model="v2", alpha=1.0, groups=3, weights="imagenet",
           keras_model=None):
    """Writes the model the options name; returns a line that says what was written."""
    if format == "tflite":
        quantization, io_dtype = quantization or "int8", io_dtype or "int8"
    _check(format, output, quantization, calibration_dir, io_dtype, opset, input_size,
           weights, keras_model)  # fmt: skip
    from keras_shufflenet import _files, export as export_lib

    size = input_size if format == "tflite" else None
    keras_model, resize, crop = _options.load_model(
        model, alpha, groups, weights, keras_model, crop=size
    )
    if format == "keras":
        with _files.atomic_output(output) as staged:
            keras_model.save(str(staged))
        return _wrote(output, "keras")
    if format == "onnx":
        opset = export_lib.DEFAULT_OPSET if opset is None else opset
        path = export_lib.export_onnx(
            keras_model, output, opset, input_size=input_size, progress=True
        )
        return _wrote(path, f"onnx opset {opset}")
    path = export_lib.export_tflite(
        keras_model,
        output,
        quantization,
        calibration_dir,
        io_dtype=io_dtype,
        input_size=crop,
        resize=resize,
        crop=crop,
        progress=True,
    )
    return _wrote(path, quantization)


def _wrote(path, what):
    from keras_shufflenet import _files

    return f"wrote {path} ({_files.megabytes(path)}, {what})"
