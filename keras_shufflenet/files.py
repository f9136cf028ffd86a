"""Output files that appear only when complete."""

import contextlib
import os
import tempfile
from pathlib import Path


def output_path(path):
    """`path` as a `Path`, checked early: its folder must exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(
            f"The folder of the output file does not exist. Received: path={os.fspath(path)!r}"
        )
    return path


@contextlib.contextmanager
def atomic_output(path, suffix=None):
    """Yields a path to write instead of `path`; moves it to `path` when the block succeeds.

    The staged file lies in a new hidden folder next to `path` (same file
    system, so the move is atomic) and is named like `path`, or
    `staged<suffix>` when a writer insists on a suffix. If the block raises,
    the folder and whatever was written in it are removed, and an existing
    `path` is left as it was. The file gets the usual permissions (umask).
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}-") as folder:
        staged = Path(folder) / (path.name if suffix is None else f"staged{suffix}")
        yield staged
        os.replace(staged, path)
