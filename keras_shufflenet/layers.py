"""Public Keras layers of the ShuffleNet family (`keras_shufflenet.layers`).

`ChannelShuffle` (the paper's order) and `ChannelSplit` are plain,
serializable Keras layers, so the models save to `.keras` and load back
without `custom_objects`. `BatchNormalization` is Keras' layer with faster
TensorFlow CPU kernels, same weights and results.
"""

from keras_shufflenet.models._batch_norm import BatchNormalization
from keras_shufflenet.models._layers import ChannelShuffle, ChannelSplit

__all__ = ["BatchNormalization", "ChannelShuffle", "ChannelSplit"]
