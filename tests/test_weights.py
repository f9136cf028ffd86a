"""The ImageNet weights registry, download, verification and cache.

The real fetching code runs against a local HTTP server on 127.0.0.1 (and
against local folders). What it serves are checkpoints of seeded random
reference models saved as the published files are: torchvision's `.pth` (zip
format) for V2 and pytorchcv's `.pth.zip` (a zip holding a legacy-format
`.pth`) for V1, with registry entries whose hashes match the served bytes.
"""

import dataclasses
import hashlib
import http.server
import io
import os
import re
import socket
import threading
import zipfile

import keras
import numpy as np
import pytest
import reference
from helpers import hostile_checkpoint
import torch

import keras_shufflenet as ks
from keras_shufflenet import weights
from keras_shufflenet.models import _builder as builder
from keras_shufflenet.models import _complexity as complexity
from keras_shufflenet import _imagenet as imagenet
from keras_shufflenet.models import _specs as specs
from keras_shufflenet.weights import _registry, _store
from keras_shufflenet.weights import CheckpointError

ATOL = 1e-4
HOST = "127.0.0.1"
V1_NAME = "shufflenet_g1_wd4"
V2_SEED, V1_SEED = 7, 11
V2_ENTRY = next(e for e in weights.REGISTRY if e.key == ("v2", 0.5, None))
V1_ENTRY = next(e for e in weights.REGISTRY if e.name == V1_NAME)


# --------------------------------------------------------------------------
# Local HTTP server
# --------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.routes[name] = (bytes, mode)`; mode "ok", "truncate" or "404"."""

    timeout = 10  # a stalled client cannot hold the server thread forever

    def do_GET(self):
        state = self.server
        with state.lock:
            state.requests.append(self.path)
            if len(state.requests) > state.max_requests:
                self.send_error(503, "too many requests in one test")
                return
            data, mode = state.routes.get(self.path.lstrip("/"), (None, "404"))
        if mode == "404" or data is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "truncate":
            # Announce the whole file, send half of it, then hang up.
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


class _Server(http.server.HTTPServer):
    max_requests = 20

    def __init__(self):
        super().__init__((HOST, 0), _Handler)
        self.lock = threading.Lock()
        self.routes = {}
        self.requests = []

    def serve(self, name, data, mode="ok"):
        with self.lock:
            self.routes[name] = (data, mode)
        return self.url(name)

    def url(self, name):
        return f"http://{HOST}:{self.server_address[1]}/{name}"


@pytest.fixture
def server(monkeypatch):
    """A local file server, shut down after the test; clients time out after 10 s."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", HOST)
    monkeypatch.setenv("NO_PROXY", HOST)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    httpd = _Server()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        socket.setdefaulttimeout(previous_timeout)
        assert not thread.is_alive()


def _closed_port_url(name):
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}/{name}"


# --------------------------------------------------------------------------
# Generated checkpoints and registry entries
# --------------------------------------------------------------------------


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _sha1(data):
    return hashlib.sha1(data).hexdigest()


def _v2_entry(data, url_for):
    """Entry for torchvision-style bytes `data`: name carries the sha256 prefix."""
    prefix = _sha256(data)[:10]
    checkpoint = f"shufflenetv2_x0.5-{prefix}.pth"
    return dataclasses.replace(
        V2_ENTRY, url=url_for(checkpoint), checkpoint=checkpoint, file_hash=prefix
    )


def _v1_archive(pth_data):
    """(checkpoint name, `.pth.zip` bytes, sha1) for pytorchcv-style `.pth` bytes."""
    sha1 = _sha1(pth_data)
    checkpoint = f"{V1_NAME}-3729-{sha1[:8]}.pth"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(checkpoint, pth_data)
    return checkpoint, buffer.getvalue(), sha1


def _v1_entry(pth_data, url_for):
    checkpoint, archive, sha1 = _v1_archive(pth_data)
    entry = dataclasses.replace(
        V1_ENTRY,
        url=url_for(checkpoint + ".zip"),
        checkpoint=checkpoint,
        file_hash=sha1,
    )
    return entry, archive


def _install(monkeypatch, entry):
    """Replaces the registry entry of the same configuration by `entry`."""
    registry = tuple(entry if e.key == entry.key else e for e in weights.REGISTRY)
    assert entry in registry
    monkeypatch.setattr(_registry, "REGISTRY", registry)


def _serve_v2(server, monkeypatch, data, mode="ok"):
    entry = _v2_entry(data, server.url)
    server.serve(entry.checkpoint, data, mode)
    _install(monkeypatch, entry)
    return entry


def _serve_v1(server, monkeypatch, pth_data, mode="ok"):
    entry, archive = _v1_entry(pth_data, server.url)
    server.serve(os.path.basename(entry.url), archive, mode)
    _install(monkeypatch, entry)
    return entry


@pytest.fixture(scope="module")
def v2_ref(tmp_path_factory):
    """The V2 0.5x reference: its torch model, saved `.pth` bytes and outputs."""
    model = reference.torchvision_v2(0.5, seed=V2_SEED)
    path = tmp_path_factory.mktemp("v2") / "shufflenetv2_x0.5.pth"
    torch.save(model.state_dict(), path)
    x = reference.pixels(2, 224, 224, seed=V2_SEED)
    return {
        "data": path.read_bytes(),
        "x": x,
        "logits": reference.run_torch(model, x),
        "features": reference.run_torch(reference.v2_features(model), x),
    }


@pytest.fixture(scope="module")
def v1_ref(tmp_path_factory):
    """The V1 g1 0.25x reference: legacy-format `.pth` bytes and logits."""
    model = reference.pytorchcv_v1(V1_NAME, seed=V1_SEED)
    path = tmp_path_factory.mktemp("v1") / f"{V1_NAME}.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert not data.startswith(b"PK"), "pytorchcv publishes the legacy format"
    x = reference.pixels(2, 224, 224, seed=V1_SEED)
    return {"data": data, "x": x, "logits": reference.run_torch(model, x)}


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session(free_memory=False)


def _keras_home_files():
    """Every file under KERAS_HOME (hidden ones and folders' contents included)."""
    home = os.environ["KERAS_HOME"]
    found = []
    for root, dirs, files in os.walk(home):
        found += [os.path.relpath(os.path.join(root, f), home) for f in files]
        found += [os.path.relpath(os.path.join(root, d), home) + "/" for d in dirs]
    return sorted(found)


def _assert_nothing_cached():
    """At most the empty cache folder itself: no weights, no temp folders."""
    cache = weights.cache_dir()
    leftovers = sorted(os.listdir(cache)) if cache.exists() else []
    assert leftovers == []
    assert set(_keras_home_files()) <= {"models/", "models/keras_shufflenet/"}


def _run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _assert_close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


def _v2_logits_model():
    return ks.ShuffleNetV2(alpha=0.5, weights="imagenet", classifier_activation=None)


def _v1_logits_model():
    return ks.ShuffleNetV1(
        groups=1, alpha=0.25, weights="imagenet", classifier_activation=None
    )


# --------------------------------------------------------------------------
# Successful downloads
# --------------------------------------------------------------------------


def test_v2_download_converts_caches_and_matches_reference(server, monkeypatch, v2_ref):
    entry = _serve_v2(server, monkeypatch, v2_ref["data"])

    model = _v2_logits_model()
    _assert_close(_run(model, v2_ref["x"]), v2_ref["logits"])
    assert server.requests == ["/" + entry.checkpoint]
    assert sorted(os.listdir(weights.cache_dir())) == sorted(
        [f"{entry.name}.weights.h5", f"{entry.name}_notop.weights.h5"]
    )
    assert _keras_home_files() == sorted(
        [
            "models/",
            "models/keras_shufflenet/",
            f"models/keras_shufflenet/{entry.name}.weights.h5",
            f"models/keras_shufflenet/{entry.name}_notop.weights.h5",
        ]
    )

    # Both cached files serve later builds of other variants, with no request.
    unnormalised = ks.ShuffleNetV2(
        alpha=0.5,
        weights="imagenet",
        classifier_activation=None,
        include_preprocessing=False,
    )
    pooled = ks.ShuffleNetV2(
        alpha=0.5,
        weights="imagenet",
        include_top=False,
        pooling="avg",
        input_shape=(224, 224, 3),
    )
    assert len(server.requests) == 1
    x = v2_ref["x"]
    normalised = (
        (x / 255.0 - np.array(imagenet.MEAN)) / np.array(imagenet.STD)
    ).astype("float32")
    _assert_close(_run(unnormalised, normalised), v2_ref["logits"])
    _assert_close(_run(pooled, x), v2_ref["features"].mean(axis=(1, 2)))


def test_v2_notop_download_matches_reference_features(server, monkeypatch, v2_ref):
    _serve_v2(server, monkeypatch, v2_ref["data"])
    backbone = ks.ShuffleNetV2(
        alpha=0.5, weights="imagenet", include_top=False, pooling=None
    )
    assert "predictions" not in {layer.name for layer in backbone.layers}
    _assert_close(_run(backbone, v2_ref["x"]), v2_ref["features"])
    assert len(server.requests) == 1


def test_v1_download_of_legacy_pth_zip_matches_reference(server, monkeypatch, v1_ref):
    entry = _serve_v1(server, monkeypatch, v1_ref["data"])
    assert entry.url.endswith(".pth.zip")

    model = _v1_logits_model()
    _assert_close(_run(model, v1_ref["x"]), v1_ref["logits"])
    assert server.requests == ["/" + entry.checkpoint + ".zip"]
    assert sorted(os.listdir(weights.cache_dir())) == sorted(
        [f"{V1_NAME}.weights.h5", f"{V1_NAME}_notop.weights.h5"]
    )
    _v1_logits_model()
    assert len(server.requests) == 1


# --------------------------------------------------------------------------
# Failed downloads leave nothing behind
# --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_hash_mismatch_is_refused_and_nothing_cached(
    server, monkeypatch, v2_ref, v1_ref, version
):
    if version == "v2":
        entry = _serve_v2(server, monkeypatch, v2_ref["data"])
    else:
        entry = _serve_v1(server, monkeypatch, v1_ref["data"])
    wrong = ("0" if entry.file_hash[0] != "0" else "1") + entry.file_hash[1:]
    _install(monkeypatch, dataclasses.replace(entry, file_hash=wrong))

    build = _v2_logits_model if version == "v2" else _v1_logits_model
    with pytest.raises(
        ValueError,
        match=rf"{entry.hash_algorithm} hash.*does not match.*expected {wrong}",
    ):
        build()
    assert len(server.requests) == 1
    _assert_nothing_cached()


def test_interrupted_download_is_an_error_then_a_retry_succeeds(
    server, monkeypatch, v2_ref
):
    entry = _serve_v2(server, monkeypatch, v2_ref["data"], mode="truncate")
    with pytest.raises(OSError, match=re.escape(entry.url)):
        _v2_logits_model()
    assert len(server.requests) == 1
    _assert_nothing_cached()

    server.serve(entry.checkpoint, v2_ref["data"])
    model = _v2_logits_model()
    assert len(server.requests) == 2
    _assert_close(_run(model, v2_ref["x"]), v2_ref["logits"])
    assert len(os.listdir(weights.cache_dir())) == 2


def test_http_404_points_to_the_offline_folder(server, monkeypatch, v2_ref):
    entry = _v2_entry(v2_ref["data"], server.url)  # registered, but not served
    _install(monkeypatch, entry)
    with pytest.raises(OSError, match=weights.WEIGHTS_DIR_ENV) as info:
        _v2_logits_model()
    assert entry.url in str(info.value) and "404" in str(info.value)
    assert server.requests == ["/" + entry.checkpoint]
    _assert_nothing_cached()


def test_unreachable_server_is_an_oserror(monkeypatch, v2_ref):
    entry = _v2_entry(v2_ref["data"], _closed_port_url)
    _install(monkeypatch, entry)
    with pytest.raises(OSError, match=weights.WEIGHTS_DIR_ENV):
        _v2_logits_model()
    _assert_nothing_cached()


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_hostile_checkpoint_with_matching_hash_is_refused(
    server, monkeypatch, tmp_path, version
):
    marker = tmp_path / "pwned"
    data = hostile_checkpoint(marker)
    if version == "v2":
        entry = _serve_v2(server, monkeypatch, data)
        build = _v2_logits_model
    else:
        entry = _serve_v1(server, monkeypatch, data)
        build = _v1_logits_model
    with pytest.raises(
        CheckpointError, match=rf"{re.escape(entry.checkpoint)}.*refused global"
    ):
        build()
    assert issubclass(CheckpointError, ValueError)
    assert not marker.exists()
    _assert_nothing_cached()


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_truncated_checkpoint_with_matching_hash_is_refused(
    server, monkeypatch, v2_ref, v1_ref, version
):
    if version == "v2":
        data = v2_ref["data"][: len(v2_ref["data"]) // 2]
        entry = _serve_v2(server, monkeypatch, data)
        build = _v2_logits_model
    else:
        data = v1_ref["data"][: len(v1_ref["data"]) // 2]
        entry = _serve_v1(server, monkeypatch, data)
        build = _v1_logits_model
    with pytest.raises(CheckpointError, match=re.escape(entry.checkpoint)):
        build()
    _assert_nothing_cached()


@pytest.mark.parametrize("content", ["other_member", "html_page"])
def test_bad_v1_archive_is_refused(server, monkeypatch, v1_ref, content):
    entry = _serve_v1(server, monkeypatch, v1_ref["data"])
    if content == "other_member":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("other.pth", v1_ref["data"])
        data = buffer.getvalue()
        message = rf"should contain '{re.escape(entry.checkpoint)}'.*other\.pth"
    else:  # what a captive portal or an error page would deliver
        data = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
        message = "not a valid zip archive"
    server.serve(os.path.basename(entry.url), data)
    with pytest.raises(ValueError, match=message):
        _v1_logits_model()
    _assert_nothing_cached()


# --------------------------------------------------------------------------
# Offline folder (KERAS_SHUFFLENET_WEIGHTS_DIR)
# --------------------------------------------------------------------------


def test_weights_dir_with_original_v2_pth_needs_no_network(
    monkeypatch, tmp_path, v2_ref
):
    entry = _v2_entry(v2_ref["data"], _closed_port_url)
    _install(monkeypatch, entry)
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / entry.checkpoint).write_bytes(v2_ref["data"])
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(folder))

    model = _v2_logits_model()
    _assert_close(_run(model, v2_ref["x"]), v2_ref["logits"])
    assert sorted(os.listdir(weights.cache_dir())) == sorted(
        [f"{entry.name}.weights.h5", f"{entry.name}_notop.weights.h5"]
    )
    assert os.listdir(folder) == [entry.checkpoint]  # the folder is only read


def test_weights_dir_with_original_v1_pth_zip_needs_no_network(
    monkeypatch, tmp_path, v1_ref
):
    entry, archive = _v1_entry(v1_ref["data"], _closed_port_url)
    _install(monkeypatch, entry)
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / os.path.basename(entry.url)).write_bytes(archive)
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(folder))

    model = _v1_logits_model()
    _assert_close(_run(model, v1_ref["x"]), v1_ref["logits"])
    assert len(os.listdir(weights.cache_dir())) == 2
    assert os.listdir(folder) == [entry.checkpoint + ".zip"]


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_weights_dir_without_the_file_names_it(
    monkeypatch, tmp_path, v2_ref, v1_ref, version
):
    if version == "v2":
        entry = _v2_entry(v2_ref["data"], _closed_port_url)
        build = _v2_logits_model
    else:
        entry, _ = _v1_entry(v1_ref["data"], _closed_port_url)
        build = _v1_logits_model
    _install(monkeypatch, entry)
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "unrelated.pth").write_bytes(b"not it")
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(folder))

    with pytest.raises(
        FileNotFoundError, match=re.escape(os.path.basename(entry.url))
    ) as info:
        build()
    assert entry.checkpoint in str(info.value) and weights.WEIGHTS_DIR_ENV in str(
        info.value
    )
    _assert_nothing_cached()


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


def test_unpublished_configuration_lists_published_ones(monkeypatch):
    monkeypatch.setattr(
        _store, "_download", lambda *a: pytest.fail("no download expected")
    )
    with pytest.raises(ValueError) as info:
        ks.ShuffleNetV1(groups=2, alpha=0.5, weights="imagenet")
    message = str(info.value)
    assert message.endswith("Received: weights='imagenet'")
    assert "groups=2, alpha=0.5" in message
    for entry in weights.REGISTRY:
        if entry.version == "v1":
            assert f"groups={entry.groups}, alpha={entry.alpha:g}" in message
    assert "weights=None" in message
    assert not weights.cache_dir().exists()


def test_registry_keys_and_names_are_unique():
    keys = [e.key for e in weights.REGISTRY]
    names = [e.name for e in weights.REGISTRY]
    assert len(set(keys)) == len(keys) == 15
    assert len(set(names)) == len(names)
    for entry in weights.REGISTRY:
        spec = specs.v2_spec(entry.alpha) if entry.version == "v2" else specs.v1_spec(entry.groups, entry.alpha)
        assert weights.get_entry(spec) is entry
        if entry.version == "v1":  # pytorchcv's files, under its MIT licence
            assert entry.source == f"pytorchcv {entry.name}" and entry.terms.startswith("MIT")


# torchvision's transforms: 256/224 for x0.5 and x1.0, 232/224 for x1.5 and x2.0
# (the later "IMAGENET1K_V1" recipes); pytorchcv evaluates with 256/224.
EXPECTED_RESIZE = {
    ("v2", 0.5): 256,
    ("v2", 1.0): 256,
    ("v2", 1.5): 232,
    ("v2", 2.0): 232,
}


@pytest.mark.parametrize("entry", weights.REGISTRY, ids=lambda e: e.name)
def test_registry_metadata_matches_built_model(entry):
    if entry.version == "v2":
        spec = specs.v2_spec(entry.alpha)
        assert entry.hash_algorithm == "sha256"
        assert entry.url == _registry.TORCHVISION_URL + entry.checkpoint
        assert entry.checkpoint == f"{entry.name}-{entry.file_hash}.pth"
        assert len(entry.file_hash) in (8, 10)
    else:
        spec = specs.v1_spec(entry.groups, entry.alpha)
        assert entry.hash_algorithm == "sha1"
        assert entry.url.startswith(_registry.PYTORCHCV_URL)
        assert entry.url.endswith("/" + entry.checkpoint + ".zip")
        assert entry.checkpoint.startswith(entry.name + "-")
        assert entry.checkpoint.endswith(f"-{entry.file_hash[:8]}.pth")
        assert len(entry.file_hash) == 40
    assert re.fullmatch(r"[0-9a-f]+", entry.file_hash)
    assert (entry.resize, entry.crop) == (
        EXPECTED_RESIZE.get((entry.version, entry.alpha), 256),
        224,
    )
    assert 0 < entry.top1 < entry.top5 < 100

    model = builder.build_model(spec, weights=None, input_shape=(224, 224, 3))
    assert complexity.count_params(model) == entry.params
    if entry.macs is not None:
        macs = complexity.count_macs(model)
        assert abs(macs - entry.macs) <= 0.03 * entry.macs, (macs, entry.macs)


def test_v2_registry_matches_torchvision_metadata():
    from torchvision.models import shufflenetv2

    enums = {
        0.5: shufflenetv2.ShuffleNet_V2_X0_5_Weights,
        1.0: shufflenetv2.ShuffleNet_V2_X1_0_Weights,
        1.5: shufflenetv2.ShuffleNet_V2_X1_5_Weights,
        2.0: shufflenetv2.ShuffleNet_V2_X2_0_Weights,
    }
    entries = [e for e in weights.REGISTRY if e.version == "v2"]
    assert sorted(e.alpha for e in entries) == sorted(enums)
    for entry in entries:
        published = enums[entry.alpha].IMAGENET1K_V1
        transforms = published.transforms()
        assert entry.url == published.url
        assert entry.params == published.meta["num_params"]
        assert entry.top1 == pytest.approx(
            published.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        )
        assert entry.top5 == pytest.approx(
            published.meta["_metrics"]["ImageNet-1K"]["acc@5"]
        )
        assert [entry.resize] == list(transforms.resize_size)
        assert [entry.crop] == list(transforms.crop_size)
        # Where they come from and their terms (torchvision's code licence; its
        # documentation: pre-trained weights may carry their data's terms).
        assert entry.source == f"torchvision {enums[entry.alpha].__name__}.IMAGENET1K_V1"
        assert entry.terms.startswith("BSD-3-Clause") and "ImageNet" in entry.terms
        # torchvision rounds its (G)MACs to three decimals.
        assert abs(entry.macs / 1e9 - published.meta["_ops"]) <= 0.00051


def test_v1_registry_matches_pytorchcv_metadata():
    from pytorchcv.models.common import model_store

    table = model_store.get_model_metainfo_dict()
    rows = {
        row[0]: row
        for row in model_store.load_csv(model_store.get_model_metainfos_file_path())
    }
    entries = [e for e in weights.REGISTRY if e.version == "v1"]
    assert {e.name for e in entries} == {
        name for name in table if name.startswith("shufflenet_g")
    }
    for entry in entries:
        params, error, sha1, tag = table[entry.name]
        assert (entry.params, entry.file_hash) == (params, sha1)
        assert entry.checkpoint == f"{entry.name}-{error}-{sha1[:8]}.pth"
        assert (
            entry.url
            == f"{model_store.imgclsmob_repo_url}/releases/download/{tag}/{entry.checkpoint}.zip"
        )
        assert entry.top5 == pytest.approx(100 - int(error) / 100)
        img_size, img_scale = int(rows[entry.name][8]), float(rows[entry.name][9])
        assert (entry.resize, entry.crop) == (round(img_size / img_scale), img_size)


def test_cache_dir_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))
    assert weights.cache_dir() == tmp_path / "elsewhere" / "models" / "keras_shufflenet"
