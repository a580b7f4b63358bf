"""sensor_msgs/Image <-> numpy, following cv_bridge's encoding names and rules.

Why our own: cv_bridge is not installable from PyPI (the robot's venv uses ROS wheels), but the
nodes must read every image a ROS camera driver may publish.  This module mirrors cv_bridge's
behaviour (encoding table, row ``step`` with padding, ``is_bigendian``) and hands the conversion
to cv_bridge itself when it is importable (``use_cv_bridge=None``: automatic; True/False force
it), after the same validation, so both paths give the same arrays and the same errors.  It is
rclpy-free: it works on any object with the Image fields (a real message or a SimpleNamespace).
"""
from __future__ import annotations

import functools
import re
import sys
from types import SimpleNamespace
from typing import Any, Optional

import cv2
import numpy as np

__all__ = ['ImageConversionError', 'ENCODINGS', 'encoding_info', 'image_to_numpy',
           'numpy_to_image', 'to_bgr8', 'decode_compressed', 'cv_bridge_available']


class ImageConversionError(ValueError):
    """An image message or array that cannot be converted (bad encoding, size or data length)."""


# name -> (numpy dtype, channels); the names of sensor_msgs/image_encodings.hpp.
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3), 'rgba8': (np.dtype(np.uint8), 4),
    'rgb16': (np.dtype(np.uint16), 3), 'rgba16': (np.dtype(np.uint16), 4),
    'bgr8': (np.dtype(np.uint8), 3), 'bgra8': (np.dtype(np.uint8), 4),
    'bgr16': (np.dtype(np.uint16), 3), 'bgra16': (np.dtype(np.uint16), 4),
    'mono8': (np.dtype(np.uint8), 1), 'mono16': (np.dtype(np.uint16), 1),
}
for _b in ('rggb', 'bggr', 'gbrg', 'grbg'):
    ENCODINGS[f'bayer_{_b}8'] = (np.dtype(np.uint8), 1)
    ENCODINGS[f'bayer_{_b}16'] = (np.dtype(np.uint16), 1)
_CV_TYPE = re.compile(r'^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$')
_CV_DTYPE = {'8U': np.uint8, '8S': np.int8, '16U': np.uint16, '16S': np.int16,
             '32S': np.int32, '32F': np.float32, '64F': np.float64}


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """(dtype, channels) of an encoding name; generic OpenCV names like '32FC1' are accepted."""
    if encoding in ENCODINGS:
        return ENCODINGS[encoding]
    m = _CV_TYPE.match(encoding or '')
    if m:
        return np.dtype(_CV_DTYPE[m.group(1)]), int(m.group(2))
    raise ImageConversionError(
        f'unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)} and '
        f'OpenCV types like 8UC3 / 32FC1 (YUV and other packed formats are not supported)')


#: Use cv_bridge when importable and the caller did not choose (tests switch this off to test
#: the numpy path on machines that have cv_bridge).
PREFER_CV_BRIDGE = True


@functools.lru_cache(maxsize=1)
def cv_bridge_available() -> bool:
    """True when the real cv_bridge can be imported (a ROS install from Debian packages)."""
    try:
        import cv_bridge  # noqa: F401, PLC0415 - optional ROS package, probed here
    except Exception:  # noqa: BLE001 - ImportError or a broken binary module
        return False
    return True


def _host_big_endian() -> bool:
    return sys.byteorder == 'big'


def _use_bridge(use_cv_bridge: Optional[bool]) -> bool:
    if use_cv_bridge is None:
        return PREFER_CV_BRIDGE and cv_bridge_available()
    return bool(use_cv_bridge) and cv_bridge_available()


def image_to_numpy(msg: Any, use_cv_bridge: Optional[bool] = None) -> np.ndarray:
    """The pixels of an Image message as an HxW or HxWxC array in the message's own encoding.

    Rows padded beyond ``width * channels * itemsize`` (``step`` larger) are cropped; a
    big-endian message is byte-swapped to native order.  Raises ImageConversionError for an
    unknown encoding, a zero-size image, a step smaller than a row, or a data length that is not
    ``step * height``.  The result never aliases the message buffer.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype, channels = encoding_info(msg.encoding)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'image has zero size ({width}x{height})')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(f'image step {step} is smaller than one row '
                                   f'({width} px * {channels} ch * {dtype.itemsize} B = {row_bytes})')
    data = msg.data
    n = len(data)
    if n != step * height:
        raise ImageConversionError(f'image data has {n} bytes, expected step*height = '
                                   f'{step}*{height} = {step * height} ({msg.encoding} {width}x{height})')
    if _use_bridge(use_cv_bridge):
        from cv_bridge import CvBridge  # noqa: PLC0415 - optional ROS package
        return np.array(CvBridge().imgmsg_to_cv2(msg, desired_encoding='passthrough'))
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview,
                                                             np.ndarray)) else data, np.uint8)
    rows = buf.reshape(height, step)[:, :row_bytes]
    dt = dtype.newbyteorder('>' if msg.is_bigendian else '<') if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(dt).reshape(height, width, channels)
    arr = arr.astype(dtype.newbyteorder('='), copy=True)
    return arr[:, :, 0] if channels == 1 else arr


def numpy_to_image(array: np.ndarray, encoding: str, msg: Any = None,
                   use_cv_bridge: Optional[bool] = None) -> Any:
    """Fill an Image message (or a new SimpleNamespace) from an array in ``encoding``.

    The array's dtype and channel count must match the encoding (cv_bridge's rule); the
    message is written densely (step = width * channels * itemsize) in host byte order.
    """
    if not isinstance(array, np.ndarray):
        raise ImageConversionError(f'expected a numpy array, got {type(array).__name__}')
    dtype, channels = encoding_info(encoding)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageConversionError(f'image array must be HxW or HxWxC and non-empty, '
                                   f'got shape {array.shape}')
    if array.shape[2] != channels or array.dtype != dtype:
        raise ImageConversionError(f'array {array.dtype} with {array.shape[2]} channel(s) does not '
                                   f'match encoding {encoding!r} ({dtype}, {channels} channel(s))')
    if msg is None:
        msg = SimpleNamespace(header=None)
    if _use_bridge(use_cv_bridge):
        from cv_bridge import CvBridge  # noqa: PLC0415 - optional ROS package
        out = CvBridge().cv2_to_imgmsg(np.ascontiguousarray(array.squeeze(-1) if channels == 1
                                                            else array), encoding=encoding)
        for f in ('height', 'width', 'encoding', 'is_bigendian', 'step', 'data'):
            setattr(msg, f, getattr(out, f))
        return msg
    h, w = array.shape[:2]
    msg.height, msg.width, msg.encoding = int(h), int(w), encoding
    msg.is_bigendian = 1 if _host_big_endian() else 0
    msg.step = int(w * channels * dtype.itemsize)
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def to_bgr8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any supported colour/grey image as uint8 BGR (what the face detector works on).

    16-bit and float images are scaled to 8 bit (16-bit: >> 8; float: [0, 1] -> [0, 255]).
    """
    dtype, channels = encoding_info(encoding)
    a = array if array.ndim == 3 else array[:, :, None]
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype in (np.float32, np.float64):
        a = np.clip(np.nan_to_num(a) * 255.0, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if encoding.startswith('bayer_'):
        code = {'rggb': cv2.COLOR_BayerRG2BGR, 'bggr': cv2.COLOR_BayerBG2BGR,
                'gbrg': cv2.COLOR_BayerGB2BGR, 'grbg': cv2.COLOR_BayerGR2BGR}[encoding[6:10]]
        # OpenCV names Bayer patterns by the second row; cv_bridge maps them the same way.
        return cv2.cvtColor(np.ascontiguousarray(a[:, :, 0]), code)
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(a[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if encoding.startswith('rgba'):
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGBA2BGR)
    if encoding.startswith('rgb'):
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR)
    if channels == 4:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGRA2BGR)
    if channels == 3:
        return np.ascontiguousarray(a)
    raise ImageConversionError(f'cannot convert a {channels}-channel {encoding!r} image to bgr8')


def decode_compressed(data: bytes, fmt: str = '') -> np.ndarray:
    """JPEG/PNG bytes (sensor_msgs/CompressedImage.data) -> uint8 BGR; clear error if corrupt."""
    buf = np.frombuffer(bytes(data), np.uint8)
    if buf.size == 0:
        raise ImageConversionError('compressed image is empty (0 bytes)')
    img: Optional[np.ndarray] = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageConversionError(f'cannot decode compressed image ({buf.size} bytes, '
                                   f'format {fmt or "unknown"!r}): corrupt or unsupported data')
    return img
