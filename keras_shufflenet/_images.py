"""Image loading as the reference models were evaluated: resize, centre crop.

Matches torchvision's `Compose([Resize(resize), CenterCrop(crop)])` on PIL
images pixel for pixel: the shorter side goes to `resize` (Pillow bilinear,
which antialiases), then a `crop` x `crop` square is cut from the centre.
"""

import os
from pathlib import Path

import numpy as np
from PIL import Image

# What counts as an image file, everywhere a folder of images is read
# (calibration, evaluation): Pillow reads all of these.
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm",
)  # fmt: skip


def is_image_file(path, suffixes=IMAGE_SUFFIXES):
    """Whether `path` names a visible file with an image suffix (any case)."""
    path = Path(path)
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes


def image_files(folder, recursive=False, suffixes=IMAGE_SUFFIXES):
    """The image files in `folder` (and its sub-folders when `recursive`), sorted;
    other files (`README.txt`, `.DS_Store`, ...) are skipped."""
    candidates = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in candidates if is_image_file(p, suffixes))


def resize_for_crop(crop, resize=256, reference_crop=224):
    """The resize that keeps `resize / reference_crop` at another `crop`
    (256/224 at 160 gives 182): the one rounding rule of every front end,
    floor as in timm's `floor(crop / crop_pct)`, and never below `crop`."""
    return max(int(crop * resize / reference_crop), crop)


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
            f"file (JPEG, PNG, ...). Received: path={os.fspath(path)!r}"
        ) from error


def _resized_size(size, resize):
    """`(width, height)` with the shorter side `resize`, as torchvision's `Resize`."""
    width, height = size
    short, long = sorted(size)
    long = int(resize * long / short)
    return (resize, long) if width <= height else (long, resize)
