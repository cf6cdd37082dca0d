"""AUNet's image-level tampering (sec. 3.3, eqs. 8-9): a fake counterpart of a real face,
made through the partial face mask M_p. Host side, in grain workers.

Eq. 8 augments the face twice; as in SBI's released code, the target I_t is the face itself
and the source I_s its altered copy (colour, contrast, blur/sharpen, small shift), so the
background and the removed AU regions stay exactly the real face's pixels.
"""
from __future__ import annotations

import numpy as np

from fjax.preprocess import labels, self_blend


def tampered_counterpart(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                         partial: bool = True, image_tampering: bool = True,
                         max_removed: int = 3):
  """(fake uint8 image, M_p float32 in [0, 1]) for an RGB uint8 square face crop.

  partial=False uses the whole blurred face hull M_f (table 4, "w/o M_p");
  image_tampering=False returns the real pixels unchanged (table 4, "w/o IT": the fake
  then differs from the real face only by the feature-level mixing inside M_p).
  """
  mask = labels.partial_face_mask(landmarks, image.shape[0], rng,
                                  max_removed=max_removed if partial else 0)
  if not image_tampering:
    return image.copy(), mask
  # Eq. 9: I_f = I_s * M_p + I_t * (1 - M_p).
  return self_blend.blend(image, self_blend.alter_source(image, rng), mask), mask
