"""int8 keeps the accuracy of a trained ShuffleNet, on the synthetic dataset.

The slow test runs `benchmarks/quantization_accuracy.py`'s pipeline
(`training.quantization_check.run`) with fewer held-out images and no float
control; the fast tests check the dataset it trains on.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

from training import synthetic  # noqa: E402


def test_make_dataset_shapes_dtypes_and_balanced_labels():
    images, labels = synthetic.make_dataset(203, image_size=48, seed=5)
    assert images.shape == (203, 48, 48, 3) and images.dtype == np.uint8
    assert labels.shape == (203,) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=synthetic.NUM_CLASSES)
    assert len(counts) == synthetic.NUM_CLASSES == len(synthetic.CLASS_NAMES)
    assert counts.min() >= 203 // synthetic.NUM_CLASSES and counts.max() <= counts.min() + 1
    assert len(np.unique(labels[:40])) > 1  # shuffled, not in class order
    assert images.min() == 0 and images.max() == 255  # full range used
    _, few = synthetic.make_dataset(30, num_classes=3)
    assert set(few) == {0, 1, 2}
    empty, none = synthetic.make_dataset(0)
    assert empty.shape == (0, 64, 64, 3) and none.shape == (0,)


def test_make_dataset_is_deterministic_given_the_seed():
    a, la = synthetic.make_dataset(1500, seed=3)  # more than one chunk
    b, lb = synthetic.make_dataset(1500, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    c, _ = synthetic.make_dataset(1500, seed=4)
    assert np.mean(a != c) > 0.5
    d, _ = synthetic.make_dataset(10, seed=(3, 0, 1))  # a sequence seed works too
    assert d.shape == (10, 64, 64, 3)


def test_make_dataset_defaults_give_the_images_they_always_gave():
    """`sizes` and `contrast` left alone draw exactly the stream of before."""
    images, labels = synthetic.make_dataset(64, 32, seed=11)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == "ae47566b5aff9a4ac2619efe2c559b286b6568898b16488401b7226474de9583"


def _foreground_pixels(images):
    """Pixels of each image far from its most common (background) colour."""
    grey = images.astype(np.int64).sum(-1)
    background = np.array([np.bincount(g.ravel()).argmax() for g in grey])
    return (np.abs(grey - background[:, None, None]) > 90).sum((1, 2))


def test_make_dataset_sizes_split_every_class_by_size():
    images, labels = synthetic.make_dataset(1200, 48, num_classes=2, seed=4, sizes=3)
    assert labels.max() == 5 and np.bincount(labels).min() == 200
    assert synthetic.class_names(2, 3) == (
        "circle_size0", "circle_size1", "circle_size2",
        "square_size0", "square_size1", "square_size2",
    )
    assert synthetic.class_names(3) == synthetic.CLASS_NAMES[:3]
    area = _foreground_pixels(images)
    for shape in (0, 1):  # circles, squares: each size bin is larger than the one before
        means = [area[labels == shape * 3 + k].mean() for k in range(3)]
        assert means[0] < means[1] < means[2], means


def test_make_dataset_contrast_scales_the_foreground_and_the_noise():
    bright, labels = synthetic.make_dataset(300, 32, seed=6)
    faint, same_labels = synthetic.make_dataset(300, 32, seed=6, contrast=0.1)
    np.testing.assert_array_equal(labels, same_labels)
    spread = [images.astype(np.float32).std((1, 2)).mean() for images in (bright, faint)]
    assert 0.07 < spread[1] / spread[0] < 0.13, spread  # measured: about 0.1
    # The backgrounds are as bright as before: only the differences shrink.
    assert abs(faint.mean() - bright.mean()) < 0.1 * bright.mean()


@pytest.mark.parametrize(
    "kwargs",
    [{"num_images": -1}, {"num_images": 2.5}, {"num_images": 4, "image_size": 8},
     {"num_images": 4, "num_classes": 1}, {"num_images": 4, "num_classes": 9},
     {"num_images": 4, "sizes": 0}, {"num_images": 4, "sizes": 9},
     {"num_images": 4, "contrast": 0.0}, {"num_images": 4, "contrast": 1.5}],
)
def test_make_dataset_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received:"):
        synthetic.make_dataset(**kwargs)


def _spectrum_features(images):
    """Log magnitude of the low 2-D frequencies of the grey image: invariant to
    the position of the shape, and to its brightness after standardising."""
    grey = images.astype(np.float32).mean(-1)
    grey -= grey.mean((1, 2), keepdims=True)
    grey /= grey.std((1, 2), keepdims=True) + 1e-6
    spectrum = np.abs(np.fft.rfft2(grey))[:, :, :17]
    spectrum = np.concatenate([spectrum[:, :16], spectrum[:, -16:]], axis=1)
    return np.log1p(spectrum).reshape(len(images), -1)


def test_every_class_is_distinguishable():
    """A nearest-centroid classifier on translation-invariant features (no
    learning to speak of) already tells every class apart far above chance."""
    x_train, y_train = synthetic.make_dataset(2000, seed=0)
    x_test, y_test = synthetic.make_dataset(800, seed=1)
    train, test = _spectrum_features(x_train), _spectrum_features(x_test)
    mean, std = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    centroids = np.stack([train[y_train == k].mean(0) for k in range(synthetic.NUM_CLASSES)])
    predicted = ((test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    chance = 1 / synthetic.NUM_CLASSES
    assert np.mean(predicted == y_test) >= 5 * chance  # measured: 0.88
    recall = [np.mean(predicted[y_test == k] == k) for k in range(synthetic.NUM_CLASSES)]
    assert min(recall) >= 3 * chance, dict(zip(synthetic.CLASS_NAMES, recall))


# The benchmark's task (ShuffleNetV1 g3 0.25x, 32 classes at 32x32), with
# 3000 held-out images and no float control.
SLOW_CONFIG = {"val_images": 3000, "float_control": False}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
def test_qat_wins_back_what_post_training_int8_loses(tmp_path):
    """On the benchmark's task full-int8 PTQ loses at least 1 point of
    held-out top-1, and int8 QAT (tfmot, and Keras 3 trained on JAX) wins
    back at least half of it, with int8 files that answer like their QAT
    models."""
    from training.quantization_check import QAT_ENGINES, Config, markdown_table, run

    config = Config(**SLOW_CONFIG)
    result = run(config, tmp_path)
    print(markdown_table(result))
    top1 = result["top1"]
    assert top1["keras_float"] >= 0.3, result  # learnt: chance is 1/32
    assert abs(result["delta_points"]["tflite_float32"]) <= 0.1, result
    float_top1, ptq_top1 = top1["keras_float"], top1["tflite_int8_ptq"]
    assert result["ptq_loss_points"] == pytest.approx((float_top1 - ptq_top1) * 100), result
    assert result["ptq_loss_points"] >= 1.0, result
    for engine in QAT_ENGINES:
        qat_top1 = top1[f"tflite_int8_{engine}_qat"]
        recovered = (qat_top1 - ptq_top1) / (float_top1 - ptq_top1)
        assert result["recovered"][engine] == pytest.approx(recovered, abs=1e-4), result
        assert recovered >= 0.5, (engine, result)
        # The int8 file is the QAT model's: it answers like it, image by image.
        assert result["agreement"][engine] >= 0.85, (engine, result)  # measured: 0.89-0.92
        assert result["step_ms"][f"{engine}_qat"] > 0, result
    assert result["backends"]["keras_qat"] == "jax", result
