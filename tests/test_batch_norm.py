"""The fast BatchNormalization computes what keras.layers.BatchNormalization
computes: outputs, gradients and moving statistics, in training and inference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_shufflenet as ks
from keras_shufflenet.layers import BatchNormalization


def _pair(channels, rng):
    """Keras' layer and ours, built with the same random weights and statistics."""
    weights = [
        rng.uniform(0.5, 2.0, channels), rng.normal(size=channels),
        rng.normal(size=channels), rng.uniform(0.5, 2.0, channels),
    ]
    pair = []
    for cls in (keras.layers.BatchNormalization, BatchNormalization):
        layer = cls(epsilon=1e-5, momentum=0.9)
        layer.build((None, None, None, channels))
        layer.set_weights([w.astype("float32") for w in weights])
        pair.append(layer)
    return pair


def _training_step(layer, x, upstream, traced):
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])]

    if traced:
        step = tf.function(step)
    outputs = [v.numpy() for v in step(tf.constant(x))]
    return outputs + [layer.moving_mean.numpy(), layer.moving_variance.numpy()]


# 58 channels take the two-pass path, 64 TensorFlow's fused kernel.
@pytest.mark.parametrize("traced", [True, False])
@pytest.mark.parametrize("channels", [58, 64])
def test_training_matches_keras(channels, traced):
    rng = np.random.default_rng(channels)
    x = (rng.normal(size=(4, 9, 7, channels)) * 3 + 1).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")
    reference, ours = (
        _training_step(layer, x, upstream, traced) for layer in _pair(channels, rng)
    )
    names = ["output", "d_input", "d_gamma", "d_beta", "moving_mean", "moving_variance"]
    for name, expected, actual in zip(names, reference, ours):
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(actual, expected, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("channels", [58, 64])
def test_inference_matches_keras(channels):
    rng = np.random.default_rng(channels)
    x = rng.normal(size=(2, 5, 6, channels)).astype("float32")
    reference, ours = _pair(channels, rng)
    np.testing.assert_allclose(
        ours(x, training=False).numpy(), reference(x, training=False).numpy(), atol=1e-5
    )


def test_frozen_layer_uses_moving_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    reference, ours = _pair(8, rng)
    ours.trainable = False
    np.testing.assert_allclose(
        ours(x, training=True).numpy(), reference(x, training=False).numpy(), atol=1e-5
    )
    np.testing.assert_array_equal(ours.moving_mean.numpy(), reference.moving_mean.numpy())


def test_other_ranks_and_dtypes_fall_back_to_keras():
    rng = np.random.default_rng(1)
    for shape, dtype in [((6, 10), "float32"), ((2, 3, 3, 10), "float16")]:
        x = rng.normal(size=shape).astype(dtype)
        layers = []
        for cls in (keras.layers.BatchNormalization, BatchNormalization):
            layer = cls(dtype="mixed_float16" if dtype == "float16" else None)
            layer(x, training=True)
            layers.append(layer)
        np.testing.assert_allclose(
            layers[1].moving_variance.numpy(), layers[0].moving_variance.numpy(), rtol=1e-3
        )


def test_models_use_it_and_it_is_a_keras_batch_norm(tmp_path):
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(64, 64, 3))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(layer, BatchNormalization) for layer in norms)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.get_layer("conv1_bn"), BatchNormalization)


@pytest.mark.parametrize("channels", [58, 64])
@pytest.mark.parametrize("conv", ["depthwise", "conv", "depthwise_read_twice"])
def test_inference_in_a_graph_after_convolutions_matches_keras(conv, channels):
    # In a traced graph the layer folds itself into the producing convolution.
    rng = np.random.default_rng(channels)
    x = rng.normal(size=(2, 9, 8, channels)).astype("float32")
    convolution = (keras.layers.Conv2D(channels, 1, use_bias=False) if conv == "conv"
                   else keras.layers.DepthwiseConv2D(3, strides=2, use_bias=False))
    convolution.build(x.shape)
    reference, ours = _pair(channels, rng)

    def run(norm):
        @tf.function
        def forward(x):
            features = convolution(x)
            y = norm(features, training=False)
            return y + features if conv == "depthwise_read_twice" else y

        return forward(tf.constant(x)).numpy()

    np.testing.assert_allclose(run(ours), run(reference), atol=1e-5)
