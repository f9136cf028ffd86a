"""ShuffleNet V2 (Ma et al. 2018) as a Keras application."""

from keras_shufflenet import builder, docs, specs


def ShuffleNetV2(alpha=1.0, include_top=True, weights="imagenet", input_tensor=None,
                 input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax", include_preprocessing=True, name=None):
    return builder.build_model(
        specs.v2_spec(alpha),
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


ShuffleNetV2.__doc__ = f"""Instantiates the ShuffleNet V2 architecture.

Reference:
- [ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design](
    https://arxiv.org/abs/1807.11164) (ECCV 2018)

The layout and the ImageNet weights are torchvision's `shufflenet_v2_x*`;
outputs match torchvision to float precision.

Args:
    alpha: Width multiplier, one of 0.5, 1.0, 1.5, 2.0 (all have ImageNet
        weights). Defaults to `1.0`.{docs.COMMON_ARGS}"""
