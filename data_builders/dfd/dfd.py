"""DeepFakeDetection (Google/Jigsaw, shipped with FaceForensics++): every video is a test
video. original_sequences/actors/<c>/videos (real), manipulated_sequences/
DeepFakeDetection/<c>/videos (fake), with masks/videos where present."""
from __future__ import annotations

import dataclasses
import os

from data_builders import video_test_set as vts


@dataclasses.dataclass
class DfdConfig(vts.TestSetConfig):
  compression: str = 'c23'


class Dfd(vts.VideoTestSet):
  """DFD, real actors and their deepfakes, at one compression."""
  BUILDER_CONFIGS = [DfdConfig(name=c, compression=c, description=f'{c}, 320 px, 32 frames')
                     for c in ('c23', 'c40', 'raw')] + [
                         DfdConfig(name='tiny', size=64, frames_per_video=2,
                                   description='c23, 64 px, 2 frames (tests)')]
  HOMEPAGE = 'https://github.com/ondyari/FaceForensics'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Download the DeepFakeDetection part of FF++ (actors too).'

  def _list(self, root):
    c = self.builder_config.compression
    real = vts.require(os.path.join(root, 'original_sequences', 'actors', c, 'videos'),
                       'DFD real videos')
    fake_root = os.path.join(root, 'manipulated_sequences', 'DeepFakeDetection')
    fake = vts.require(os.path.join(fake_root, c, 'videos'), 'DFD fake videos')
    media = [vts.Media(os.path.join(real, f), 'real', os.path.splitext(f)[0], 'real')
             for f in sorted(os.listdir(real)) if f.endswith('.mp4')]
    for f in sorted(os.listdir(fake)):
      if f.endswith('.mp4'):
        mask = os.path.join(fake_root, 'masks', 'videos', f)
        media.append(vts.Media(os.path.join(fake, f), 'fake', os.path.splitext(f)[0],
                               'DeepFakeDetection', mask if os.path.isfile(mask) else ''))
    return media
