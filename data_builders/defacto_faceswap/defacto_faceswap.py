"""DEFACTO face swaps (Mahfoudi et al. 2019), MSCCNet's cross-dataset set (table 3).

Two layouts, chosen by the presence of `test_vis.txt`:
- MSCCNet's test list, as its released `datasets/defacto.py` reads it: `test_vis.txt`
  lines `<image path> <label>` (0 real, 1 fake) relative to manual_dir, images under
  `Image/real/` and `Image/fake/`, masks under `Mask/`. A fake's mask path is its image
  path with `Image` -> `Mask` and its trailing `.tif` dropped (`Image/fake/0.jpg_IN_1.jpg.tif`
  -> `Mask/fake/0.jpg_IN_1.jpg`); a real's mask is all zeros. This is the layout that
  gives table 3's AUC and ACC their meaning (real and fake images).
- DEFACTO's own release: `<part>_img/img/` images and their masks, same file stem, in
  `<part>_annotations/probe_mask/`. The release ships face swaps only, so every image is
  fake: AUC is undefined there and ACC is a true-positive rate (pixel metrics stay valid).
"""
from __future__ import annotations

import os

from data_builders import video_test_set as vts

LIST = 'test_vis.txt'


class DefactoFaceswap(vts.VideoTestSet):
  """DEFACTO face-swapping images with their true masks (and MSCCNet's reals)."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://defactodataset.github.io/'
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("MSCCNet's DEFACTO test list (test_vis.txt, Image/, Mask/), "
                                  "or DEFACTO's face-swapping part (images, probe masks).")

  def _list(self, root):
    if os.path.isfile(os.path.join(root, LIST)):
      return _msccnet_list(root)
    return _release(root)


def _msccnet_list(root):
  """test_vis.txt: reals with zero masks, fakes with `Mask/...` minus `.tif`."""
  path, media = os.path.join(root, LIST), []
  with open(path) as f:
    for n, line in enumerate(f, 1):
      words = line.split()
      if not words:
        continue
      if len(words) != 2 or words[1] not in ('0', '1') or '/Image/' not in '/' + words[0]:
        raise ValueError(f'malformed line {n} of {path}: expected "Image/... 0|1", got '
                         f'{line.strip()!r}')
      image = os.path.join(root, words[0])
      mask = ''
      if words[1] == '1':  # the released loader: replace('Image', 'Mask')[:-4]
        mask = vts.require(os.path.join(root, words[0].replace('Image', 'Mask')[:-4]),
                           f'mask of line {n} of {path}')
      vts.require(image, f'image of line {n} of {path}')
      label = 'fake' if words[1] == '1' else 'real'
      media.append(vts.Media(image, label, words[0].split('Image/', 1)[1],
                             'face_swap' if label == 'fake' else 'real', mask))
  return media


def _release(root):
  masks, images = {}, []
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
    raise FileNotFoundError(f'no {LIST} and no */img/ images under {root} (DEFACTO layouts)')
  missing = [s for s, _ in images if s not in masks]
  if missing:
    raise ValueError(f'{len(missing)} DEFACTO images have no probe_mask, e.g. {missing[0]}')
  return [vts.Media(path, 'fake', stem, 'face_swap', masks[stem]) for stem, path in images]
