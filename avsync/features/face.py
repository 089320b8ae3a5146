"""Faces and mouths, per frame: detection every N frames, landmark tracking between.

Models: MediaPipe's full-range BlazeFace detector and its 468-point face mesh,
converted to ONNX (tools/convert_face_models.py, avsync/features/models/CARD.md) and
run with onnxruntime; nothing is fetched at run time.

Per frame the featurizer yields, for up to MAX_FACES tracked faces: a stabilised
48x96 grey mouth crop (grey: lip motion is in luma; colour triples the ring for
little, and varies with grading), and lip geometry normalised by the eye distance
(inner-lip opening, mouth width), the lip contour with head pose taken out
(avsync.features.lips), plus how many faces the last detection saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources

import av
import numpy as np
import onnxruntime as ort

from avsync.features import lips
from avsync.features.image import FrameImage

MAX_FACES = 2  # landmark passes per frame: each costs ~2.5 ms on this CPU
MOUTH_H, MOUTH_W = 48, 96
# frames between detections while faces are tracked: a lost face (the mesh's presence
# score) brings a detection on the next frame, so this only finds faces that came
# into view. Every 10th frame cost 0.8 ms per frame; every 50th changed no estimate
# on the validation sets (tools/evaluate.py --front-end, issue 11 note)
DETECT_EVERY = 50
# frames between detections while no face is tracked: a picture without a face (a
# test signal, slides, a wide shot) cost a detection on every frame (8 ms at 720p)
SEARCH_EVERY = 5
THUMBNAILS, THUMBNAIL_PX = 64, 64  # face pictures kept for reports, and their size
_DET_SIZE = 192
_LMK_SIZE = 192
_MIN_DET_SCORE = 0.5
_MIN_PRESENCE = 0.5
_NMS_IOU = 0.3
_ROI_SCALE = 1.5  # MediaPipe's face ROI: 1.5x the face box, square

# Face-mesh landmark indices (MediaPipe canonical face model)
_UPPER_INNER_LIP, _LOWER_INNER_LIP = 13, 14
_LEFT_INNER_CORNER, _RIGHT_INNER_CORNER = 78, 308
_OUTER_EYE = (33, 263)
_LIPS = (0, 13, 14, 17, 61, 291, 78, 308, 37, 267, 84, 314)

FEATURE_DTYPE = np.dtype([
    ("faces_seen", np.int16),  # faces found by the last detection (may exceed MAX_FACES)
    ("present", np.bool_, (MAX_FACES,)),
    ("track_id", np.int32, (MAX_FACES,)),
    # opening, width (both / eye distance), mouth centre x, y (/ frame width, height)
    ("geometry", np.float32, (MAX_FACES, 4)),
    ("mouth", np.uint8, (MAX_FACES, MOUTH_H, MOUTH_W)),
    # the lip contour in the reference face's frame (avsync.features.lips): pose and
    # scale taken out; NaN on frames the mesh skipped
    ("lips", np.float32, (MAX_FACES, lips.N_LIP, 3)),
])


def _session(name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # one thread: the decoder's threads and other streams have the other cores (a
    # second thread here made a single-file check slower: tools/bench.py lipsync)
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    path = resources.files("avsync.features") / "models" / name
    with resources.as_file(path) as file:
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Box:
    """A square region in frame pixels."""

    cx: float
    cy: float
    size: float

    @property
    def x0(self) -> float:
        return self.cx - self.size / 2

    @property
    def y0(self) -> float:
        return self.cy - self.size / 2

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x0 + self.size, other.x0 + other.size) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y0 + self.size, other.y0 + other.size) - max(self.y0, other.y0))
        inter = ix * iy
        return inter / (self.size**2 + other.size**2 - inter + 1e-9)


class FaceDetector:
    """BlazeFace full-range: frame -> face boxes (square ROIs for the mesh) and scores."""

    def __init__(self) -> None:
        self._session = _session("face_detection_full_range.onnx")
        grid = (np.arange(48) + 0.5) / 48  # one anchor per cell of a 48x48 grid
        ay, ax = np.meshgrid(grid, grid, indexing="ij")
        self._anchors = np.stack([ax.ravel(), ay.ravel()], axis=1)

    def __call__(self, image: FrameImage) -> list[tuple[Box, float]]:
        side = max(image.width, image.height)  # letterbox: the whole frame, centred
        x0 = (image.width - side) / 2
        y0 = (image.height - side) / 2
        tensor = image.rgb(x0, y0, side, side, _DET_SIZE, _DET_SIZE)
        tensor *= 2.0
        tensor -= 1.0  # the detector takes -1..1
        raw_boxes, raw_scores = self._session.run(None, {"input": tensor[None]})
        scores = 1 / (1 + np.exp(-np.clip(raw_scores[0, :, 0], -80, 80)))
        keep = np.flatnonzero(scores > _MIN_DET_SCORE)
        found = []
        for i in keep[np.argsort(-scores[keep])]:
            r = raw_boxes[0, i] / _DET_SIZE
            cx, cy = r[0] + self._anchors[i, 0], r[1] + self._anchors[i, 1]
            size = max(r[2], r[3]) * _ROI_SCALE
            box = Box(x0 + cx * side, y0 + cy * side, size * side)
            if all(box.iou(b) < _NMS_IOU for b, _ in found):
                found.append((box, float(scores[i])))
        return found


class FaceLandmarker:
    """Face mesh: frame + ROI -> 468 landmarks (x, y in frame pixels, z depth on the same
    scale), or None when the face is gone (the mesh's presence score)."""

    def __init__(self) -> None:
        self._session = _session("face_landmark.onnx")

    def __call__(self, image: FrameImage, roi: Box) -> np.ndarray | None:
        rgb = image.rgb(roi.x0, roi.y0, roi.size, roi.size, _LMK_SIZE, _LMK_SIZE)
        points, presence = self._session.run(None, {"input_1": rgb[None]})
        if 1 / (1 + math.exp(-float(presence.ravel()[0]))) < _MIN_PRESENCE:
            return None
        pts = points.reshape(468, 3) * (roi.size / _LMK_SIZE)
        return pts + np.array([roi.x0, roi.y0, 0.0])


def roi_from_landmarks(points: np.ndarray) -> Box:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    centre = (lo + hi) / 2
    return Box(float(centre[0]), float(centre[1]), float(max(hi - lo)) * _ROI_SCALE)


@dataclass
class _Track:
    track_id: int
    roi: Box
    mouth: np.ndarray | None = None  # smoothed (cx, cy, scale) of the mouth crop
    mouth_velocity: np.ndarray | None = None  # per frame, carried between mesh frames
    frames_since_mesh: int = 0
    misses: int = 0


@dataclass
class FaceTracker:
    """Detection every `detect_every` frames (or when a track is lost), the face mesh
    every `landmark_every` frames (1: every frame)."""

    detect_every: int = DETECT_EVERY
    search_every: int = SEARCH_EVERY
    max_faces: int = MAX_FACES
    landmark_every: int = 1
    detector: FaceDetector = field(default_factory=FaceDetector)
    landmarker: FaceLandmarker = field(default_factory=FaceLandmarker)

    def __post_init__(self) -> None:
        if self.landmark_every < 1:
            raise ValueError("landmark_every must be >= 1")
        self.reset()

    def reset(self) -> None:
        self.tracks: list[_Track] = []
        self.faces_seen = 0
        self._frames_since_detection = math.inf
        self._frames_since_landmarks = math.inf
        self._next_id = 0

    def __call__(self, image: FrameImage) -> list[tuple[_Track, np.ndarray | None]]:
        """(track, landmarks) for each face followed in this frame; landmarks None on a
        frame the mesh skipped (the track keeps its last position)."""
        due = self.search_every if not self.tracks else self.detect_every
        if self._frames_since_detection >= due:
            self._detect(image)
            self._frames_since_landmarks = math.inf  # new tracks need landmarks now
        self._frames_since_detection += 1
        if self._frames_since_landmarks < self.landmark_every:
            self._frames_since_landmarks += 1
            return [(track, None) for track in self.tracks]
        self._frames_since_landmarks = 1
        followed: list[tuple[_Track, np.ndarray | None]] = []
        for track in list(self.tracks):
            points = self.landmarker(image, track.roi)
            if points is None:
                self.tracks.remove(track)
                self._frames_since_detection = math.inf  # look again next frame
                continue
            track.roi = roi_from_landmarks(points)
            followed.append((track, points))
        return followed

    def _detect(self, image: FrameImage) -> None:
        self._frames_since_detection = 0
        found = self.detector(image)
        self.faces_seen = len(found)
        for box, _ in found:
            if any(box.iou(t.roi) > 0.3 for t in self.tracks):
                continue  # already followed
            if len(self.tracks) < self.max_faces:
                self.tracks.append(_Track(self._next_id, box))
                self._next_id += 1


class MouthFeaturizer:
    """frame -> FEATURE_DTYPE record: mouth crops and lip geometry of tracked faces."""

    shape: tuple[int, ...] = ()
    dtype = FEATURE_DTYPE

    def __init__(self, tracker: FaceTracker | None = None, smoothing: float = 0.5) -> None:
        self.tracker = tracker or FaceTracker()
        self.smoothing = smoothing  # weight of the previous crop position (stabilisation)
        # a small grey picture of each face when first tracked, for reports to show
        # whose lips were measured (the first THUMBNAILS tracks: bounded)
        self.thumbnails: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self.tracker.reset()
        self.thumbnails.clear()  # track ids start again

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        image = FrameImage(frame)
        record = np.zeros((), FEATURE_DTYPE)
        followed = self.tracker(image)
        record["faces_seen"] = max(self.tracker.faces_seen, len(followed))
        for slot, (track, points) in enumerate(followed[:MAX_FACES]):
            record["present"][slot] = True
            record["track_id"][slot] = track.track_id
            if points is None:  # the mesh skipped this frame: geometry not measured,
                record["geometry"][slot] = np.nan  # the crop moves on at the last speed
                record["lips"][slot] = np.nan
                track.frames_since_mesh += 1
                if track.mouth_velocity is not None:
                    track.mouth = track.mouth + track.mouth_velocity
            else:
                flat = points[:, :2]
                record["geometry"][slot] = lip_geometry(flat, image.width, image.height)
                record["lips"][slot] = lips.normalise(points)
                self._follow_mouth(track, flat)
                if track.track_id not in self.thumbnails and \
                        len(self.thumbnails) < THUMBNAILS:
                    roi = track.roi
                    self.thumbnails[track.track_id] = image.gray(
                        roi.x0, roi.y0, roi.size, roi.size, THUMBNAIL_PX, THUMBNAIL_PX)
            record["mouth"][slot] = self._mouth_crop(image, track)
        return record

    def _follow_mouth(self, track: _Track, points: np.ndarray) -> None:
        eyes = np.linalg.norm(points[_OUTER_EYE[0]] - points[_OUTER_EYE[1]])
        centre = points[list(_LIPS)].mean(axis=0)
        now = np.array([centre[0], centre[1], eyes])
        if track.mouth is None:
            track.mouth = now
            return
        # damp landmark jitter so the crop does not shake; between mesh frames the crop
        # keeps the speed of the last step, or a moving head would jerk it every n frames
        skipped = track.frames_since_mesh
        previous = track.mouth - skipped * (track.mouth_velocity if track.mouth_velocity
                                            is not None else 0.0)
        track.mouth = self.smoothing * track.mouth + (1 - self.smoothing) * now
        if skipped:
            track.mouth_velocity = (track.mouth - previous) / (skipped + 1)
        track.frames_since_mesh = 0

    @staticmethod
    def _mouth_crop(image: FrameImage, track: _Track) -> np.ndarray:
        cx, cy, scale = track.mouth
        w, h = 1.2 * scale, 0.6 * scale  # the mouth and its surroundings, 2:1
        return image.gray(cx - w / 2, cy - h / 2, w, h, MOUTH_W, MOUTH_H)


def lip_geometry(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """[inner-lip opening, inner mouth width] / eye distance, mouth centre / frame size."""
    eyes = float(np.linalg.norm(points[_OUTER_EYE[0]] - points[_OUTER_EYE[1]])) or 1.0
    opening = np.linalg.norm(points[_UPPER_INNER_LIP] - points[_LOWER_INNER_LIP]) / eyes
    mouth_w = np.linalg.norm(points[_LEFT_INNER_CORNER] - points[_RIGHT_INNER_CORNER]) / eyes
    centre = points[list(_LIPS)].mean(axis=0)
    return np.array([opening, mouth_w, centre[0] / width, centre[1] / height], np.float32)
