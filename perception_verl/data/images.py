"""Image values from datasets and files: decode, re-encode as PNG where needed, and hash pixels.

Accepted image values: ``{"bytes": ..., "path": ...}`` dicts (the hub's parquet layout), raw bytes,
PIL images, and file paths. The pixel hash (SHA-256 over size and RGB pixels) is the same for a
picture however it was encoded, so annotation rows can be matched to problems by their images.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from perception_verl.errors import PerceptionVerlError

# A vision-language policy crashes verl 0.9.1 on a row without an image (transformers 5.x): the data
# build refuses such rows and the dry run names them, quoting this line.
TEXT_ROW_CRASH = (
    "verl/models/transformers/qwen2_vl.py:393 (image_embeds.mean() on the vision encoder's "
    "BaseModelOutputWithPooling, for a batch without pixel_values)"
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})


class ImageDataError(PerceptionVerlError, ValueError):
    """An image value that cannot be decoded; the message says why."""


class MissingImageError(ImageDataError):
    """An image entry that holds no data at all (``None``, no bytes and no path, a missing file)."""


@dataclass(frozen=True)
class DecodedImage:
    """PNG bytes of one image and the hash of its pixels."""

    png: bytes
    pixel_hash: str


def raw_image_bytes(value: Any) -> bytes | Image.Image:
    """The encoded bytes (or an already decoded PIL image) held by one image value."""
    if value is None:
        raise MissingImageError("image entry is None")
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is not None:
            return raw_image_bytes(data)
        path = value.get("path")
        if path:
            return _read_path(path)
        raise MissingImageError("image entry has neither bytes nor a path")
    if isinstance(value, (str, os.PathLike)):
        return _read_path(value)
    raise ImageDataError(f"unsupported image value of type {type(value).__name__}")


def _read_path(path: str | os.PathLike[str]) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise MissingImageError(f"image file {str(file)!r} does not exist")
    return file.read_bytes()


def pixel_hash(image: Image.Image) -> str:
    """SHA-256 of the image's size and RGB pixels, independent of file format and encoder."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def decode_image(value: Any) -> DecodedImage:
    """Decode one image value; keep PNG bytes as they are, re-encode anything else as PNG."""
    raw = raw_image_bytes(value)
    if isinstance(raw, Image.Image):
        image, data = raw, None
    else:
        if not raw:
            raise ImageDataError("image bytes are empty")
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except Exception as error:
            raise ImageDataError(f"image bytes cannot be decoded ({type(error).__name__}: {error})") from None
        data = raw
    if data is None or not data.startswith(_PNG_SIGNATURE):
        data = _encode_png(image)
    return DecodedImage(png=data, pixel_hash=pixel_hash(image))


def _encode_png(image: Image.Image) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_images(values: Any) -> list[DecodedImage]:
    """Decode a row's image list (``None`` or empty: no images; a single value: one image)."""
    if values is None:
        return []
    if hasattr(values, "tolist") and not isinstance(values, Image.Image):
        values = values.tolist()
    if isinstance(values, (dict, bytes, bytearray, str, os.PathLike, Image.Image)):
        values = [values]
    if not isinstance(values, Sequence):
        raise ImageDataError(f"images must be a list, got {type(values).__name__}")
    decoded = []
    for position, value in enumerate(values):
        try:
            decoded.append(decode_image(value))
        except ImageDataError as error:
            raise type(error)(f"image {position}: {error}") from None
    return decoded


def row_images(values: Any, where: str, error: type[Exception], column: str = "") -> list[DecodedImage]:
    """:func:`decode_images` of one row's cell, a failure raised as ``error`` naming ``where`` (and the
    ``column``, when given): ``missing image`` or ``unreadable image bytes``."""
    place = f" in column {column!r}" if column else ""
    try:
        return decode_images(values)
    except MissingImageError as problem:
        raise error(f"{where}: missing image{place}: {problem}") from None
    except ImageDataError as problem:
        raise error(f"{where}: unreadable image bytes{place}: {problem}") from None
