"""tf_keras twins of `keras_shufflenet.layers`, for quantization-aware training.

Same semantics as the Keras 3 layers: `ChannelShuffle` moves channel
`i * (C // groups) + j` to `j * groups + i` (the paper's order), through a
rank-3 view so every tensor stays at rank <= 4; `ChannelSplit` cuts the
channel axis into equal parts. Both only move values, so in an int8 model they
keep the scale of their input (see `configs.PassThroughQuantizeConfig`).
"""

from keras_shufflenet.quantization._imports import tf, tf_keras

PACKAGE = "keras_shufflenet_qat"


@tf_keras.utils.register_keras_serializable(package=PACKAGE)
class ChannelShuffle(tf_keras.layers.Layer):
    """Channel shuffle in the paper's order (channels last), for tf_keras."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, inputs):
        channels = inputs.shape[-1]
        x = tf.reshape(inputs, (-1, self.groups, channels // self.groups))
        x = tf.transpose(x, (0, 2, 1))
        # A static target shape where it is known spares TFLite a SHAPE op.
        shape = inputs.shape[1:]
        if shape.is_fully_defined():
            return tf.reshape(x, (-1, *shape))
        return tf.reshape(x, tf.shape(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf_keras.utils.register_keras_serializable(package=PACKAGE)
class ChannelSplit(tf_keras.layers.Layer):
    """Splits the channel axis into `num_splits` equal parts, for tf_keras."""

    def __init__(self, num_splits=2, **kwargs):
        super().__init__(**kwargs)
        self.num_splits = num_splits

    def call(self, inputs):
        return tf.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        part = input_shape[:-1].concatenate([input_shape[-1] // self.num_splits])
        return [part] * self.num_splits

    def get_config(self):
        return {**super().get_config(), "num_splits": self.num_splits}
