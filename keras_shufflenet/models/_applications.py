"""ShuffleNet V1 (Zhang et al. 2017) and V2 (Ma et al. 2018) as Keras applications.

The docstrings list the widths and published weights from the spec tables and
the weights registry, so a new row there shows here."""

import textwrap

from keras_shufflenet.models import _builder, _docs, _specs
from keras_shufflenet.weights._registry import REGISTRY

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


def _listed(values):
    return ", ".join(map(str, values))


def _published_v1():
    """Which V1 configurations have ImageNet weights, as a sentence."""
    alphas = {}
    for entry in REGISTRY:
        if entry.version == "v1":
            alphas.setdefault(entry.groups, []).append(entry.alpha)
    sentence = "; ".join(
        f"groups {groups} at alpha {_listed(alphas[groups])}" for groups in sorted(alphas)
    )
    return textwrap.fill(f"ImageNet weights exist for {sentence}.", 78)


def _v2_weights_note():
    published = [entry.alpha for entry in REGISTRY if entry.version == "v2"]
    if list(published) == list(_specs.V2_ALPHAS):
        return "all have ImageNet weights"
    return f"ImageNet weights at {_listed(published)}"


ShuffleNetV2.__doc__ = f"""Instantiates the ShuffleNet V2 architecture.

Reference:
- [ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design](
    https://arxiv.org/abs/1807.11164) (ECCV 2018)

The layout and the ImageNet weights are torchvision's `shufflenet_v2_x*`;
outputs match torchvision to float precision.

Args:
    alpha: Width multiplier, one of {_listed(_specs.V2_ALPHAS)} ({_v2_weights_note()}).
        Defaults to `1.0`.{_docs.COMMON_ARGS}"""

ShuffleNetV1.__doc__ = f"""Instantiates the ShuffleNet V1 architecture.

Reference:
- [ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
    Devices](https://arxiv.org/abs/1707.01083) (CVPR 2018)

The layout and the ImageNet weights are pytorchcv's `shufflenet_g*_w*`
(channel shuffle in the paper's order, pooled shortcut concatenated last).
{_published_v1()}

Args:
    groups: Group count of the 1x1 convolutions, one of {_listed(_specs.V1_GROUPS)}.
        Defaults to `3`.
    alpha: Width multiplier, one of {_listed(_specs.V1_ALPHAS)}. Channel
        counts are rounded to multiples of `4 * groups` (stem: `groups`).
        Defaults to `1.0`.{_docs.COMMON_ARGS}"""
