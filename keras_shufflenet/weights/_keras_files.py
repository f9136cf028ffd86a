"""Loading Keras weight files (`.weights.h5`, `.keras`) with errors a person can read.

Keras reports a file of another width with one message that prints every
variable it could not assign (thousands of characters); a truncated file
surfaces as `BadZipFile` or h5py's `OSError`. Both are bad input: this module
says in one line which layer and shapes differ, or that the file is damaged.
"""

import os
import re
import zipfile

# Keras (checked on 3.10-3.15) names the first failing object and both shapes:
# "... for object <Conv2D name=conv1, built=True>: ... variable.shape=(3, 3, 3, 24),
# Received: value.shape=(3, 3, 3, 12)."
_FAILED_LAYER = re.compile(r"object <\w+ name=([^,>]+)")
_SHAPES = re.compile(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))")
_FAILED_COUNT = re.compile(r"A total of (\d+) objects could not be loaded")


def load_keras_weights(model, path):
    """`model.load_weights(path)`, raising a one-line ValueError for a file that
    does not fit `model` or is not a complete Keras file."""
    try:
        model.load_weights(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a complete Keras weights file (truncated or "
            f"damaged: {' '.join(str(error).split())}). Expected a file written by "
            "`model.save_weights` (.weights.h5) or `model.save` (.keras). "
            f"Received: weights={os.fspath(path)!r}"
        ) from None
    except ValueError as error:
        raise ValueError(_mismatch_message(model, path, str(error))) from None


def _mismatch_message(model, path, message):
    layer, shapes, count = (
        _FAILED_LAYER.search(message), _SHAPES.search(message), _FAILED_COUNT.search(message)
    )
    if not (layer and shapes):
        first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
        return (
            f"{os.fspath(path)!r} does not fit {model.name}: {first_line[:300]}. "
            f"Received: weights={os.fspath(path)!r}"
        )
    more = f" ({count.group(1)} layers differ)" if count and count.group(1) != "1" else ""
    return (
        f"{os.fspath(path)!r} does not fit {model.name}: layer {layer.group(1)!r} expects "
        f"a weight of shape {shapes.group(1)}, the file holds {shapes.group(2)}{more}. "
        "Was it saved from another width, group count or number of classes? "
        f"Received: weights={os.fspath(path)!r}"
    )
