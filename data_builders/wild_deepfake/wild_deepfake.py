"""WildDeepfake test set: frame folders real_test/<sequence>/ and fake_test/<sequence>/
(the release's extracted archives); a sequence is a video."""
from __future__ import annotations

import os

from data_builders import video_test_set as vts


class WildDeepfake(vts.VideoTestSet):
  """WildDeepfake, real and fake test sequences of face frames."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://github.com/deepfakeinthewild/deepfake-in-the-wild'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Extract real_test and fake_test of WildDeepfake.'

  def _list(self, root):
    media = []
    for label in ('real', 'fake'):
      folder = vts.require(os.path.join(root, f'{label}_test'), 'WildDeepfake test frames')
      for seq in sorted(os.listdir(folder)):
        if os.path.isdir(os.path.join(folder, seq)):
          media.append(vts.Media(os.path.join(folder, seq), label, f'{label}_test/{seq}'))
    return media
