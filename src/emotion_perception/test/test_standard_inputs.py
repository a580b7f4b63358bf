"""Standard inputs and QoS (REP-2003): default-QoS subscribers receive image_raw and audio (the
sensor publishers are reliable), and face_node reads image_raw/compressed (JPEG)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from perception_media import moving_face_frames

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

rclpy = pytest.importorskip('rclpy')
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from emotion_msgs.msg import AudioChunk, FaceArray  # noqa: E402
from emotion_perception.compressed_image import bgr8_to_jpeg, compressed_to_bgr8  # noqa: E402
from emotion_perception.image_conversion import ImageConversionError  # noqa: E402
from emotion_perception.ros_common import reliable_qos  # noqa: E402

PKG = 'emotion_perception'
LARGE_IMAGE_PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_images.xml'
DEFAULT_QOS = QoSProfile(depth=10)     # what `ros2 topic echo`, RViz and rosbag2 use: reliable


@pytest.fixture(autouse=True)
def large_image_transport(monkeypatch):
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', str(LARGE_IMAGE_PROFILE))


def test_compressed_decoding_round_trip_and_errors():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (0, 0, 255)
    out = compressed_to_bgr8('jpeg', bgr8_to_jpeg(frame))
    assert out.shape == (48, 64, 3) and abs(int(out[10, 5, 2]) - 255) < 10
    ok, png = cv2.imencode('.png', frame)
    assert np.array_equal(compressed_to_bgr8('bgr8; png compressed bgr8', png.tobytes()), frame)
    with pytest.raises(ImageConversionError, match='not supported'):
        compressed_to_bgr8('theora', b'abc')
    with pytest.raises(ImageConversionError, match='cannot be decoded'):
        compressed_to_bgr8('jpeg', b'not a jpeg')


def test_default_qos_subscribers_receive_image_raw_and_audio(tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (160, 120))
    for i in range(6):
        writer.write(np.full((120, 160, 3), 30 * i, np.uint8))
    writer.release()
    wav = tmp_path / 'tone.wav'
    t = np.arange(16000 * 2) / 16000.0
    sf.write(str(wav), (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    with isolated_domain() as d, RosHarness() as ros:
        images = ros.collect(Image, 'image_raw', DEFAULT_QOS)
        audio = ros.collect(AudioChunk, 'audio', DEFAULT_QOS)
        with NodeProcess(PKG, 'camera_node', params={'source': str(video), 'rate': 20.0},
                         env=ros_env(d)) as cam, \
                NodeProcess(PKG, 'microphone_node',
                            params={'file': str(wav), 'file_wait_subscribers': 1, 'loop': True},
                            env=ros_env(d)) as mic:
            assert ros.wait_for(lambda: len(images) >= 5, 30.0), cam.output()
            assert ros.wait_for(lambda: len(audio) >= 10, 30.0), mic.output()
            # the publishers offer reliable QoS (REP-2003)
            for topic in ('image_raw', 'audio'):
                infos = ros.node.get_publishers_info_by_topic(topic)
                assert infos and all(i.qos_profile.reliability.name == 'RELIABLE'
                                     for i in infos), topic
    assert images[-1].width > 0 and len(images[-1].data) == images[-1].step * images[-1].height
    assert images[-1].header.frame_id == 'camera_optical_frame'      # a frame of the URDF
    assert audio[-1].header.frame_id == 'microphone_link'


def test_face_node_reads_compressed_images(test_bundle):
    frames = moving_face_frames(20)
    with isolated_domain() as d, \
            NodeProcess(PKG, 'face_node', params={'model_bundle': str(test_bundle),
                                                  'image_input': 'compressed'},
                        env=ros_env(d)) as node, RosHarness() as ros:
        faces = ros.collect(FaceArray, 'faces', reliable_qos(50))
        pub = ros.publisher(CompressedImage, 'image_raw/compressed', reliable_qos(5))
        assert ros.wait_for_subscribers(pub, timeout=30), node.output()
        assert ros.node.count_subscribers('image_raw') == 0     # raw is not read in this mode
        for i, frame in enumerate(frames):
            msg = CompressedImage(format='jpeg', data=bgr8_to_jpeg(frame))
            msg.header.stamp = Time(sec=1000 + i, nanosec=0)
            msg.header.frame_id = 'camera_optical_frame'
            pub.publish(msg)
            ros.wait_for(lambda n=i: len(faces) > n, 3.0)
        assert ros.wait_for(lambda: any(f.faces for f in faces), 10.0), node.output()
        found = [f for f in faces if f.faces]
        h, w = frames[0].shape[:2]
        assert (found[-1].faces[0].image_width, found[-1].faces[0].image_height) == (w, h)
        assert found[-1].header.frame_id == 'camera_optical_frame'
        assert node.stop() == 0, node.output()

