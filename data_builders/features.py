"""The feature dictionary every face data set here shares, and PNG encoding helpers.

Images and masks are stored as PNG bytes (TFDS cannot encode NumPy images without
TensorFlow); reading back through `tfds.data_source` returns the raw bytes, decoded by the
input pipeline in grain workers.
"""
from __future__ import annotations

import cv2
import numpy as np
import tensorflow_datasets as tfds

from data_builders import report
from fjax.data import labels

LABELS = ('real', 'fake')
# Manipulation maps of every face (zeros on real faces), uint8 PNG scaled from [0, 1]:
# `mask` is the data set's own (FF++ mask videos, exact self-blend masks, DEFACTO masks);
# the others are computed from the aligned real/fake pair (fjax.data.labels).
PAIR_MASKS = {f'mask_{name}': fn for name, fn in labels.PAIR_MAPS.items()}


def face_features(size: int) -> tfds.features.FeaturesDict:
  mask = lambda: tfds.features.Image(shape=(size, size, 1), encoding_format='png')
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(size, size, 3), encoding_format='png'),
      'mask': mask(),
      **{name: mask() for name in PAIR_MASKS},
      'label': tfds.features.ClassLabel(names=LABELS),
      'method': tfds.features.Text(),
      'video_id': tfds.features.Text(),
      'identity': tfds.features.Text(),
      'frame': tfds.features.Scalar(dtype=np.int32),
      # Which face of its frame this is: faces ordered by detector box area, 0 = the
      # largest (fjax.data.faces.detect_faces' order; predict numbers them alike).
      'face': tfds.features.Scalar(dtype=np.int32),
      'box': tfds.features.Tensor(shape=(4,), dtype=np.float32),
      'landmarks': tfds.features.Tensor(shape=(68, 2), dtype=np.float32),
  })


def faceless_frame(metadata, split: str, video_id: str, frame: int, label: str,
                   method: str) -> None:
  """Records a sampled frame in which no face was found in the builder's
  `info.metadata['faceless_frames']` ({split: [[video_id, frame, label_int, method], ...]},
  label_int 0 real / 1 fake, the ids and methods the examples use; metadata.json), which
  evaluation reads to score such frames (`evaluation.faceless`), and counts it in the
  build report."""
  rows = metadata.setdefault('faceless_frames', {}).setdefault(split, [])
  rows.append([video_id, int(frame), LABELS.index(label), method])
  report.note('frames without a face (recorded in metadata.json faceless_frames)')


def pair_masks(real: np.ndarray | None, fake: np.ndarray,
               **given: np.ndarray) -> dict[str, bytes]:
  """PNGs of every pair-derived map of a fake crop given its real crop (zeros when there
  is no real counterpart, or for a real face: pass real=None and fake=the real crop).
  `given` maps, by source name (msccnet=...), are stored as they are, not recomputed."""
  zeros = np.zeros(fake.shape[:2], np.float32)
  return {f'mask_{name}': mask_png(given[name] if name in given else
                                   zeros if real is None else fn(real, fake))
          for name, fn in labels.PAIR_MAPS.items()}


def png(image: np.ndarray) -> bytes:
  """PNG bytes of an RGB (H, W, 3) or single-channel (H, W[, 1]) uint8 array."""
  if image.ndim == 3 and image.shape[-1] == 3:
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
  ok, buf = cv2.imencode('.png', image)
  if not ok:
    raise ValueError('PNG encoding failed')
  return buf.tobytes()


def mask_png(mask: np.ndarray) -> bytes:
  """PNG of a [0, 1] float mask as uint8 0..255."""
  return png(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))
