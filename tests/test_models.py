"""The keras.applications contract: arguments, errors, names, serialization."""

import keras
import numpy as np
import pytest

import keras_shufflenet as ks
from keras_shufflenet.models import _specs as specs
from keras_shufflenet.layers import ChannelShuffle, ChannelSplit

from helpers import randomize_batchnorm

BUILDERS = {
    "v1": lambda **kw: ks.ShuffleNetV1(groups=3, alpha=0.5, **kw),
    "v2": lambda **kw: ks.ShuffleNetV2(alpha=0.5, **kw),
}


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _pixels(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _randomized(model, seed=0):
    """`model` with random weights and BatchNorm statistics fitted to pixels:
    logits of order 1 that change with the input (see `randomize_batchnorm`)."""
    return randomize_batchnorm(model, seed=seed, weights=True, data=_pixels(8, 64, 64, 3, seed=99))


def test_channel_shuffle_is_the_papers_order():
    x = np.arange(2 * 3 * 12, dtype="float32").reshape(1, 2, 3, 12)
    y = keras.ops.convert_to_numpy(ChannelShuffle(3)(x))
    # torchvision: view (g, C/g), transpose, flatten.
    expected = x.reshape(1, 2, 3, 3, 4).transpose(0, 1, 2, 4, 3).reshape(1, 2, 3, 12)
    np.testing.assert_array_equal(y, expected)
    assert list(y[0, 0, 0, :6]) == [0, 4, 8, 1, 5, 9]


def test_channel_split_halves_the_channels():
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    first, second = (keras.ops.convert_to_numpy(t) for t in ChannelSplit(2)(x))
    np.testing.assert_array_equal(first.ravel(), [0, 1, 2, 3])
    np.testing.assert_array_equal(second.ravel(), [4, 5, 6, 7])


@pytest.mark.parametrize("layer", [ChannelShuffle, ChannelSplit])
def test_layers_reject_indivisible_channels(layer):
    with pytest.raises(ValueError, match="Received: channels=7"):
        layer(2)(keras.Input((4, 4, 7)))
    with pytest.raises(ValueError, match="Received: "):
        layer(0)


@pytest.mark.parametrize("version", sorted(BUILDERS))
def test_keras_round_trip_without_custom_objects(version, tmp_path):
    model = _randomized(BUILDERS[version](weights=None, classifier_activation=None))
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    x = _pixels(2, 96, 128, 3)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    expected = model.predict(x, verbose=0)
    assert np.ptp(expected) > 0.5  # logits of order 1: the comparison means something
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("version", sorted(BUILDERS))
def test_weights_file_round_trip(version, tmp_path):
    model = _randomized(BUILDERS[version](weights=None, classes=7, classifier_activation=None))
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    x = _pixels(2, 64, 64, 3)
    expected = model.predict(x, verbose=0)
    assert np.ptp(expected) > 0.5
    for path in ("w.weights.h5", "m.keras"):
        loaded = BUILDERS[version](
            weights=str(tmp_path / path), classes=7, classifier_activation=None
        )
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0), expected, rtol=0, atol=1e-5, err_msg=path
        )


def test_layer_names_and_stage_outputs():
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, include_top=False, input_shape=(224, 224, 3))
    names = [layer.name for layer in model.layers]
    for name in ("conv1", "maxpool", "stage2_unit1_branch1_dwconv", "conv5"):
        assert name in names
    outputs = ks.stage_outputs(model)
    assert list(outputs) == ["stage2", "stage3", "stage4", "conv5"]
    shapes = [tuple(t.shape) for t in outputs.values()]
    assert shapes == [(None, 28, 28, 48), (None, 14, 14, 96), (None, 7, 7, 192), (None, 7, 7, 1024)]
    # The last layer carrying each stage prefix is that stage's output.
    last = {n.split("_")[0]: n for n in names if n.startswith("stage")}
    assert last["stage4"] == "stage4_unit4_shuffle"
    head = ks.ShuffleNetV1(groups=3, weights=None, input_shape=(224, 224, 3))
    assert head.layers[-1].name == "predictions"
    assert list(ks.stage_outputs(head)) == ["stage2", "stage3", "stage4"]


def test_backbone_for_dense_prediction():
    base = ks.ShuffleNetV1(groups=8, alpha=0.25, weights=None, include_top=False)
    features = ks.stage_outputs(base)
    backbone = keras.Model(base.inputs, list(features.values()))
    maps = backbone.predict(_pixels(1, 128, 160, 3), verbose=0)
    assert [m.shape[1:3] for m in maps] == [(16, 20), (8, 10), (4, 5)]


@pytest.mark.parametrize("pooling, shape", [(None, (None, 7, 7, 1024)), ("avg", (None, 1024)), ("max", (None, 1024))])
def test_pooling(pooling, shape):
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, include_top=False, pooling=pooling, input_shape=(224, 224, 3))
    assert tuple(model.output.shape) == shape


def test_classes_and_logits():
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, classes=10, classifier_activation=None)
    y = model.predict(_pixels(3, 64, 64, 3), verbose=0)
    assert y.shape == (3, 10)
    assert not np.allclose(y.sum(axis=1), 1.0)
    probs = ks.ShuffleNetV2(alpha=0.5, weights=None, classes=10).predict(_pixels(3, 64, 64, 3), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_input_tensor_is_used():
    tensor = keras.Input((96, 96, 3), name="camera")
    model = ks.ShuffleNetV1(groups=1, alpha=0.25, weights=None, input_tensor=tensor)
    assert model.inputs[0] is tensor
    assert tuple(model.output.shape) == (None, 1000)


def test_one_channel_input_without_weights():
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(64, 64, 1), classes=3)
    assert model.predict(_pixels(2, 64, 64, 1), verbose=0).shape == (2, 3)
    with pytest.raises(ValueError, match=r"Received: input_shape=\(64, 64, 1\)"):
        ks.ShuffleNetV2(weights="imagenet", input_shape=(64, 64, 1))


def test_preprocessing_inside_equals_preprocess_input():
    # Logits of a model whose outputs depend on its input (an input 5% off
    # moves them by about 1), so that a preprocessing constant a few percent
    # off fails this; default-initialised weights would hide it.
    inside = _randomized(ks.ShuffleNetV2(alpha=0.5, weights=None, classifier_activation=None))
    outside = ks.ShuffleNetV2(
        alpha=0.5, weights=None, include_preprocessing=False, classifier_activation=None
    )
    outside.set_weights(inside.get_weights())
    x = _pixels(4, 64, 64, 3)
    assert ks.preprocess_input(x) is x
    normalised = ks.preprocess_input(x, include_preprocessing=False)
    expected = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(normalised, expected, rtol=1e-5, atol=1e-5)
    logits = outside.predict(normalised, verbose=0)
    assert np.ptp(logits) > 0.5
    assert np.abs(outside.predict(normalised * 1.01, verbose=0) - logits).max() > 1e-2
    np.testing.assert_allclose(inside.predict(x, verbose=0), logits, rtol=0, atol=2e-5)


def test_minimum_input_size():
    model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(32, 32, 3))
    assert model.predict(_pixels(1, 32, 32, 3), verbose=0).shape == (1, 1000)
    with pytest.raises(ValueError, match=r"at least 32x32.*Received: input_shape=\(31, 64, 3\)"):
        ks.ShuffleNetV2(weights=None, input_shape=(31, 64, 3))


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"alpha": 0.75}, "alpha=0.75"),
        ({"weights": "imagenet", "classes": 10}, "classes=10"),
        ({"weights": "nonexistent.weights.h5"}, "weights='nonexistent.weights.h5'"),
        ({"weights": 42}, "weights=42"),
        ({"weights": None, "pooling": "median"}, "pooling='median'"),
        ({"weights": None, "input_shape": (224, 224)}, "input_shape=(224, 224)"),
        ({"weights": "imagenet", "classifier_activation": "relu"}, "classifier_activation='relu'"),
        ({"weights": None, "classes": 0}, "classes=0"),
    ],
)
def test_v2_bad_arguments(kwargs, received):
    with pytest.raises(ValueError) as info:
        ks.ShuffleNetV2(**kwargs)
    assert str(info.value).endswith(f"Received: {received}")


@pytest.mark.parametrize(
    "kwargs, received",
    [({"groups": 5}, "groups=5"), ({"alpha": 1.25}, "alpha=1.25"), ({"groups": 2, "alpha": 0.5}, "weights='imagenet'")],
)
def test_v1_bad_arguments(kwargs, received):
    with pytest.raises(ValueError) as info:
        ks.ShuffleNetV1(**kwargs)
    assert str(info.value).endswith(f"Received: {received}")


def test_unpublished_v1_lists_published_configurations():
    with pytest.raises(ValueError, match="groups=3, alpha=0.25;.*groups=8, alpha=1"):
        ks.ShuffleNetV1(groups=4, alpha=0.5, weights="imagenet")


@pytest.mark.parametrize("groups", sorted(specs.V1_CHANNELS))
@pytest.mark.parametrize("alpha", specs.V1_ALPHAS)
def test_every_v1_configuration_builds_with_valid_channels(groups, alpha):
    spec = specs.v1_spec(groups, alpha)
    assert spec.stem_channels % groups == 0
    for channels, base in zip(spec.stage_channels, specs.V1_CHANNELS[groups]):
        assert channels % (4 * groups) == 0
        assert abs(channels - base * alpha) <= 2 * groups  # nearest multiple of 4g
    model = ks.ShuffleNetV1(groups=groups, alpha=alpha, weights=None, input_shape=(32, 32, 3))
    assert tuple(model.output.shape) == (None, 1000)


def test_published_v1_channels_are_pytorchcv_channels():
    # pytorchcv: int(c * width) for stages and stem alike.
    for groups, alpha in [(1, 0.25), (3, 0.25), (1, 0.75), (3, 0.75), (8, 1.0)]:
        spec = specs.v1_spec(groups, alpha)
        assert spec.stem_channels == int(24 * alpha)
        assert spec.stage_channels == tuple(int(c * alpha) for c in specs.V1_CHANNELS[groups])


def test_decode_predictions_offline():
    preds = np.zeros((2, 1000), dtype="float32")
    preds[0, 281], preds[0, 285], preds[1, 504] = 0.7, 0.2, 0.9
    decoded = ks.decode_predictions(preds, top=2)
    assert decoded[0] == [("n02123045", "tabby", pytest.approx(0.7)), ("n02124075", "Egyptian_cat", pytest.approx(0.2))]
    assert decoded[1][0][:2] == ("n03063599", "coffee_mug")
    with pytest.raises(ValueError, match=r"Received: preds.shape=\(2, 10\)"):
        ks.decode_predictions(np.zeros((2, 10)))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_the_head_in_float32_and_trains(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = ks.ShuffleNetV2(alpha=0.5, weights=None, input_shape=(32, 32, 3), classes=6,
                                classifier_activation=None)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("conv1").compute_dtype == policy.split("_")[1]
    assert model.output.dtype == "float32"
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.TopKCategoricalAccuracy(k=5)])
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    logs = model.train_on_batch(x, np.eye(6, dtype="float32")[[0, 1, 2, 3]], return_dict=True)
    assert np.isfinite(logs["loss"]) and 0.0 <= logs["top_k_categorical_accuracy"] <= 1.0
