"""Training Keras 3 models on TensorFlow across workers, and through a kill.

Keras 3's TensorFlow trainer needs two fixes under
`tf.distribute.MultiWorkerMirroredStrategy`, and its `BackupAndRestore`
callback can leave half a file or resume at the wrong epoch when the process
dies while it writes. Each fix uses a Keras internal through
`keras_shufflenet._compat`, which fails loudly when Keras changes::

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    distribute.average_logs_across_workers()
    with strategy.scope():
        model = keras_shufflenet.ShuffleNetV2(weights=None)
        model.compile(...)
        distribute.build_before_fit(model, (224, 224, 3), num_classes=1000)
    model.fit(..., callbacks=[distribute.ResumableBackup("run/backup", steps_per_epoch)])
"""

import os
import pathlib

import keras

from keras_shufflenet import _compat, _files


def average_logs_across_workers():
    """Makes `fit` average each step's scalar logs over the replicas of a
    `MultiWorkerMirroredStrategy` (Keras 3 reduces them along an axis, which
    fails on a scalar). For the whole process; calling it again does nothing."""
    _compat.average_scalar_logs_across_workers()


def build_before_fit(model, input_shape, num_classes):
    """Builds a compiled `model`'s optimizer, loss and metrics from shapes, so
    that `fit` does not build them from a first batch (which Keras 3 averages
    across replicas, and which fails under `MultiWorkerMirroredStrategy`).
    Call inside the strategy's scope, after `compile`.

    Args:
        model: A compiled Keras model with a one-hot classification loss.
        input_shape: One input's shape, e.g. `(224, 224, 3)`.
        num_classes: Length of the one-hot labels.
    """
    import numpy as np

    x = np.zeros((1, *input_shape), "float32")
    y = np.zeros((1, num_classes), "float32")
    _compat.build_before_fit(model, data_batch=(x, y))


def save_atomically(save, path):
    """Calls `save(staged)` and moves the file it writes to `path`, so that a
    kill leaves the old file or the new one, never half a file.

    `staged` ends like `path` (Keras wants `.keras`, `.weights.h5`), in a new
    hidden folder next to it; `path`'s folder is made if needed. Returns
    `path` as a string.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _files.atomic_output(path) as staged:
        save(str(staged))
    return os.fspath(path)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` (weights, optimizer state and step counter
    saved at the end of every epoch, restored when `fit` starts again) that
    resumes exactly after a kill at any moment, even while it writes:

    * every file is written by `save_atomically`;
    * the epoch to resume from is the restored optimizer step counter divided
      by `steps_per_epoch`, so weights and epoch cannot disagree when the
      process dies between writing the weights and the metadata.

    A run killed mid-epoch loses the steps since the last epoch end and
    repeats them; it ends with the same step count as an uninterrupted run.
    For very long epochs, use shorter "epochs" (`steps_per_epoch`).

    Args:
        backup_dir: Folder of the backup.
        steps_per_epoch: The `steps_per_epoch` that `fit` is given.
        delete_checkpoint: Delete the backup when `fit` ends. Defaults to `False`.

    Attributes:
        restored_step: The optimizer step restored, or `None`.
    """

    def __init__(self, backup_dir, steps_per_epoch, delete_checkpoint=False):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.steps_per_epoch = steps_per_epoch
        self.restored_step = None
        _compat.check_backup_and_restore(self)

    def _load_model(self):
        if not os.path.exists(self._weights_path):
            return
        super()._load_model()
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        epoch = step // self.steps_per_epoch
        _compat.set_initial_epoch(self.model, epoch)
        self.restored_step = step
        print(
            f"Restored the training state of {self._weights_path}: "
            f"step {step}, resuming at epoch {epoch + 1}",
            flush=True,
        )

    def _save_model(self):
        import json

        save_atomically(lambda staged: self.model.save_weights(staged, overwrite=True),
                        self._weights_path)  # fmt: skip
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "step": step}
        text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
        metadata_path = self._training_metadata_path
        save_atomically(lambda staged: pathlib.Path(staged).write_text(text), metadata_path)


__all__ = ["ResumableBackup", "average_logs_across_workers", "build_before_fit", "save_atomically"]
