"""Argument documentation shared by the ShuffleNet V1 and V2 builders."""

COMMON_ARGS = """
    include_top: Whether to include the global pooling and the fully-connected
        `predictions` layer. Defaults to `True`.
    weights: `None` (random initialization), `"imagenet"` (published reference
        weights, converted exactly), or the path to a `.weights.h5`, `.keras`
        or reference PyTorch `.pth` file (converted on load).
        Defaults to `"imagenet"`.
    input_tensor: Optional Keras tensor (output of `keras.Input()`) to use as
        the model's input. Defaults to `None`.
    input_shape: Optional `(height, width, channels)` (`(channels, height,
        width)` under `keras.config.image_data_format() == "channels_first"`);
        height and width may be `None` and must otherwise be at least 32;
        channels must be 3 with pretrained weights. Defaults to `None`, i.e.
        `(None, None, 3)`.
    pooling: Pooling of the features when `include_top=False`: `None` keeps
        the 4D feature map, `"avg"` and `"max"` apply global pooling.
        Defaults to `None`.
    classes: Number of classes when `include_top=True` and no pretrained
        weights are loaded. Defaults to `1000`.
    classifier_activation: Activation of the `predictions` layer, a string or
        callable; `None` returns logits. Only `None` and `"softmax"` are
        allowed with pretrained weights. Defaults to `"softmax"`.
    include_preprocessing: Whether the model normalises its input itself; it
        then takes RGB pixels in [0, 255]. Defaults to `True`.
    name: Model name. Defaults to a name that spells the variant.

Returns:
    A Keras `Model` instance.

Preprocessing: with `include_preprocessing=True` (the default) feed RGB pixels
in [0, 255], in `keras.config.image_data_format()` (channels last by
default; channels first runs on JAX, PyTorch and TensorFlow GPUs);
`keras_shufflenet.preprocess_input` is then a
pass-through. Otherwise feed `(x / 255 - mean) / std` with the ImageNet mean
and std (`preprocess_input(x, include_preprocessing=False)`).
"""
