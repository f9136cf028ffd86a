"""`ShuffleNetBackbone`: ShuffleNet V1 and V2 as a keras-hub Backbone, laid
out by the same builder as `ShuffleNetV1`/`ShuffleNetV2`."""

import contextlib
import functools
import types

import keras
from keras_hub.src.models.feature_pyramid_backbone import FeaturePyramidBackbone
from keras_hub.src.utils.keras_utils import standardize_data_format

from keras_shufflenet.hub import _presets
from keras_shufflenet.models import _blocks, _builder, _specs

VERSIONS = ("v1", "v2")
# Pyramid levels (stride 2**n) and the stages that end at them.
PYRAMID_LEVELS = {"P3": "stage2", "P4": "stage3", "P5": "stage4"}


def spec_of(version, alpha, groups):
    """The model spec of a backbone config; ValueErrors name the bad argument."""
    if version not in VERSIONS:
        raise ValueError(f'`version` must be "v1" or "v2". Received: version={version!r}')
    if version == "v2":
        if groups is not None:
            raise ValueError(
                f"ShuffleNet V2 takes no `groups` (use None). Received: groups={groups!r}"
            )
        return _specs.v2_spec(alpha)
    return _specs.v1_spec(groups, alpha)


@contextlib.contextmanager
def image_data_format(data_format):
    """The builder reads keras.config's data format, as keras.applications does."""
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(data_format)
    try:
        yield
    finally:
        keras.config.set_image_data_format(previous)


def _layers_with_dtype(dtype):
    """The builder's layer namespace with `dtype` given to every layer."""
    if dtype is None:
        return _blocks.KERAS_LAYERS
    return types.SimpleNamespace(
        **{
            name: functools.partial(layer, dtype=dtype)
            for name, layer in vars(_blocks.KERAS_LAYERS).items()
        }
    )


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ShuffleNetBackbone(FeaturePyramidBackbone):
    """ShuffleNet V1 and V2 core network.

    Reference:
    - [ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
      Design](https://arxiv.org/abs/1807.11164) (ECCV 2018)
    - [ShuffleNet: An Extremely Efficient Convolutional Neural Network for
      Mobile Devices](https://arxiv.org/abs/1707.01083) (CVPR 2018)

    The layers, names and weights are those of
    `keras_shufflenet.ShuffleNetV2`/`ShuffleNetV1` with
    `include_top=False, include_preprocessing=False`: the backbone takes
    normalised images (`ShuffleNetImageConverter` normalises) and returns
    the last feature map (`conv5` for V2, `stage4` for V1).
    `pyramid_outputs` holds the ends of stages 2, 3 and 4 as `"P3"`, `"P4"`
    and `"P5"` (strides 8, 16 and 32).

    Args:
        version: `"v1"` or `"v2"`. Defaults to `"v2"`.
        alpha: Width multiplier (V2: 0.5, 1.0, 1.5, 2.0; V1: 0.25 to 2.0).
            Defaults to `1.0`.
        groups: V1's group count (1, 2, 3, 4 or 8); `None` for V2.
            Defaults to `None`.
        image_shape: The input shape without the batch size. Defaults to
            `None`: `(None, None, 3)`, or `(3, None, None)` channels first.
        data_format: `None`, `"channels_last"` or `"channels_first"`.
            Defaults to `None`: `keras.config.image_data_format()`.
            TensorFlow runs `"channels_first"` on GPUs only.
        dtype: `None`, a str or a `keras.DTypePolicy`: the dtype of the
            model's computations and weights. Defaults to `None`.

    Example:
    ```python
    backbone = ShuffleNetBackbone(version="v1", groups=3, alpha=0.5)
    features = backbone(np.zeros((1, 224, 224, 3)))  # (1, 7, 7, 480)
    ```
    """

    def __init__(self, version="v2", alpha=1.0, groups=None, image_shape=None,
                 data_format=None, dtype=None, **kwargs):
        spec = spec_of(version, alpha, groups)
        data_format = standardize_data_format(data_format)
        with image_data_format(data_format):
            _builder.check_data_format()
            if image_shape is None:
                channels_first = data_format == "channels_first"
                image_shape = (3, None, None) if channels_first else (None, None, 3)
            image_input = keras.layers.Input(shape=image_shape)
            x = _builder.features(image_input, spec, nn=_layers_with_dtype(dtype))
        super().__init__(inputs=image_input, outputs=x, dtype=dtype, **kwargs)
        stage_ends = spec.stage_output_names()
        self.pyramid_outputs = {
            level: self.get_layer(stage_ends[stage]).output
            for level, stage in PYRAMID_LEVELS.items()
        }
        self.version = version
        self.alpha = alpha
        self.groups = groups
        self.image_shape = tuple(image_shape)
        self.data_format = data_format
        self.spec = spec

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A backbone from a package preset name (`PRESETS`: its reference
        weights fetched and converted as `weights="imagenet"` does), or from
        a preset directory or handle as keras-hub loads them."""
        if not (isinstance(preset, str) and preset in _presets.PRESETS):
            return super().from_preset(preset, load_weights=load_weights, **kwargs)
        backbone = cls(**{**_presets.PRESETS[preset]["config"], **kwargs})
        if load_weights:
            _presets.load_imagenet_weights(backbone)
        return backbone

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "version": self.version,
                "alpha": self.alpha,
                "groups": self.groups,
                "image_shape": self.image_shape,
                "data_format": self.data_format,
            }
        )
        return config
