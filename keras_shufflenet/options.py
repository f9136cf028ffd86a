"""The options every front end shares, defined once, and what they turn into.

The `keras-shufflenet` command (argparse), the programs in `tflite/` and
`training/` (absl flags) and the benchmarks take the same options: the model
and image size, and those of exporting, evaluating and benchmarking. Each is
declared here once (`Option`) and rendered for either parser
(`add_arguments`, `define_flags`); parsers only convert types, and every value
is checked once, by the library functions below and those the options feed,
so every front end prints the same error for the same mistake::

    parser = argparse.ArgumentParser()
    options.add_arguments(parser, options.MODEL_OPTIONS)
    args = parser.parse_args()
    model, resize, crop = options.load_model(**options.values(args, options.MODEL_OPTIONS))
"""

import dataclasses
import os

from keras_shufflenet import _files, _formats, _images

_VERSIONS = {"v1": "v1", "v2": "v2", "shufflenetv1": "v1", "shufflenetv2": "v2"}
_DEFAULT_RESIZE, _DEFAULT_CROP = 256, 224


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option: `--name-with-dashes` for argparse,
    `--name_with_underscores` for absl.

    `type` converts each value (`bool`: a switch, `--no-name` on the command
    line when it is on by default); a `multiple` option takes several values
    (argparse: `--name 1 4`, absl: `--name 1,4`).
    """

    name: str
    type: type
    default: object
    help: str
    metavar: str | None = None
    multiple: bool = False

    @property
    def flag(self):
        """How the command line turns the option away from its default."""
        dashes = self.name.replace("_", "-")
        return f"--no-{dashes}" if self.type is bool and self.default else f"--{dashes}"


def _or(words):
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


# ------------------------------------------------------------------ every program

VERBOSE = Option(
    "verbose", bool, False,
    "show tracebacks and the log lines of TensorFlow, its converter and LiteRT",
)  # fmt: skip

# ----------------------------------------------------------------- model

MODEL = Option(
    "model", str, "v2", "ShuffleNet version (shufflenetv1 and shufflenetv2 also work)", "{v1,v2}"
)
# The widths and group counts are listed by `keras-shufflenet info`, from the
# spec tables (imported here, they would bring Keras into `--help`).
ALPHA = Option("alpha", float, 1.0, "width multiplier (`keras-shufflenet info` lists them)")
GROUPS = Option("groups", int, 3, "V1 group count (`keras-shufflenet info` lists them)")
WEIGHTS = Option(
    "weights", str, "imagenet",
    "'imagenet', 'none' (random) or a weights file (.weights.h5, .keras, .pth)",
)  # fmt: skip
KERAS_MODEL = Option(
    "keras_model", str, None, "a saved .keras model instead of --model/--alpha/--groups/--weights",
    "PATH",
)  # fmt: skip
INPUT_SIZE = Option("input_size", int, None, "input height and width", "N")
RESIZE = Option(
    "resize", int, None,
    "shorter side before the centre crop (default: the weights' published resize, "
    "scaled to the crop)", "N",
)  # fmt: skip
CROP = Option("crop", int, None, "side of the centre crop (default: 224)", "N")

MODEL_OPTIONS = (MODEL, ALPHA, GROUPS, WEIGHTS)

# ---------------------------------------------------------------- export

FORMAT = Option(
    "format", str, "tflite",
    _or([f.name + (f" ({f.summary})" if f.summary else "") for f in _formats.FORMATS.values()]),
    "{" + ",".join(_formats.FORMATS) + "}",
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
    "io_dtype", str, None,
    "tflite int8: uint8 (default: camera bytes, what MediaPipe takes) or int8 input and output",
    "{uint8,int8}",
)  # fmt: skip
OPSET = Option("opset", int, None, "onnx: ONNX opset, 14 to 18 (default: 17)")
OUTPUT = Option(
    "output", str, None, f"the {_or([f.suffix for f in _formats.FORMATS.values()])} file to write",
    "PATH",
)  # fmt: skip
CLASS_INDEX = Option(
    "class_index", str, None,
    "the model's classes in index order: a JSON list, keras.applications' JSON index, or "
    "one name per line (default: the names saved beside --keras-model, else ImageNet's for "
    "1000 classes, else, to evaluate, sorted folder names)", "FILE",
)  # fmt: skip
TFLITE_OPTIONS = (QUANTIZATION, CALIBRATION_DIR, IO_DTYPE, CLASS_INDEX)
EXPORT_OPTIONS = (*MODEL_OPTIONS, KERAS_MODEL, *TFLITE_OPTIONS, INPUT_SIZE, OUTPUT)

# -------------------------------------------------------------- evaluate

IMAGES = Option(
    "images", str, None,
    "folder of images, or of one sub-folder per class (WordNet ids for ImageNet, or the "
    "names of --class-index)", "DIR",
)  # fmt: skip
LIMIT = Option("limit", int, None, "evaluate at most N images", "N")
EVALUATE_OPTIONS = (IMAGES, CLASS_INDEX, *MODEL_OPTIONS, KERAS_MODEL, RESIZE, CROP, LIMIT)

# ------------------------------------------------------------- benchmark

THREADS = Option("threads", int, (1,), "CPU thread counts, one row each", "N", multiple=True)
RUNS = Option("runs", int, 50, "timed runs", "N")
WARMUP = Option("warmup", int, 5, "untimed runs first", "N")
ACCELERATOR = Option(
    "accelerator", str, "cpu",
    "LiteRT accelerator here: cpu, or gpu for LiteRT's GPU accelerator (WebGPU on Vulkan)",
    "{cpu,gpu}",
)  # fmt: skip
RUNTIME = Option(
    "runtime", str, ("compiled",),
    "LiteRT runtime here, one row each: compiled (litert-benchmark, a CompiledModel) or "
    "interpreter (LiteRT's Interpreter, which most apps call; cpu only)",
    "{compiled,interpreter}", multiple=True,
)  # fmt: skip
ADB = Option("adb", bool, False, "run on an Android device with benchmark_model")
BENCHMARK_BINARY = Option(
    "benchmark_binary", str, None, "TFLite benchmark_model binary for the device (with --adb)",
    "PATH",
)  # fmt: skip
SERIAL = Option("serial", str, None, "adb device serial (with --adb)")
GPU = Option("gpu", bool, False, "GPU delegate (with --adb)")
NNAPI = Option("nnapi", bool, False, "NNAPI delegate (with --adb)")
OP_PROFILING = Option(
    "op_profiling", bool, False, "print benchmark_model's per-operator profile (with --adb)"
)
XNNPACK = Option("xnnpack", bool, True, "the XNNPACK delegate (with --adb)")
JSON_OUT = Option("json_out", str, None, "also write the results as JSON", "PATH")
PHONE_OPTIONS = (BENCHMARK_BINARY, SERIAL, GPU, NNAPI, OP_PROFILING, XNNPACK)
BENCHMARK_OPTIONS = (THREADS, RUNS, WARMUP, ACCELERATOR, RUNTIME, ADB, *PHONE_OPTIONS, JSON_OUT)


# --------------------------------------------------------------- parsers


def add_arguments(parser, options, **defaults):
    """Adds `options` to an argparse `parser` (`defaults` overrides theirs)."""
    for option in options:
        default = defaults.get(option.name, option.default)
        if option.type is bool:
            action = "store_false" if default else "store_true"
            help = ("without " if default else "") + option.help
            parser.add_argument(option.flag, dest=option.name, action=action, help=help)
            continue
        shown = " ".join(map(str, default)) if option.multiple else default
        parser.add_argument(
            option.flag,
            dest=option.name,
            type=option.type,
            default=list(default) if option.multiple else default,
            nargs="+" if option.multiple else None,
            metavar=option.metavar,
            help=option.help + ("" if default is None else f" (default: {shown})"),
        )


def define_flags(options, **defaults):
    """Defines `options` as absl flags (`defaults` overrides theirs)."""
    from absl import flags

    define = {
        str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
        bool: flags.DEFINE_bool,
    }  # fmt: skip
    for option in options:
        default = defaults.get(option.name, option.default)
        if option.multiple:
            flags.DEFINE_list(option.name, [str(value) for value in default], option.help)
        else:
            define[option.type](option.name, default, option.help)


def values(source, options):
    """`{name: value}` of `options` from an argparse namespace or absl's FLAGS
    (whose lists hold text, converted here)."""
    found = {}
    for option in options:
        value = getattr(source, option.name)
        if option.multiple and value is not None:
            try:
                value = [option.type(item) for item in value]
            except ValueError:
                raise ValueError(
                    f"--{option.name} takes {option.type.__name__} values. "
                    f"Received: --{option.name}={','.join(map(str, value))}"
                ) from None
        found[option.name] = value
    return found


# ------------------------------------------------ what the values turn into


def parse_weights(text):
    """A `weights` value from a command line: "none" means random weights."""
    if text is None or str(text).lower() == "none":
        return None
    return text


def spec_for(model="v2", alpha=1.0, groups=3):
    """The spec of `model` ("v1"/"v2", or "shufflenetv1"/"shufflenetv2")."""
    from keras_shufflenet import models

    if model not in _VERSIONS:
        raise ValueError(f"`model` must be one of {sorted(_VERSIONS)}. Received: model={model!r}")
    if _VERSIONS[model] == "v2":
        return models.v2_spec(alpha)
    return models.v1_spec(groups, alpha)


def eval_size(spec, weights_value="imagenet", crop=None, resize=None):
    """`(resize, crop)`: the arguments, else the weights' published evaluation
    size (256/224 without published weights), its resize scaled to `crop`."""
    from keras_shufflenet.weights import _registry, _store

    weights_value = parse_weights(weights_value)
    _store.check_weights_argument(weights_value)
    reference = (_DEFAULT_RESIZE, _DEFAULT_CROP)
    try:
        entry = _registry.get_entry(spec)
        reference = (entry.resize, entry.crop)
    except ValueError:
        if weights_value == "imagenet":
            raise
    return image_size(*reference, crop=crop, resize=resize)


def image_size(reference_resize, reference_crop, *, crop=None, resize=None):
    """`(resize, crop)` from a reference pair and optional overrides."""
    from keras_shufflenet.models._builder import MIN_SIZE

    for name, value in (("crop", crop), ("resize", resize)):
        if value is not None and (not isinstance(value, int) or value < MIN_SIZE):
            raise ValueError(
                f"`{name}` must be an integer of at least {MIN_SIZE}. "
                f"Received: {name}={value!r}"
            )
    crop = crop or reference_crop
    resize = resize or _images.resize_for_crop(crop, reference_resize, reference_crop)
    if crop > resize:
        raise ValueError(
            f"`crop` must not exceed `resize`. Received: crop={crop}, resize={resize}"
        )
    return resize, crop


def check_model_source(weights="imagenet", keras_model=None):
    """Checks `weights` or a saved `keras_model` (not both) before anything is built."""
    from keras_shufflenet.weights import _store

    if keras_model is None:
        _store.check_weights_argument(parse_weights(weights))
        return
    if parse_weights(weights) not in ("imagenet", None):
        raise ValueError(
            "Pass either a saved model or weights, not both. "
            f"Received: keras_model={keras_model!r}, weights={weights!r}"
        )
    _files.existing_file(keras_model, (".keras",), "keras_model", "saved .keras model")


def load_model(model="v2", alpha=1.0, groups=3, weights="imagenet", keras_model=None,
               crop=None, resize=None):
    """`(keras model, resize, crop)` from a variant and weights, or from a `.keras` file.

    Every argument is checked before a model is built or a file is read.
    """
    from keras_shufflenet import models

    check_model_source(weights, keras_model)
    if keras_model is None:
        spec = spec_for(model, alpha, groups)
        resize, crop = eval_size(spec, weights, crop=crop, resize=resize)
        return models.build_model(spec, weights=parse_weights(weights)), resize, crop
    saved = _load_saved_model(keras_model)
    fixed = saved.inputs[0].shape[1] if len(saved.inputs[0].shape) == 4 else None
    resize, crop = image_size(_DEFAULT_RESIZE, _DEFAULT_CROP, crop=crop or fixed, resize=resize)
    return saved, resize, crop


def class_names(class_index=None, keras_model=None):
    """The model's class names in index order: those of the `class_index`
    file, else those saved beside the `keras_model` file (`finetune` writes
    them), else `None`."""
    from keras_shufflenet import _class_names

    if class_index is not None:
        return _class_names.load_class_index(class_index)
    return _class_names.saved_class_names(keras_model)


def _load_saved_model(path):
    import zipfile

    import keras

    try:
        if not zipfile.is_zipfile(path):
            raise zipfile.BadZipFile("not a zip archive")
        return keras.saving.load_model(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a complete .keras file (truncated or damaged: "
            f"{' '.join(str(error).split())}). Expected a file written by `model.save`. "
            f"Received: keras_model={os.fspath(path)!r}"
        ) from None


__all__ = [
    "ACCELERATOR",
    "ADB",
    "ALPHA",
    "BENCHMARK_BINARY",
    "BENCHMARK_OPTIONS",
    "CALIBRATION_DIR",
    "CLASS_INDEX",
    "CROP",
    "EVALUATE_OPTIONS",
    "EXPORT_OPTIONS",
    "FORMAT",
    "GPU",
    "GROUPS",
    "IMAGES",
    "INPUT_SIZE",
    "IO_DTYPE",
    "JSON_OUT",
    "KERAS_MODEL",
    "LIMIT",
    "MODEL",
    "MODEL_OPTIONS",
    "NNAPI",
    "OPSET",
    "OP_PROFILING",
    "OUTPUT",
    "Option",
    "PHONE_OPTIONS",
    "QUANTIZATION",
    "RESIZE",
    "RUNS",
    "RUNTIME",
    "SERIAL",
    "THREADS",
    "TFLITE_OPTIONS",
    "VERBOSE",
    "WARMUP",
    "WEIGHTS",
    "XNNPACK",
    "add_arguments",
    "check_model_source",
    "class_names",
    "define_flags",
    "eval_size",
    "image_size",
    "load_model",
    "parse_weights",
    "spec_for",
    "values",
]
