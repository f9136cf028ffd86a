"""Image transforms of the papers' recipe, as TensorFlow ops on one image.

Images are float32 RGB pixels in [0, 255] (the models normalise inside).

* Training: `random_resized_crop` (area 8% to 100% of the image, aspect
  ratio 3/4 to 4/3, resized bilinearly to `size` x `size`), `color_jitter`
  (brightness, contrast and saturation factors drawn from
  [1 - strength, 1 + strength], as torchvision's `ColorJitter(0.4, 0.4, 0.4)`
  but in a fixed order) and a random horizontal flip.
* Evaluation: `resize_center_crop`: the shorter side to `resize` (bilinear,
  antialiased like Pillow), then a centre `crop` x `crop` square, as
  torchvision's `Resize(resize)` + `CenterCrop(crop)`.
"""

import tensorflow as tf

ASPECT_RATIOS = (3.0 / 4.0, 4.0 / 3.0)


def crop_window(shape, min_area=0.08, aspect_ratios=ASPECT_RATIOS):
    """`(begin, size)` of a random crop of an image of `shape` (H, W, C)
    covering `min_area` to all of it, for `tf.slice` (or, as `[y, x, h, w]`,
    `tf.image.decode_and_crop_jpeg`). Falls back to the whole image."""
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=(1, 1, 4)),
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratios,
        area_range=(min_area, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def random_resized_crop(image, size, min_area=0.08, aspect_ratios=ASPECT_RATIOS):
    """A random crop covering `min_area` to all of the image, resized to `size`."""
    begin, crop_size = crop_window(tf.shape(image), min_area, aspect_ratios)
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(tf.cast(crop, tf.float32), (size, size), method="bilinear")


def color_jitter(image, strength=0.4):
    """Random brightness, contrast and saturation, each by a factor in
    [1 - strength, 1 + strength], clipped to [0, 255] after each."""
    if strength <= 0:
        return image

    def factor():
        return tf.random.uniform((), 1.0 - strength, 1.0 + strength)

    image = tf.clip_by_value(image * factor(), 0.0, 255.0)
    mean = tf.reduce_mean(tf.image.rgb_to_grayscale(image))
    image = tf.clip_by_value((image - mean) * factor() + mean, 0.0, 255.0)
    grey = tf.image.rgb_to_grayscale(image)
    return tf.clip_by_value((image - grey) * factor() + grey, 0.0, 255.0)


def train_transform(image, size, min_area=0.08, jitter=0.4, flip=True):
    """The training augmentation of the papers on one uint8 or float image."""
    return finish_crop(tf.slice(image, *crop_window(tf.shape(image), min_area)), size, jitter, flip)


def finish_crop(crop, size, jitter=0.4, flip=True):
    """The rest of `train_transform` on an already cut random crop: resize to
    `size`, colour jitter, flip."""
    image = tf.image.resize(tf.cast(crop, tf.float32), (size, size), method="bilinear")
    image = color_jitter(image, jitter)
    if flip:
        image = tf.image.random_flip_left_right(image)
    return tf.ensure_shape(image, (size, size, 3))


def resize_center_crop(image, resize, crop):
    """Shorter side to `resize`, then the centre `crop` x `crop` (float32)."""
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    # torchvision: the longer side is int(resize * long / short).
    new_height = tf.where(height == short, resize, resize * height // short)
    new_width = tf.where(width == short, resize, resize * width // short)
    image = tf.image.resize(image, (new_height, new_width), method="bilinear", antialias=True)
    top = tf.cast(tf.round((new_height - crop) / 2), tf.int32)
    left = tf.cast(tf.round((new_width - crop) / 2), tf.int32)
    image = tf.slice(image, (top, left, 0), (crop, crop, 3))
    return tf.ensure_shape(image, (crop, crop, 3))


__all__ = [
    "color_jitter",
    "crop_window",
    "finish_crop",
    "random_resized_crop",
    "resize_center_crop",
    "train_transform",
]
