"""Assembles a ShuffleNet functional model from a spec and the
`keras.applications` argument set, shared by V1 and V2."""

import keras
from keras import layers

from keras_shufflenet import _imagenet
from keras_shufflenet.weights import _registry, _store
from keras_shufflenet.models import _blocks, _specs

MIN_SIZE = 32


def _check_arguments(spec, *, include_top, weights, input_shape, pooling, classes,
                     classifier_activation):
    """Checks arguments in keras.applications' order, before anything is built."""
    _store.check_weights_argument(weights)
    if weights == "imagenet":
        _registry.get_entry(spec)  # raises if this variant has no weights
        if include_top and classes != _imagenet.NUM_CLASSES:
            raise ValueError(
                'If using `weights="imagenet"` with `include_top=True`, `classes` '
                f"should be {_imagenet.NUM_CLASSES}. Received: classes={classes}"
            )
        if include_top and classifier_activation not in (None, "softmax"):
            raise ValueError(
                'With `weights="imagenet"` only `classifier_activation=None` or '
                '"softmax" keeps the meaning of the pretrained head. '
                f"Received: classifier_activation={classifier_activation!r}"
            )
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(
            f"`classes` must be a positive integer. Received: classes={classes!r}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            '`pooling` must be one of None, "avg" or "max". '
            f"Received: pooling={pooling!r}"
        )
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "ShuffleNet models are channels-last only; call "
            '`keras.config.set_image_data_format("channels_last")`. Received: '
            f"image_data_format={keras.config.image_data_format()!r}"
        )
    if input_shape is not None:
        _check_input_shape(input_shape, weights)


def _check_input_shape(input_shape, weights):
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(d is None or isinstance(d, int) for d in shape):
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels) of integers "
            f"or None. Received: input_shape={input_shape!r}"
        )
    if shape[2] is None:
        raise ValueError(
            f"The channel count of `input_shape` must be known. Received: input_shape={shape}"
        )
    if weights is not None and shape[2] != 3:
        raise ValueError(
            "Pretrained weights expect 3 input channels (RGB); use `weights=None` "
            f"for other channel counts. Received: input_shape={shape}"
        )
    if any(d is not None and d < MIN_SIZE for d in shape[:2]):
        raise ValueError(
            f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}. "
            f"Received: input_shape={shape}"
        )


def _make_input(input_tensor, input_shape):
    if input_shape is None:
        input_shape = (None, None, 3)
        if input_tensor is not None:
            input_shape = tuple(keras.ops.shape(input_tensor)[1:])
    if input_tensor is None:
        return keras.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def features(x, spec, nn=_blocks.KERAS_LAYERS):
    """The convolutional body: stem, three stages and (V2) `conv5`.

    `nn` is the layer namespace (see `_blocks`): Keras 3 unless rebuilding
    the model in another Keras, as the quantization subpackage does.
    """
    x = _blocks.stem(x, spec.stem_channels, nn=nn)
    for i, (_, name, channels, strides) in enumerate(spec.units()):
        x = spec.unit(x, channels, strides=strides, name=name, first=i == 0, nn=nn)
    if spec.head_channels:
        x = _blocks.conv_bn(x, spec.head_channels, name="conv5", nn=nn)
    return x


def build_model(spec, *, include_top=True, weights="imagenet", input_tensor=None,
                input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", include_preprocessing=True, name=None):
    """Builds (and loads weights into) the model described by `spec`."""
    _check_arguments(
        spec,
        include_top=include_top,
        weights=weights,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    inputs = _make_input(input_tensor, input_shape)
    _check_input_shape(inputs.shape[1:], weights)
    x = inputs
    if include_preprocessing:
        scale, offset = _imagenet.normalization_constants(inputs.shape[-1])
        x = layers.Rescaling(scale=scale, offset=offset, name="preprocessing")(x)
    x = backbone = features(x, spec)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(
            classes, activation=classifier_activation, name="predictions",
            dtype=_head_dtype(),
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, x, name=name or spec.default_name)
    if weights is not None:
        _store.load_weights(model, spec, weights, features=backbone)
        # Where the weights came from, for the metadata of an export (not saved).
        model._keras_shufflenet_weights = weights
    return model


def _head_dtype():
    """float32 for the classifier under a mixed-precision policy (Keras'
    advice: logits and softmax in float32, and metrics such as top-5 accept
    no float16/bfloat16 predictions); the global policy otherwise."""
    if keras.config.dtype_policy().name.startswith("mixed_"):
        return "float32"
    return None


def stage_outputs(model):
    """The last output of each stage (and of `conv5` for V2), by stage name.

    Useful to build detection or segmentation backbones::

        backbone = ShuffleNetV2(include_top=False, weights=None)
        features = stage_outputs(backbone)  # {"stage2": ..., "stage3": ..., ...}
        keras.Model(backbone.inputs, list(features.values()))
    """
    try:
        spec = _specs.spec_from_model(model)
    except ValueError:
        raise ValueError(
            "`stage_outputs` expects a ShuffleNet built by keras_shufflenet. "
            f"Received: model.name={model.name!r}"
        ) from None
    return {
        stage: model.get_layer(name).output for stage, name in spec.stage_output_names().items()
    }
