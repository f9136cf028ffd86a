"""`BatchNormalization` with fast TensorFlow kernels on CPUs.

Keras 3 normalises with separate moment, subtract, multiply and add ops, and
lets autodiff derive the backward pass: on a CPU that costs half of a
ShuffleNet training step. This subclass keeps Keras' weights, config and
numbers (biased moving variance, exact epsilon) and, where it can, computes
the same thing with fewer passes over memory:

- training: TensorFlow's fused kernel (oneDNN) where oneDNN handles the
  channel count well (a multiple of 4), otherwise moments and one
  multiply-add with a hand-written gradient (two reductions, one pass);
- inference: folded into a producing depthwise convolution (filter and
  bias), or the fused kernel, which TensorFlow's graph optimiser folds into a
  producing Conv2D (and its ReLU); one multiply-add where neither applies
  and oneDNN's kernel is slow.

Elsewhere (other backends, GPUs and TPUs, where XLA fuses Keras' ops anyway,
masks, mixed precision, renorm, synchronised statistics) it is Keras' layer.
"""

import functools

import keras

# Channel counts oneDNN's fused batch norm runs fast on (measured: C=58 is 2x
# slower than the hand-written path, C=56 and C=60 2x faster).
_FUSED_CHANNEL_MULTIPLE = 4


@functools.cache
def tensorflow_cpu_only():
    """Whether TensorFlow sees no GPU and no TPU."""
    import tensorflow as tf

    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _tensorflow_fast_path(layer, inputs, mask):
    if keras.backend.backend() != "tensorflow" or mask is not None:
        return False
    if layer.renorm or layer.synchronized or not (layer.center and layer.scale):
        return False
    if len(inputs.shape) != 4 or layer.axis not in (-1, 3) or inputs.shape[-1] is None:
        return False
    if keras.backend.standardize_dtype(inputs.dtype) != "float32" or layer.compute_dtype != "float32":
        return False
    return tensorflow_cpu_only()


def _values_per_channel(x):
    import tensorflow as tf

    return tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype)


def _fused_training(x, gamma, beta, epsilon):
    """`(y, mean, biased variance)` from TensorFlow's fused kernel."""
    import tensorflow as tf

    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=tf.zeros_like(gamma),
        variance=tf.ones_like(gamma), epsilon=epsilon, data_format="NHWC", is_training=True,
    )
    # The kernel returns the Bessel-corrected variance; Keras keeps the biased one.
    count = _values_per_channel(x)
    return y, mean, variance * ((count - 1.0) / count)


def _two_pass_training(x, gamma, beta, epsilon):
    """`(y, mean, variance)`: moments, then y = x * scale + shift, with the
    closed-form gradient instead of autodiff's chain of broadcasts."""
    import tensorflow as tf

    axes = [0, 1, 2]
    mean, variance = tf.nn.moments(x, axes)
    inv_std = tf.math.rsqrt(variance + epsilon)

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        scale = gamma * inv_std
        y = x * scale + (beta - mean * scale)

        def grad(dy):
            count = _values_per_channel(x)
            sum_dy = tf.reduce_sum(dy, axes)
            sum_dy_x = tf.reduce_sum(dy * x, axes)
            dgamma = inv_std * (sum_dy_x - mean * sum_dy)
            # dx = scale * (dy - mean(dy) - x_hat * mean(dy * x_hat)), as a*dy + b*x + c
            b = -scale * dgamma * inv_std / count
            c = scale * (dgamma * inv_std * mean - sum_dy) / count
            return dy * scale + (x * b + c), dgamma, sum_dy

        return y, grad

    return normalize(x, gamma, beta), mean, variance


def _inference(x, gamma, beta, mean, variance, epsilon):
    """Batch norm with the moving statistics, in the cheapest form for where
    `x` comes from: folded into the depthwise convolution that produced it;
    the fused kernel, which grappler folds into a producing Conv2D (and its
    ReLU), or where oneDNN runs it fast; one multiply-add otherwise."""
    import tensorflow as tf

    producer = _sole_producer(x)
    if producer is not None and producer.type == "DepthwiseConv2dNative":
        return _folded_depthwise(producer, gamma, beta, mean, variance, epsilon)
    if (producer is not None and producer.type == "Conv2D") or (
        x.shape[-1] % _FUSED_CHANNEL_MULTIPLE == 0
    ):
        return tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=mean, variance=variance, epsilon=epsilon,
            data_format="NHWC", is_training=False,
        )[0]
    scale = gamma * tf.math.rsqrt(variance + epsilon)
    return x * scale + (beta - mean * scale)


def _sole_producer(x):
    """The graph op that produced `x` and nothing else reads (None in eager)."""
    op = getattr(x, "op", None)
    if op is None or len(op.outputs) != 1 or op.outputs[0].consumers():
        return None
    if op.type in ("DepthwiseConv2dNative", "Conv2D") and op.get_attr("data_format") != b"NHWC":
        return None
    return op


def _folded_depthwise(conv, gamma, beta, mean, variance, epsilon):
    """The depthwise convolution `conv` again, with the batch norm folded into
    its filter and a bias (grappler folds batch norm into Conv2D only); the
    original op, left unread, is pruned from the graph."""
    import tensorflow as tf

    scale = gamma * tf.math.rsqrt(variance + epsilon)
    inputs, kernel = conv.inputs
    attrs = {name: conv.get_attr(name) for name in (
        "strides", "padding", "explicit_paddings", "data_format", "dilations")}
    folded_kernel = kernel * tf.reshape(scale, kernel.shape[2:])
    outputs = tf.raw_ops.DepthwiseConv2dNative(input=inputs, filter=folded_kernel, **attrs)
    return tf.nn.bias_add(outputs, beta - mean * scale)


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, faster on TensorFlow CPUs.

    Same arguments, weights and results (to float rounding); see the module
    docstring for where the fast kernels apply.
    """

    def call(self, inputs, training=None, mask=None):
        if not _tensorflow_fast_path(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        gamma, beta = self.gamma.value, self.beta.value
        if not (training and self.trainable):
            return _inference(
                inputs, gamma, beta, self.moving_mean.value, self.moving_variance.value,
                self.epsilon,
            )
        if inputs.shape[-1] % _FUSED_CHANNEL_MULTIPLE == 0:
            outputs, mean, variance = _fused_training(inputs, gamma, beta, self.epsilon)
        else:
            outputs, mean, variance = _two_pass_training(inputs, gamma, beta, self.epsilon)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum)
        )
        return outputs
