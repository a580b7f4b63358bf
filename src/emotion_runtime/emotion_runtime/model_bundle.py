"""Load and run a model bundle: ``manifest.json`` + ONNX files (vision, vocal, fusion step, and
the voiceprint where the voice decision has one: ``voiceprint``).

Why a bundle: the perception and fusion nodes, the offline evaluation and the tests must all run
the very same trained weights with the very same preprocessing.  The manifest carries labels,
preprocessing parameters, the valence/arousal table and a sha256 per file, so a bundle that was
edited, truncated or mixed with another is refused with a clear ``BundleError`` instead of
producing quietly wrong emotions.  Only numpy/json/hashlib/onnxruntime are used (no torch, no rclpy),
so this module runs on the robot.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Optional, Sequence

import numpy as np
import onnxruntime as ort

from . import preprocess
from .cpu import INT8_SAFE_WEIGHT_BOUND
from .speaker_calibration import SpeakerCalibration, VoiceCalibration
from .voiceprint import Voiceprint, check_section, combine, open_session

__all__ = ['BUNDLE_FORMAT', 'BundleError', 'ModelBundle', 'default_bundle_path', 'load_manifest',
           'sha256_of']

BUNDLE_FORMAT = 'emotion-bundle/1'
MANIFEST = 'manifest.json'
ONNX_KEYS = ('vision', 'vocal', 'fusion')

_REQUIRED_TOP = ('format', 'version', 'created', 'labels', 'vision', 'vocal', 'fusion',
                 'valence_arousal', 'files')
_REQUIRED_SECTION = {
    'vision': ('file', 'input_size', 'channels', 'mean', 'std', 'embedding_size'),
    'vocal': ('file', 'sample_rate', 'n_mels', 'n_fft', 'win_length', 'hop_length', 'fmin',
              'fmax', 'window_seconds', 'hop_seconds', 'embedding_size', 'normalisation'),
    'fusion': ('file', 'hidden_size', 'num_layers', 'inputs', 'outputs'),
}


class BundleError(RuntimeError):
    """A model bundle is missing, corrupt or does not fit what the caller expects."""


def sha256_of(path: pathlib.Path) -> str:
    """Hex sha256 of a file, read in chunks (ONNX files can be several MB)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def default_bundle_path() -> pathlib.Path:
    """Where the shipped bundle lives: $EMOTION_MODEL_BUNDLE, else the ament share dir, else source.

    The source-tree fallback lets tests and the offline tools run before ``colcon build``.
    """
    env = os.environ.get('EMOTION_MODEL_BUNDLE')
    if env:
        return pathlib.Path(env)
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - ROS optional
        share = pathlib.Path(get_package_share_directory('emotion_runtime')) / 'models' / 'default'
        if (share / MANIFEST).is_file():
            return share
    except Exception:  # noqa: BLE001 - ament not installed, package not built: fall through
        pass
    return pathlib.Path(__file__).resolve().parents[1] / 'models' / 'default'


def _check_positive_int(manifest: dict, section: str, key: str, where: pathlib.Path) -> None:
    value = manifest[section][key]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BundleError(f'{where}: manifest field {section}.{key} must be a positive integer, '
                          f'got {value!r}')


def _check_normalisation(vocal: dict, where: pathlib.Path) -> None:
    """The vocal ``normalisation`` section must be one that ``preprocess`` can apply."""
    norm = vocal['normalisation']
    kind = norm.get('type') if isinstance(norm, dict) else None
    if kind not in ('global', 'per_window', 'speaker', 'none'):
        raise BundleError(f'{where}: vocal.normalisation must be an object whose "type" is global, '
                          f'per_window, speaker or none, got {norm!r}')
    if kind == 'speaker':
        try:
            SpeakerCalibration.from_manifest(norm)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f'{where}: vocal.normalisation of type speaker is invalid '
                              f'(needs mean/std lists and prior_frames): {exc}') from exc
        if len(norm['mean']) != int(vocal['n_mels']):
            raise BundleError(f'{where}: vocal.normalisation has {len(norm["mean"])} band means '
                              f'for {vocal["n_mels"]} mel bands')


def load_manifest(path: Optional[os.PathLike | str] = None, verify_files: bool = True) -> dict:
    """Read and validate ``manifest.json`` of a bundle directory (format, keys, files, sha256)."""
    bundle = pathlib.Path(path) if path is not None else default_bundle_path()
    mpath = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f'model bundle directory {bundle} does not exist')
    if not mpath.is_file():
        raise BundleError(f'{mpath} is missing: not a model bundle')
    try:
        manifest = json.loads(mpath.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f'{mpath} is not readable JSON: {exc}') from exc
    if not isinstance(manifest, dict):
        raise BundleError(f'{mpath}: top level must be a JSON object')
    if manifest.get('format') != BUNDLE_FORMAT:
        raise BundleError(f'{mpath}: manifest field "format" is {manifest.get("format")!r}, '
                          f'expected {BUNDLE_FORMAT!r}')
    missing = [k for k in _REQUIRED_TOP if k not in manifest]
    if missing:
        raise BundleError(f'{mpath}: manifest lacks required field(s) {missing}')
    for section, keys in _REQUIRED_SECTION.items():
        if not isinstance(manifest[section], dict):
            raise BundleError(f'{mpath}: manifest field "{section}" must be an object')
        lack = [k for k in keys if k not in manifest[section]]
        if lack:
            raise BundleError(f'{mpath}: manifest section "{section}" lacks field(s) {lack}')
    labels = manifest['labels']
    if (not isinstance(labels, list) or not labels or
            not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels)):
        raise BundleError(f'{mpath}: manifest field "labels" must be a list of distinct names, '
                          f'got {labels!r}')
    for section, key in (('vision', 'input_size'), ('vision', 'embedding_size'),
                         ('vision', 'channels'), ('vocal', 'sample_rate'), ('vocal', 'n_mels'),
                         ('vocal', 'n_fft'), ('vocal', 'hop_length'), ('vocal', 'win_length'),
                         ('vocal', 'embedding_size'), ('fusion', 'hidden_size'),
                         ('fusion', 'num_layers')):
        _check_positive_int(manifest, section, key, mpath)
    # window_seconds and hop_seconds are required (above); log_floor is optional
    for key in ('window_seconds', 'hop_seconds', 'log_floor'):
        if key not in manifest['vocal']:
            continue
        v = manifest['vocal'][key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise BundleError(f'{mpath}: manifest field vocal.{key} must be > 0, got {v!r}')
    _check_normalisation(manifest['vocal'], mpath)
    if 'noise_subtraction' in manifest['vocal']:
        problem = preprocess.noise_subtraction_problem(manifest['vocal']['noise_subtraction'])
        if problem:
            raise BundleError(f'{mpath}: manifest section vocal.noise_subtraction {problem}')
    if 'voiceprint' in manifest['vocal']:
        problem = check_section(manifest['vocal']['voiceprint'], len(labels),
                                int(manifest['vocal']['sample_rate']))
        if problem:
            raise BundleError(f'{mpath}: manifest section vocal.voiceprint {problem}')
    va = manifest['valence_arousal']
    if not isinstance(va, dict) or set(va) != set(labels):
        raise BundleError(f'{mpath}: manifest field "valence_arousal" must give [valence, arousal] '
                          f'for exactly the labels {labels}')
    for name, pair in va.items():
        if (not isinstance(pair, list) or len(pair) != 2 or
                not all(isinstance(x, (int, float)) for x in pair)):
            raise BundleError(f'{mpath}: valence_arousal[{name!r}] must be [valence, arousal]')
    files = manifest['files']
    if not isinstance(files, dict):
        raise BundleError(f'{mpath}: manifest field "files" must map file name to sha256')
    for section in ONNX_KEYS:
        fname = manifest[section]['file']
        if fname not in files:
            raise BundleError(f'{mpath}: {section}.file {fname!r} has no sha256 in "files"')
    if 'voiceprint' in manifest['vocal'] and manifest['vocal']['voiceprint']['file'] not in files:
        raise BundleError(f'{mpath}: vocal.voiceprint.file '
                          f'{manifest["vocal"]["voiceprint"]["file"]!r} has no sha256 in "files"')
    for fname, digest in files.items():
        fpath = bundle / fname
        if pathlib.Path(fname).name != fname:
            raise BundleError(f'{mpath}: file name {fname!r} must be a plain name in the bundle')
        if not fpath.is_file():
            raise BundleError(f'{fpath} is missing (listed in {mpath})')
        if verify_files:
            actual = sha256_of(fpath)
            if actual != digest:
                raise BundleError(f'{fpath}: sha256 mismatch (manifest {digest}, file {actual}); '
                                  f'the file is corrupt or from another bundle')
    return manifest


class ModelBundle:
    """A verified bundle with lazily created onnxruntime sessions.

    Sessions are created on first use so that a node needing only the vision encoder does not pay
    for the others.  All arrays are float32 numpy.
    """

    def __init__(self, path: pathlib.Path, manifest: dict, threads: int = 1) -> None:
        self.path = pathlib.Path(path)
        self.manifest = manifest
        self.labels: list[str] = list(manifest['labels'])
        self.threads = int(threads)
        self._sessions: dict[str, ort.InferenceSession] = {}
        self.va_table = np.array([manifest['valence_arousal'][k] for k in self.labels], np.float32)
        vp = manifest['vocal'].get('voiceprint')
        self.voiceprint: Optional[Voiceprint] = (
            None if vp is None else Voiceprint(self.path, vp, self.sample_rate, self.threads))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: Optional[os.PathLike | str] = None,
             expected_labels: Optional[Sequence[str]] = None, threads: int = 1) -> 'ModelBundle':
        """Verify and open a bundle (default: ``default_bundle_path()``).

        ``expected_labels``: the label order the caller's messages use; a bundle trained with
        another order is refused because probabilities would be attributed to the wrong emotion.
        """
        bundle = pathlib.Path(path) if path is not None else default_bundle_path()
        manifest = load_manifest(bundle)
        if expected_labels is not None and list(expected_labels) != list(manifest['labels']):
            raise BundleError(f'{bundle / MANIFEST}: label order {manifest["labels"]} differs from '
                              f'the expected {list(expected_labels)}')
        return cls(bundle, manifest, threads=threads)

    def session(self, key: str) -> ort.InferenceSession:
        """The onnxruntime session of 'vision', 'vocal' or 'fusion' (created on first call)."""
        if key not in ONNX_KEYS:
            raise KeyError(key)
        if key not in self._sessions:
            fpath = self.path / self.manifest[key]['file']
            try:
                self._sessions[key] = open_session(fpath, self.threads)
            except RuntimeError as exc:
                raise BundleError(str(exc)) from exc.__cause__
            self._check_inputs(key, self._sessions[key], fpath)
        return self._sessions[key]

    def _expected_inputs(self, key: str) -> dict[str, list[Optional[int]]]:
        m = self.manifest
        if key == 'vision':
            s = int(m['vision']['input_size'])
            return {'image': [None, int(m['vision']['channels']), s, s]}
        if key == 'vocal':
            return {'logmel': [None, 1, int(m['vocal']['n_mels']),
                               preprocess.logmel_frames(m['vocal'])]}
        ev, ea = int(m['vision']['embedding_size']), int(m['vocal']['embedding_size'])
        L, H = int(m['fusion']['num_layers']), int(m['fusion']['hidden_size'])
        return {'vision_embedding': [None, ev], 'vision_present': [None],
                'voice_embedding': [None, ea], 'voice_present': [None],
                'h': [L, None, H], 'c': [L, None, H]}

    def _check_inputs(self, key: str, sess: ort.InferenceSession, fpath: pathlib.Path) -> None:
        """Refuse an ONNX file whose input names/shapes disagree with the manifest."""
        actual = {i.name: i.shape for i in sess.get_inputs()}
        for name, shape in self._expected_inputs(key).items():
            if name not in actual:
                raise BundleError(f'{fpath}: input {name!r} missing (has {sorted(actual)})')
            got = actual[name]
            ok = len(got) == len(shape) and all(
                e is None or not isinstance(g, int) or g == e for g, e in zip(got, shape))
            if not ok:
                raise BundleError(f'{fpath}: input {name!r} has shape {got}, the manifest implies '
                                  f'{shape} (None = any)')

    # ------------------------------------------------------------------ properties
    @property
    def summary(self) -> str:
        """One line for node logs: version, labels and how each encoder graph is built
        (members, mirror TTA, int8 or float32), so a log says which model a robot ran.  An int8
        graph not recorded as having 7-bit weights (``quantization.weight_bound`` <= 64, bundles
        from 0.8.1 on) is flagged: x86 CPUs without VNNI overflow 8-bit weights and compute other
        answers (``emotion-export --from-bundle B --vision-7bit-weights`` mends it)."""
        def encoder(key: str) -> str:
            section = self.manifest[key]
            n = len((section.get('architecture') or {}).get('members', [])) or 1
            parts = [f'{n}-member ensemble' if n > 1 else 'single model']
            k = len(section.get('decision_members') or [])
            if k:
                parts.append(f'with {k} more encoder{"s" if k > 1 else ""} in its decision')
            if section.get('test_time_augmentation', 'none') != 'none':
                parts.append('mirror TTA')
            q = section.get('quantization')
            if not isinstance(q, dict):
                parts.append('float32')
            elif int(q.get('weight_bound', 128)) <= INT8_SAFE_WEIGHT_BOUND:
                parts.append('int8 (7-bit weights)')
            else:
                parts.append('int8 with 8-bit weights: other answers on x86 CPUs without VNNI, '
                             're-export with --vision-7bit-weights')
            vp = section.get('voiceprint')
            if vp:
                parts.append(f'and a voiceprint head (weight {vp["weight"]:g}) in its decision')
            return f'{key} {" ".join(parts)}'
        return (f'bundle {self.manifest.get("version", "?")} at {self.path} ({encoder("vision")}; '
                f'{encoder("vocal")}; labels {",".join(self.labels)})')

    @property
    def vision_embedding_size(self) -> int:
        return int(self.manifest['vision']['embedding_size'])

    @property
    def voice_embedding_size(self) -> int:
        return int(self.manifest['vocal']['embedding_size'])

    @property
    def sample_rate(self) -> int:
        return int(self.manifest['vocal']['sample_rate'])

    @property
    def window_seconds(self) -> float:
        return float(self.manifest['vocal']['window_seconds'])

    @property
    def hop_seconds(self) -> float:
        return float(self.manifest['vocal']['hop_seconds'])

    @property
    def face_input_size(self) -> int:
        return int(self.manifest['vision']['input_size'])

    @property
    def window_samples(self) -> int:
        """Samples in one voice window at ``sample_rate``."""
        return preprocess.window_samples(self.manifest['vocal'])

    @property
    def hidden_size(self) -> int:
        return int(self.manifest['fusion']['hidden_size'])

    @property
    def num_layers(self) -> int:
        return int(self.manifest['fusion']['num_layers'])

    # ------------------------------------------------------------------ inference
    def encode_faces(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Face crops (uint8 grey HxW or BGR HxWx3, any size) -> (embeddings [N,E], logits [N,C])."""
        n_cls = len(self.labels)
        if len(crops) == 0:
            return (np.zeros((0, self.vision_embedding_size), np.float32),
                    np.zeros((0, n_cls), np.float32))
        batch = preprocess.faces_to_batch(list(crops), self.manifest['vision'])
        emb, logits = self.session('vision').run(['embedding', 'logits'], {'image': batch})
        return emb.astype(np.float32), logits.astype(np.float32)

    @property
    def speaker_normalised(self) -> bool:
        """True when the vocal encoder expects per-speaker normalised log-mel (see
        ``speaker_calibration``); callers then pass a ``SpeakerCalibration`` per speaker."""
        return self.manifest['vocal']['normalisation'].get('type') == 'speaker'

    def new_calibration(self, half_life_seconds: Optional[float] = None
                        ) -> Optional[SpeakerCalibration]:
        """A fresh per-speaker calibration for this bundle, or None if it needs none.

        ``half_life_seconds`` of speech after which old frames count half (online use);
        None keeps every frame (offline, one speaker's files)."""
        if not self.speaker_normalised:
            return None
        vocal = self.manifest['vocal']
        frames = None
        if half_life_seconds is not None:
            frames = float(half_life_seconds) * int(vocal['sample_rate']) / int(vocal['hop_length'])
        cal = SpeakerCalibration.from_manifest(vocal['normalisation'], frames)
        if self.voiceprint is None:
            return cal
        windows = None if half_life_seconds is None else float(half_life_seconds) / self.hop_seconds
        return VoiceCalibration(cal, self.voiceprint.new_calibration(windows))

    def voice_window(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """One window of audio resampled to the manifest rate, then centre-cropped or zero-padded
        to exactly one window, so a slightly short or long buffer still gives the shape the
        models were exported with."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if int(sample_rate) != self.sample_rate:
            samples = preprocess.resample(samples, int(sample_rate), self.sample_rate)
        n = self.window_samples
        if samples.size > n:
            start = (samples.size - n) // 2
            samples = samples[start:start + n]
        elif samples.size < n:
            samples = np.pad(samples, (0, n - samples.size))
        return samples

    def voice_logmel(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """One window of audio -> raw (unnormalised) log-mel [n_mels, frames] (``voice_window``
        first)."""
        raw = dict(self.manifest['vocal'], normalisation={'type': 'none'})
        return preprocess.logmel(self.voice_window(samples, sample_rate), self.sample_rate, raw)

    def voice_logmels(self, windows: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Several windows -> raw log-mel [N, n_mels, frames] (``voice_logmel`` each)."""
        return np.stack([self.voice_logmel(w, sample_rate) for w in windows])

    def voice_input(self, samples: np.ndarray, sample_rate: int,
                    calibration: Optional[SpeakerCalibration] = None) -> np.ndarray:
        """One window of audio -> the vocal encoder's [1, n_mels, frames] input."""
        return self.normalise_voice(self.voice_logmel(samples, sample_rate), calibration)[None]

    def normalise_voice(self, mel: np.ndarray,
                        calibration: Optional[SpeakerCalibration] = None) -> np.ndarray:
        """Raw log-mel ([M, T] or [..., M, T]) -> normalised as the manifest says."""
        return preprocess.normalise_logmel(mel, self.manifest['vocal']['normalisation'],
                                           calibration=calibration)

    def encode_voice_logmel(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised inputs [N, 1, M, T] -> (embeddings [N,E], logits [N,C])."""
        if len(batch) == 0:
            return (np.zeros((0, self.voice_embedding_size), np.float32),
                    np.zeros((0, len(self.labels)), np.float32))
        emb, logits = self.session('vocal').run(['embedding', 'logits'],
                                                {'logmel': np.asarray(batch, np.float32)})
        return emb.astype(np.float32), logits.astype(np.float32)

    def voice_features(self, windows: Sequence[np.ndarray], sample_rate: int
                       ) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Several windows -> (raw log-mel [N, n_mels, frames], raw voiceprint features [N, F] or
        None when the bundle has no voiceprint member): what ``learn_voice`` and
        ``encode_voice_features`` take."""
        wins = [self.voice_window(w, sample_rate) for w in windows]
        vocal = self.manifest['vocal']
        raw = (self.voice_logmels(wins, self.sample_rate) if wins else
               np.zeros((0, int(vocal['n_mels']), preprocess.logmel_frames(vocal)), np.float32))
        vp = None if self.voiceprint is None else self.voiceprint.features(wins)
        return raw, vp

    def learn_voice(self, calibration: Optional[SpeakerCalibration],
                    features: tuple[np.ndarray, Optional[np.ndarray]],
                    learn: Optional[Sequence[bool]] = None) -> None:
        """Add windows (``voice_features``) to a speaker's ``calibration``: all of them, or those
        whose ``learn`` flag is set."""
        raw, vp = features
        if calibration is None:
            return
        keep = np.ones(len(raw), bool) if learn is None else np.asarray(learn, bool)
        if keep.shape != (len(raw),):
            raise ValueError(f'learn has {keep.size} flags for {len(raw)} windows')
        if not keep.any():
            return
        calibration.update(raw[keep])
        if vp is not None and isinstance(calibration, VoiceCalibration):
            calibration.voiceprint.update(vp[keep].T)

    def encode_voice_features(self, features: tuple[np.ndarray, Optional[np.ndarray]],
                              calibration: Optional[SpeakerCalibration] = None
                              ) -> tuple[np.ndarray, np.ndarray]:
        """``voice_features`` -> (embeddings [N,E], logits [N,C]): the vocal graph's embedding,
        and its logits mixed with the voiceprint head's where the bundle has one
        (``voiceprint.combine``)."""
        raw, vp = features
        if len(raw) == 0:
            return self.encode_voice_logmel(np.zeros((0,), np.float32))
        emb, logits = self.encode_voice_logmel(self.normalise_voice(raw, calibration)[:, None])
        if vp is not None:
            vcal = calibration.voiceprint if isinstance(calibration, VoiceCalibration) else None
            logits = combine(logits, self.voiceprint.head_logits(vp, vcal), self.voiceprint.weight)
        return emb, logits

    def encode_voice_windows(self, windows: list[np.ndarray], sample_rate: int,
                             calibration: Optional[SpeakerCalibration] = None,
                             learn: Optional[Sequence[bool]] = None
                             ) -> tuple[np.ndarray, np.ndarray]:
        """Several windows in one call -> (embeddings [N,E], logits [N,C]).

        ``calibration``: the speaker's statistics when the bundle is speaker-normalised (None =
        the training population's).  ``learn``: per window, add it to ``calibration`` first
        (the node passes its VAD speech flags, so the calibration follows the person talking).
        """
        features = self.voice_features(windows, sample_rate)
        if learn is not None:
            self.learn_voice(calibration, features, learn)
        return self.encode_voice_features(features, calibration)

    def encode_voice_window(self, samples: np.ndarray,
                            sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """One float32 mono window -> (embedding [E], logits [C])."""
        emb, logits = self.encode_voice_windows([samples], sample_rate)
        return emb[0], logits[0]

    def initial_state(self, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Zero LSTM state (h, c), each [num_layers, n, hidden_size]."""
        shape = (self.num_layers, int(n), self.hidden_size)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def fusion_step(self, vision_emb: np.ndarray, vision_present: np.ndarray,
                    voice_emb: np.ndarray, voice_present: np.ndarray,
                    h: np.ndarray, c: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One time step of the fusion LSTM for N tracks.

        Either modality may be absent (present = 0); its embedding is then ignored by the graph.
        Returns (probabilities [N,C], valence_arousal [N,2], h, c).
        """
        ve = np.asarray(vision_emb, np.float32).reshape(-1, self.vision_embedding_size)
        ae = np.asarray(voice_emb, np.float32).reshape(-1, self.voice_embedding_size)
        vp = np.asarray(vision_present, np.float32).reshape(-1)
        ap = np.asarray(voice_present, np.float32).reshape(-1)
        n = ve.shape[0]
        if ae.shape[0] != n or vp.shape[0] != n or ap.shape[0] != n:
            raise ValueError(f'fusion_step: batch sizes differ (vision {n}, voice {ae.shape[0]}, '
                             f'vision_present {vp.shape[0]}, voice_present {ap.shape[0]})')
        shape = (self.num_layers, n, self.hidden_size)
        h = np.asarray(h, np.float32)
        c = np.asarray(c, np.float32)
        if h.shape != shape or c.shape != shape:
            raise ValueError(f'fusion_step: state must be {shape}, got h {h.shape} c {c.shape}')
        probs, va, h2, c2 = self.session('fusion').run(
            ['probabilities', 'valence_arousal', 'h_out', 'c_out'],
            {'vision_embedding': ve, 'vision_present': vp, 'voice_embedding': ae,
             'voice_present': ap, 'h': h, 'c': c})
        return probs, va, h2, c2

    def __repr__(self) -> str:
        return f'ModelBundle({str(self.path)!r}, labels={self.labels})'
