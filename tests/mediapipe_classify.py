"""Classifies images with MediaPipe Tasks' ImageClassifier, in the Python that
has mediapipe (tools/mediapipe-python.sh; only mediapipe and numpy there).

    python mediapipe_classify.py IMAGES.npy OUT.json MODEL.tflite...

IMAGES.npy holds RGB uint8 images (N, H, W, 3). OUT.json gets, per model,
`{"top1": [[index, name, score], ...], "metadata": {...}}`: MediaPipe's best
category of each image, and the metadata as MediaPipe's own generated schema
module reads it (or `{"error": ...}` when the classifier refuses the file).
tests/test_mediapipe.py runs it.
"""

import json
import sys
import zipfile

import numpy as np


def metadata_of(path):
    """The model's metadata, read with MediaPipe's generated schema module."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    from mediapipe.tasks.metadata import schema_py_generated as model_schema

    data = bytearray(open(path, "rb").read())
    model = model_schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == b"TFLITE_METADATA":
            buffer = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            meta = schema.ModelMetadataT.InitFromPackedBuf(bytearray(buffer), 0)
            subgraph = meta.subgraphMetadata[0]
            image, output = subgraph.inputTensorMetadata[0], subgraph.outputTensorMetadata[0]
            norm = image.processUnits[0].options
            files = [f.name.decode() for f in output.associatedFiles or []]
            labels = None
            if files:
                with zipfile.ZipFile(path) as archive:
                    labels = archive.read(files[0]).decode().splitlines()
            return {
                "name": meta.name.decode(), "license": meta.license.decode(),
                "color_space": image.content.contentProperties.colorSpace,
                "mean": [float(v) for v in norm.mean], "std": [float(v) for v in norm.std],
                "label_files": files, "labels": labels,
            }  # fmt: skip
    return None


def classify(path, images):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=path), max_results=1
    )
    with vision.ImageClassifier.create_from_options(options) as classifier:
        found = []
        for image in images:
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))  # fmt: skip
            best = result.classifications[0].categories[0]
            found.append([best.index, best.category_name, best.score])
        return found


def main(images_path, out_path, *models):
    images = np.load(images_path)
    report = {}
    for path in models:
        try:
            report[path] = {"top1": classify(path, images), "metadata": metadata_of(path)}
        except Exception as error:  # noqa: BLE001 - reported to the test
            report[path] = {"error": f"{type(error).__name__}: {error}"}
    with open(out_path, "w") as out:
        json.dump(report, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
