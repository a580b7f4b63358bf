"""camera_source: video files (looped or not), missing cameras, backoff, calibration YAML."""
import cv2
import numpy as np
import pytest

from emotion_perception.camera_source import (
    Backoff,
    CameraError,
    CameraSource,
    FileTimeline,
    load_calibration,
    parse_source,
)

CALIBRATION = """\
image_width: 640
image_height: 480
camera_name: head_camera
camera_matrix:
  rows: 3
  cols: 3
  data: [600.0, 0.0, 320.0, 0.0, 600.0, 240.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.1, -0.2, 0.001, 0.002, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [600.0, 0.0, 320.0, 0.0, 0.0, 600.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def write_video(path, n=8, size=(320, 240)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, size)
    assert writer.isOpened()
    for i in range(n):
        f = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        cv2.putText(f, str(i), (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(f)
    writer.release()
    return path


def test_parse_source():
    assert parse_source('0') == 0 and parse_source(2) == 2 and parse_source('/dev/video3') == 3
    assert parse_source('rtsp://cam/stream') == 'rtsp://cam/stream'
    assert parse_source('/tmp/x.avi') == '/tmp/x.avi'
    with pytest.raises(CameraError):
        parse_source('  ')


def test_video_file_loops_and_resizes(tmp_path):
    src = CameraSource(write_video(tmp_path / 'v.avi'), width=640, height=480, loop=True)
    src.open()
    frames = [src.read() for _ in range(20)]
    assert all(f is not None and f.shape == (480, 640, 3) for f in frames)
    assert src.loops >= 2
    # frame brightness restarts after the loop: frame 8 is frame 0 again
    assert abs(int(frames[8].mean()) - int(frames[0].mean())) < 5


def test_video_file_without_loop_ends(tmp_path):
    src = CameraSource(write_video(tmp_path / 'v.avi', n=5), loop=False)
    src.open()
    got = [src.read() for _ in range(7)]
    assert [f is not None for f in got] == [True] * 5 + [False] * 2
    assert src.ended and not src.is_open


def test_file_timeline_keeps_frames_on_the_clock():
    tl = FileTimeline(start=100.0, rate=10.0)
    assert tl.frames_to_drop(99.0) is None            # before the start: nothing is due
    assert tl.frames_to_drop(99.96) is None           # never early: stamp <= publish time
    assert tl.frames_to_drop(100.0) == 0
    assert tl.stamp() == 100.0
    tl.advance()
    assert tl.frames_to_drop(100.04) is None          # frame 1 is due at 100.1
    assert tl.frames_to_drop(100.12) == 0
    assert tl.frames_to_drop(100.22) == 0             # 1.2 frames late: published late, no drop
    tl.advance()
    # a stall: at 100.75 frame 7 is due, so frames 2..6 are dropped (lag 5.5 -> 5)
    assert tl.frames_to_drop(100.75) == 5
    tl.advance(5, dropped=True)
    assert tl.stamp() == pytest.approx(100.7) and tl.dropped == 5
    with pytest.raises(ValueError):
        FileTimeline(0.0, 0.0)


def test_video_file_declares_its_rate(tmp_path):
    src = CameraSource(write_video(tmp_path / 'v.avi'), loop=True)
    assert src.file_fps == 0.0                        # not open yet
    src.open()
    assert src.file_fps == pytest.approx(10.0)
    assert CameraSource(0).file_fps == 0.0


def test_missing_camera_and_file_fail_clearly(tmp_path):
    with pytest.raises(CameraError, match='does not exist'):
        CameraSource(str(tmp_path / 'nope.avi')).open()
    with pytest.raises(CameraError, match='cannot open camera device 63'):
        CameraSource('63').open()


def test_vanishing_device_closes_and_reports():
    class FlakyCapture:
        def __init__(self, *_):
            self.n = 0

        def isOpened(self):
            return True

        def set(self, *_):
            return True

        def read(self):
            self.n += 1
            return (True, np.zeros((4, 4, 3), np.uint8)) if self.n < 3 else (False, None)

        def release(self):
            pass

    src = CameraSource(0, capture_factory=FlakyCapture)
    src.open()
    assert src.read() is not None and src.read() is not None
    assert src.read() is None
    assert not src.is_open and 'device gone' in src.last_error and not src.ended


def test_backoff_doubles_caps_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_calibration_yaml(tmp_path):
    p = tmp_path / 'cam.yaml'
    p.write_text(CALIBRATION)
    c = load_calibration(str(p))
    assert (c.width, c.height, c.camera_name) == (640, 480, 'head_camera')
    assert c.k[0] == 600.0 and len(c.d) == 5 and len(c.p) == 12 and len(c.r) == 9
    bad = tmp_path / 'bad.yaml'
    bad.write_text(CALIBRATION.replace('data: [600.0, 0.0, 320.0, 0.0, 600.0, 240.0, 0.0, 0.0, 1.0]',
                                       'data: [1, 2]'))
    with pytest.raises(CameraError, match='camera_matrix.data must have 9'):
        load_calibration(str(bad))
    with pytest.raises(CameraError, match='cannot read'):
        load_calibration(str(tmp_path / 'missing.yaml'))
