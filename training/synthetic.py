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

Finer classes: `sizes=k` splits each class into `k` classes by the size of
its shape or the period of its texture, cut into `k` equal bins of the range
above (`class_names(num_classes, sizes)`: "circle_size0", ...). The model
must then measure, not only recognise. Faint images: `contrast=c` scales
the foreground's difference and the noise by `c` (a foggy or dark scene:
the same signal-to-noise ratio, but a small signal on backgrounds of any
brightness). `sizes=1, contrast=1` (the defaults) give the same images as
before these options existed.

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
MAX_SIZES = 8  # size bins per class (`sizes`)
MAX_NOISE = 16.0  # standard deviation of the pixel noise, in levels (0-255)
_CHUNK = 1024  # images generated at once (bounds the memory of the masks)


def _in_bin(rng, low, high, bins, sizes):
    """Uniform values `(count, 1, 1)` in bin `bins` of `sizes` equal bins of [low, high)."""
    fraction = (bins + rng.uniform(0, 1, (len(bins), 1, 1))) / sizes
    return low + (high - low) * fraction


def _shape_masks(name, rng, size, grid, bins, sizes):
    """Boolean masks `(count, size, size)` of one shape class, radius in size bin `bins`."""
    yy, xx = grid
    count = len(bins)
    # Circumradius in pixels: from 1/5 to 2/5 of the image side.
    r = _in_bin(rng, size / 5, size / 2.5, bins, sizes)
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


def _texture_masks(name, rng, size, grid, bins, sizes):
    """Boolean masks `(count, size, size)` of a textured rectangular patch,
    the period of its pattern in size bin `bins`."""
    yy, xx = grid
    count = len(bins)
    width = rng.uniform(0.45, 0.95, (count, 1, 1)) * size
    height = rng.uniform(0.45, 0.95, (count, 1, 1)) * size
    x0 = rng.uniform(0, 1, (count, 1, 1)) * (size - width)
    y0 = rng.uniform(0, 1, (count, 1, 1)) * (size - height)
    inside = (xx >= x0) & (xx < x0 + width) & (yy >= y0) & (yy < y0 + height)
    # Half-period of the pattern: 3 to 6 pixels at 64x64.
    half = _in_bin(rng, 3, 6, bins, sizes) * size / 64
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


def _render(rng, labels, size, grid, sizes, contrast):
    count = len(labels)
    masks = np.zeros((count, size, size), bool)
    kinds, bins = np.divmod(labels, sizes)
    for kind in np.unique(kinds):
        where = np.flatnonzero(kinds == kind)
        make = _shape_masks if kind < 5 else _texture_masks
        masks[where] = make(CLASS_NAMES[kind], rng, size, grid, bins[where, None, None], sizes)
    background = rng.integers(0, 256, (count, 1, 1, 3))
    offset = rng.integers(60, 128, (count, 1, 1, 3))
    sigma = rng.uniform(0, MAX_NOISE, (count, 1, 1, 1))
    noise = rng.standard_normal((count, size, size, 3), dtype=np.float32)
    if not np.isscalar(contrast):  # one per image, log-uniform in [low, high]
        contrast = np.exp(rng.uniform(*np.log(contrast), (count, 1, 1, 1)))
    offset = offset * contrast
    # Same polarity in every channel: brighter on a dark background, else darker.
    darker = background.mean(-1, keepdims=True) >= 128
    foreground = np.clip(np.where(darker, background - offset, background + offset), 0, 255)
    image = np.where(masks[..., None], foreground, background).astype(np.float32)
    image += (sigma * contrast).astype(np.float32) * noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def class_names(num_classes=NUM_CLASSES, sizes=1):
    """Names of the labels of `make_dataset(..., num_classes, sizes=sizes)`, in label order."""
    names = CLASS_NAMES[:num_classes]
    if sizes == 1:
        return names
    return tuple(f"{name}_size{k}" for name in names for k in range(sizes))


def make_dataset(num_images, image_size=64, num_classes=NUM_CLASSES, seed=0, *, sizes=1,
                 contrast=1.0):
    """Generates `num_images` labelled images.

    Args:
        num_images: Number of images (>= 0).
        image_size: Side of the square RGB images, at least 16. Defaults to `64`.
        num_classes: Use the first `num_classes` of `CLASS_NAMES` (2 to 8).
            Defaults to all 8.
        seed: Seed of the generator: an int or a sequence of ints (anything
            `numpy.random.default_rng` takes); the same arguments give the
            same images. Defaults to `0`.
        sizes: Split each class into this many classes by the size of its
            shape or the period of its texture (1 to `MAX_SIZES`); label
            `class * sizes + bin`, smallest bin first. Defaults to `1`.
        contrast: Scales the foreground's difference from the background and
            the noise (in (0, 1]): faint images with the same signal-to-noise
            ratio, on backgrounds of any brightness. A range `(low, high)`
            draws each image's contrast from it (log-uniform): faint and
            bright scenes in one dataset. Defaults to `1.0`.

    Returns:
        `(images, labels)`: uint8 `(N, H, W, 3)` RGB images and int64 `(N,)`
        labels in `[0, num_classes * sizes)`, balanced and shuffled.
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
    if not isinstance(sizes, (int, np.integer)) or not 1 <= sizes <= MAX_SIZES:
        raise ValueError(
            f"`sizes` must be an integer from 1 to {MAX_SIZES}. Received: sizes={sizes!r}"
        )
    low, high = (contrast, contrast) if np.isscalar(contrast) else tuple(contrast)
    if not 0 < low <= high <= 1:
        raise ValueError(
            "`contrast` must be a number in (0, 1] or a range `(low, high)` in it. "
            f"Received: contrast={contrast!r}"
        )
    if np.isscalar(contrast):
        contrast = float(contrast)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % (num_classes * sizes)).astype(np.int64)
    centres = np.arange(image_size, dtype=np.float64) + 0.5
    grid = (centres[None, :, None], centres[None, None, :])  # (1, H, 1), (1, 1, W)
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        images[start:stop] = _render(rng, labels[start:stop], image_size, grid, sizes,
                                       contrast)
    return images, labels


__all__ = ["CLASS_NAMES", "MAX_SIZES", "NUM_CLASSES", "class_names", "make_dataset"]
