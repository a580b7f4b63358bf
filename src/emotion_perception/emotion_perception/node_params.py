"""The four perception nodes' parameter tables (no rclpy): what each node declares, and what
``emotion-eval bag`` and the bench build the same pipelines from.

``range`` and ``choices`` become the ParameterDescriptor's ranges / constraints text; ``live=True``
parameters take effect at once when set at run time (the node's ``on_parameters``), the others
are read only after start.  config/perception.yaml is checked against these tables by a test.
"""
from __future__ import annotations

from emotion_runtime.labels import expected_labels_spec
from emotion_runtime.params import ParamSpec, non_negative, positive

#: vocal_node ``span_pooling``: what a speech window publishes as the mean over its voiced span
SPAN_POOLING = ('none', 'logits', 'all')

__all__ = ['CAMERA_PARAMS', 'MICROPHONE_PARAMS', 'FACE_PARAMS', 'VOCAL_PARAMS', 'BY_NODE',
           'SPAN_POOLING']

# face_detection.CASCADES[0], spelled out so that this table does not import cv2.
DEFAULT_CASCADE = 'haarcascade_frontalface_alt2.xml'

CAMERA_PARAMS = [
    ParamSpec('source', '0', 'Camera: device index ("0", "/dev/video0"), video file path or '
              'stream URL (rtsp://, http://).'),
    ParamSpec('frame_id', 'camera_optical_frame', 'header.frame_id of image_raw/camera_info.'),
    ParamSpec('rate', 30.0, 'Publish rate [Hz] (also the pace at which a video file is played).',
              range=(0.1, 240.0)),
    ParamSpec('width', 640, 'Requested width [px] (devices); files are resized to it when '
              'width and height are > 0. 0 = keep.', range=(0, 8192)),
    ParamSpec('height', 480, 'Requested height [px]; 0 = keep.', range=(0, 8192)),
    ParamSpec('loop', True, 'Restart a video file at its end.'),
    ParamSpec('file_start_time', 0.0, 'Video file only: the ROS time [s since the epoch] at which '
              'frame 0 is due; frame n (over loops) is stamped start + n / rate, frames are '
              'dropped to keep to that timeline, and nothing is published before it. Give '
              'microphone_node the same value to play a video and an audio file on one clock. '
              '0 = play from activation, each frame stamped when read.', non_negative),
    ParamSpec('calibration_file', '', 'camera_calibration YAML; when set, camera_info is '
              'published with every image.'),
    ParamSpec('reconnect_initial', 0.5, 'First reconnect delay [s] after the camera is lost.',
              positive),
    ParamSpec('reconnect_max', 10.0, 'Longest reconnect delay [s] (doubling backoff; >= '
              'reconnect_initial).', positive),
]

MICROPHONE_PARAMS = [
    ParamSpec('device', '', 'sounddevice input device: "" = default, an index, or a name '
              'substring. Ignored when `file` is set.'),
    ParamSpec('file', '', 'WAV/FLAC/OGG file to publish instead of a device (tests, replays); '
              'its own sample rate is used.'),
    ParamSpec('loop', False, 'Restart the file at its end (file source only).'),
    ParamSpec('realtime', True, 'Pace the file at its real-time rate (false: as fast as '
              'possible, stamps still advance by the sample count).'),
    ParamSpec('file_wait_subscribers', 0, 'File source: hold the first chunk until this many '
              'subscribers are matched on `audio` (0 = start at once), so DDS discovery does '
              'not eat the start of a replayed file.', range=(0, 100)),
    ParamSpec('file_wait_timeout', 10.0, 'Longest hold for `file_wait_subscribers` [s]; then '
              'the file starts anyway, with a warning.', positive),
    ParamSpec('file_start_time', 0.0, 'File source only: the ROS time [s since the epoch] of the '
              "file's first sample; chunks are stamped from it and paced to it, a late start "
              'skips the chunks already past, and `file_wait_subscribers` is not used. Give '
              'camera_node the same value to play a video and an audio file on one clock. '
              '0 = start when the node is ready.', non_negative),
    ParamSpec('sample_rate', 16000, 'Device sample rate [Hz].', range=(8000, 192000)),
    ParamSpec('channels', 1, 'Channels to capture (device) or to mix the file to (0 = the '
              "file's own).", range=(0, 8)),
    ParamSpec('chunk_seconds', 0.1, 'Duration of one AudioChunk [s].', range=(0.005, 2.0)),
    ParamSpec('encoding', 'S16LE', 'Sample encoding of AudioChunk.data.',
              choices=('S16LE', 'F32LE')),
    ParamSpec('frame_id', 'microphone_link', 'header.frame_id of the chunks.'),
    ParamSpec('reconnect_initial', 0.5, 'First retry delay [s] when the device is missing.',
              positive),
    ParamSpec('reconnect_max', 10.0, 'Longest retry delay [s].', positive),
]

FACE_PARAMS = [
    ParamSpec('model_bundle', '', 'Model bundle directory; "" = the shipped default bundle.'),
    ParamSpec('encoder_threads', 1, 'onnxruntime intra-op threads of the vision encoder.',
              range=(1, 16)),
    expected_labels_spec(),
    ParamSpec('face_detector', 'mtcnn', 'Face detector: mtcnn (three small CNNs with five '
              'landmarks, the shipped ONNX nets in emotion_runtime/models/face_detector), yunet '
              '(one CNN with five landmarks, OpenCV Zoo\'s YuNet 2023mar shipped there), '
              'mtcnn_yunet (MTCNN scans whole frames, YuNet searches the windows around known '
              'faces: less CPU on faces up to ~120 px) or haar (OpenCV cascade; the cascade, '
              'detection_scale, scale_factor, min_neighbors parameters).',
              choices=('mtcnn', 'yunet', 'mtcnn_yunet', 'haar')),
    ParamSpec('yunet_score_threshold', 0.7, 'YuNet: score a face needs (higher = fewer false '
              'positives).', range=(0.3, 0.999), live=True),
    ParamSpec('mtcnn_min_confidence', 0.9, 'MTCNN: ONet score a face needs (higher = fewer false '
              'positives).', range=(0.7, 0.999), live=True),
    ParamSpec('mtcnn_pnet_threshold', 0.6, 'MTCNN: PNet score a window needs to become a '
              'candidate (lower = more candidates for RNet/ONet: more faces found, more CPU '
              'per scan).', range=(0.05, 0.95), live=True),
    ParamSpec('mtcnn_rnet_threshold', 0.7, 'MTCNN: RNet score a candidate needs to reach ONet '
              '(lower = more faces found, more CPU per scan).', range=(0.05, 0.95), live=True),
    ParamSpec('mtcnn_low_light_gain', 4.0, 'MTCNN: largest gain applied to a dark frame before '
              'detection (99th percentile of the searched pixels below 128: scaled to reach 200; '
              'the encoder still reads the frame as it is). 1 = off.', range=(1.0, 16.0),
              live=True),
    ParamSpec('cascade', DEFAULT_CASCADE, 'Haar cascade file name (in cv2.data.haarcascades) or an '
              'absolute path.'),
    ParamSpec('detection_scale', 0.5, 'Image scale the detector runs at (speed vs smallest '
              'face).', range=(0.1, 1.0)),
    ParamSpec('scale_factor', 1.15, 'Cascade pyramid step (> 1; larger = faster, fewer hits).',
              range=(1.01, 2.0)),
    ParamSpec('min_neighbors', 3, 'Cascade votes needed for a face (higher = fewer false '
              'positives; the detector\'s confidence threshold).', range=(1, 50), live=True),
    ParamSpec('min_face_size', 48, 'Smallest face side [px, full resolution].',
              range=(8, 4096), live=True),
    ParamSpec('turned_search_deg', 30.0, 'Also search copies of the frame turned by +- this '
              'angle [deg] for faces tilted in the image plane: whole-frame scans cycle '
              'upright, +angle, upright, -angle; a window that loses its face upright is '
              'searched turned. 0 = upright only. Measured: README "Turned faces (measured)".',
              range=(0.0, 60.0)),
    ParamSpec('full_scan_every', 5, 'Scan the whole frame for faces every N frames; in between '
              'only around the faces of the previous frame (a face missed there: whole at once). '
              '1 = every frame whole (slowest).', range=(1, 300)),
    ParamSpec('track_search_margin', 1.0, 'Between whole-frame scans: the search window around '
              'a known face, in face sizes per side (larger follows faster motion, costs more).',
              range=(0.1, 5.0)),
    ParamSpec('background_scan', True, 'While faces are in view, run the periodic whole-frame '
              'scan on a worker thread so no frame waits for it (false: in line).'),
    ParamSpec('max_faces', 8, 'At most this many faces per frame (largest first).',
              range=(1, 64), live=True),
    ParamSpec('iou_threshold', 0.2, 'Tracking: IoU above which a detection continues a track.',
              range=(0.0, 0.99), live=True),
    ParamSpec('max_center_shift', 0.75, 'Tracking: centre shift (in box sizes) still accepted '
              'without overlap.', non_negative, live=True),
    ParamSpec('lost_timeout', 1.0, 'Tracking: seconds a face may be unseen before its id is '
              'dropped.', non_negative),
    ParamSpec('min_hits', 2, 'Tracking: frames in a row a new face must be seen before it gets '
              'an id and is published (suppresses one-frame false positives).', range=(1, 30)),
    ParamSpec('crop_margin', 0.1, 'Face crop margin (fraction of the box per side) for the '
              'encoder.', range=(0.0, 1.0), live=True),
    ParamSpec('align_faces', True, 'Crop each face aligned on its five landmarks (rotation, '
              'scale and shift onto the FER2013 landmark template, emotion_perception.'
              'face_alignment) instead of its box (crop_margin then unused); faces without '
              'landmarks (Haar) keep the box crop. Measured against the box crop: README '
              '"Aligned crops (measured)".',
              live=True),
    ParamSpec('align_keep_roll', 10.0, 'Aligned crops: in-plane roll [deg] a face keeps in its '
              'crop; only the excess is turned upright (0 = every face fully upright; 180 = '
              'scale and shift onto the FER2013 template only, never rotated). FER2013 crops, '
              'which the encoder was trained on, keep their own roll. Measured: README '
              '"Stream vision (measured)".', range=(0.0, 180.0), live=True),
    ParamSpec('identity_threshold', 0.5, 'Tracking: a track whose face crop correlates below '
              'this (16x16 grey thumbnails) with every look of it in its last 16 frames '
              '(identity_confirm frames in a row) is taken to be another person standing where '
              'the tracked one stood and gets a new id, so fusion starts its state afresh. '
              '0 = off (ids follow box overlap only).', range=(0.0, 1.0), live=True),
    ParamSpec('identity_confirm', 2, 'Tracking: frames in a row a track\'s crop must look '
              'unlike every look of it in its last 16 frames (identity_threshold) before it gets '
              'a new id; 2 keeps the id of a face whose detections alternate between two '
              'framings (1 = at the first such frame).', range=(1, 30), live=True),
    ParamSpec('max_encode_rate_hz', 0.0, 'Encode each face at most this often [Hz] and publish '
              'its feature then; the frames in between are still detected, tracked and '
              'published on faces (0 = every frame; 15 at 30 fps saves a quarter of the CPU and '
              'costs about 0.02 fused UAR).', non_negative),
    ParamSpec('publish_debug_image', False, 'Publish debug_image (boxes, ids, latest label).'),
    ParamSpec('image_input', 'raw', 'Camera input: raw (image_raw, sensor_msgs/Image), compressed '
              '(image_raw/compressed, sensor_msgs/CompressedImage JPEG/PNG), or both.',
              choices=('raw', 'compressed', 'both')),
]

VOCAL_PARAMS = [
    ParamSpec('model_bundle', '', 'Model bundle directory; "" = the shipped default bundle.'),
    ParamSpec('encoder_threads', 1, 'onnxruntime intra-op threads of the vocal encoder.',
              range=(1, 16)),
    expected_labels_spec(),
    ParamSpec('window_seconds', 0.0, 'Analysis window [s]; 0 = the bundle manifest\'s.',
              range=(0.0, 30.0)),
    ParamSpec('hop_seconds', 0.0, 'Window hop [s]; 0 = the bundle manifest\'s.',
              range=(0.0, 30.0)),
    ParamSpec('buffer_seconds', 10.0, 'Ring buffer length [s] (must exceed window + hop).',
              range=(1.0, 120.0)),
    ParamSpec('gap_tolerance', 0.02, 'Stamp jitter [s] still treated as contiguous.',
              range=(0.0, 1.0)),
    ParamSpec('max_gap_fill', 0.5, 'Gaps up to this [s] are filled with silence; longer ones '
              'reset the stream.', non_negative),
    ParamSpec('vad', 'silero', 'Voice-activity detector: silero (the shipped Silero VAD model, '
              'onnxruntime; falls back to energy with an error on /diagnostics when its file is '
              'missing) or energy (level above an adaptive noise floor).',
              choices=('silero', 'energy')),
    ParamSpec('vad_threshold', 0.5, 'Silero VAD: speech probability at which speech starts (it '
              'continues down to this - 0.15).', range=(0.05, 0.95), live=True),
    ParamSpec('vad_silero_hangover_seconds', 0.0, 'Silero VAD: speech is held this long after '
              'the last speech frame.', range=(0.0, 5.0)),
    ParamSpec('vad_silero_preroll_seconds', 0.08, 'Silero VAD: this much audio before each '
              'detected speech onset counts as speech too (the flags come out that much later).',
              range=(0.0, 0.5)),
    ParamSpec('vad_frame_seconds', 0.02, 'VAD frame length [s] (the flag grid).',
              range=(0.005, 0.1)),
    ParamSpec('vad_margin_db', 10.0, 'Energy VAD: speech is this many dB above the noise floor.',
              range=(0.0, 60.0), live=True),
    ParamSpec('vad_min_level_db', -50.0, 'Energy VAD: frames quieter than this [dBFS] are never '
              'speech.', range=(-120.0, 0.0), live=True),
    ParamSpec('vad_hangover_seconds', 0.3, 'Energy VAD: speech is held this long after the last loud '
              'frame.', range=(0.0, 5.0)),
    ParamSpec('vad_noise_window_seconds', 5.0, 'Energy VAD: history [s] for the noise-floor '
              'percentile.', range=(0.1, 60.0)),
    ParamSpec('vad_noise_percentile', 10.0, 'Energy VAD: percentile of frame levels taken as noise '
              'floor.', range=(0.0, 50.0), live=True),
    ParamSpec('min_speech_fraction', 0.2, 'A window is speech when at least this fraction of '
              'its VAD frames are.', range=(0.0, 1.0), live=True),
    ParamSpec('speaker_adaptation', True, 'Speaker-normalised bundles: calibrate the log-mel '
              'statistics online to the person talking (false = training population\'s).'),
    ParamSpec('speaker_half_life_seconds', 300.0, 'Speaker adaptation: speech this many seconds '
              'old counts half (shorter follows a new speaker sooner).', range=(1.0, 36000.0)),
    ParamSpec('span_pooling', 'logits', 'Decide per voiced span: each speech window publishes '
              'the mean of the speech windows of its span so far (a span ends at a pause longer '
              'than span_hangover_seconds) instead of its own: "logits" (the encoder\'s scores, '
              'which fusion_node publishes while no face is in view; the embedding the fusion '
              'head reads stays the window\'s own), "all" (embedding and logits) or "none" '
              '(each window\'s own). The message and its sizes stay the same.',
              choices=SPAN_POOLING),
    ParamSpec('span_hangover_seconds', 0.5, 'Span pooling: a pause between speech windows longer '
              'than this [s] (beyond one hop) starts a new span.', range=(0.0, 10.0)),
    ParamSpec('span_max_seconds', 10.0, 'Span pooling: at most the speech windows of the last '
              'this many seconds of a span are pooled.', range=(0.5, 120.0)),
]

BY_NODE = {'camera_node': CAMERA_PARAMS, 'microphone_node': MICROPHONE_PARAMS,
           'face_node': FACE_PARAMS, 'vocal_node': VOCAL_PARAMS}
