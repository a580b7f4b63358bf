"""image_conversion: cv_bridge's encodings, strides, byte order and clear errors."""
import sys
import types

import cv2
import numpy as np
import pytest

from emotion_perception import image_conversion
from emotion_perception.image_conversion import (
    ImageConversionError,
    cv_bridge_available,
    decode_compressed,
    encoding_info,
    image_to_numpy,
    numpy_to_image,
    to_bgr8,
)


@pytest.fixture(autouse=True)
def numpy_path(monkeypatch):
    """These tests check our own conversion; cv_bridge is only used where a test asks for it."""
    monkeypatch.setattr(image_conversion, 'PREFER_CV_BRIDGE', False)


def _msg(**kw):
    return types.SimpleNamespace(**kw)


@pytest.mark.parametrize('encoding,dtype,channels', [
    ('bgr8', np.uint8, 3), ('rgb8', np.uint8, 3), ('mono8', np.uint8, 1), ('bgra8', np.uint8, 4),
    ('rgba8', np.uint8, 4), ('mono16', np.uint16, 1), ('bgr16', np.uint16, 3),
    ('16UC1', np.uint16, 1), ('32FC1', np.float32, 1), ('8UC3', np.uint8, 3),
    ('bayer_rggb8', np.uint8, 1), ('64FC2', np.float64, 2)])
def test_round_trip_every_encoding(encoding, dtype, channels):
    rng = np.random.default_rng(1)
    shape = (7, 5) if channels == 1 else (7, 5, channels)
    arr = (rng.random(shape) * 1000).astype(dtype)
    msg = numpy_to_image(arr, encoding)
    assert (msg.height, msg.width, msg.encoding) == (7, 5, encoding)
    assert msg.step == 5 * channels * np.dtype(dtype).itemsize
    back = image_to_numpy(msg)
    assert back.dtype == dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_real_sensor_msgs_image_round_trip():
    from sensor_msgs.msg import Image
    from skimage import data
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    msg = numpy_to_image(img, 'bgr8', Image())
    assert isinstance(msg, Image) and len(msg.data) == 512 * 512 * 3
    np.testing.assert_array_equal(image_to_numpy(msg), img)


def test_padded_rows_odd_stride():
    """step larger than a row (driver alignment padding) is cropped, not read as pixels."""
    arr = np.arange(3 * 3 * 3, dtype=np.uint8).reshape(3, 3, 3)
    rows = [arr[r].tobytes() + b'\xee\xee\xee' for r in range(3)]   # 9 B of pixels + 3 B pad
    msg = _msg(height=3, width=3, encoding='bgr8', is_bigendian=0, step=12, data=b''.join(rows))
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_big_endian_mono16():
    arr = np.array([[1, 256, 65535], [4660, 0, 2]], np.uint16)
    msg = _msg(height=2, width=3, encoding='mono16', is_bigendian=1, step=6,
               data=arr.astype('>u2').tobytes())
    out = image_to_numpy(msg)
    assert out.dtype == np.uint16 and out.dtype.byteorder in ('=', '|', '<')
    np.testing.assert_array_equal(out, arr)


def test_rgb_and_mono_to_bgr8():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200                                  # red in RGB
    assert to_bgr8(rgb, 'rgb8')[0, 0].tolist() == [0, 0, 200]
    mono16 = np.full((2, 2), 0xAB00, np.uint16)
    assert to_bgr8(mono16, 'mono16')[0, 0].tolist() == [0xAB] * 3
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 2] = 90                                  # blue in RGBA
    assert to_bgr8(rgba, 'rgba8')[0, 0].tolist() == [90, 0, 0]


@pytest.mark.parametrize('encoding', ['yuv422', 'nv21', '', 'bgr9', '8UC5'])
def test_unknown_encoding_is_a_clear_error(encoding):
    msg = _msg(height=2, width=2, encoding=encoding, is_bigendian=0, step=4, data=bytes(8))
    with pytest.raises(ImageConversionError, match='unsupported image encoding'):
        image_to_numpy(msg)
    with pytest.raises(ImageConversionError):
        encoding_info(encoding)


def test_zero_size_wrong_length_and_short_step():
    with pytest.raises(ImageConversionError, match='zero size'):
        image_to_numpy(_msg(height=0, width=4, encoding='mono8', is_bigendian=0, step=4,
                            data=b''))
    with pytest.raises(ImageConversionError, match='expected step\\*height'):
        image_to_numpy(_msg(height=4, width=4, encoding='bgr8', is_bigendian=0, step=12,
                            data=bytes(47)))
    with pytest.raises(ImageConversionError, match='smaller than one row'):
        image_to_numpy(_msg(height=2, width=4, encoding='bgr8', is_bigendian=0, step=8,
                            data=bytes(16)))
    with pytest.raises(ImageConversionError, match='does not match encoding'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'bgr8')
    with pytest.raises(ImageConversionError, match='non-empty'):
        numpy_to_image(np.zeros((0, 3, 3), np.uint8), 'bgr8')


def test_compressed_images_decode_or_fail_clearly():
    from skimage import data
    ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    img = decode_compressed(jpeg.tobytes(), 'jpeg')
    assert img.shape == (512, 512, 3)
    for bad in (b'', b'\xff\xd8\xff' + bytes(100), b'not a jpeg at all' * 10,
                jpeg.tobytes()[:20]):
        with pytest.raises(ImageConversionError):
            decode_compressed(bad, 'jpeg')


def test_cv_bridge_path_is_used_when_importable(monkeypatch):
    """With cv_bridge importable, conversion goes through it (a recording stand-in here, the
    real module on a Debian ROS install, where both paths must agree)."""
    arr = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    if cv_bridge_available():
        msg = numpy_to_image(arr, 'bgr8', use_cv_bridge=True)
        np.testing.assert_array_equal(image_to_numpy(msg, use_cv_bridge=True),
                                      image_to_numpy(msg))
        return
    calls = []

    class FakeBridge:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            calls.append(desired_encoding)
            return image_to_numpy(msg)

        def cv2_to_imgmsg(self, a, encoding):
            calls.append(encoding)
            return numpy_to_image(a, encoding)

    monkeypatch.setitem(sys.modules, 'cv_bridge', types.SimpleNamespace(CvBridge=FakeBridge))
    cv_bridge_available.cache_clear()
    monkeypatch.setattr(image_conversion, 'cv_bridge_available', lambda: True)
    msg = numpy_to_image(arr, 'bgr8', use_cv_bridge=True)
    np.testing.assert_array_equal(image_to_numpy(msg, use_cv_bridge=True), arr)
    assert calls == ['bgr8', 'passthrough']
