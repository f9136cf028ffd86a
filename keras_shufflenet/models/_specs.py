"""Architecture tables of ShuffleNet V1 and V2, as data.

Both families share the stem (3x3 stride-2 conv + 3x3 stride-2 max pool), three
stages of 4, 8 and 4 units whose first unit has stride 2, and a classifier.
They differ in the unit and in the channel tables below.
"""

import dataclasses

from keras_shufflenet.models import _blocks

STAGE_REPEATS = (4, 8, 4)
STAGE_NAMES = ("stage2", "stage3", "stage4")

# ShuffleNet V2 (Ma et al. 2018, Table 5; torchvision): conv1, stage2-4, conv5.
V2_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}

# ShuffleNet V1 (Zhang et al. 2017, Table 1): stage2-4 output channels at 1x.
V1_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
V1_STEM_CHANNELS = 24
V1_ALPHAS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)

# What each family's arguments take: the rows of the tables above.
V2_ALPHAS = tuple(V2_CHANNELS)
V1_GROUPS = tuple(V1_CHANNELS)


@dataclasses.dataclass(frozen=True)
class ShuffleNetSpec:
    """Everything the builders need to lay out one ShuffleNet variant.

    The two families differ in their unit, their names and where their
    published weights come from; each subclass answers those questions, so
    no other module asks which version a spec is.

    Attributes:
        version: `"v1"` or `"v2"`.
        alpha: Width multiplier.
        groups: Group count of V1's 1x1 convolutions (2 for V2, its shuffle).
        stem_channels: Output channels of `conv1`.
        stage_channels: Output channels of stages 2, 3 and 4.
        head_channels: Output channels of V2's `conv5`; `None` for V1.
        stage_repeats: Units per stage.
    """

    version: str
    alpha: float
    groups: int
    stem_channels: int
    stage_channels: tuple
    head_channels: int | None = None
    stage_repeats: tuple = STAGE_REPEATS

    @property
    def default_name(self):
        """The model name `keras.applications` style: `shufflenet_v2_1x`, `shufflenet_v1_g3_1x`."""
        return self.name_format.format(alpha=self.alpha, groups=self.groups)

    def describe(self):
        """The variant's arguments as a user passes them: `alpha=1` or `groups=3, alpha=1`."""
        return self.arguments_format.format(alpha=self.alpha, groups=self.groups)

    @property
    def feature_channels(self):
        """Channels of the last feature map (before pooling)."""
        return self.head_channels or self.stage_channels[-1]

    @property
    def weights_key(self):
        """`(version, alpha, groups)` of the weights registry (groups `None` for V2)."""
        return (self.version, self.alpha, self.groups)

    def units(self):
        """`(stage, unit_name, channels, strides)` of every unit, in order."""
        for stage, channels, repeats in zip(STAGE_NAMES, self.stage_channels, self.stage_repeats):
            for i in range(repeats):
                yield stage, f"{stage}_unit{i + 1}", channels, 2 if i == 0 else 1

    def stage_output_names(self):
        """`{stage: name of the layer whose output ends it}` (and `conv5` for V2)."""
        names = {}
        for stage, name, _, strides in self.units():
            names[stage] = f"{name}_{self.unit_output_suffix[strides]}"
        if self.head_channels:
            names["conv5"] = "conv5_relu"
        return names


@dataclasses.dataclass(frozen=True)
class V2Spec(ShuffleNetSpec):
    """ShuffleNet V2: split, one branch, concatenate, shuffle (torchvision)."""

    family = "ShuffleNetV2"
    checkpoint_format = "torchvision"
    name_format = "shufflenet_v2_{alpha:g}x"
    arguments_format = "alpha={alpha:g}"
    # Stride-1 units pass half of their input through a split.
    splits_channels = True

    @property
    def weights_key(self):
        return (self.version, self.alpha, None)

    # The layer that ends a unit, by stride.
    unit_output_suffix = {1: "shuffle", 2: "shuffle"}

    def unit(self, x, channels, *, strides, name, first, nn):
        del first
        return _blocks.v2_unit(x, channels, strides=strides, name=name, nn=nn)


@dataclasses.dataclass(frozen=True)
class V1Spec(ShuffleNetSpec):
    """ShuffleNet V1: grouped 1x1 convolutions around a shuffle (pytorchcv)."""

    family = "ShuffleNetV1"
    checkpoint_format = "pytorchcv"
    name_format = "shufflenet_v1_g{groups}_{alpha:g}x"
    arguments_format = "groups={groups}, alpha={alpha:g}"
    splits_channels = False
    unit_output_suffix = {1: "relu", 2: "concat"}

    def unit(self, x, channels, *, strides, name, first, nn):
        # The very first unit's input (the stem) is too narrow to group.
        return _blocks.v1_unit(
            x,
            channels,
            strides=strides,
            groups=self.groups,
            first_groups=1 if first else self.groups,
            name=name,
            nn=nn,
        )


def _round_to_multiple(value, multiple):
    """Nearest positive multiple of `multiple` to `value`, ties rounded up."""
    return max(multiple, int(value / multiple + 0.5) * multiple)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}"
        )


def v2_spec(alpha=1.0):
    """ShuffleNet V2 layout for width `alpha` (one of `V2_ALPHAS`)."""
    _check_choice("alpha", alpha, V2_CHANNELS)
    conv1, *stages, conv5 = V2_CHANNELS[alpha]
    return V2Spec(
        version="v2",
        alpha=float(alpha),
        groups=2,
        stem_channels=conv1,
        stage_channels=tuple(stages),
        head_channels=conv5,
    )


def v1_spec(groups=3, alpha=1.0):
    """ShuffleNet V1 layout for `groups` (`V1_GROUPS`) and width `alpha` (`V1_ALPHAS`).

    Every channel count is scaled by `alpha`, the stem included (as in
    pytorchcv). A unit needs its output and its bottleneck (output / 4)
    divisible by `groups`, so stage widths are rounded to the nearest multiple
    of `4 * groups` and the stem to the nearest multiple of `groups`, ties
    rounded up. All published configurations are already such multiples, so
    for them the rule changes nothing.
    """
    _check_choice("groups", groups, V1_CHANNELS)
    _check_choice("alpha", alpha, V1_ALPHAS)
    return V1Spec(
        version="v1",
        alpha=float(alpha),
        groups=groups,
        stem_channels=_round_to_multiple(V1_STEM_CHANNELS * alpha, groups),
        stage_channels=tuple(
            _round_to_multiple(c * alpha, 4 * groups) for c in V1_CHANNELS[groups]
        ),
    )


def spec_from_model(model):
    """The spec of a ShuffleNet built by this package, read off its layers.

    Works on the Keras 3 models and on their tf_keras twins (see
    `keras_shufflenet.quantization`): a spec matches when every layer that
    ends a stage (`stage_output_names`) exists with the spec's width and,
    for V1, `stage2_unit2_compress` has the spec's group count.
    """
    layers = {layer.name: layer for layer in model.layers}
    groups = getattr(layers.get("stage2_unit2_compress"), "groups", None)
    candidates = [v2_spec(alpha) for alpha in V2_CHANNELS]
    if groups in V1_CHANNELS:
        candidates += [v1_spec(groups, alpha) for alpha in V1_ALPHAS]
    for spec in candidates:
        if _matches(spec, layers):
            return spec
    raise ValueError(
        "Expected a ShuffleNet V1 or V2 built by keras_shufflenet (layers conv1, "
        "stage2..stage4 and, for V2, conv5, with a known width). "
        f"Received: model.name={model.name!r}"
    )


def _matches(spec, layers):
    names = {"conv1": "conv1", **spec.stage_output_names()}
    widths = {"conv1": spec.stem_channels, **dict(zip(STAGE_NAMES, spec.stage_channels))}
    if spec.head_channels:
        widths["conv5"] = spec.head_channels
    if ("conv5" in layers) != ("conv5" in widths):
        return False
    axis = 1 if getattr(layers.get("conv1"), "data_format", None) == "channels_first" else -1
    return all(
        names[key] in layers and layers[names[key]].output.shape[axis] == width
        for key, width in widths.items()
    )
