"""Deep Ranking: EfficientNet-Lite0 fine-tuned with a triplet loss on the catalogue.

The ImageNet network of :mod:`benchmarks.methods.global_embedding` is trained so that
a synthetic phone photo of a cover (:mod:`benchmarks.methods.synthetic_photos`) lands
nearer the clean cover than any other cover does. Each step draws a batch of covers,
makes one photo of each, and for every photo takes the most similar wrong cover of
the batch as its negative (batch-hard mining). Only catalogue covers are seen in
training, never a real photo. Training runs on the CPU for a wall-clock budget; the
weights are cached outside the repository, keyed by the catalogue and the budget, so a
second run with the same catalogue reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.methods.global_embedding import (
    GlobalEmbeddingMethod,
    embed,
    load_network,
    to_input,
)
from benchmarks.methods.images import CACHE_DIR, fit_long_side, read_bgr
from benchmarks.methods.synthetic_photos import synthesize_photo
from benchmarks.protocol import Entry

logger = logging.getLogger("cvmatch.benchmarks")

# Default training budget in wall seconds: half an hour, what the two cores of the
# benchmark machine can spare beside the other methods.
DEFAULT_BUDGET_SECONDS = 1800

# Covers per step. Each gives two images (clean and photo), so a step forwards twice
# this; batch-hard mining needs enough wrong covers in a batch to find hard ones.
COVERS_PER_STEP = 12

# Triplet margin on cosine similarity: the right cover must beat the hardest wrong one
# by this much. Cosines of ImageNet embeddings of unrelated covers sit near 0.4-0.6,
# so 0.2 is a clear gap without being unreachable.
MARGIN = 0.2

# Adam step size: small, because the network is already good at generic features and
# a few hundred steps at a larger rate would wash them out.
LEARNING_RATE = 1e-4

# The stem and the first blocks stay frozen: they compute edges and textures that
# photos and covers share, and not back-propagating through them halves step time.
FROZEN_BLOCKS = 6

# Covers are decoded once, at this size, and kept in memory for the whole training.
TRAINING_COVER_SIDE = 320

# Other covers piled behind the photographed one, drawn from the catalogue.
CLUTTER_COVERS = 64

# Bump when anything above or in the synthetic photos changes, so old caches are not
# mistaken for new ones.
RECIPE_VERSION = 1


def _cache_key(covers: list[Entry], budget_seconds: float, seed: int) -> str:
    """Hash of what decides the trained weights: catalogue, budget, seed, recipe."""
    digest = hashlib.sha1()
    for cover in sorted(covers, key=lambda entry: entry.object_id):
        digest.update(f"{cover.object_id}\t{cover.path.name}\n".encode())
    digest.update(f"{budget_seconds}:{seed}:{RECIPE_VERSION}".encode())
    return digest.hexdigest()[:16]


def _freeze_early_layers(network) -> list:
    """Freeze the stem and the first blocks; return the parameters left to train."""
    frozen = [network._conv_stem, network._bn0, *network._blocks[:FROZEN_BLOCKS]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False
    return [p for p in network.parameters() if p.requires_grad]


def _keep_batch_norm_statistics(network) -> None:
    """Put batch norm in inference mode: batches of a dozen covers would skew it."""
    import torch

    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def train(
    covers: list[Entry],
    budget_seconds: float,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Fine-tune EfficientNet-Lite0 on synthetic photos of ``covers``.

    Parameters
    ----------
    covers : list of Entry
        The catalogue; every cover is a class of its own.
    budget_seconds : float
        Wall-clock time after which training stops, at the end of a step.
    seed : int
        Seed of the batch draws and of the synthetic photos.

    Returns
    -------
    state_dict : dict
        The fine-tuned weights, loadable by :func:`load_network`.
    log : dict
        Steps run, seconds spent, covers per step and the mean loss of the last steps.
    """
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cover_images = [
        fit_long_side(read_bgr(cover.path), TRAINING_COVER_SIDE) for cover in covers
    ]
    clutter_picks = rng.choice(
        len(cover_images), min(CLUTTER_COVERS, len(cover_images)), replace=False
    )
    clutter = [cover_images[index] for index in clutter_picks]

    network = load_network()
    trainable = _freeze_early_layers(network)
    optimiser = torch.optim.Adam(trainable, lr=LEARNING_RATE)
    per_step = min(COVERS_PER_STEP, len(cover_images))
    order = rng.permutation(len(cover_images))
    position, steps, losses = 0, 0, []

    started = time.perf_counter()
    while time.perf_counter() - started < budget_seconds:
        if position + per_step > len(order):
            order, position = rng.permutation(len(cover_images)), 0
        picks = order[position : position + per_step]
        position += per_step

        clean = [to_input(cover_images[index]) for index in picks]
        photos = [
            to_input(synthesize_photo(cover_images[index], rng, clutter))
            for index in picks
        ]
        network.train()
        _keep_batch_norm_statistics(network)
        embeddings = embed(network, torch.from_numpy(np.stack(clean + photos)))
        cover_embeddings, photo_embeddings = (
            embeddings[:per_step],
            embeddings[per_step:],
        )

        similarities = photo_embeddings @ cover_embeddings.T
        positives = similarities.diagonal()
        wrong = similarities - 2 * torch.eye(per_step)
        hardest_negatives = wrong.max(dim=1).values
        loss = torch.relu(MARGIN + hardest_negatives - positives).mean()

        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
        losses.append(loss.item())
        if steps % 20 == 0:
            logger.info("deep ranking step %d, loss %.3f", steps, np.mean(losses[-20:]))

    network.eval()
    # The mean of 20 steps at each end, or of each half when there are fewer than 40
    # (a --quick run), so that the two never average the same steps.
    window = max(1, min(20, len(losses) // 2))
    log = {
        "steps": steps,
        "seconds": time.perf_counter() - started,
        "covers_per_step": per_step,
        "budget_seconds": budget_seconds,
        "final_loss": float(np.mean(losses[-window:])) if losses else None,
        "first_loss": float(np.mean(losses[:window])) if losses else None,
    }
    return network.state_dict(), log


def _rounded(loss: float | None) -> str:
    return "n/a" if loss is None else f"{loss:.3f}"


class DeepRankingMethod(GlobalEmbeddingMethod):
    """EfficientNet-Lite0 fine-tuned on the catalogue, nearest cover by cosine.

    Parameters
    ----------
    budget_seconds : float
        Training wall-clock budget, used when no cached weights fit the catalogue.
    seed : int
        Seed of training.
    cache_dir : Path
        Where trained weights are kept between runs.

    Notes
    -----
    ``build`` trains (or loads cached weights), then embeds the covers; when it
    trained, the training time is part of the build time.
    """

    def __init__(
        self,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        seed: int = 0,
        cache_dir: Path = CACHE_DIR / "deep_ranking",
    ):
        super().__init__(name="Deep Ranking (EfficientNet-Lite0 triplet)")
        self.budget_seconds = budget_seconds
        self.seed = seed
        self.cache_dir = Path(cache_dir)

    def build(self, covers: list[Entry]) -> None:
        import torch

        key = _cache_key(covers, self.budget_seconds, self.seed)
        weights_path = self.cache_dir / f"{key}.pt"
        log_path = self.cache_dir / f"{key}.json"
        if weights_path.exists() and log_path.exists():
            log = json.loads(log_path.read_text())
            origin = f"weights from cache {weights_path}"
        else:
            state, log = train(covers, self.budget_seconds, self.seed)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            torch.save(state, weights_path)
            log_path.write_text(json.dumps(log, indent=2))
            origin = "trained in this build"
        self.weights = weights_path
        self.training_log_ = log
        self.notes = (
            f"triplet fine-tuning, budget {log['budget_seconds']:.0f} s: "
            f"{log['steps']} steps of {log['covers_per_step']} covers in "
            f"{log['seconds']:.0f} s, loss {_rounded(log['first_loss'])} -> "
            f"{_rounded(log['final_loss'])} ({origin}); " + self.notes
        )
        super().build(covers)

    def size_on_disk(self) -> int:
        """Bytes of the cover embeddings and of the fine-tuned weights: unlike the
        ImageNet weights, those exist only for this catalogue, as an index does."""
        return super().size_on_disk() + self.weights.stat().st_size
