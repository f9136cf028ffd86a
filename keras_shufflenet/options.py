"""The options every front end shares, defined once, and what they turn into.

The `keras-shufflenet` command (argparse), the programs in `tflite/` and
`training/` (absl flags) and the benchmarks take the same model and image-size
options. Each is declared here once (`Option`) and rendered for either parser
(`add_arguments`, `define_flags`); parsers only convert types, and every value
is checked once, by the library functions below, so every front end prints
the same error for the same mistake.
"""

import argparse
import dataclasses
import os

from keras_shufflenet import _files, _images

VERSIONS = {"v1": "v1", "v2": "v2", "shufflenetv1": "v1", "shufflenetv2": "v2"}
DEFAULT_RESIZE, DEFAULT_CROP = 256, 224


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option: `--name-with-dashes` for argparse,
    `--name_with_underscores` for absl."""

    name: str
    type: type
    default: object
    help: str
    metavar: str | None = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


MODEL = Option(
    "model", str, "v2", "ShuffleNet version (shufflenetv1 and shufflenetv2 also work)", "{v1,v2}"
)
ALPHA = Option("alpha", float, 1.0, "width multiplier (V2: 0.5, 1.0, 1.5, 2.0; V1: 0.25 to 2.0)")
GROUPS = Option("groups", int, 3, "V1 group count: 1, 2, 3, 4 or 8")
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


def add_arguments(parser, options, **defaults):
    """Adds `options` to an argparse `parser` (`defaults` overrides theirs)."""
    for option in options:
        default = defaults.get(option.name, option.default)
        parser.add_argument(
            option.flag,
            dest=option.name,
            type=option.type,
            default=default,
            metavar=option.metavar,
            help=option.help + ("" if default is None else f" (default: {default})"),
        )


def define_flags(options, **defaults):
    """Defines `options` as absl flags (`defaults` overrides theirs)."""
    from absl import flags

    define = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float}
    for option in options:
        define[option.type](option.name, defaults.get(option.name, option.default), option.help)


def values(source, options):
    """`{name: value}` of `options` from an argparse namespace or absl's FLAGS."""
    return {option.name: getattr(source, option.name) for option in options}


# ------------------------------------------------ what the values turn into


def parse_weights(text):
    """A `weights` value from a command line: "none" means random weights."""
    if text is None or str(text).lower() == "none":
        return None
    return text


def spec_for(model="v2", alpha=1.0, groups=3):
    """The spec of `model` ("v1"/"v2", or "shufflenetv1"/"shufflenetv2")."""
    from keras_shufflenet import models

    if model not in VERSIONS:
        raise ValueError(f"`model` must be one of {sorted(VERSIONS)}. Received: model={model!r}")
    if VERSIONS[model] == "v2":
        return models.v2_spec(alpha)
    return models.v1_spec(groups, alpha)


def eval_size(spec, weights_value="imagenet", crop=None, resize=None):
    """`(resize, crop)`: the arguments, else the weights' published evaluation
    size (256/224 without published weights), its resize scaled to `crop`."""
    from keras_shufflenet import weights as weights_lib

    weights_value = parse_weights(weights_value)
    weights_lib.check_weights_argument(weights_value)
    reference = (DEFAULT_RESIZE, DEFAULT_CROP)
    try:
        entry = weights_lib.get_entry(spec)
        reference = (entry.resize, entry.crop)
    except ValueError:
        if weights_value == "imagenet":
            raise
    return image_size(*reference, crop=crop, resize=resize)


def image_size(reference_resize, reference_crop, *, crop=None, resize=None):
    """`(resize, crop)` from a reference pair and optional overrides."""
    from keras_shufflenet.models import MIN_SIZE

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
    from keras_shufflenet import weights as weights_lib

    if keras_model is None:
        weights_lib.check_weights_argument(parse_weights(weights))
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
    resize, crop = image_size(DEFAULT_RESIZE, DEFAULT_CROP, crop=crop or fixed, resize=resize)
    return saved, resize, crop


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


class OneLineErrorParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one `error:` line (exit 2),
    like every other error of the command."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")
