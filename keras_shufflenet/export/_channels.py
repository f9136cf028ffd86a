"""Channel slices and concatenations in the form XNNPACK's int8 kernels take.

The deploy graphs replace channel shuffles by slices of a convolution's
output and concatenations of the slices (no int8 TRANSPOSE, which moves
bytes one at a time). XNNPACK's int8 CONCATENATION takes 2 to 5 inputs; one
with more is left to the reference kernels and cuts the delegated graph in
two, so longer concatenations are folded from the left, 5 inputs at a time.
"""

import numpy as np
from keras import layers, ops

MAX_CONCAT_INPUTS = 5


def concatenate(tensors):
    """`ops.concatenate(tensors, axis=-1)` in ops of at most MAX_CONCAT_INPUTS inputs."""
    tensors = list(tensors)
    while len(tensors) > MAX_CONCAT_INPUTS:
        tensors = [ops.concatenate(tensors[:MAX_CONCAT_INPUTS], axis=-1), *tensors[MAX_CONCAT_INPUTS:]]
    return tensors[0] if len(tensors) == 1 else ops.concatenate(tensors, axis=-1)


class Concatenate(layers.Layer):
    """Concatenates its inputs on the channel axis, in that order (see `concatenate`)."""

    def call(self, inputs):
        return concatenate(inputs)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0][:-1], sum(shape[-1] for shape in input_shapes))


class ChannelSlices(layers.Layer):
    """Cuts the channel axis into consecutive parts of the given sizes."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(size) for size in sizes]

    def call(self, inputs):
        bounds = np.cumsum([0, *self.sizes])
        return [inputs[..., a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


class ChannelGather(layers.Layer):
    """Concatenates the channel ranges `[(start, stop), ...]` of its input, in that order."""

    def __init__(self, ranges, **kwargs):
        super().__init__(**kwargs)
        self.ranges = [(int(start), int(stop)) for start, stop in ranges]

    def call(self, inputs):
        return concatenate([inputs[..., start:stop] for start, stop in self.ranges])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(stop - start for start, stop in self.ranges))

    def get_config(self):
        return {**super().get_config(), "ranges": self.ranges}
