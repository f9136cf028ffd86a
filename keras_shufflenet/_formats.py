"""The export formats, one row each: what `keras-shufflenet export` writes and
what the runtime runs.

A new format is one `Format` in `FORMATS` (and its tests): the command line
takes its name, suffix and options from here, checks and writes it through
`check` and `export`, and, when it has a `runner`, `runtime.compare_models`
(`keras-shufflenet evaluate`) runs its files next to the Keras model.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        name: What `--format` takes.
        suffix: How its files' names end.
        summary: A few words for `--help` about its files, or `""`.
        options: The export options (`keras_shufflenet.options` names) that
            apply to this format; the others that apply to some format only
            are refused.
        export: `export(keras_model, path, resize, crop, **options)`: writes
            the file, returns `(path, what)`, `what` a few words for people.
        check: `check(keras_model=None, **options)`: raises `ValueError` on
            a bad option before a model is built (`keras_model`: the `.keras`
            file exported, if any). Defaults to checking nothing.
        runner: `runner(path)`: a callable on a batch of float model inputs
            (numpy in, numpy out) with `kind` and `input_size` attributes;
            `None` for a format that is not run. Defaults to `None`.
    """

    name: str
    suffix: str
    summary: str
    options: tuple
    export: Callable
    check: Callable = lambda **options: None
    runner: Callable | None = None


def _check_tflite(quantization=None, calibration_dir=None, io_dtype=None, class_index=None,
                  input_size=None, keras_model=None):  # fmt: skip
    """A QAT `.keras` model (`keras_model`) needs no calibration images."""
    from keras_shufflenet.export import _tflite
    from keras_shufflenet.quantization import _keras_qat

    qat = keras_model is not None and _keras_qat.is_qat_file(keras_model)
    _tflite.check_tflite_arguments(
        quantization or "int8", io_dtype or "uint8", calibration_dir, needs_data=not qat
    )


def _export_tflite(model, path, resize, crop, quantization=None, calibration_dir=None,
                   io_dtype=None, class_index=None, input_size=None):  # fmt: skip
    """`class_index`: the class names (`options.class_names`), or `None`."""
    from keras_shufflenet.export import _tflite

    quantization = quantization or "int8"
    path = _tflite.export_tflite(
        model, path, quantization, calibration_dir, io_dtype=io_dtype or "uint8",
        labels=class_index, input_size=crop, resize=resize, crop=crop, progress=True,
    )  # fmt: skip
    return path, quantization


def _tflite_runner(path):
    from keras_shufflenet.runtime import _runners

    return _runners.TFLiteBatches(path)


def _check_onnx(opset=None, input_size=None, keras_model=None):
    from keras_shufflenet.export import _onnx

    _onnx.check_opset(_onnx.DEFAULT_OPSET if opset is None else opset)
    _onnx.check_converters()  # a missing package fails before the build


def _export_onnx(model, path, resize, crop, opset=None, input_size=None):
    from keras_shufflenet.export import _onnx

    opset = _onnx.DEFAULT_OPSET if opset is None else opset
    path = _onnx.export_onnx(model, path, opset, input_size=input_size, progress=True)
    return path, f"onnx opset {opset}"


def _onnx_runner(path):
    from keras_shufflenet.runtime import _runners

    return _runners.OnnxRunner(path)


def _export_keras(model, path, resize, crop):
    from keras_shufflenet import _files

    with _files.atomic_output(path) as staged:
        model.save(str(staged))
    return path, "keras"


FORMATS = {
    format.name: format
    for format in (
        Format("tflite", ".tflite", "batch 1",
               ("quantization", "calibration_dir", "io_dtype", "class_index", "input_size"),
               _export_tflite, _check_tflite, _tflite_runner),
        Format("onnx", ".onnx", "dynamic batch", ("opset", "input_size"),
               _export_onnx, _check_onnx, _onnx_runner),
        Format("keras", ".keras", "", (), _export_keras),
    )  # fmt: skip
}
RUNNABLE_SUFFIXES = tuple(f.suffix for f in FORMATS.values() if f.runner is not None)


def runner_for(path):
    """The runner of an exported file, found by its suffix (see `Format.runner`)."""
    for format in FORMATS.values():
        if format.runner is not None and Path(path).name.endswith(format.suffix):
            return format.runner(path)
    raise ValueError(
        f"Expected an exported model ({', '.join(RUNNABLE_SUFFIXES)}). Received: {path}"
    )
