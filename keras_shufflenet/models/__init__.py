"""The architectures: specs (tables as data), layers, blocks and the builder.

The bottom of the package with `weights`: it imports nothing of ours but the
weights registry. Users import `ShuffleNetV1`, `ShuffleNetV2` and the rest
from `keras_shufflenet`; the other subpackages use the names below.
"""

from keras_shufflenet.models._applications import ShuffleNetV1, ShuffleNetV2
from keras_shufflenet.models._blocks import KERAS_LAYERS
from keras_shufflenet.models._builder import MIN_SIZE, build_model, features, stage_outputs
from keras_shufflenet.models._complexity import count_macs, count_params
from keras_shufflenet._imagenet import (
    MEAN,
    NUM_CLASSES,
    STD,
    class_index,
    decode_predictions,
    normalization_constants,
    preprocess_input,
)
from keras_shufflenet.models._specs import (
    STAGE_NAMES,
    V1_ALPHAS,
    V1_CHANNELS,
    V2_CHANNELS,
    ShuffleNetSpec,
    spec_from_model,
    v1_spec,
    v2_spec,
)

__all__ = [
    "KERAS_LAYERS",
    "MEAN",
    "MIN_SIZE",
    "NUM_CLASSES",
    "STAGE_NAMES",
    "STD",
    "ShuffleNetSpec",
    "ShuffleNetV1",
    "ShuffleNetV2",
    "V1_ALPHAS",
    "V1_CHANNELS",
    "V2_CHANNELS",
    "build_model",
    "class_index",
    "count_macs",
    "count_params",
    "decode_predictions",
    "features",
    "normalization_constants",
    "preprocess_input",
    "spec_from_model",
    "stage_outputs",
    "v1_spec",
    "v2_spec",
]
