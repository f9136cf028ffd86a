"""Keras 3 layers of quantization-aware training (`engine="keras"`), on every backend.

- `FakeQuant`: per-tensor int8 fake quantization of an activation with a
  trainable range `[min, max]` (`keras.quantizers.fake_quant_with_min_max_vars`,
  whose gradient trains the range where values are clipped); one layer may be
  called at several places that the int8 graph gives one scale (`sites`).
- `QuantConv2D`, `QuantDepthwiseConv2D`: a convolution with the BatchNorm
  after it folded in as TFLite folds it (kernel `w * gamma / sqrt(var + eps)`
  per output channel, bias `beta - mean * gamma / sqrt(var + eps)`), on the
  BatchNorm's moving statistics (frozen, as usual when fine-tuning with QAT:
  the folded weights are then those the int8 file holds), the folded kernel
  fake-quantized per output channel, symmetric, as TFLite quantizes it
  (scale `max|w| / 127`, values in [-127, 127]).
- `QuantDense`: the classifier, its kernel fake-quantized per output unit.

All are registered serializable: QAT models save to `.keras` and load back
without `custom_objects`.
"""

import keras
from keras import ops

_PACKAGE = "keras_shufflenet"


def _fake_quant_per_channel(kernel, axis):
    """`kernel` fake-quantized per channel of `axis`, symmetric int8 (narrow
    range: [-127, 127] times `max|w| / 127`), as TFLite quantizes weights."""
    # The channels go last: Keras' JAX and PyTorch fake quantization
    # broadcasts the per-channel range against the last axis.
    kernel = ops.moveaxis(kernel, axis, -1)
    reduce = list(range(len(kernel.shape) - 1))
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=reduce), 1e-12))
    quantized = keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1
    )
    return ops.moveaxis(quantized, -1, axis)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FakeQuant(keras.layers.Layer):
    """Per-tensor int8 fake quantization with a trainable range.

    Args:
        minimum, maximum: The initial range (the variables `min` and `max`
            hold the learnt one). Defaults to `-6.0` and `6.0`.
        sites: Names of the float model's layers whose outputs this range
            quantizes (one scale for all of them in the int8 file).
        in_training: Whether to quantize in training too. `False` for a
            softmax's probabilities: quantized ones reach 0, whose loss
            gradient is useless (and NaN on JAX). Defaults to `True`.
        **kwargs: Layer arguments; `trainable=False` fixes the range.
    """

    def __init__(self, minimum=-6.0, maximum=6.0, sites=(), in_training=True, **kwargs):
        super().__init__(**kwargs)
        self.minimum, self.maximum = float(minimum), float(maximum)
        self.sites = [str(site) for site in sites]
        self.in_training = bool(in_training)
        self.min = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.minimum), name="min"
        )
        self.max = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.maximum), name="max"
        )

    def call(self, inputs, training=None):
        if training and not self.in_training:
            return inputs
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, self.min, self.max, num_bits=8)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "minimum": self.minimum, "maximum": self.maximum,
                "sites": list(self.sites), "in_training": self.in_training}


class _FoldedBatchNorm:
    """The BatchNorm folded into a convolution (mixin of the two below)."""

    def _init_folding(self, epsilon, input_scale):
        self.epsilon = float(epsilon)
        self.input_scale = None if input_scale is None else [float(s) for s in input_scale]

    def _build_batch_norm(self, channels):
        def weight(name, value, trainable):
            return self.add_weight(shape=(channels,), name=name, trainable=trainable,
                                   initializer=keras.initializers.Constant(value))

        self.gamma, self.beta = weight("gamma", 1.0, True), weight("beta", 0.0, True)
        self.moving_mean = weight("moving_mean", 0.0, False)
        self.moving_variance = weight("moving_variance", 1.0, False)

    def folded(self):
        """`(kernel, bias)`: the BatchNorm (and `input_scale`) folded in, not quantized."""
        scale = self.gamma * ops.rsqrt(self.moving_variance + self.epsilon)
        kernel = self.kernel
        if self.input_scale is not None:  # the preprocessing's scale (see `_keras_qat`)
            kernel = kernel * ops.reshape(ops.convert_to_tensor(self.input_scale), (1, 1, -1, 1))
        kernel = kernel * ops.reshape(scale, self._channel_shape)
        return kernel, self.beta - self.moving_mean * scale

    def _folding_config(self):
        return {"epsilon": self.epsilon, "input_scale": self.input_scale}

    # Keras' convolutions save their kernel and bias only: save every variable.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QuantConv2D(_FoldedBatchNorm, keras.layers.Conv2D):
    """`Conv2D` (no bias) -> BatchNorm, folded, the kernel fake-quantized per
    output channel. `Conv2D`'s arguments, plus the BatchNorm's `epsilon` and
    `input_scale` (per input channel, multiplied into the kernel before
    folding: the preprocessing scale the deploy graph folds into `conv1`)."""

    _channel_shape = (1, 1, 1, -1)

    def __init__(self, *args, epsilon=1e-5, input_scale=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_folding(epsilon, input_scale)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_batch_norm(self.filters)

    def call(self, inputs):
        kernel, bias = self.folded()
        outputs = self.convolution_op(inputs, _fake_quant_per_channel(kernel, axis=3)) + bias
        return outputs if self.activation is None else self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), **self._folding_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QuantDepthwiseConv2D(_FoldedBatchNorm, keras.layers.DepthwiseConv2D):
    """`DepthwiseConv2D` (no bias) -> BatchNorm, folded, the kernel
    fake-quantized per channel. `DepthwiseConv2D`'s arguments plus `epsilon`."""

    _channel_shape = (1, 1, -1, 1)

    def __init__(self, *args, epsilon=1e-5, input_scale=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_folding(epsilon, input_scale)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_batch_norm(input_shape[-1] * self.depth_multiplier)

    def call(self, inputs):
        kernel, bias = self.folded()
        outputs = ops.depthwise_conv(
            inputs, _fake_quant_per_channel(kernel, axis=2), strides=self.strides,
            padding=self.padding, dilation_rate=self.dilation_rate, data_format=self.data_format,
        ) + bias
        return outputs if self.activation is None else self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), **self._folding_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class QuantDense(keras.layers.Dense):
    """`Dense` with its kernel fake-quantized per output unit (TFLite's
    per-channel FULLY_CONNECTED weights)."""

    def call(self, inputs):
        outputs = ops.matmul(inputs, _fake_quant_per_channel(self.kernel, axis=1))
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)
