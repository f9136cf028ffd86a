"""TensorBoard logs, with or without the `tensorboard` package.

Keras' `TensorBoard` callback needs the `tensorboard` package (not a
dependency of TensorFlow any more). `ScalarLogs` writes the same epoch
scalars (`epoch_loss`, `epoch_top1`, ..., and `epoch_learning_rate`) under
`log_dir/train` and `log_dir/validation` with TensorFlow alone, in the
format TensorBoard's scalar dashboard reads. `callback` picks Keras'
callback when `tensorboard` is installed.
"""

import importlib.util
import os

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
)


class ScalarLogs(keras.callbacks.Callback):
    """Epoch metrics and the learning rate as TensorBoard scalars."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        values = dict(logs or {})
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in values:
            values["learning_rate"] = keras.ops.convert_to_numpy(optimizer.learning_rate)
        for key, value in values.items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch,
                                 metadata=_SCALAR)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def callback(log_dir):
    """Keras' `TensorBoard` if the `tensorboard` package is installed, else `ScalarLogs`."""
    if importlib.util.find_spec("tensorboard") is not None:
        return keras.callbacks.TensorBoard(log_dir)
    return ScalarLogs(log_dir)


__all__ = ["ScalarLogs", "callback"]
