"""Images lose their metadata on the way in: EXIF (with GPS position, camera, times),
XMP, IPTC, comments and PNG text chunks.

A JPEG, PNG or HEIC (a phone's photo; read and written through pillow-heif) is decoded
with Pillow, turned upright by its EXIF orientation, and encoded again with nothing but
its pixels (and its colour profile, which says nothing about anyone). A file Pillow
cannot decode is refused: it was not really an image.
"""

from __future__ import annotations

import io
import warnings

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from store.documents.kinds import Kind, refusal

pillow_heif.register_heif_opener()
FORMATS = {Kind.JPEG: "JPEG", Kind.PNG: "PNG", Kind.HEIC: "HEIF"}

MAX_PIXELS = 80_000_000  # a 25 MB photo is far smaller; more is a decompression bomb


def without_metadata(data: bytes, kind: Kind) -> bytes:
    """The image re-encoded with no metadata, in the same format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise refusal("the image is too large")
                if image.format != FORMATS[kind]:
                    raise refusal("the image is damaged")
                upright = ImageOps.exif_transpose(image)
                icc = image.info.get("icc_profile")
                upright.info.clear()  # EXIF, XMP, text: nothing is carried over
                out = io.BytesIO()
                if kind is Kind.JPEG:
                    if upright.mode not in ("RGB", "L", "CMYK"):
                        upright = upright.convert("RGB")
                    upright.save(out, "JPEG", quality=92, icc_profile=icc)
                elif kind is Kind.HEIC:
                    upright.save(out, "HEIF", quality=90)
                else:
                    upright.save(out, "PNG", icc_profile=icc)
                return out.getvalue()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise refusal("the image is damaged") from None


PREVIEW_PX = 480  # the longest side of a preview in a PDF


def preview_png(data: bytes) -> bytes | None:
    """A small PNG of an image (for the chronology PDF), or None if it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            small = image.convert("RGB")
            small.thumbnail((PREVIEW_PX, PREVIEW_PX))
            out = io.BytesIO()
            small.save(out, "PNG", optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
