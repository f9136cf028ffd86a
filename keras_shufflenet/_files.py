"""Output files that appear only when complete."""

import contextlib
import os
import tempfile
from pathlib import Path


def output_path(path, suffixes=None, name="path"):
    """`path` as a `Path`, checked early: its folder must exist and, with
    `suffixes`, its name must end in one of them. `name` is how the caller's
    user knows the argument (`"path"`, `"--output"`)."""
    path = Path(path)
    if suffixes is not None and not path.name.endswith(tuple(suffixes)):
        raise ValueError(
            f"{name} must name a {' or '.join(suffixes)} file. Received: {name}={os.fspath(path)}"
        )
    if not path.parent.is_dir():
        raise ValueError(
            f"The folder of the output file does not exist. Received: {name}={os.fspath(path)}"
        )
    return path


def existing_file(path, suffixes, name="path", what="file"):
    """`path` as a `Path`, checked: an existing file (else `FileNotFoundError`)
    whose name ends in one of `suffixes` (else `ValueError`)."""
    path = Path(path)
    expected = f"Expected an existing {what} ({', '.join(suffixes)}). Received: {name}={os.fspath(path)}"
    if not path.is_file():
        raise FileNotFoundError(f"No file exists at that path. {expected}")
    if not path.name.endswith(tuple(suffixes)):
        raise ValueError(expected)
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


def size_mb(path):
    """The size of `path` in MB of 2**20 bytes (as `litert-benchmark` reports sizes)."""
    return Path(path).stat().st_size / 2**20


def megabytes(path):
    """The size of `path` as people read it: `"1.23 MB"`."""
    return f"{size_mb(path):.2f} MB"
