"""Public Keras layers of the ShuffleNet family.

Both are plain, serializable Keras layers (no `Lambda`), so models that use
them save to `.keras` and load back without `custom_objects`, on every backend.
"""

import keras
from keras import ops


def _check_positive_int(name, value):
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def _check_channels(layer, input_shape, name, parts):
    """The known channel count of `input_shape`, divisible by `parts`."""
    channels = input_shape[-1]
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
    """Channel shuffle of ShuffleNet, in the paper's order (channels last).

    Channel `i * (C // groups) + j` moves to position `j * groups + i`: the
    channels are viewed as a `(groups, C // groups)` matrix and transposed, as
    in torchvision and pytorchcv.

    Args:
        groups: Number of channel groups; must divide the channel count.
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = _check_positive_int("groups", groups)

    def build(self, input_shape):
        _check_channels(self, input_shape, "groups", self.groups)

    def call(self, inputs):
        channels = inputs.shape[-1]
        # A rank-3 view (pixels, groups, channels per group) keeps every
        # tensor at rank <= 4, which mobile delegates require.
        x = ops.reshape(inputs, (-1, self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 2, 1))
        # A static target shape where the input's is known: exported graphs
        # (ONNX, TFLite) then need no run-time shape computation.
        static = None not in inputs.shape[1:]
        return ops.reshape(x, (-1, *inputs.shape[1:]) if static else ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ChannelSplit(keras.layers.Layer):
    """Splits the channel axis into `num_splits` equal parts (channels last).

    ShuffleNet V2's stride-1 unit uses it to pass half of the channels through
    untouched, as `torch.chunk(x, 2, dim=1)` does in torchvision.

    Args:
        num_splits: Number of equal parts. Defaults to `2`.
    """

    def __init__(self, num_splits=2, **kwargs):
        super().__init__(**kwargs)
        self.num_splits = _check_positive_int("num_splits", num_splits)

    def build(self, input_shape):
        _check_channels(self, input_shape, "num_splits", self.num_splits)

    def call(self, inputs):
        return ops.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        part = (*input_shape[:-1], input_shape[-1] // self.num_splits)
        return [part] * self.num_splits

    def get_config(self):
        return {**super().get_config(), "num_splits": self.num_splits}
