"""Published weights and weight files: the registry (pure data), fetching
with a hash check and caching, the safe torch checkpoint reader and the
torch-to-Keras name mapping.

The bottom of the package with `models`: it imports nothing of ours and never
builds a model; the builder hands it the model to fill (`_store.load_weights`).
"""

from keras_shufflenet.weights._registry import REGISTRY, WeightsEntry, get_entry
from keras_shufflenet.weights._store import WEIGHTS_DIR_ENV, cache_dir
from keras_shufflenet.weights._torch_reader import CheckpointError, load_torch_state_dict

__all__ = [
    "REGISTRY",
    "WEIGHTS_DIR_ENV",
    "CheckpointError",
    "WeightsEntry",
    "cache_dir",
    "get_entry",
    "load_torch_state_dict",
]
