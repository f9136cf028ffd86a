"""The keras-hub family (`keras_shufflenet.hub`): keras-hub's own model
harness on both families, presets, and the classifier against ShuffleNetV1/V2."""

import hashlib
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from keras_hub.src.tests.test_case import TestCase  # noqa: E402

import keras_shufflenet as ks  # noqa: E402
from keras_shufflenet import hub  # noqa: E402
from keras_shufflenet.weights import _registry, _store  # noqa: E402

# Both families: V2, and V1 with groups (grouped convolutions and shuffles).
FAMILIES = {
    "v2": {"version": "v2", "alpha": 0.5},
    "v1": {"version": "v1", "alpha": 0.5, "groups": 3},
}
SIZE = 64
# Levels P3, P4, P5 of a 64x64 input: strides 8, 16, 32.
PYRAMID_SIZES = [(8, 8), (4, 4), (2, 2)]
FEATURE_CHANNELS = {"v2": 1024, "v1": 480}


class ShuffleNetHarnessTest(TestCase):
    """keras-hub's checks, run as for its own models; on TensorFlow CPU the
    harness skips channels_first (and mixed precision and quantization run),
    on PyTorch channels_first runs (and the harness skips those two):
    `test_harness_on_other_backends` runs this class there."""

    def _backbone(self, family, **kwargs):
        return hub.ShuffleNetBackbone(**FAMILIES[family], image_shape=(SIZE, SIZE, 3), **kwargs)

    def _images(self):
        return np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")

    def _classifier_kwargs(self, family):
        converter = hub.ShuffleNetImageConverter(image_size=(SIZE, SIZE))
        return {
            "backbone": self._backbone(family),
            "num_classes": 2,
            "preprocessor": hub.ShuffleNetImageClassifierPreprocessor(converter),
        }

    def test_vision_backbone(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                self.run_vision_backbone_test(
                    cls=hub.ShuffleNetBackbone,
                    init_kwargs={**FAMILIES[family], "image_shape": (SIZE, SIZE, 3)},
                    # A backend tensor: with a NumPy array, the mixed-precision
                    # check's `compute_output_spec` fails in Keras 3.15 (on
                    # keras-hub's ResNetBackbone too).
                    input_data=keras.ops.convert_to_tensor(np.ones((2, SIZE, SIZE, 3), "float32")),
                    expected_output_shape=(2, 2, 2, FEATURE_CHANNELS[family]),
                    expected_pyramid_output_keys=["P3", "P4", "P5"],
                    expected_pyramid_image_sizes=PYRAMID_SIZES,
                )

    def test_task(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                self.run_task_test(
                    cls=hub.ShuffleNetImageClassifier,
                    init_kwargs=self._classifier_kwargs(family),
                    train_data=(self._images(), np.array([0, 1])),
                    expected_output_shape=(2, 2),
                )

    def test_serialization_and_saving(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                self.run_serialization_test(self._backbone(family))
                self.run_serialization_test(
                    hub.ShuffleNetImageClassifier(**self._classifier_kwargs(family))
                )
                self.run_model_saving_test(
                    cls=hub.ShuffleNetImageClassifier,
                    init_kwargs=self._classifier_kwargs(family),
                    input_data=self._images(),
                )

    def test_litert_export(self):
        # keras-hub's LiteRT check runs on the PyTorch backend through
        # litert-torch only, and skips itself otherwise.
        self.run_litert_export_test(
            cls=hub.ShuffleNetImageClassifier,
            init_kwargs=self._classifier_kwargs("v2"),
            input_data=self._images(),
            expected_output_shape=(2, 2),
        )

    def test_preset_directory(self):
        for family in FAMILIES:
            with self.subTest(family=family):
                folder = os.path.join(self.get_temp_dir(), family)
                hub.ShuffleNetImageClassifier(**self._classifier_kwargs(family)).save_to_preset(folder)
                self.run_preset_test(
                    cls=keras_hub.models.ImageClassifier,
                    preset=folder,
                    input_data=self._images(),
                    expected_output_shape=(2, 2),
                )
                self.run_preset_test(
                    cls=keras_hub.models.Backbone,
                    preset=folder,
                    input_data=self._images(),
                    expected_output_shape=(2, 2, 2, FEATURE_CHANNELS[family]),
                )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_harness_on_other_backends(backend, tmp_path):
    """The harness again where channels_first runs (JAX, PyTorch)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
         f"{__file__}::ShuffleNetHarnessTest"],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


# --------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------


def test_presets_name_every_published_configuration_with_registry_metadata():
    names = {
        "shufflenet_v2_x0_5_imagenet", "shufflenet_v2_x1_0_imagenet",
        "shufflenet_v2_x1_5_imagenet", "shufflenet_v2_x2_0_imagenet",
        *(f"shufflenet_v1_g{g}_x1_0_imagenet" for g in (1, 2, 3, 4, 8)),
        *(f"shufflenet_v1_g{g}_x{a}_imagenet" for g in (1, 3) for a in ("0_25", "0_5", "0_75")),
    }
    assert set(hub.PRESETS) == names
    for name, preset in hub.PRESETS.items():
        metadata = preset["metadata"]
        assert metadata["description"] and metadata["top1"] > 30 and "macs" in metadata, name
    v2 = hub.PRESETS["shufflenet_v2_x1_0_imagenet"]["metadata"]
    assert (v2["macs"], v2["top1"]) == (144_900_000, 69.362)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5_imagenet", "shufflenet_v1_g8_x1_0_imagenet"])
def test_preset_without_weights_is_offline_and_counts_the_registry_params(name):
    backbone = hub.ShuffleNetBackbone.from_preset(name, load_weights=False)
    trainable = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    assert trainable == hub.PRESETS[name]["metadata"]["params"]
    classifier = hub.ShuffleNetImageClassifier.from_preset(name, load_weights=False)
    assert classifier.output_dense.units == 1000
    assert not os.path.exists(_store.cache_dir())  # nothing fetched


@pytest.fixture
def v2_stand_in(monkeypatch, tmp_path):
    """A seeded torchvision V2 0.5x checkpoint in the offline folder,
    registered with its hash in place of the published one."""
    import dataclasses

    import torch

    import reference

    checkpoint = tmp_path / "v2.pth"
    torch.save(reference.torchvision_v2(0.5, seed=5).state_dict(), checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    entry = next(e for e in _registry.REGISTRY if e.key == ("v2", 0.5, None))
    stand_in = dataclasses.replace(
        entry, checkpoint=f"shufflenetv2_x0.5-{digest}.pth", file_hash=digest
    )
    monkeypatch.setattr(
        _registry, "REGISTRY", tuple(stand_in if e is entry else e for e in _registry.REGISTRY)
    )
    folder = tmp_path / "offline"
    folder.mkdir()
    checkpoint.rename(folder / stand_in.checkpoint)
    monkeypatch.setenv(_store.WEIGHTS_DIR_ENV, str(folder))
    return checkpoint


def test_preset_classifier_equals_shufflenet_v2_on_the_same_weights(v2_stand_in, tmp_path):
    classifier = hub.ShuffleNetImageClassifier.from_preset("shufflenet_v2_x0_5_imagenet")
    model = ks.ShuffleNetV2(alpha=0.5, weights="imagenet", classifier_activation=None)
    # 256x256 images: the reference resize (shorter side 256) leaves them,
    # the centre crop is the middle 224x224.
    x = np.random.default_rng(1).uniform(0, 255, (2, 256, 256, 3)).astype("float32")
    expected = model.predict(x[:, 16:240, 16:240], verbose=0)
    actual = classifier.predict(x, verbose=0)
    assert np.abs(actual - expected).max() <= 1e-5 * np.abs(expected).max()
    backbone = hub.ShuffleNetBackbone.from_preset("shufflenet_v2_x0_5_imagenet")
    for layer in filter(lambda layer: layer.weights, backbone.layers):
        for got, want in zip(layer.get_weights(), classifier.backbone.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(got, want)
    # Saved as a preset, loaded back by keras-hub's own classes.
    classifier.save_to_preset(tmp_path / "preset")
    restored = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"))
    assert isinstance(restored, hub.ShuffleNetImageClassifier)
    np.testing.assert_allclose(restored.predict(x, verbose=0), actual, rtol=0, atol=1e-6)
    assert isinstance(keras_hub.models.Backbone.from_preset(str(tmp_path / "preset")), hub.ShuffleNetBackbone)


def test_converter_crops_as_the_reference_loader(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype="uint8")
    # Smooth content, so that resampling kernels differ only slightly.
    pixels = np.asarray(Image.fromarray(pixels).resize((40, 30)).resize((400, 300), Image.BILINEAR))
    Image.fromarray(pixels).save(tmp_path / "image.png")
    expected = ks.load_image(tmp_path / "image.png").astype("float32")
    converter = hub.ShuffleNetImageConverter(image_size=(224, 224), resize_size=256)
    actual = keras.ops.convert_to_numpy(converter.crop(pixels[None].astype("float32")))[0]
    assert actual.shape == expected.shape == (224, 224, 3)
    assert np.abs(actual - expected).mean() < 1.0  # of 255: same geometry


@pytest.mark.slow
def test_fine_tune_from_preset_on_a_folder_and_export_int8(tmp_path):
    """keras-hub's way: from_preset(num_classes=N), fit on a folder of
    images, then this package's int8 export: the phone graph of ShuffleNetV2."""
    from PIL import Image

    from helpers import tflite_outputs

    rng = np.random.default_rng(3)
    for label in ("cats", "dogs"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(4):
            image = rng.integers(0, 256, (80, 96, 3), dtype="uint8")
            Image.fromarray(image).save(tmp_path / "images" / label / f"{i}.png")
    dataset = keras.utils.image_dataset_from_directory(
        tmp_path / "images", image_size=(80, 96), batch_size=4, verbose=False
    )
    classifier = hub.ShuffleNetImageClassifier.from_preset(
        "shufflenet_v2_x0_5_imagenet", load_weights=False, num_classes=2,
        image_shape=(SIZE, SIZE, 3),
    )
    classifier.preprocessor.image_converter = hub.ShuffleNetImageConverter(
        image_size=(SIZE, SIZE), resize_size=72
    )
    history = classifier.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model = classifier.to_application()
    images = np.stack([keras.ops.convert_to_numpy(classifier.preprocessor.image_converter.crop(
        x.numpy())) for x, _ in dataset.unbatch().batch(1)])[:, 0]
    np.testing.assert_allclose(
        model.predict(images, verbose=0), classifier.predict(images, verbose=0), atol=1e-4
    )  # after fit: float32 rounding of two traced graphs reached 1.8e-5 on logits near 0.05
    path = ks.export_tflite(model, tmp_path / "int8.tflite", "int8", np.repeat(images, 2, axis=0))
    from ai_edge_litert.interpreter import Interpreter

    ops = [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]
    assert "TRANSPOSE" not in ops and "PAD" not in ops
    assert tflite_outputs(path, [np.zeros((1, SIZE, SIZE, 3), "uint8")]).shape == (1, 1, 2)


def test_the_package_imports_without_keras_hub():
    code = (
        "import sys; sys.modules['keras_hub'] = None\n"
        "import keras_shufflenet as ks, keras_shufflenet.export, keras_shufflenet.cli\n"
        "ks.ShuffleNetV2(alpha=0.5, weights=None)\n"
        "try:\n    import keras_shufflenet.hub\nexcept ImportError:\n    print('no hub')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "no hub" in result.stdout, result.stderr[-2000:]


def test_convert_weights_writes_a_preset_offline(tmp_path):
    import torch

    import reference
    from helpers import run_cli

    checkpoint = tmp_path / "v1.pth"
    torch.save(reference.pytorchcv_v1("shufflenet_g3_wd2", seed=6).state_dict(), checkpoint)
    result = run_cli(tmp_path, "convert-weights", checkpoint, "--model", "shufflenetv1",
                     "--groups", "3", "--alpha", "0.5", "--preset", "--output", tmp_path / "preset")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"config.json", "metadata.json", "model.weights.h5", "task.json",
            "preprocessor.json"} <= set(os.listdir(tmp_path / "preset"))
    classifier = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"))
    assert isinstance(classifier, hub.ShuffleNetImageClassifier)
    model = ks.ShuffleNetV1(groups=3, alpha=0.5, weights=str(checkpoint), classifier_activation=None)
    x = np.random.default_rng(4).uniform(0, 255, (2, 256, 256, 3)).astype("float32")
    expected = model.predict(x[:, 16:240, 16:240], verbose=0)
    actual = classifier.predict(x, verbose=0)
    assert np.abs(actual - expected).max() <= 1e-5 * np.abs(expected).max()
    again = run_cli(tmp_path, "convert-weights", checkpoint, "--model", "shufflenetv1",
                    "--groups", "3", "--alpha", "0.5", "--preset", "--output", tmp_path / "preset")
    assert again.returncode == 2 and "exists already" in again.stderr
