"""ShuffleNet V1 (Zhang et al. 2017) and V2 (Ma et al. 2018) as Keras applications."""

from keras_shufflenet.models import _builder, _docs, _specs

# The keras.applications arguments both families take, passed on as they are.
_COMMON_ARGS = (
    "include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
    "classifier_activation", "include_preprocessing", "name",
)  # fmt: skip


def _build(spec, arguments):
    return _builder.build_model(spec, **{name: arguments[name] for name in _COMMON_ARGS})


def ShuffleNetV2(alpha=1.0, include_top=True, weights="imagenet", input_tensor=None,
                 input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, name=None):
    return _build(_specs.v2_spec(alpha), locals())


def ShuffleNetV1(groups=3, alpha=1.0, include_top=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, name=None):
    return _build(_specs.v1_spec(groups, alpha), locals())


ShuffleNetV2.__doc__ = f"""Instantiates the ShuffleNet V2 architecture.

Reference:
- [ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design](
    https://arxiv.org/abs/1807.11164) (ECCV 2018)

The layout and the ImageNet weights are torchvision's `shufflenet_v2_x*`;
outputs match torchvision to float precision.

Args:
    alpha: Width multiplier, one of 0.5, 1.0, 1.5, 2.0 (all have ImageNet
        weights). Defaults to `1.0`.{_docs.COMMON_ARGS}"""

ShuffleNetV1.__doc__ = f"""Instantiates the ShuffleNet V1 architecture.

Reference:
- [ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
    Devices](https://arxiv.org/abs/1707.01083) (CVPR 2018)

The layout and the ImageNet weights are pytorchcv's `shufflenet_g*_w*`
(channel shuffle in the paper's order, pooled shortcut concatenated last).
ImageNet weights exist for groups 1 and 3 at every alpha up to 1.0 and for
every group count at alpha 1.0.

Args:
    groups: Group count of the 1x1 convolutions, one of 1, 2, 3, 4, 8.
        Defaults to `3`.
    alpha: Width multiplier, one of 0.25, 0.5, 0.75, 1.0, 1.5, 2.0. Channel
        counts are rounded to multiples of `4 * groups` (stem: `groups`).
        Defaults to `1.0`.{_docs.COMMON_ARGS}"""
