"""The summary a run ends with, written whole (`keras_shufflenet.distribute`
writes the backups and saved models the same way)."""

import json
from pathlib import Path

from keras_shufflenet import distribute


def write_json(path, value):
    """Writes `value` as JSON to `path`, whole or not at all."""
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    distribute.save_atomically(lambda staged: Path(staged).write_text(text), path)


__all__ = ["write_json"]
