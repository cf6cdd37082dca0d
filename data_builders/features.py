"""The feature dictionary every face data set here shares, and PNG encoding helpers.

Images and masks are stored as PNG bytes (TFDS cannot encode NumPy images without
TensorFlow); reading back through `tfds.data_source` returns the raw bytes, decoded by the
input pipeline in grain workers.
"""
from __future__ import annotations

import cv2
import numpy as np
import tensorflow_datasets as tfds

LABELS = ('real', 'fake')


def face_features(size: int) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(size, size, 3), encoding_format='png'),
      'mask': tfds.features.Image(shape=(size, size, 1), encoding_format='png'),
      'label': tfds.features.ClassLabel(names=LABELS),
      'method': tfds.features.Text(),
      'video_id': tfds.features.Text(),
      'identity': tfds.features.Text(),
      'frame': tfds.features.Scalar(dtype=np.int32),
      'box': tfds.features.Tensor(shape=(4,), dtype=np.float32),
      'landmarks': tfds.features.Tensor(shape=(68, 2), dtype=np.float32),
  })


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
