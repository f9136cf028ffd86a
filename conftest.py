"""Runs every code block of README.md and docs/*.md as a test (Sybil).

Sybil (not pytest-markdown-docs or pytest-codeblocks) because it takes a
custom evaluator per language and pytest fixtures: `python` blocks run in one
namespace per document, `bash` blocks run in bash (every command must succeed),
`console` blocks run their `$ ` commands and compare what they print with the
lines under them (`...` matches anything), `kotlin` blocks (an app's side)
must be skipped. Everything runs offline, in a
temporary folder per document that holds what the blocks expect:

- `samples/` (the repository's photos), `photos/` (calibration images),
  `keras_shufflenet/` and `tools/` (links to the checkout's),
  `imagenet/val/<wnid>/` and `imagenet/train_sample/` (a labelled and an
  unlabelled folder made from the samples);
- `weights="imagenet"` of ShuffleNetV2 0.5x and 1.0x: stand-in checkpoints
  (torchvision's models with seeded random weights, saved with `torch.save`
  under the published file names, also put in each folder) are converted once
  per session through the package's own offline path (KERAS_SHUFFLENET_WEIGHTS_DIR,
  the registry's hashes patched to theirs) into a session Keras cache that
  every block and command then loads from. Predictions are therefore random
  classes: the blocks check that the examples run, not ImageNet accuracy.

A block that needs what no stand-in gives (ImageNet on `/data/imagenet`, a
phone over adb) follows `<!-- skip: next "reason" -->` and is reported as
skipped with that reason. A block that takes minutes follows
`<!-- slow: reason -->` and runs with `-m slow` only.
"""

import dataclasses
import doctest
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
from sybil import Sybil  # noqa: E402
from sybil.integration.pytest import SybilItem  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402

# torchvision pulls in triton, whose LLVM crashes the process when it loads
# after TensorFlow's (which the python blocks import); loading it first is safe.
try:
    import torchvision  # noqa: E402, F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parent
TIMEOUT_S = 900
# Published V2 checkpoints the blocks load as weights="imagenet" (torchvision builder name).
STAND_INS = {0.5: "shufflenet_v2_x0_5", 1.0: "shufflenet_v2_x1_0"}
# Sample photo -> the ImageNet class folder it is filed under in imagenet/val/.
LABELLED = {"cat.jpg": "n02123045", "coffee.jpg": "n07920052", "rocket.jpg": "n04266014"}
SLOW_MARK = re.compile(r"<!--\s*slow:(.*?)-->\s*$", re.S)


def _environment(keras_home):
    """What a block's commands run with: this checkout first on the path, the session cache."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "KERAS_HOME": str(keras_home),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def _run(command, namespace):
    return subprocess.run(
        ["bash", "-c", command], cwd=Path.cwd(), env=_environment(namespace["keras_home"]),
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip


def evaluate_bash(example):
    """Runs the block in bash with `set -euo pipefail`: every command must succeed."""
    result = _run("set -euo pipefail\n" + example.parsed, example.namespace)
    if result.returncode != 0:
        return (f"bash block exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
                f"stderr:\n{result.stderr[-3000:]}")  # fmt: skip


def _commands(source):
    """`[(command, expected output)]` of a console block: `$ ` starts a command,
    a line ending in a backslash continues it, other lines are its output."""
    commands, lines = [], source.splitlines()
    while lines:
        line = lines.pop(0)
        if not line.startswith("$ "):
            raise ValueError(f"A console block must start with '$ '. Received: {line!r}")
        command = [line[2:]]
        while command[-1].endswith("\\") and lines:
            command.append(lines.pop(0))
        output = []
        while lines and not lines[0].startswith("$ "):
            output.append(lines.pop(0))
        commands.append(("\n".join(command), "\n".join(output)))
    return commands


def evaluate_console(example):
    """Runs each `$ ` command and compares stdout and stderr, merged, with the
    lines under it (doctest's checker: `...` matches anything, runs of
    whitespace compare equal); a command without lines under it must succeed."""
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for command, expected in _commands(example.parsed):
        result = _run("exec 2>&1\n" + command, example.namespace)
        if expected:
            if not checker.check_output(expected + "\n", result.stdout, flags):
                return f"$ {command}\nexpected:\n{expected}\ngot:\n{result.stdout}"
        elif result.returncode != 0:
            return f"$ {command}\nexited {result.returncode}:\n{result.stdout[-3000:]}"


def evaluate_kotlin(example):
    """Kotlin (an app's side) cannot run here: every block must follow a skip marker."""
    return 'a kotlin block cannot run here: precede it with <!-- skip: next "reason" -->'


def _stand_in_checkpoints(folder):
    """torchvision's V2 models with seeded random weights, saved as the published files."""
    import torch
    from torchvision.models import shufflenetv2

    from keras_shufflenet.weights import _registry

    paths = {}
    for entry in _registry.REGISTRY:
        if entry.version == "v2" and entry.alpha in STAND_INS:
            torch.manual_seed(0)
            module = getattr(shufflenetv2, STAND_INS[entry.alpha])(weights=None)
            paths[entry.alpha] = folder / entry.checkpoint
            torch.save(module.state_dict(), paths[entry.alpha])
    return paths


def _cache_stand_in_weights(checkpoints, keras_home):
    """Converts the stand-ins into `keras_home` as weights="imagenet" would the
    published files, their hashes put in the registry for the time it takes."""
    import keras

    import keras_shufflenet as ks
    from keras_shufflenet.weights import _registry

    def with_stand_in_hash(entry):
        if entry.version != "v2" or entry.alpha not in checkpoints:
            return entry
        digest = hashlib.sha256(checkpoints[entry.alpha].read_bytes()).hexdigest()
        return dataclasses.replace(entry, file_hash=digest[: len(entry.file_hash)])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_registry, "REGISTRY", tuple(map(with_stand_in_hash, _registry.REGISTRY)))
        patch.setenv("KERAS_HOME", str(keras_home))
        patch.setenv("KERAS_SHUFFLENET_WEIGHTS_DIR", str(next(iter(checkpoints.values())).parent))
        for alpha in checkpoints:
            ks.ShuffleNetV2(alpha=alpha, weights="imagenet")  # caches the model and its backbone
    keras.backend.clear_session()


def _fill_workdir(folder, checkpoints):
    """The files the documents' blocks name, relative to where they run."""
    from PIL import Image, ImageOps

    shutil.copytree(ROOT / "samples", folder / "samples")
    for name in ("keras_shufflenet", "tools"):  # commands that name the checkout's own files
        (folder / name).symlink_to(ROOT / name)
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "samples").glob("*.jpg"))]
    for name in ("photos", "imagenet/train_sample"):
        (folder / name).mkdir(parents=True)
        for i in range(12):  # export_tflite wants at least 10 calibration images
            image = photos[i % len(photos)]
            image = ImageOps.mirror(image) if i % 2 else image
            image.rotate(7 * i).save(folder / name / f"photo_{i:02d}.jpg")
    for sample, wnid in LABELLED.items():
        (folder / "imagenet/val" / wnid).mkdir(parents=True)
        shutil.copy(ROOT / "samples" / sample, folder / "imagenet/val" / wnid / sample)
    for path in checkpoints.values():
        shutil.copy(path, folder / path.name)


@pytest.fixture(scope="session")
def docs_session(tmp_path_factory):
    """The session's Keras cache (stand-in ImageNet weights converted into it)
    and the stand-in checkpoint files."""
    root = tmp_path_factory.mktemp("docs")
    (root / "checkpoints").mkdir()
    checkpoints = _stand_in_checkpoints(root / "checkpoints")
    _cache_stand_in_weights(checkpoints, root / "keras_home")
    return {"root": root, "keras_home": root / "keras_home", "checkpoints": checkpoints}


@pytest.fixture
def keras_home(request, docs_session, monkeypatch):
    """Runs a block in its document's folder, with the session's Keras cache."""
    document = Path(request.node.example.path).relative_to(ROOT).with_suffix("")
    folder = docs_session["root"] / "work" / "_".join(document.parts)  # README, docs_phones, ...
    if not folder.exists():
        _fill_workdir(folder, docs_session["checkpoints"])
    monkeypatch.chdir(folder)
    monkeypatch.setenv("KERAS_HOME", str(docs_session["keras_home"]))
    monkeypatch.delenv("KERAS_SHUFFLENET_WEIGHTS_DIR", raising=False)
    return docs_session["keras_home"]


pytest_collect_file = Sybil(
    parsers=[
        PythonCodeBlockParser(),
        CodeBlockParser("bash", evaluate_bash),
        CodeBlockParser("console", evaluate_console),
        CodeBlockParser("kotlin", evaluate_kotlin),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    fixtures=["keras_home"],
).pytest()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Marks `slow` the blocks that follow `<!-- slow: reason -->`, before `-m` selects."""
    for item in items:
        if isinstance(item, SybilItem):
            before = item.example.document.text[: item.example.start].rstrip()
            if SLOW_MARK.search(before.splitlines()[-1] if before else ""):
                item.add_marker(pytest.mark.slow)
