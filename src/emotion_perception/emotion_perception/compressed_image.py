"""sensor_msgs/CompressedImage (JPEG / PNG, as image_transport's "compressed" plugin publishes it)
to a bgr8 numpy image, with OpenCV; rclpy-free.

The ``format`` field of image_transport's compressed plugin reads e.g. "jpeg", "png",
"bgr8; jpeg compressed bgr8" or "rgb8; jpeg compressed bgr8": the part after "compressed" is the
encoding of the compressed data, which OpenCV decodes to BGR (colour) in every case.
"""
from __future__ import annotations

import cv2
import numpy as np

from .image_conversion import ImageConversionError

__all__ = ['compressed_to_bgr8', 'bgr8_to_jpeg', 'SUPPORTED_FORMATS']

SUPPORTED_FORMATS = ('jpeg', 'jpg', 'png')


def compressed_to_bgr8(fmt: str, data: bytes) -> np.ndarray:
    """Decode JPEG/PNG bytes to an HxWx3 uint8 BGR image; ImageConversionError if it cannot."""
    f = (fmt or '').lower()
    if f and not any(k in f for k in SUPPORTED_FORMATS):
        raise ImageConversionError(f'compressed image format {fmt!r} is not supported (use jpeg '
                                   'or png)')
    buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        raise ImageConversionError('compressed image has no data')
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageConversionError(f'compressed image ({fmt or "no format"}, {buf.size} bytes) '
                                   'cannot be decoded')
    return image


def bgr8_to_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode a bgr8 image as JPEG (what a CompressedImage with format "jpeg" carries)."""
    ok, buf = cv2.imencode('.jpg', image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ImageConversionError('JPEG encoding failed')
    return buf.tobytes()
