"""The presets of the 15 published configurations, read off the weights
registry, and their weights: fetched and converted as `weights="imagenet"`
does (hash, cache, `KERAS_SHUFFLENET_WEIGHTS_DIR`)."""

from keras_shufflenet import _imagenet
from keras_shufflenet.models import _builder, _specs
from keras_shufflenet.weights._registry import REGISTRY


def _alpha_name(alpha):
    text = f"{alpha:g}"
    return (text if "." in text else f"{text}.0").replace(".", "_")


def preset_name(entry):
    """torchvision's model name, keras-hub's suffix: `shufflenet_v2_x1_0_imagenet`."""
    groups = "" if entry.groups is None else f"_g{entry.groups}"
    return f"shufflenet_{entry.version}{groups}_x{_alpha_name(entry.alpha)}_imagenet"


def _backbone_params(entry, spec):
    """The registry's parameters (with the 1000-class head) less the head."""
    return entry.params - (spec.feature_channels + 1) * _imagenet.NUM_CLASSES


def _preset(entry):
    if entry.version == "v2":
        spec = _specs.v2_spec(entry.alpha)
    else:
        spec = _specs.v1_spec(entry.groups, entry.alpha)
    family = "ShuffleNet V2" if entry.version == "v2" else f"ShuffleNet V1 ({entry.groups} groups)"
    source = "torchvision" if entry.version == "v2" else "pytorchcv"
    return {
        "metadata": {
            "description": (
                f"{family} at width {entry.alpha:g}x, pre-trained on ImageNet-1k at "
                f"{entry.crop}x{entry.crop} ({source}'s weights, converted exactly)."
            ),
            "params": _backbone_params(entry, spec),
            "macs": entry.macs,
            "top1": entry.top1,
            "top5": entry.top5,
            "path": "shufflenet",
        },
        "config": {"version": entry.version, "alpha": entry.alpha, "groups": entry.groups},
        "image_converter": {
            "image_size": (entry.crop, entry.crop),
            "resize_size": entry.resize,
        },
    }


PRESETS = {preset_name(entry): _preset(entry) for entry in REGISTRY}


def load_imagenet_weights(backbone, head=None):
    """The preset weights into `backbone` (and the 1000-class `head` Dense),
    converted as `weights="imagenet"` does (see `load_weights`)."""
    load_weights(backbone, "imagenet", head)


def load_weights(backbone, weights, head=None):
    """`weights` (`"imagenet"` or a file that `ShuffleNetV1/V2` loads: a
    reference `.pth`, `.weights.h5`) into `backbone` and the `head` Dense:
    loaded into a `ShuffleNetV1/V2` of the same spec, then copied layer by
    layer (the layers match by name, in either data format)."""
    source = _builder.build_model(
        backbone.spec,
        weights=weights,
        include_top=head is not None,
        input_shape=tuple(backbone.input.shape[1:]),
        classes=head.units if head is not None else _imagenet.NUM_CLASSES,
        classifier_activation=None,
        include_preprocessing=False,
    )
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    if head is not None:
        head.set_weights(source.get_layer("predictions").get_weights())
