"""Stage 1: image files in, greyscale pixel arrays at the working size out.

Catalogue covers and query photos go through the same loader, so that both sides of a
match see pixels prepared the same way. Decoding, EXIF orientation and the many pixel
formats found in the wild are left to Pillow; this module only decides how each one
becomes an 8-bit greyscale (or RGB) array. Next stage: :mod:`cvmatch.features`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import tuning
from .errors import ImageError, MissingExtraError, ParameterError

#: Background that transparent pixels are composited onto. Covers with an alpha channel
#: are shown on white pages and shop sites, so white is what a photo of one resembles.
_BACKGROUND = 255

# ISO base media "brands" that mean HEIF/HEIC/AVIF, found at byte 8 of such files.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"

_heif_registered = False
logger = logging.getLogger("cvmatch")


@dataclass(frozen=True)
class LoadedImage:
    """Pixels of one image, upright and scaled to the working size.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``uint8`` array, ``(height, width)`` for greyscale or ``(height, width, 3)``
        for RGB.
    original_size : tuple of int
        ``(width, height)`` of the upright image before scaling.
    scale : float
        Working pixels per original pixel; divide working coordinates by it to get
        coordinates in the original image.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    scale: float


def _register_heif() -> bool:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif
        except ImportError:
            return False
        pillow_heif.register_heif_opener()
        _heif_registered = True
    return True


def _describe(source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<image>"


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        return source.read()
    if not isinstance(source, (str, os.PathLike)):
        raise ParameterError(
            f"cannot read an image from a {type(source).__name__}; give a file path, "
            "the file's bytes or an open binary file"
        )
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror})") from None


def _open(content: bytes, name: str) -> Image.Image:
    if not content:
        raise ImageError(f"{name}: the file is empty")
    brand = content[8:12] if content[4:8] == b"ftyp" else b""
    if brand in _HEIF_BRANDS | _AVIF_BRANDS and not _register_heif():
        raise MissingExtraError(
            f"{name}: HEIF/HEIC images need an optional extra; "
            "install it with: pip install 'cvmatch[heif]'"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns about large images; the size check below is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
    except Image.DecompressionBombError:
        raise ImageError(_too_large_message(name)) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image file cvmatch can read "
            "(JPEG, PNG, WebP, GIF, BMP, TIFF, or HEIC with the heif extra)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: damaged image file ({error})") from None
    width, height = image.size
    if width * height > tuning.MAX_IMAGE_PIXELS:
        raise ImageError(_too_large_message(name, width, height))
    if width < 1 or height < 1:
        raise ImageError(f"{name}: the image has no pixels")
    return image


def _too_large_message(name, width=None, height=None) -> str:
    size = f" ({width}x{height})" if width else ""
    return (
        f"{name}: the image declares too many pixels{size}; cvmatch refuses images of "
        f"more than {tuning.MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    )


def _to_8bit(image: Image.Image, colour: bool) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(values * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return np.dstack([grey] * 3) if colour else grey
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        # Float images come either in [0, 1] or in [0, 255]; nothing else is common.
        if values.max() <= 1.0:
            values = values * 255.0
        grey = np.clip(values, 0, 255).round().astype(np.uint8)
        return np.dstack([grey] * 3) if colour else grey
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("LA", "RGBA", "RGBa"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (_BACKGROUND,) * 3 + (255,))
        image = Image.alpha_composite(background, image)
    target = "RGB" if colour else "L"
    if image.mode != target:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image = image.convert(target)
    return np.asarray(image)


def load_image(
    source,
    max_side: int = tuning.PHOTO_MAX_SIDE,
    *,
    min_side: int = 0,
    colour: bool = False,
):
    """Read an image file as upright 8-bit pixels scaled to a working size.

    The EXIF orientation is applied once; transparent pixels are composited onto white;
    16-bit, float, CMYK, palette and two-channel images become ordinary 8-bit pixels.
    JPEGs are decoded at reduced resolution where that is enough, which keeps
    48-megapixel photos fast and small in memory.

    A JPEG whose file lost only its last bytes is read, with a logged warning; one
    that lost part of its picture, and any other damaged file, is refused.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        The image.
    max_side : int, optional
        The longer side of the result is at most this many pixels; by default the
        size photos are matched at (``tuning.PHOTO_MAX_SIDE``, 1024).
    min_side : int, optional
        Smaller images are enlarged until their shorter side is this long (but never
        beyond ``max_side``). 0 leaves small images as they are.
    colour : bool, optional
        Return ``(height, width, 3)`` RGB pixels instead of greyscale.

    Returns
    -------
    LoadedImage

    Raises
    ------
    ImageError
        The file is missing, empty, damaged, not an image, or declares more pixels
        than :data:`cvmatch.tuning.MAX_IMAGE_PIXELS`.
    MissingExtraError
        The file is HEIF/HEIC and the ``heif`` extra is not installed.

    Examples
    --------
    >>> from cvmatch.images import load_image
    >>> photo = load_image("sample_covers/photos/query02.png", max_side=1024)
    >>> photo.pixels.dtype, photo.pixels.ndim
    (dtype('uint8'), 2)
    """
    name = _describe(source)
    content = _read_bytes(source)
    try:
        pixels, draft_factor = _decode(_open(content, name), max_side, colour)
    except OSError as error:
        if not (content[:2] == _JPEG_START and "truncated" in str(error)):
            raise ImageError(f"{name}: damaged image file ({error})") from None
        # A JPEG cut short: given an end marker, libjpeg decodes what arrived and
        # fills the rest with grey. Files that lost only their last bytes (common in
        # downloads) are complete pictures; a photo with a band missing is refused,
        # because part of a cover can look like another cover of the same series.
        try:
            pixels, draft_factor = _decode(
                _open(content + _JPEG_END, name), max_side, colour
            )
        except OSError as error:
            raise ImageError(f"{name}: damaged image file ({error})") from None
        missing = _missing_share(pixels)
        if missing > tuning.MAX_MISSING_SHARE:
            raise ImageError(
                f"{name}: the JPEG file is cut short and {missing:.0%} of the picture "
                "is missing; cvmatch does not use part of a picture"
            ) from None
        logger.warning("%s: the JPEG file is truncated; its picture is complete", name)
    upright_width = round(pixels.shape[1] / draft_factor)
    upright_height = round(pixels.shape[0] / draft_factor)
    pixels, resize = _fit(pixels, max_side, min_side)
    return LoadedImage(
        pixels=np.ascontiguousarray(pixels),
        original_size=(upright_width, upright_height),
        scale=draft_factor * resize,
    )


def _missing_share(pixels: np.ndarray) -> float:
    """Share of the picture lost at one edge, where libjpeg painted flat grey."""
    grey = np.all(pixels == 128, axis=2) if pixels.ndim == 3 else pixels == 128
    runs = []
    for view in (grey, grey[::-1], grey.T, grey.T[::-1]):
        complete = view.all(axis=1)
        runs.append(len(complete) if complete.all() else int(np.argmin(complete)))
        runs[-1] /= len(complete)
    return max(runs)


def _decode(image: Image.Image, max_side: int, colour: bool):
    stored_width, stored_height = image.size
    if image.format == "JPEG":
        shrink = max_side / max(stored_width, stored_height)
        if shrink < 1:
            # Let the JPEG decoder skip detail we would throw away: it can decode at
            # 1/2, 1/4 or 1/8 scale far faster and in far less memory.
            wanted = (
                math.ceil(stored_width * shrink),
                math.ceil(stored_height * shrink),
            )
            image.draft(
                "L" if not colour and image.mode in ("L", "RGB") else None, wanted
            )
    draft_factor = image.size[0] / stored_width
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_8bit(image, colour), draft_factor
    except (SyntaxError, ValueError, EOFError, struct.error) as error:
        raise OSError(str(error)) from None


def _fit(pixels: np.ndarray, max_side: int, min_side: int):
    height, width = pixels.shape[:2]
    factor = 1.0
    if max(height, width) > max_side:
        factor = max_side / max(height, width)
    elif min_side and min(height, width) < min_side:
        factor = min(min_side / min(height, width), max_side / max(height, width))
    if factor == 1.0:
        return pixels, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(pixels, size, interpolation=interpolation), factor
