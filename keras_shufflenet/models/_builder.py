"""Assembles a ShuffleNet functional model from a spec and the
`keras.applications` argument set, shared by V1 and V2, in the data format of
`keras.config.image_data_format()` (as `keras.applications` does)."""

import keras
from keras import layers

from keras_shufflenet import _imagenet
from keras_shufflenet.weights import _registry, _store
from keras_shufflenet.models import _batch_norm, _blocks, _specs

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
    check_data_format()
    if input_shape is not None:
        _check_input_shape(input_shape, weights)


def check_data_format():
    """Refuses `"channels_first"` where it cannot run: TensorFlow has no
    channels-first convolution kernels on CPUs (only on GPUs)."""
    data_format = keras.config.image_data_format()
    if (data_format == "channels_first" and keras.backend.backend() == "tensorflow"
            and _batch_norm.tensorflow_cpu_only()):
        raise ValueError(
            'ShuffleNet models run "channels_first" on the JAX and PyTorch backends, and on '
            "TensorFlow with a GPU; TensorFlow has no channels-first convolutions on CPUs. "
            'Use `keras.config.set_image_data_format("channels_last")` (the exports are '
            "channels-last anyway) or another backend. "
            f"Received: image_data_format={data_format!r} on TensorFlow without a GPU"
        )


def _spatial_and_channels(shape):
    """`((height, width), channels)` of an input shape in the current data format."""
    if keras.config.image_data_format() == "channels_first":
        return shape[1:], shape[0]
    return shape[:2], shape[2]


def _check_input_shape(input_shape, weights):
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(d is None or isinstance(d, int) for d in shape):
        order = (
            "(channels, height, width)" if _blocks.channel_axis() == 1
            else "(height, width, channels)"
        )
        raise ValueError(
            f"`input_shape` must be a tuple {order} of integers "
            f"or None. Received: input_shape={input_shape!r}"
        )
    spatial, channels = _spatial_and_channels(shape)
    if channels is None:
        raise ValueError(
            f"The channel count of `input_shape` must be known. Received: input_shape={shape}"
        )
    if weights is not None and channels != 3:
        raise ValueError(
            "Pretrained weights expect 3 input channels (RGB); use `weights=None` "
            f"for other channel counts. Received: input_shape={shape}"
        )
    if any(d is not None and d < MIN_SIZE for d in spatial):
        raise ValueError(
            f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}. "
            f"Received: input_shape={shape}"
        )


def preprocessing_layer(channels, **kwargs):
    """The `Rescaling` from [0, 255] pixels to the references' input, per
    channel on the channel axis of the current data format."""
    scale, offset = _imagenet.normalization_constants(channels)
    if _blocks.channel_axis() == 1 and isinstance(scale, list):
        scale, offset = [[[s]] for s in scale], [[[o]] for o in offset]
    return layers.Rescaling(scale=scale, offset=offset, name="preprocessing", **kwargs)


def _make_input(input_tensor, input_shape):
    if input_shape is None:
        input_shape = (3, None, None) if _blocks.channel_axis() == 1 else (None, None, 3)
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
        x = preprocessing_layer(inputs.shape[_blocks.channel_axis()])(x)
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
