"""Layers of the deploy graphs that Keras does not have."""

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ChannelOffset(keras.layers.Layer):
    """Adds a constant per-channel offset (the deploy form of preprocessing)."""

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = [float(v) for v in np.ravel(offset)]

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        offset = np.asarray(self.offset, "float32")
        _, height, width, channels = x.shape
        if height is None or width is None:
            return x + keras.ops.convert_to_tensor(offset, dtype=self.compute_dtype)
        rows = keras.ops.reshape(x, (-1, height, width * channels))
        rows = rows + keras.ops.convert_to_tensor(np.tile(offset, width), dtype=self.compute_dtype)
        return keras.ops.reshape(rows, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


class Removed(layers.Layer):
    """Stands where a rewrite removed a layer (its work now done elsewhere);
    takes the `mask` a BatchNormalization's call records."""

    def call(self, inputs, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class MirrorImage(layers.Layer):
    """Reverses height, width and channels (`_mirror`): one REVERSE_V2 over
    contiguous axes, which LiteRT runs as a single reversed copy."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=(1, 2, 3))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
