"""The ShuffleNet variants as data: each is a spec (`v1_spec`, `v2_spec`) read
from the channel tables, which `build_model` lays out with the
`keras.applications` arguments; `spec_from_model` reads a built model's back::

    for alpha in models.V2_ALPHAS:
        model = models.build_model(models.v2_spec(alpha), weights=None)

Most users call `keras_shufflenet.ShuffleNetV1`/`ShuffleNetV2` instead. This
is the bottom of the package with `weights`: it imports nothing of ours but
the weights registry. Other subpackages import its private modules directly.
"""

from keras_shufflenet.models._builder import build_model
from keras_shufflenet.models._specs import (
    STAGE_NAMES,
    V1_ALPHAS,
    V1_CHANNELS,
    V1_GROUPS,
    V2_ALPHAS,
    V2_CHANNELS,
    ShuffleNetSpec,
    spec_from_model,
    v1_spec,
    v2_spec,
)

__all__ = [
    "STAGE_NAMES",
    "V1_ALPHAS",
    "V1_CHANNELS",
    "V1_GROUPS",
    "V2_ALPHAS",
    "V2_CHANNELS",
    "ShuffleNetSpec",
    "build_model",
    "spec_from_model",
    "v1_spec",
    "v2_spec",
]
