import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_shufflenet import _images as images

# torchvision is run in a child process: importing it after TensorFlow crashes
# (triton's native library), and other test modules import TensorFlow first.
TORCHVISION_SCRIPT = """
import sys
import numpy as np
from PIL import Image
from torchvision import transforms

out, cases = sys.argv[1], sys.argv[2:]
arrays = {}
for i, case in enumerate(cases):
    path, resize, crop = case.split(",")
    pipeline = transforms.Compose(
        [transforms.Resize(int(resize)), transforms.CenterCrop(int(crop))]
    )
    arrays[f"case{i}"] = np.asarray(pipeline(Image.open(path).convert("RGB")))
np.savez(out, **arrays)
"""


def _photo_like(path, width, height, mode="RGB"):
    """A smooth gradient with noise, so that resampling errors would show."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(width * height)
    rgb = np.stack(
        [x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1
    )
    rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype("uint8")
    Image.fromarray(rgb).convert(mode).save(path)
    return path


def test_matches_torchvision_resize_and_center_crop(tmp_path):
    cases = [
        (_photo_like(tmp_path / "landscape.png", 401, 300), 256, 224),
        (_photo_like(tmp_path / "portrait.jpg", 333, 517), 232, 224),
        (_photo_like(tmp_path / "small.png", 150, 99), 256, 224),
        (_photo_like(tmp_path / "square.png", 256, 256), 256, 224),
    ]
    out = tmp_path / "reference.npz"
    args = [f"{path},{resize},{crop}" for path, resize, crop in cases]
    subprocess.run(
        [sys.executable, "-c", TORCHVISION_SCRIPT, str(out), *args], check=True
    )
    reference = np.load(out)
    for i, (path, resize, crop) in enumerate(cases):
        actual = images.load_image(path, resize=resize, crop=crop)
        assert actual.dtype == np.uint8 and actual.shape == (crop, crop, 3)
        np.testing.assert_array_equal(actual, reference[f"case{i}"], err_msg=str(path))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_other_modes_become_rgb(tmp_path, mode):
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = _photo_like(tmp_path / f"image{suffix}", 300, 280, mode)
    image = images.load_image(path)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    if mode == "L":
        assert (image[..., 0] == image[..., 1]).all() and (
            image[..., 1] == image[..., 2]
        ).all()


def test_load_images_stacks_a_batch(tmp_path):
    paths = [
        _photo_like(tmp_path / "a.png", 300, 200),
        _photo_like(tmp_path / "b.png", 90, 120),
    ]
    batch = images.load_images(paths, resize=128, crop=112)
    assert batch.shape == (2, 112, 112, 3) and batch.dtype == np.uint8


def test_loading_is_public_at_the_top_level(tmp_path):
    import keras_shufflenet as ks

    path = _photo_like(tmp_path / "a.png", 300, 200)
    assert {"load_image", "load_images"} <= set(ks.__all__)
    np.testing.assert_array_equal(ks.load_image(path, resize=128, crop=112),
                                  images.load_image(path, resize=128, crop=112))  # fmt: skip
    assert ks.load_images([path, path], resize=128, crop=112).shape == (2, 112, 112, 3)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(
        ValueError, match=r"notes\.jpg.*Expected an image file \(JPEG, PNG"
    ):
        images.load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.png.*No such file.*JPEG, PNG"):
        images.load_images([tmp_path / "missing.png"])


def test_crop_larger_than_resize(tmp_path):
    path = _photo_like(tmp_path / "a.png", 300, 200)
    with pytest.raises(ValueError, match=r"Received: crop=300, resize=256$"):
        images.load_image(path, resize=256, crop=300)


def test_one_resize_rule_for_other_crops():
    from keras_shufflenet import options
    from keras_shufflenet.models import v2_spec

    assert images.resize_for_crop(160) == 182  # 160 * 256 / 224 = 182.9, floored as timm does
    assert images.resize_for_crop(224) == 256 and images.resize_for_crop(100, 100, 100) == 100
    assert options.eval_size(v2_spec(1.0), "imagenet", crop=160) == (182, 160)
    assert options.eval_size(v2_spec(2.0), "imagenet", crop=160) == (165, 160)  # 232/224
    assert options.eval_size(v2_spec(2.0), "imagenet") == (232, 224)
