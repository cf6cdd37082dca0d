"""The shared builder of the cross-dataset test sets: each set lists its media from its
official layout (`_list`), and this class samples frames, finds the faces, crops them and
writes the same features as FaceForensics++ (a single `test` split).

Every face found in a sampled frame is an example (`face`: 0 = the largest box, then by
decreasing area), with the video's label, method and id, and its own crop of the mask
where the set has masks. A fake frame showing several faces thus has every face labelled
fake, the unaltered ones too: evaluation's per-frame rule (`evaluation.video_score =
'mean_frame_max'`, a frame's score is its highest face score) makes such a frame one
decision, and 'mean_faces' (the frame-level papers) keeps each frame's largest face alone
(fjax.data.selection, rule 'largest face'). Sampled frames in which no face was found are no example; they are listed in
`info.metadata['faceless_frames']` (metadata.json: {'test': [[video_id, frame,
label_int, method], ...]}) for evaluation to skip or score 0.5 (`evaluation.faceless`).
Media that do not decode at all are left out and counted in the build report.

A subclass names its layout in `_list(root) -> [Media]`; everything else is shared. The
unit of parallel building (data_builders.parallel) is one media.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_builders import features, parallel, report
from fjax.data import faces

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


@dataclasses.dataclass(frozen=True)
class Media:
  """One video (or a folder of frames, or one image) and its label."""
  path: str              # a video file, an image file, or a directory of frame images
  label: str             # 'real' | 'fake'
  video_id: str
  method: str = ''
  mask_path: str = ''    # a mask video or image aligned with the media, if the set has one


@dataclasses.dataclass
class TestSetConfig(tfds.core.BuilderConfig):
  size: int = 320
  frames_per_video: int = 32


def configs(**kwargs) -> list[TestSetConfig]:
  """The standard configs: `default` (320 px, 32 frames) and `tiny` (tests)."""
  return [TestSetConfig(name='default', description='320 px faces, 32 frames per video',
                        **kwargs),
          TestSetConfig(name='tiny', size=64, frames_per_video=2,
                        description='64 px faces, 2 frames per video (tests)', **kwargs)]


def require(path: str, what: str) -> str:
  if not os.path.exists(path):
    raise FileNotFoundError(f'missing {path} ({what})')
  return path


class VideoTestSet(parallel.ParallelBuilder, skip_registration=True):
  """Frames of listed media -> face crops with labels (and masks where the set has them)."""
  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Face crops of the official test list.',
                   '1.1.0': 'Every face of each sampled frame (feature `face`, 0 = the '
                            'largest), each with its own mask crop; sampled frames without '
                            'a face listed in metadata.json faceless_frames; DFDC: all '
                            'test videos (the one-person subset is the evaluation filter '
                            'dataset.single_subject).'}
  HOMEPAGE = ''

  def _list(self, root: str) -> list[Media]:
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.face_features(self.builder_config.size), homepage=self.HOMEPAGE,
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    media = self._list(str(dl_manager.manual_dir))
    if not media:
      raise ValueError(f'{self.name}: the manual_dir lists no media')
    return {'test': self.units_generator('test', '_media_examples', media, dl_manager)}

  def _frames(self, path: str, mask_path: str = ''):
    """Yields (frame index, RGB frame, mask frame or None)."""
    n = self.builder_config.frames_per_video
    if os.path.isdir(path):
      names = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
      chosen = faces.even_indices(len(names), n) if names else []
      frames = [(i, faces.read_image(os.path.join(path, names[i]))) for i in chosen]
    elif path.lower().endswith(IMAGE_EXTENSIONS):
      frames = [(0, faces.read_image(path))]
    else:
      frames = list(faces.read_frames_at(path, faces.even_indices(faces.frame_count(path), n)))
    if not mask_path:
      masks = {}
    elif mask_path.lower().endswith(IMAGE_EXTENSIONS):
      masks = {0: faces.read_image(mask_path)}
    else:
      masks = dict(faces.read_frames_at(mask_path, [i for i, _ in frames]))
    for idx, frame in frames:
      yield idx, frame, masks.get(idx)

  def _generate_examples(self, media: list[Media]):
    """The examples in one process (the builders' usual entry point)."""
    yield from self._collect(parallel.run(self._media_examples, m) for m in media)

  def _media_examples(self, m: Media, metadata: dict):
    """One unit: the faces of the sampled frames of one media."""
    size = self.builder_config.size
    zeros = np.zeros((size, size), np.float32)
    try:
      frames = list(self._frames(m.path, m.mask_path))
    except ValueError:
      report.skip('media that do not decode')
      return
    method = m.method or m.label
    for idx, frame, mask in frames:
      found = faces.detect_faces(frame)
      if not found:
        features.faceless_frame(metadata, 'test', m.video_id, idx, m.label, method)
        continue
      if len(found) > 1:
        report.note('frames with several faces (each stored)')
      for k, face in enumerate(found):
        box = faces.square_box(face.box)
        crop = faces.crop(frame, box, size)
        if mask is not None:
          face_mask = (faces.crop(mask, box, size).max(-1) > 127).astype(np.float32)
        else:
          face_mask = zeros
          if m.label == 'fake':
            report.note('fake faces without a mask (zeros stored)')
        yield f'{m.video_id}/{idx}/{k}', dict(
            image=features.png(crop), label=m.label, method=method, video_id=m.video_id,
            identity=m.video_id, frame=idx, face=k, box=box,
            landmarks=faces.crop_landmarks(face.landmarks, box, size),
            mask=features.mask_png(face_mask), **features.pair_masks(None, crop))
