"""Synthetic phone photos of a cover, for training without any real photo.

:func:`synthesize_photo` lays a cover on a cluttered background under a random
perspective and rotation, then spoils it the ways a phone camera does: uneven light,
glare, a thumb over an edge, blur, sensor noise and JPEG compression. The real photos
of ``manifest.csv`` are never used, so a method trained on these images is still
measured on photos it has not seen.
"""

from __future__ import annotations

import cv2
import numpy as np

# Size of the synthetic photo, portrait or landscape at random: about the resolution
# the global methods look at, so nothing is drawn finer than they can see.
PHOTO_SIDES = (480, 640)

# Share of the photo's shorter side that the cover's longer side spans. A third is a
# cover on a desk shot from afar; nearly all of it is a close-up that crops the edges.
COVER_SPAN = (0.35, 0.95)

# In-plane rotation, in degrees: phones are held roughly upright, rarely exactly.
MAX_ROTATION = 25.0

# How far each corner may move, as a share of the cover's size, to mimic a view from
# the side rather than from straight above.
MAX_PERSPECTIVE = 0.15

# Tiles of other covers that make up a cluttered background (books on a table).
BACKGROUND_TILES = (2, 5)

# Chances that each kind of damage is applied to one photo.
GLARE_CHANCE = 0.4
THUMB_CHANCE = 0.3
BLUR_CHANCE = 0.5
SHADOW_CHANCE = 0.4

# Range of JPEG qualities: phone cameras save at 80-95, messaging apps recompress lower.
JPEG_QUALITY = (35, 95)


def _background(
    height: int, width: int, others: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """A flat, noisy surface, or a clutter of other covers, blurred a little."""
    if others and rng.random() < 0.5:
        rows, cols = rng.integers(*BACKGROUND_TILES, endpoint=True, size=2)
        canvas = np.zeros((height, width, 3), np.uint8)
        tile_height, tile_width = -(-height // rows), -(-width // cols)
        for row in range(rows):
            for col in range(cols):
                tile = others[rng.integers(len(others))]
                tile = cv2.resize(tile, (tile_width, tile_height))
                top, left = row * tile_height, col * tile_width
                block = canvas[top : top + tile_height, left : left + tile_width]
                block[...] = tile[: block.shape[0], : block.shape[1]]
        return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 3.0))

    colour = rng.integers(0, 256, size=3).astype(np.float32)
    ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), width)
    surface = colour * ramp[None, :, None] * np.ones((height, 1, 1), np.float32)
    surface += rng.normal(0, rng.uniform(2, 12), size=surface.shape)
    return np.clip(surface, 0, 255).astype(np.uint8)


def _cover_corners(
    cover_height: int, cover_width: int, height: int, width: int, rng
) -> np.ndarray:
    """Where the cover's four corners land in the photo, clockwise from top left."""
    span = rng.uniform(*COVER_SPAN) * min(height, width)
    scale = span / max(cover_height, cover_width)
    half_width, half_height = cover_width * scale / 2, cover_height * scale / 2
    corners = np.float32(
        [
            [-half_width, -half_height],
            [half_width, -half_height],
            [half_width, half_height],
            [-half_width, half_height],
        ]
    )
    corners += rng.uniform(-MAX_PERSPECTIVE, MAX_PERSPECTIVE, size=(4, 2)) * [
        2 * half_width,
        2 * half_height,
    ]
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    rotation = np.float32(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    )
    centre = np.float32(
        [rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height]
    )
    return (corners @ rotation.T + centre).astype(np.float32)


def _spoil(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply the light, glare, thumb, blur, noise and compression of a phone."""
    height, width = photo.shape[:2]
    image = photo.astype(np.float32)

    gain = rng.uniform(0.6, 1.3, size=3) * rng.uniform(0.8, 1.1)
    image = image * gain[None, None, :] + rng.uniform(-20, 20)

    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    if rng.random() < SHADOW_CHANCE:
        direction = rng.normal(size=2)
        ramp = (cols * direction[0] + rows * direction[1]) / max(height, width)
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
        image *= (1 - rng.uniform(0.2, 0.6) * ramp)[..., None]
    if rng.random() < GLARE_CHANCE:
        centre_x, centre_y = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.3) * max(height, width)
        blob = np.exp(-((cols - centre_x) ** 2 + (rows - centre_y) ** 2) / radius**2)
        image += rng.uniform(80, 255) * blob[..., None]
    if rng.random() < THUMB_CHANCE:
        skin = np.float32([rng.uniform(90, 170), rng.uniform(120, 190), 220])
        centre = (int(rng.uniform(0, width)), int(rng.choice([0, height])))
        axes = (
            int(rng.uniform(0.08, 0.15) * width),
            int(rng.uniform(0.1, 0.25) * height),
        )
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 255, -1)
        image[mask > 0] = skin * rng.uniform(0.6, 1.0)

    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < BLUR_CHANCE:
        if rng.random() < 0.5:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 2.5))
        else:
            length = int(rng.integers(3, 12))
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1 / length
            turn = cv2.getRotationMatrix2D(
                (length / 2, length / 2), rng.uniform(0, 180), 1
            )
            kernel = cv2.warpAffine(kernel, turn, (length, length))
            image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
    noisy = image + rng.normal(0, rng.uniform(0, 8), size=image.shape)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    quality = int(rng.integers(*JPEG_QUALITY, endpoint=True))
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def synthesize_photo(
    cover: np.ndarray,
    rng: np.random.Generator,
    clutter: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Make a plausible phone photo of ``cover``.

    Parameters
    ----------
    cover : ndarray of uint8, shape (height, width, 3)
        A clean BGR cover image.
    rng : numpy.random.Generator
        Source of every random choice, so a seed reproduces the photo.
    clutter : list of ndarray, optional
        Other covers to pile in the background; a plain surface is used without.

    Returns
    -------
    ndarray of uint8
        A BGR photo of :data:`PHOTO_SIDES`, portrait or landscape.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cover = np.full((300, 200, 3), 128, np.uint8)
    >>> synthesize_photo(cover, rng).shape[2]
    3
    """
    height, width = PHOTO_SIDES if rng.random() < 0.5 else PHOTO_SIDES[::-1]
    photo = _background(height, width, clutter or [], rng)

    cover_height, cover_width = cover.shape[:2]
    source = np.float32(
        [[0, 0], [cover_width, 0], [cover_width, cover_height], [0, cover_height]]
    )
    target = _cover_corners(cover_height, cover_width, height, width, rng)
    homography = cv2.getPerspectiveTransform(source, target)
    warped = cv2.warpPerspective(cover, homography, (width, height))
    mask = cv2.warpPerspective(
        np.full((cover_height, cover_width), 255, np.uint8), homography, (width, height)
    )
    photo[mask > 127] = warped[mask > 127]
    return _spoil(photo, rng)
