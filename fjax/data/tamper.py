"""AUNet's image-level tampering (sec. 3.3, eqs. 8-9): a fake counterpart of a real face,
made through the partial face mask M_p. Host side, in grain workers.

Eq. 8 makes a target I_t and a source I_s from the one real face; eq. 9 blends them
through M_p, so the background and the removed AU regions keep the target's pixels, and
the pair's real face is the target. Two recipes:
- `sbi=True` (`input.tamper.sbi_augment`, AUNet's paper preset): SBI's released
  self_blending (`sbi_augment.source_and_target`): SBI's source transforms (RGB shift,
  HSV, brightness/contrast, then downscale or sharpen) go to the source or to the target,
  p=0.5 each, then the source moves by SBI's affine. M_p stays where the landmarks put it
  (SBI moves and elastically deforms its own hull mask; AUNet replaces that mask by M_p).
- `sbi=False` (the demo preset): fjax's own lighter recipe, `self_blend.alter_source`
  (contrast, brightness, colour cast, blur or sharpen, small shift) on the source only;
  the target is the real face unchanged.
"""
from __future__ import annotations

import numpy as np

from fjax.data import labels, self_blend


def tampered_counterpart(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                         partial: bool = True, image_tampering: bool = True,
                         max_removed: int = 3, sbi: bool = False, artefact: str = 'blend'):
  """(real uint8 image I_t, fake uint8 image I_f, M_p float32 in [0, 1]) for an RGB uint8
  square face crop.

  partial=False uses the whole blurred face hull M_f (table 4, "w/o M_p");
  image_tampering=False returns the real pixels unchanged as both images (table 4, "w/o
  IT": the fake then differs from the real face only by the feature-level mixing inside
  M_p); artefact='planted' plants the planted cue's noise inside M_p instead of eq. 9's
  blend (the planted-cue demo).
  """
  mask = labels.partial_face_mask(landmarks, image.shape[0], rng,
                                  max_removed=max_removed if partial else 0)
  if not image_tampering:
    return image, image.copy(), mask
  if artefact == 'planted':
    from fjax.data import forgeries  # pylint: disable=g-import-not-at-top
    return image, forgeries.plant(image, mask, rng), (mask > 0.5).astype(np.float32)
  if sbi:
    from fjax.data import sbi_augment  # pylint: disable=g-import-not-at-top
    source, target = sbi_augment.source_and_target(image, rng)
  else:
    source, target = self_blend.alter_source(image, rng), image
  # Eq. 9: I_f = I_s * M_p + I_t * (1 - M_p).
  return target, self_blend.blend(target, source, mask), mask
