"""The README's variants table is the weights registry, row for row: a new
width with weights is one registry row, and this test says which README row to add."""

import keras
import pytest

import keras_shufflenet as ks
from keras_shufflenet import models, weights

from helpers import ROOT

HEADER = "| model | params | MACs (M) | top-1 | top-5 | resize -> crop |"


def _readme_rows():
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(HEADER) + 2  # after the header and its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _spec(entry):
    if entry.version == "v2":
        return models.v2_spec(entry.alpha), f"`ShuffleNetV2(alpha={entry.alpha})`"
    return (models.v1_spec(entry.groups, entry.alpha),
            f"`ShuffleNetV1(groups={entry.groups}, alpha={entry.alpha})`")  # fmt: skip


def _expected_row(entry):
    spec, call = _spec(entry)
    keras.backend.clear_session()
    model = models.build_model(spec, weights=None, input_shape=(224, 224, 3))
    assert ks.count_params(model) == entry.params
    return [
        call,
        f"{entry.params:,}",
        f"{ks.count_macs(model) / 1e6:.1f}",
        f"{entry.top1:.2f}",
        f"{entry.top5:.2f}",
        f"{entry.resize} -> {entry.crop}",
    ]


@pytest.mark.slow
def test_readme_variants_table_is_the_registry():
    rows = _readme_rows()
    assert [row[0] for row in rows] == [_spec(entry)[1] for entry in weights.REGISTRY], (
        "The README's variants table lists the registry's entries in its order"
    )
    for row, entry in zip(rows, weights.REGISTRY):
        assert row == _expected_row(entry)

