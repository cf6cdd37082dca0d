"""Celeb-DF v2 test set: `List_of_testing_videos.txt` lines '<1|0> <relative path>' (1 is
real, 0 is synthesised) over Celeb-real/, YouTube-real/ and Celeb-synthesis/."""
from __future__ import annotations

import os

from data_builders import video_test_set as vts


class CelebDf(vts.VideoTestSet):
  """Celeb-DF v2, the official 518 test videos."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://github.com/yuezunli/celeb-deepfakeforensics'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Extract Celeb-DF-v2 (with List_of_testing_videos.txt).'

  def _list(self, root):
    listing = vts.require(os.path.join(root, 'List_of_testing_videos.txt'), 'Celeb-DF v2 list')
    media = []
    with open(listing) as f:
      for n, line in enumerate(f, 1):
        if not line.strip():
          continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ('0', '1'):
          raise ValueError(f'malformed line {n} of {listing}: {line.strip()!r}')
        label = 'real' if parts[0] == '1' else 'fake'
        media.append(vts.Media(os.path.join(root, parts[1]), label,
                               os.path.splitext(parts[1])[0], parts[1].split('/')[0]))
    return media
