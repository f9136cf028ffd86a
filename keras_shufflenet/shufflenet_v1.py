"""ShuffleNet V1 (Zhang et al. 2017) as a Keras application."""

from keras_shufflenet import builder, docs, specs


def ShuffleNetV1(groups=3, alpha=1.0, include_top=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, name=None):
    return builder.build_model(
        specs.v1_spec(groups, alpha),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        name=name,
    )


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
        Defaults to `1.0`.{docs.COMMON_ARGS}"""
