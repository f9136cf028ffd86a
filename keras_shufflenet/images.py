"""Image loading as the reference models were evaluated: resize, centre crop.

Matches torchvision's `Compose([Resize(resize), CenterCrop(crop)])` on PIL
images pixel for pixel: the shorter side goes to `resize` (Pillow bilinear,
which antialiases), then a `crop` x `crop` square is cut from the centre.
"""

import os

import numpy as np
from PIL import Image


def load_image(path, resize=256, crop=224):
    """Loads one image as a `(crop, crop, 3)` uint8 RGB array.

    Args:
        path: Path of an image file Pillow can read (JPEG, PNG, ...).
        resize: Length the shorter side is resized to. Defaults to `256`.
        crop: Side of the centre crop. Defaults to `224`.

    Returns:
        A uint8 array of RGB pixels in [0, 255].
    """
    if crop > resize:
        raise ValueError(
            f"`crop` must not exceed `resize`. Received: crop={crop}, resize={resize}"
        )
    image = _open_rgb(path)
    image = image.resize(_resized_size(image.size, resize), Image.Resampling.BILINEAR)
    width, height = image.size
    top = round((height - crop) / 2.0)
    left = round((width - crop) / 2.0)
    return np.asarray(image.crop((left, top, left + crop, top + crop)))


def load_images(paths, resize=256, crop=224):
    """Loads images with `load_image` into one `(N, crop, crop, 3)` uint8 batch."""
    if not paths:
        raise ValueError("`load_images` needs at least one path. Received: paths=[]")
    return np.stack([load_image(path, resize, crop) for path in paths])


def _open_rgb(path):
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as error:  # includes missing files and PIL's UnidentifiedImageError
        reason = error.strerror or "not an image Pillow can read"
        raise ValueError(
            f"Could not load {os.fspath(path)!r}: {reason}. Expected an image "
            "file (JPEG, PNG, ...)."
        ) from error


def _resized_size(size, resize):
    """`(width, height)` with the shorter side `resize`, as torchvision's `Resize`."""
    width, height = size
    short, long = sorted(size)
    long = int(resize * long / short)
    return (resize, long) if width <= height else (long, resize)
