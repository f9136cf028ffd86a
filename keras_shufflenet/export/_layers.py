"""The deploy graphs' own layers (none of them shadows a Keras layer).

The deploy rewrites (`_deploy`, `_deploy_v2`, `_mirror`) put these in place
of the model's layers: channel splits, gathers and concatenations for the
shuffles, a per-channel offset for the preprocessing, a group-by-group
convolution for LiteRT's GPU accelerator, the mirror of the image, and a
stand-in for a removed layer.

XNNPACK's int8 CONCATENATION takes 2 to 5 inputs; one with more is left to
the reference kernels and cuts the delegated graph in two, so longer
concatenations are folded from the left, MAX_CONCAT_INPUTS inputs at a time.
"""

import keras
import numpy as np
from keras import layers, ops

MAX_CONCAT_INPUTS = 5


def concatenate_channels(tensors):
    """`ops.concatenate(tensors, axis=-1)` in ops of at most MAX_CONCAT_INPUTS inputs."""
    tensors = list(tensors)
    while len(tensors) > MAX_CONCAT_INPUTS:
        tensors = [ops.concatenate(tensors[:MAX_CONCAT_INPUTS], axis=-1), *tensors[MAX_CONCAT_INPUTS:]]
    return tensors[0] if len(tensors) == 1 else ops.concatenate(tensors, axis=-1)


class ChannelConcat(layers.Layer):
    """Concatenates its inputs on the channel axis, in that order, in ops
    XNNPACK takes whole (see `concatenate_channels`)."""

    def call(self, inputs):
        return concatenate_channels(inputs)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0][:-1], sum(shape[-1] for shape in input_shapes))


class ChannelSplit(layers.Layer):
    """Cuts the channel axis into `parts` equal parts (`_deploy_v2` cuts in
    halves): one SPLIT, which XNNPACK runs as plain copies, where a
    STRIDED_SLICE wakes its worker threads (at 2 threads it takes 2-3 times
    its 1-thread time on ShuffleNet V2's small maps)."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = int(parts)

    def call(self, inputs):
        return ops.split(inputs, self.parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], input_shape[-1] // self.parts)] * self.parts

    def get_config(self):
        return {**super().get_config(), "parts": self.parts}


class ChannelGather(layers.Layer):
    """Concatenates the channel ranges `[(start, stop), ...]` of its input, in that order."""

    def __init__(self, ranges, **kwargs):
        super().__init__(**kwargs)
        self.ranges = [(int(start), int(stop)) for start, stop in ranges]

    def call(self, inputs):
        return concatenate_channels([inputs[..., start:stop] for start, stop in self.ranges])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(stop - start for start, stop in self.ranges))

    def get_config(self):
        return {**super().get_config(), "ranges": self.ranges}


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ChannelOffset(layers.Layer):
    """Adds a constant per-channel offset (the deploy form of preprocessing),
    on rows of `W * C` values, which vectorises where a 3-wide broadcast does not."""

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = [float(v) for v in np.ravel(offset)]

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        offset = np.asarray(self.offset, "float32")
        _, height, width, channels = x.shape
        if height is None or width is None:
            return x + ops.convert_to_tensor(offset, dtype=self.compute_dtype)
        rows = ops.reshape(x, (-1, height, width * channels))
        rows = rows + ops.convert_to_tensor(np.tile(offset, width), dtype=self.compute_dtype)
        return ops.reshape(rows, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class GroupwiseConv2D(layers.Conv2D):
    """A grouped `Conv2D` computed group by group: split, one convolution per
    group, concatenate. Same config and weights as the `Conv2D`."""

    def call(self, inputs):
        parts = ops.split(inputs, self.groups, axis=-1)
        kernels = ops.split(self.kernel, self.groups, axis=-1)
        biases = ops.split(self.bias, self.groups) if self.use_bias else [None] * self.groups
        outputs = []
        for part, kernel, bias in zip(parts, kernels, biases):
            y = ops.conv(
                part, kernel, strides=self.strides, padding=self.padding,
                dilation_rate=self.dilation_rate,
            )  # fmt: skip
            outputs.append(y if bias is None else y + bias)  # fused into each CONV_2D
        outputs = ops.concatenate(outputs, axis=-1)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class MirrorImage(layers.Layer):
    """Reverses height, width and channels (`_mirror`): one REVERSE_V2 over
    contiguous axes, which LiteRT runs as a single reversed copy."""

    def call(self, inputs):
        return ops.flip(inputs, axis=(1, 2, 3))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Removed(layers.Layer):
    """Stands where a rewrite removed a layer (its work now done elsewhere);
    takes the `mask` a BatchNormalization's call records."""

    def call(self, inputs, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
