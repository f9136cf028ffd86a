"""The keras-hub image classification task of ShuffleNet: image converter,
preprocessor and classifier, with `from_preset` for the package's presets."""

import os
import tempfile
from pathlib import Path

import keras
from keras_hub.src.layers.preprocessing.image_converter import ImageConverter
from keras_hub.src.models.image_classifier import ImageClassifier
from keras_hub.src.models.image_classifier_preprocessor import ImageClassifierPreprocessor

from keras_shufflenet import _imagenet
from keras_shufflenet.hub import _presets
from keras_shufflenet.hub._backbone import ShuffleNetBackbone, image_data_format
from keras_shufflenet.models import _builder
from keras_shufflenet.weights._registry import REGISTRY


def _preset_entry(preset):
    """The package preset named `preset`, or None (a directory or a handle)."""
    if isinstance(preset, str) and preset in _presets.PRESETS:
        return _presets.PRESETS[preset]
    return None


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ShuffleNetImageConverter(ImageConverter):
    """Resizes, centre-crops and normalises images as the references were
    evaluated: the shorter side to `resize_size`, the centre
    `image_size` square cut out (torchvision's `Resize` + `CenterCrop`),
    then `x * scale + offset` (ImageNet mean and std by default).

    Args:
        image_size: `(height, width)` of the output, square. Defaults to `None`
            (no resizing).
        resize_size: Shorter side before the centre crop, at least the crop.
            Defaults to `None`: resize straight to `image_size`.
        scale, offset: Per-channel normalisation of [0, 255] pixels.
            Default to the ImageNet mean and std.
        **kwargs: The other arguments of `keras_hub.layers.ImageConverter`;
            `interpolation` defaults to `"bilinear"` and `antialias` to
            `True` (Pillow's bilinear, which the references used, antialiases).
    """

    backbone_cls = ShuffleNetBackbone

    def __init__(self, image_size=None, resize_size=None, scale=None, offset=None,
                 antialias=True, **kwargs):
        default_scale, default_offset = _imagenet.normalization_constants(3)
        super().__init__(
            image_size=image_size,
            scale=default_scale if scale is None else scale,
            offset=default_offset if offset is None else offset,
            antialias=antialias,
            **kwargs,
        )
        if resize_size is not None and image_size is not None:
            if image_size[0] != image_size[1] or resize_size < image_size[0]:
                raise ValueError(
                    "`resize_size` needs a square `image_size` no larger than it. "
                    f"Received: image_size={image_size}, resize_size={resize_size}"
                )
        self.resize_size = resize_size
        self.reference_resizing = None
        if resize_size is not None and image_size is not None:
            self.reference_resizing = keras.layers.Resizing(
                resize_size, resize_size, crop_to_aspect_ratio=True,
                interpolation=self.interpolation, antialias=antialias,
                data_format=self.data_format, dtype=self.dtype_policy, name="reference_resizing",
            )
            self.center_crop = keras.layers.CenterCrop(
                *image_size, data_format=self.data_format, dtype=self.dtype_policy,
                name="center_crop",
            )

    def crop(self, images):
        """`images` resized and centre-cropped, not normalised (what a
        `ShuffleNetV2` with in-model preprocessing takes)."""
        if self.reference_resizing is not None:
            # The centre square, resized: as resizing the shorter side, then
            # cropping the square (for a square crop).
            images = self.center_crop(self.reference_resizing(images))
        return images

    def call(self, inputs):
        return super().call(self.crop(inputs))

    def get_config(self):
        return {**super().get_config(), "resize_size": self.resize_size}


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ShuffleNetImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """Image classification preprocessor of ShuffleNet: its image converter
    (`ShuffleNetImageConverter`) applied to `x`; `y` and `sample_weight`
    pass through."""

    backbone_cls = ShuffleNetBackbone
    image_converter_cls = ShuffleNetImageConverter

    @classmethod
    def from_preset(cls, preset, **kwargs):
        entry = _preset_entry(preset)
        if entry is None:
            return super().from_preset(preset, **kwargs)
        return cls(image_converter=ShuffleNetImageConverter(**entry["image_converter"]), **kwargs)


@keras.saving.register_keras_serializable(package="keras_shufflenet")
class ShuffleNetImageClassifier(ImageClassifier):
    """ShuffleNet image classifier: `ShuffleNetBackbone`, global average
    pooling and a `predictions` Dense layer, as in `ShuffleNetV2`.

    Args: those of `keras_hub.models.ImageClassifier` (`backbone`,
    `num_classes`, `preprocessor`, `pooling`, `activation`, `dropout`,
    `head_dtype`).

    Example:
    ```python
    classifier = ShuffleNetImageClassifier.from_preset("shufflenet_v2_x1_0_imagenet")
    classifier.predict(images)  # RGB pixels in [0, 255], any size
    ```
    """

    backbone_cls = ShuffleNetBackbone
    preprocessor_cls = ShuffleNetImageClassifierPreprocessor

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A classifier from a package preset name (its reference weights
        fetched and converted as `weights="imagenet"` does; the 1000-class
        head unless `num_classes` asks for another, then initialised fresh),
        or from a preset directory or handle as keras-hub loads them."""
        entry = _preset_entry(preset)
        if entry is None:
            return super().from_preset(preset, load_weights=load_weights, **kwargs)
        num_classes = kwargs.pop("num_classes", _imagenet.NUM_CLASSES)
        preprocessor = kwargs.pop("preprocessor", None) or (
            ShuffleNetImageClassifierPreprocessor.from_preset(preset)
        )
        backbone_kwargs = {
            key: kwargs.pop(key) for key in ("image_shape", "data_format", "dtype") if key in kwargs
        }
        backbone = ShuffleNetBackbone.from_preset(preset, load_weights=False, **backbone_kwargs)
        classifier = cls(
            backbone=backbone, num_classes=num_classes, preprocessor=preprocessor, **kwargs
        )
        if load_weights:
            pretrained_head = num_classes == _imagenet.NUM_CLASSES
            _presets.load_imagenet_weights(
                backbone, classifier.output_dense if pretrained_head else None
            )
        return classifier

    def to_application(self):
        """This classifier as the functional model `ShuffleNetV1/V2` builds
        (RGB pixels in [0, 255], preprocessing inside, the same weights):
        what `keras_shufflenet.export_tflite` turns into the phone graph.

        The image converter must normalise with the ImageNet constants and
        the pooling be `"avg"` (the model's in-model preprocessing and head).
        """
        converter = self.preprocessor.image_converter if self.preprocessor else None
        scale, offset = _imagenet.normalization_constants(3)
        if converter is None or (list(converter.scale), list(converter.offset)) != (scale, offset):
            raise ValueError(
                "`to_application` needs an image converter with the ImageNet normalisation. "
                f"Received: image_converter={converter!r}"
            )
        if self.pooling != "avg":
            raise ValueError(
                f'`to_application` needs pooling="avg". Received: pooling={self.pooling!r}'
            )
        backbone = self.backbone
        with image_data_format(backbone.data_format):
            model = _builder.build_model(
                backbone.spec,
                weights=None,
                input_shape=tuple(backbone.input.shape[1:]),
                classes=self.num_classes,
                classifier_activation=self.activation,
                name=backbone.spec.default_name,
            )
        for layer in backbone.layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())
        model.get_layer("predictions").set_weights(self.output_dense.get_weights())
        return model



def save_preset(weights, preset_dir, *, version="v2", alpha=1.0, groups=None, num_classes=1000):
    """Writes a keras-hub preset of a `ShuffleNetImageClassifier` holding
    `weights` (a reference `.pth` or a `.weights.h5`), offline, ready for
    `keras_hub.upload_preset`. The image converter resizes and crops as the
    published weights of the configuration were evaluated (256 then 224 where
    none are published). Nothing is left at `preset_dir` on failure.

    Returns:
        The `Path` of the preset folder.
    """
    preset_dir = Path(preset_dir)
    if preset_dir.exists():
        raise ValueError(
            f"The preset folder exists already. Received: preset_dir={str(preset_dir)!r}"
        )
    backbone = ShuffleNetBackbone(version=version, alpha=alpha, groups=groups)
    entry = next(
        (e for e in REGISTRY if e.key == backbone.spec.weights_key), None
    )
    converter = ShuffleNetImageConverter(
        image_size=(entry.crop, entry.crop) if entry else (224, 224),
        resize_size=entry.resize if entry else 256,
    )
    classifier = ShuffleNetImageClassifier(
        backbone=backbone, num_classes=num_classes,
        preprocessor=ShuffleNetImageClassifierPreprocessor(converter),
    )
    _presets.load_weights(backbone, weights, classifier.output_dense)
    preset_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=preset_dir.parent, prefix=".incoming-") as staging:
        classifier.save_to_preset(staging)
        os.replace(staging, preset_dir)
        os.mkdir(staging)  # for TemporaryDirectory's clean-up
    return preset_dir
