"""ShuffleNet V1 and V2 as a keras-hub model family (`pip install
"keras-shufflenet[hub]"`); the only part of the package that imports keras_hub.

`ShuffleNetBackbone`, `ShuffleNetImageConverter`,
`ShuffleNetImageClassifierPreprocessor` and `ShuffleNetImageClassifier`
follow keras-hub's conventions; `PRESETS` names the 15 published
configurations (`shufflenet_v2_x1_0_imagenet`, `shufflenet_v1_g3_x0_5_imagenet`,
...), which the classes' `from_preset` loads; `save_preset` writes a preset
folder from a local checkpoint. Importing this module registers
the classes, so that `keras_hub.models.ImageClassifier.from_preset(directory)`
finds them in a saved preset. See docs/hub.md.
"""

from keras_shufflenet.hub._backbone import ShuffleNetBackbone
from keras_shufflenet.hub._classifier import (
    ShuffleNetImageClassifier,
    ShuffleNetImageClassifierPreprocessor,
    ShuffleNetImageConverter,
    save_preset,
)
from keras_shufflenet.hub._presets import PRESETS

__all__ = [
    "PRESETS",
    "ShuffleNetBackbone",
    "ShuffleNetImageClassifier",
    "ShuffleNetImageClassifierPreprocessor",
    "ShuffleNetImageConverter",
    "save_preset",
]
