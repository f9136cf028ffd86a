"""Registry of the published ImageNet weights: pure data, checked by a test
against the models built from it (params, MACs)."""

import dataclasses

TORCHVISION_URL = "https://download.pytorch.org/models/"
PYTORCHCV_URL = "https://github.com/osmr/imgclsmob/releases/download/"
# What each source's weights carry (torchvision's documentation: its pre-trained
# weights may be subject to the terms of the data they were trained on).
TORCHVISION_TERMS = (
    "BSD-3-Clause (torchvision); trained on ImageNet, whose terms of access may apply"
)
PYTORCHCV_TERMS = "MIT (pytorchcv); trained on ImageNet, whose terms of access may apply"


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One published checkpoint and what is known about it.

    Attributes:
        name: Registry name, also the stem of the cached `.weights.h5` file.
        version: `"v1"` or `"v2"`.
        alpha: Width multiplier.
        groups: V1 group count (`None` for V2).
        url: Where the reference file is published.
        checkpoint: Name of the `.pth` file (inside the zip for pytorchcv).
        file_hash: Hex digest of the `.pth` file, or its published prefix.
        hash_algorithm: `"sha256"` or `"sha1"`.
        params: Trainable parameters of the full model.
        macs: Multiply-adds at 224x224 as published by the source, or `None`.
        top1: Published ImageNet top-1 accuracy (%).
        top5: Published ImageNet top-5 accuracy (%).
        resize: Evaluation resize of the shorter side.
        crop: Evaluation centre crop.
        source: Who publishes the checkpoint, and under which name.
        terms: The terms the weights carry: their publisher's licence and,
            as torchvision's documentation says of its pre-trained weights,
            possibly those of the data they were trained on.
    """

    name: str
    version: str
    alpha: float
    groups: int | None
    url: str
    checkpoint: str
    file_hash: str
    hash_algorithm: str
    params: int
    macs: int | None
    top1: float
    top5: float
    resize: int = 256
    crop: int = 224
    source: str = ""
    terms: str = ""

    @property
    def key(self):
        """`(version, alpha, groups)`, as a model spec's `weights_key`."""
        return (self.version, self.alpha, self.groups)

    def describe(self):
        if self.groups is None:
            return f"alpha={self.alpha:g}"
        return f"groups={self.groups}, alpha={self.alpha:g}"


def _torchvision(alpha, checkpoint, params, macs, top1, top5, resize):
    return WeightsEntry(
        name=checkpoint.rsplit("-", 1)[0],
        version="v2",
        alpha=alpha,
        groups=None,
        url=TORCHVISION_URL + checkpoint,
        checkpoint=checkpoint,
        file_hash=checkpoint.rsplit("-", 1)[1].split(".")[0],
        hash_algorithm="sha256",
        params=params,
        macs=macs,
        top1=top1,
        top5=top5,
        resize=resize,
        source=f"torchvision ShuffleNet_V2_X{alpha:.1f}_Weights.IMAGENET1K_V1".replace(".", "_", 1),
        terms=TORCHVISION_TERMS,
    )


def _pytorchcv(name, groups, alpha, params, macs, top1_err, top5_err, sha1, tag):
    checkpoint = f"{name}-{top5_err:04d}-{sha1[:8]}.pth"
    return WeightsEntry(
        name=name,
        version="v1",
        alpha=alpha,
        groups=groups,
        url=f"{PYTORCHCV_URL}{tag}/{checkpoint}.zip",
        checkpoint=checkpoint,
        file_hash=sha1,
        hash_algorithm="sha1",
        params=params,
        macs=macs,
        top1=round(100 - top1_err, 2),
        top5=round(100 - top5_err / 100, 2),
        source=f"pytorchcv {name}",
        terms=PYTORCHCV_TERMS,
    )


# torchvision: file names carry the SHA-256 prefix; MACs from its model cards.
# pytorchcv: errors from its model table (the file name carries the top-5 error
# x100). MACs from the V1 paper's Table 1, which gives them for 1x only
# (pytorchcv's FLOPs count every layer, so they are not comparable).
REGISTRY = (
    _torchvision(0.5, "shufflenetv2_x0.5-f707e7126e.pth", 1_366_792, 40_500_000, 60.552, 81.746, 256),
    _torchvision(1.0, "shufflenetv2_x1-5666bf0f80.pth", 2_278_604, 144_900_000, 69.362, 88.316, 256),
    _torchvision(1.5, "shufflenetv2_x1_5-3c479a10.pth", 3_503_624, 295_800_000, 72.996, 91.086, 232),
    _torchvision(2.0, "shufflenetv2_x2_0-8be3c8ee.pth", 7_393_996, 583_300_000, 76.230, 93.006, 232),
    _pytorchcv("shufflenet_g1_wd4", 1, 0.25, 209_746, None, 62.44, 3729, "47dbd0f279da6d3056079bb79ad39cabbb3b9415", "v0.0.134"),
    _pytorchcv("shufflenet_g3_wd4", 3, 0.25, 305_902, None, 61.74, 3653, "6abdd65e087e71f80345415cdf7ada6ed2762d60", "v0.0.135"),
    _pytorchcv("shufflenet_g1_wd2", 1, 0.5, 534_484, None, 46.59, 2261, "dae4bdadd7d48bee791dff2a08cd697cff0e9320", "v0.0.174"),
    _pytorchcv("shufflenet_g3_wd2", 3, 0.5, 718_324, None, 44.16, 2080, "ccaacfc8d9ac112c6143269df6e258fd55b662a7", "v0.0.167"),
    _pytorchcv("shufflenet_g1_w3d4", 1, 0.75, 975_214, None, 39.58, 1711, "161cd24aa0b2e2afadafa69b44a28af222f2ec7a", "v0.0.218"),
    _pytorchcv("shufflenet_g3_w3d4", 3, 0.75, 1_238_266, None, 38.2, 1650, "3f3b0aef0ce3174c78ff42cf6910c6e34540fc41", "v0.0.219"),
    _pytorchcv("shufflenet_g1_w1", 1, 1.0, 1_531_936, 143_000_000, 34.93, 1389, "4cfb65a30761fe548e0b5afbb5d89793ec41e4e9", "v0.0.223"),
    _pytorchcv("shufflenet_g2_w1", 2, 1.0, 1_733_848, 140_000_000, 34.25, 1363, "07256203e217a7b31f1c69a5bd38a6674bce75bc", "v0.0.241"),
    _pytorchcv("shufflenet_g3_w1", 3, 1.0, 1_865_728, 137_000_000, 34.39, 1348, "ce54f64ecff87556a4303380f46abaaf649eb308", "v0.0.244"),
    _pytorchcv("shufflenet_g4_w1", 4, 1.0, 1_968_344, 133_000_000, 34.19, 1335, "e2415f8270a4b6cbfe7dc97044d497edbc898577", "v0.0.245"),
    _pytorchcv("shufflenet_g8_w1", 8, 1.0, 2_434_768, 137_000_000, 34.06, 1342, "9a979b365424addba75c559a61a77ac7154b26eb", "v0.0.250"),
)


def get_entry(spec):
    """The registry entry of `spec` (a model spec: its `weights_key`); a
    ValueError lists the published ones of its family."""
    for entry in REGISTRY:
        if entry.key == spec.weights_key:
            return entry
    published = "; ".join(e.describe() for e in REGISTRY if e.version == spec.version)
    raise ValueError(
        f"No ImageNet weights are published for {spec.family} with {spec.describe()}. "
        f"Published: {published}. Use `weights=None` or a file path. "
        "Received: weights='imagenet'"
    )
