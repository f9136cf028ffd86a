"""A procedural, learnable image classification dataset, made with numpy.

Every image is one shape or one texture patch in a random place, size and
colour on a random background colour, with Gaussian pixel noise::

    images, labels = make_dataset(5000, image_size=64, seed=0)   # uint8 (N, 64, 64, 3), int64 (N,)

The classes (`CLASS_NAMES`, in label order) need shape, not colour, to tell
apart: filled circle, filled square, filled triangle (any rotation), ring,
cross (plus sign), and patches of horizontal stripes, vertical stripes and
checkerboard (random period and phase). `num_classes=K` uses the first K.
The foreground is 60 to 127 levels brighter (on a dark background) or
darker (on a light one) in each channel, clipped to [0, 255], which leaves
at least one channel with the full difference. Gaussian noise (sigma up to
16 levels), shape diameters from 2/5 to 4/5 of the side, any rotation of the
triangle and random texture periods make it a real task. Labels are
balanced (each class `N // K` or one more times) and shuffled.

The same arguments give the same images (numpy's PCG64 stream); a different
`seed` gives an independent split.
Generation is vectorised: about 5,000 64x64 images a second per core.
"""

import numpy as np

CLASS_NAMES = (
    "circle",
    "square",
    "triangle",
    "ring",
    "cross",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
)
NUM_CLASSES = len(CLASS_NAMES)
MIN_IMAGE_SIZE = 16
MAX_NOISE = 16.0  # standard deviation of the pixel noise, in levels (0-255)
_CHUNK = 1024  # images generated at once (bounds the memory of the masks)


def _shape_masks(name, rng, count, size, grid):
    """Boolean masks `(count, size, size)` of one shape class."""
    yy, xx = grid
    # Circumradius in pixels: from 1/8 to 1/3 of the image side.
    r = rng.uniform(size / 5, size / 2.5, (count, 1, 1))
    cx = rng.uniform(0, 1, (count, 1, 1)) * (size - 2 * r) + r
    cy = rng.uniform(0, 1, (count, 1, 1)) * (size - 2 * r) + r
    dx, dy = xx - cx, yy - cy
    if name == "circle":
        return dx * dx + dy * dy <= r * r
    if name == "square":
        half = 0.8 * r
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if name == "triangle":
        theta = rng.uniform(0, 2 * np.pi, (count, 1, 1))
        mask = np.ones((count, size, size), bool)
        for k in range(3):  # inside the three edges (inradius r / 2)
            phi = theta + np.pi + k * 2 * np.pi / 3
            mask &= dx * np.cos(phi) + dy * np.sin(phi) <= r / 2
        return mask
    if name == "ring":
        inner = r * rng.uniform(0.45, 0.7, (count, 1, 1))
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= inner * inner)
    if name == "cross":
        arm = r * rng.uniform(0.2, 0.35, (count, 1, 1))
        adx, ady = np.abs(dx), np.abs(dy)
        return ((adx <= arm) & (ady <= r)) | ((ady <= arm) & (adx <= r))
    raise AssertionError(name)


def _texture_masks(name, rng, count, size, grid):
    """Boolean masks `(count, size, size)` of a textured rectangular patch."""
    yy, xx = grid
    width = rng.uniform(0.45, 0.95, (count, 1, 1)) * size
    height = rng.uniform(0.45, 0.95, (count, 1, 1)) * size
    x0 = rng.uniform(0, 1, (count, 1, 1)) * (size - width)
    y0 = rng.uniform(0, 1, (count, 1, 1)) * (size - height)
    inside = (xx >= x0) & (xx < x0 + width) & (yy >= y0) & (yy < y0 + height)
    # Half-period of the pattern: 3 to 6 pixels at 64x64.
    half = rng.uniform(3, 6, (count, 1, 1)) * size / 64
    phase = rng.uniform(0, 2, (count, 1, 1)) * half
    rows = np.floor((yy + phase) / half).astype(np.int64)
    cols = np.floor((xx + phase) / half).astype(np.int64)
    if name == "horizontal_stripes":
        on = rows % 2 == 0
    elif name == "vertical_stripes":
        on = cols % 2 == 0
    elif name == "checkerboard":
        on = (rows + cols) % 2 == 0
    else:
        raise AssertionError(name)
    return inside & on


def _render(rng, labels, size, grid):
    count = len(labels)
    masks = np.zeros((count, size, size), bool)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        name = CLASS_NAMES[label]
        make = _shape_masks if label < 5 else _texture_masks
        masks[where] = make(name, rng, len(where), size, grid)
    background = rng.integers(0, 256, (count, 1, 1, 3))
    offset = rng.integers(60, 128, (count, 1, 1, 3))
    # Same polarity in every channel: brighter on a dark background, else darker.
    darker = background.mean(-1, keepdims=True) >= 128
    foreground = np.clip(np.where(darker, background - offset, background + offset), 0, 255)
    image = np.where(masks[..., None], foreground, background).astype(np.float32)
    sigma = rng.uniform(0, MAX_NOISE, (count, 1, 1, 1)).astype(np.float32)
    image += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def make_dataset(num_images, image_size=64, num_classes=NUM_CLASSES, seed=0):
    """Generates `num_images` labelled images.

    Args:
        num_images: Number of images (>= 0).
        image_size: Side of the square RGB images, at least 16. Defaults to `64`.
        num_classes: Use the first `num_classes` of `CLASS_NAMES` (2 to 8).
            Defaults to all 8.
        seed: Seed of the generator: an int or a sequence of ints (anything
            `numpy.random.default_rng` takes); the same arguments give the
            same images. Defaults to `0`.

    Returns:
        `(images, labels)`: uint8 `(N, H, W, 3)` RGB images and int64 `(N,)`
        labels in `[0, num_classes)`, balanced and shuffled.
    """
    if not isinstance(num_images, (int, np.integer)) or num_images < 0:
        raise ValueError(
            f"`num_images` must be a non-negative integer. Received: num_images={num_images!r}"
        )
    if not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"`image_size` must be an integer >= {MIN_IMAGE_SIZE}. "
            f"Received: image_size={image_size!r}"
        )
    if not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= NUM_CLASSES:
        raise ValueError(
            f"`num_classes` must be an integer from 2 to {NUM_CLASSES}. "
            f"Received: num_classes={num_classes!r}"
        )
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % num_classes).astype(np.int64)
    centres = np.arange(image_size, dtype=np.float64) + 0.5
    grid = (centres[None, :, None], centres[None, None, :])  # (1, H, 1), (1, 1, W)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        images[start:stop] = _render(rng, labels[start:stop], image_size, grid)
    return images, labels


__all__ = ["CLASS_NAMES", "NUM_CLASSES", "make_dataset"]
