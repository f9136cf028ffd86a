"""Crash-safe checkpoints, and the saved model a run ends with.

`ResumableBackup` is Keras' `BackupAndRestore` (weights, optimizer state and
step counter saved at the end of every epoch, restored when `fit` starts
again) with two changes so that a run killed at any moment, even while it
writes, resumes exactly:

* every file is written to a temporary name and renamed into place, so a
  backup is either the old one or the new one, never half a file;
* the epoch to resume from is the restored optimizer step counter divided by
  the steps per epoch, so weights and epoch cannot disagree when the process
  dies between writing the weights and the metadata.

A run killed mid-epoch loses the steps since the last epoch end and repeats
them; it ends with the same step count as an uninterrupted run. For very long
epochs, use shorter "epochs" (`steps_per_epoch`): the learning-rate schedule
is per step and does not change.
"""

import json
import os
import tempfile

import keras

from keras_shufflenet import _compat


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, value):
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def atomic_save(save, path):
    """Calls `save(tmp_path)` then renames the result to `path`. The temporary
    name keeps the suffix Keras requires (`.keras`, `.weights.h5`)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = ".weights.h5" if base.endswith(".weights.h5") else os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    os.remove(tmp)  # Keras writes the file itself
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` at epoch ends, atomic, resuming from the step counter."""

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
        os.makedirs(self.backup_dir, exist_ok=True)
        atomic_save(lambda tmp: self.model.save_weights(tmp, overwrite=True), self._weights_path)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen, "step": step},
        )


__all__ = ["ResumableBackup", "atomic_save", "atomic_write_text", "write_json"]
