"""DEFACTO face swaps (Mahfoudi et al. 2019), the MSCCNet cross-dataset set: images in
<part>_img/img/ and their masks, same file stem, in <part>_annotations/probe_mask/ (the
release's layout; every image is a face swap, the mask marks the swapped region)."""
from __future__ import annotations

import os

from data_builders import video_test_set as vts


class DefactoFaceswap(vts.VideoTestSet):
  """DEFACTO face-swapping images with their true masks."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://defactodataset.github.io/'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Extract the DEFACTO face-swapping part (images, masks).'

  def _list(self, root):
    masks = {}
    images = []
    for folder, _, files in sorted(os.walk(root)):
      for f in sorted(files):
        if not f.lower().endswith(vts.IMAGE_EXTENSIONS):
          continue
        stem = os.path.splitext(f)[0]
        if os.path.basename(folder) == 'probe_mask':
          masks[stem] = os.path.join(folder, f)
        elif os.path.basename(folder) == 'img':
          images.append((stem, os.path.join(folder, f)))
    if not images:
      raise FileNotFoundError(f'no */img/ images under {root} (DEFACTO layout)')
    missing = [s for s, _ in images if s not in masks]
    if missing:
      raise ValueError(f'{len(missing)} DEFACTO images have no probe_mask, e.g. {missing[0]}')
    return [vts.Media(path, 'fake', stem, 'face_swap', masks[stem]) for stem, path in images]
