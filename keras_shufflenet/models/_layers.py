"""Public Keras layers of the ShuffleNet family.

Both are plain, serializable Keras layers (no `Lambda`), so models that use
them save to `.keras` and load back without `custom_objects`, on every backend.
Like Keras' convolutions, they work on the channel axis of `data_format`
(`keras.config.image_data_format()` unless given).
"""

import keras
from keras import ops


def _check_positive_int(name, value):
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def _standardize_data_format(data_format):
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            '`data_format` must be "channels_last" or "channels_first". '
            f"Received: data_format={data_format!r}"
        )
    return data_format


def _channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def _check_channels(layer, input_shape, name, parts):
    """The known channel count of `input_shape`, divisible by `parts`."""
    channels = input_shape[_channel_axis(layer.data_format)]
    if channels is None:
        raise ValueError(
            f"{layer.__class__.__name__} needs a known channel count. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if channels % parts:
        raise ValueError(
            f"{layer.__class__.__name__} needs a channel count divisible by {name}={parts}. "
            f"Received: channels={channels}"
        )


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ChannelShuffle(keras.layers.Layer):
    """Channel shuffle of ShuffleNet, in the paper's order.

    Channel `i * (C // groups) + j` moves to position `j * groups + i`: the
    channels are viewed as a `(groups, C // groups)` matrix and transposed, as
    in torchvision and pytorchcv.

    Args:
        groups: Number of channel groups; must divide the channel count.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `None`: `keras.config.image_data_format()`.
    """

    def __init__(self, groups, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = _check_positive_int("groups", groups)
        self.data_format = _standardize_data_format(data_format)

    def build(self, input_shape):
        _check_channels(self, input_shape, "groups", self.groups)

    def call(self, inputs):
        channels = inputs.shape[_channel_axis(self.data_format)]
        # Rank-3 (pixels, groups, channels per group) or, channels first,
        # rank-4 (batch, groups, channels per group, pixels) views keep every
        # tensor at rank <= 4, which mobile delegates require.
        if self.data_format == "channels_last":
            x = ops.reshape(inputs, (-1, self.groups, channels // self.groups))
            x = ops.transpose(x, (0, 2, 1))
        else:
            batch, pixels = _batch_and_pixels(inputs)
            x = ops.reshape(inputs, (batch, self.groups, channels // self.groups, pixels))
            x = ops.transpose(x, (0, 2, 1, 3))
        # A static target shape where the input's is known: exported graphs
        # (ONNX, TFLite) then need no run-time shape computation.
        static = None not in inputs.shape[1:]
        return ops.reshape(x, (-1, *inputs.shape[1:]) if static else ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "data_format": self.data_format}


def _batch_and_pixels(inputs):
    """`(batch, H * W)` of an NCHW tensor for a reshape: `-1` for the batch
    where the pixel count is static, the run-time batch size otherwise."""
    height, width = inputs.shape[2:]
    if height is None or width is None:
        return ops.shape(inputs)[0], -1
    return -1, height * width


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ChannelSplit(keras.layers.Layer):
    """Splits the channel axis into `num_splits` equal parts.

    ShuffleNet V2's stride-1 unit uses it to pass half of the channels through
    untouched, as `torch.chunk(x, 2, dim=1)` does in torchvision.

    Args:
        num_splits: Number of equal parts. Defaults to `2`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `None`: `keras.config.image_data_format()`.
    """

    def __init__(self, num_splits=2, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.num_splits = _check_positive_int("num_splits", num_splits)
        self.data_format = _standardize_data_format(data_format)

    def build(self, input_shape):
        _check_channels(self, input_shape, "num_splits", self.num_splits)

    def call(self, inputs):
        return ops.split(inputs, self.num_splits, axis=_channel_axis(self.data_format))

    def compute_output_shape(self, input_shape):
        axis = len(input_shape) - 1 if self.data_format == "channels_last" else 1
        part = list(input_shape)
        part[axis] = input_shape[axis] // self.num_splits
        return [tuple(part)] * self.num_splits

    def get_config(self):
        return {
            **super().get_config(), "num_splits": self.num_splits, "data_format": self.data_format,
        }
