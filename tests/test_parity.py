"""Logit parity with the reference implementations (torchvision, pytorchcv).

Reference models get seeded random weights and BatchNorm statistics, are saved
with `torch.save` as the published files are, and are loaded through
`weights="<file>.pth"`; both models then see the same pixels.
"""

import keras
import numpy as np
import pytest
import torch

import keras_shufflenet as ks
from keras_shufflenet.weights import REGISTRY

import reference

ATOL = 1e-4
V1_ENTRIES = [e for e in REGISTRY if e.version == "v1"]
V2_ALPHAS = [e.alpha for e in REGISTRY if e.version == "v2"]  # torchvision's widths


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _assert_close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("alpha", V2_ALPHAS)
def test_v2_logits_and_features_match_torchvision(alpha, tmp_path):
    torch_model = reference.torchvision_v2(alpha, seed=int(alpha * 10))
    path = tmp_path / "shufflenetv2.pth"
    torch.save(torch_model.state_dict(), path)

    model = ks.ShuffleNetV2(alpha=alpha, weights=str(path), classifier_activation=None)
    backbone = ks.ShuffleNetV2(alpha=alpha, weights=str(path), include_top=False)
    for height, width in [(224, 224), (160, 192)]:
        x = reference.pixels(2, height, width, seed=height)
        _assert_close(model.predict(x, verbose=0), reference.run_torch(torch_model, x))
        _assert_close(
            backbone.predict(x, verbose=0),
            reference.run_torch(reference.v2_features(torch_model), x),
        )


@pytest.mark.parametrize("entry", V1_ENTRIES, ids=lambda e: e.name)
def test_v1_logits_match_pytorchcv(entry, tmp_path):
    torch_model = reference.pytorchcv_v1(entry.name, seed=entry.groups)
    x = reference.pixels(2, 224, 224, seed=entry.groups)
    expected = reference.run_torch(torch_model, x)
    for zip_format in (True, False):
        path = tmp_path / f"{entry.name}-{zip_format}.pth"
        torch.save(torch_model.state_dict(), path, _use_new_zipfile_serialization=zip_format)
        model = ks.ShuffleNetV1(
            groups=entry.groups,
            alpha=entry.alpha,
            weights=str(path),
            classifier_activation=None,
        )
        _assert_close(model.predict(x, verbose=0), expected)


def test_v1_features_match_pytorchcv(tmp_path):
    torch_model = reference.pytorchcv_v1("shufflenet_g3_w1", seed=5)
    path = tmp_path / "g3.pth"
    torch.save(torch_model.state_dict(), path)
    backbone = ks.ShuffleNetV1(groups=3, weights=str(path), include_top=False)
    x = reference.pixels(2, 224, 224, seed=5)
    _assert_close(
        backbone.predict(x, verbose=0),
        reference.run_torch(reference.v1_features(torch_model), x),
    )


def test_stage_outputs_are_the_reference_stage_outputs(tmp_path):
    """`stage_outputs` gives what each reference stage returns (its last unit)."""
    v2 = reference.torchvision_v2(0.5, seed=8)
    v1 = reference.pytorchcv_v1("shufflenet_g3_wd2", seed=8)
    torch.save(v2.state_dict(), tmp_path / "v2.pth")
    torch.save(v1.state_dict(), tmp_path / "v1.pth")
    v2_parts = [v2.conv1, v2.maxpool, v2.stage2, v2.stage3, v2.stage4, v2.conv5]
    v1_parts = list(v1.features.children())[:4]  # init_block, stage1..3
    cases = [
        (ks.ShuffleNetV2(alpha=0.5, weights=str(tmp_path / "v2.pth"), include_top=False),
         {"stage2": 3, "stage3": 4, "stage4": 5, "conv5": 6}, v2_parts),
        (ks.ShuffleNetV1(groups=3, alpha=0.5, weights=str(tmp_path / "v1.pth"), include_top=False),
         {"stage2": 2, "stage3": 3, "stage4": 4}, v1_parts),
    ]
    x = reference.pixels(1, 128, 96, seed=8)
    for base, ends, parts in cases:
        features = ks.stage_outputs(base)
        assert list(features) == list(ends)
        backbone = keras.Model(base.inputs, list(features.values()))
        for (stage, end), actual in zip(ends.items(), backbone.predict(x, verbose=0)):
            expected = reference.run_torch(torch.nn.Sequential(*parts[:end]).eval(), x)
            assert actual.shape == expected.shape, stage
            np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL, err_msg=stage)


def test_softmax_head_gives_reference_probabilities(tmp_path):
    torch_model = reference.torchvision_v2(0.5, seed=3)
    path = tmp_path / "v2.pth"
    torch.save(torch_model.state_dict(), path)
    model = ks.ShuffleNetV2(alpha=0.5, weights=str(path))
    x = reference.pixels(1, 224, 224)
    expected = torch.softmax(torch.from_numpy(reference.run_torch(torch_model, x)), -1).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


def test_checkpoint_of_another_variant_is_refused(tmp_path):
    path = tmp_path / "v2_x1.pth"
    torch.save(reference.torchvision_v2(1.0).state_dict(), path)
    with pytest.raises(ValueError, match="does not match"):
        ks.ShuffleNetV2(alpha=0.5, weights=str(path))
    with pytest.raises(ValueError, match="missing"):
        ks.ShuffleNetV1(groups=3, weights=str(path))
