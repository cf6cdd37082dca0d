"""FaceForensics++ (Rossler et al. 2019) from its official layout in `manual_dir`:

  original_sequences/youtube/<c>/videos/000.mp4
  manipulated_sequences/<Method>/<c>/videos/000_003.mp4      (target 000, source 003)
  manipulated_sequences/<Method>/masks/videos/000_003.mp4    (where the method has them)
  splits/{train,val,test}.json   lists of [id, id] pairs (the FF++ repository's files)

For each real video of a split and for each of its fake videos, `frames_per_video` evenly
spaced frames (20; the `*_270` configs take 270, Detect and Locate's dense sampling of
the training videos). A face is detected on the real (target) frame and the largest one
is kept (FF++ videos show one person: every example has `face` = 0); the same square box
(x1.3) crops the real, the fake and the mask frame, so every fake carries its real counterpart's
pixel-aligned maps (MSCCNet annotation, pixel difference, SSIM; SPEC 2). Landmarks of a
fake are predicted on the fake frame inside the real frame's detector box.

The MSCCNet annotation is one mask set for every compression, as its authors made it from
the raw videos: each fake frame's annotation comes from the same frame of the best-quality
pair under `manual_dir` (raw, else c23, ..., down to the compression being built), cut
with the same box. The build report (and the data set's metadata.json) counts the frames
annotated from each quality and the videos or frames that had to fall back.

Robustness (FoCus table IV): the configs `<c>_<kind>_<level>` (c23 and tiny; test split
only) apply DeeperForensics-1.0's perturbation `kind` at `level` (fjax/data/corruptions.py)
to each whole sampled frame, real and fake, before the face is cropped, as DF-1.0
perturbs whole videos, so block sizes, blur kernels and pixelation act at frame scale.
Faces are detected on the clean real frame, so every level holds the same faces and
boxes as the clean build. The cheap alternative perturbs the stored crops at evaluation
(`evaluation.robustness=crop`).

Sampled frames whose real frame shows no face are no example; metadata.json lists them,
per split, in `faceless_frames` ({split: [[video_id, frame, label_int, method], ...]},
a fake's under its fake id and method) for evaluation (`evaluation.faceless`), and the
build report counts them.

The unit of parallel building (data_builders.parallel) is one real video with its fakes
of every method (the fakes reuse its face detections): the units of a pair are its target
and its source.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from data_builders import features, parallel, report
from fjax.data import corruptions, faces, labels

METHODS = ('Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures', 'FaceShifter')
QUALITIES = ('raw', 'c23', 'c40')  # FF++'s compressions, best first
SPLIT_FILES = {'train': 'train.json', 'validation': 'val.json', 'test': 'test.json'}


@dataclasses.dataclass
class FFConfig(tfds.core.BuilderConfig):
  compression: str = 'c23'
  size: int = 320
  frames_per_video: int = 20
  methods: tuple = METHODS
  perturbation: str = ''  # 'kind:level': DF-1.0's perturbation of each whole frame
  splits: tuple = tuple(SPLIT_FILES)


def read_pairs(path: str) -> list[tuple[str, str]]:
  """The official split file: a JSON list of [target, source] id pairs."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'missing split file {path} (the FF++ repository\'s '
                            'dataset/splits/*.json, copied to manual_dir/splits/)')
  try:
    with open(path) as f:
      pairs = json.load(f)
    ok = isinstance(pairs, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p)
        for p in pairs)
  except ValueError:
    ok = False
  if not ok or not pairs:
    raise ValueError(f'malformed split file {path}: expected a JSON list of [id, id] pairs')
  return [tuple(p) for p in pairs]


class Faceforensics(parallel.ParallelBuilder):
  """FF++ faces (real youtube and five manipulations) with masks and landmarks."""
  VERSION = tfds.core.Version('1.2.0')
  RELEASE_NOTES = {'1.0.0': 'Faces, FF++ masks, pair-derived maps, landmarks.',
                   '1.1.0': 'MSCCNet annotation as the authors\' released script, made for '
                            'every compression from the best-quality pair present.',
                   '1.2.0': 'Feature `face` (always 0: the largest face of the real '
                            'frame); sampled frames without a face listed per split in '
                            'metadata.json faceless_frames; configs c23_270 and c40_270 '
                            '(270 frames per video).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Download FaceForensics++ with its official script (original youtube videos and the '
      'five manipulation methods, at the wanted compression, plus masks) and put the '
      'repository\'s dataset/splits/{train,val,test}.json under manual_dir/splits/. The '
      'MSCCNet annotation of every compression is made from the best quality present: add '
      'the raw (else c23) videos of the same clips to annotate a c23/c40 build from them.')
  BUILDER_CONFIGS = [
      FFConfig(name=c, compression=c, description=f'{c} videos, 320 px faces, 20 frames')
      for c in ('c23', 'c40', 'raw')
  ] + [
      FFConfig(name=f'{c}_270', compression=c, frames_per_video=270,
               description=f'{c} videos, 320 px faces, 270 frames per video: Detect and '
                           'Locate\'s dense sampling of the training videos (every frame of '
                           'videos up to 270 frames long)')
      for c in ('c23', 'c40')
  ] + [FFConfig(name='tiny', compression='c23', size=64, frames_per_video=3,
                description='c23, 64 px faces, 3 frames per video (tests)')] + [
      FFConfig(name=corruptions.perturbed_name(base, kind, level), compression='c23',
               size=size, frames_per_video=frames, perturbation=f'{kind}:{level}',
               splits=('test',), description=f'{base}\'s test split, each whole frame '
                                             f'perturbed by {kind} at level {level}')
      for base, size, frames in (('c23', 320, 20), ('tiny', 64, 3))
      for kind in corruptions.LEVELS for level in range(1, 6)]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.face_features(self.builder_config.size),
        homepage='https://github.com/ondyari/FaceForensics',
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    root = str(dl_manager.manual_dir)
    real_dir = os.path.join(root, 'original_sequences', 'youtube',
                            self.builder_config.compression, 'videos')
    if not os.path.isdir(real_dir):
      raise FileNotFoundError(f'missing {real_dir} (the official FF++ layout in manual_dir)')
    if self.builder_config.perturbation.startswith('video_compression'):
      corruptions.ffmpeg_exe()  # one line now, not in a worker later
    pairs = {s: read_pairs(os.path.join(root, 'splits', f)) for s, f in SPLIT_FILES.items()
             if s in self.builder_config.splits}
    return {s: self.units_generator(s, '_real_with_fakes', self._units(root, p, s), dl_manager)
            for s, p in pairs.items()}

  @staticmethod
  def _units(root, pairs, split):
    """(root, split, real id, other id of its pair) of each real video of the split."""
    return [(root, split, vid, other) for target, source in pairs
            for vid, other in ((target, source), (source, target))]

  def _video(self, root, method, vid, kind='videos', compression=None):
    c = compression or self.builder_config.compression
    if method == 'real':
      return os.path.join(root, 'original_sequences', 'youtube', c, 'videos', f'{vid}.mp4')
    folder = 'masks' if kind == 'masks' else c
    return os.path.join(root, 'manipulated_sequences', method, folder, 'videos', f'{vid}.mp4')

  def _generate_examples(self, root, pairs, split):
    """The examples of a split in one process (the builders' usual entry point)."""
    yield from self._collect(parallel.run(self._real_with_fakes, u)
                             for u in self._units(root, pairs, split))

  def _real_with_fakes(self, unit, metadata):
    """One unit: real video `vid` and its fake `vid_other` of every method."""
    root, split, vid, other = unit
    self._detections = {}  # the unit's own: the real video's frames
    yield from self._real_video(root, vid, split, metadata)
    for method in self.builder_config.methods:
      yield from self._fake_video(root, method, f'{vid}_{other}', vid, split, metadata)

  def _best_quality(self, root):
    """The best compression whose real videos folder exists (the built one at worst)."""
    built = self.builder_config.compression
    for q in QUALITIES[:QUALITIES.index(built)]:
      if os.path.isdir(os.path.join(root, 'original_sequences', 'youtube', q, 'videos')):
        return q
    return built

  def _annotation_pair(self, root, method, fake_id, real_id, indices):
    """(quality, {index: real frame}, {index: fake frame}) of the best-quality pair of
    videos present and decodable that is better than the built compression; (built
    compression, None, None) when there is none (the built pair serves)."""
    built = self.builder_config.compression
    for q in QUALITIES[:QUALITIES.index(built)]:
      paths = (self._video(root, 'real', real_id, compression=q),
               self._video(root, method, fake_id, compression=q))
      if not all(os.path.isfile(p) for p in paths):
        continue
      try:
        reals, fakes = (dict(faces.read_frames_at(p, indices)) for p in paths)
      except ValueError:
        continue
      return q, reals, fakes
    return built, None, None

  def _annotation(self, quality, pair, idx, shape, box, crops):
    """MSCCNet annotation of frame `idx` and the quality it was made from: the
    `_annotation_pair` frames, cut with `box`, where they have that frame at the built
    frames' `shape`; else the built (real, fake) `crops`."""
    built = self.builder_config.compression
    if quality != built:
      if all(idx in p and p[idx].shape == shape for p in pair):
        size = self.builder_config.size
        return labels.msccnet_mask(*(faces.crop(p[idx], box, size) for p in pair)), quality
      report.note(f'frames missing from the {quality} videos (MSCCNet annotation from '
                  f'the {built} frames)')
    return labels.msccnet_mask(*crops), built

  def _largest_face(self, path, idx, frame):
    """The largest face of a real frame (cached: each real frame serves its own example
    and the fakes of every method made from it)."""
    cache = self.__dict__.setdefault('_detections', {})
    if (path, idx) not in cache:
      found = faces.detect_faces(frame)
      cache[(path, idx)] = found[0] if found else None
    return cache[(path, idx)]

  def _faces(self, path):
    """Yields (frame index, frame, largest face or None) for the sampled frames."""
    try:
      frames = list(faces.read_frames_at(path, faces.even_indices(
          faces.frame_count(path), self.builder_config.frames_per_video)))
    except ValueError:
      report.skip('videos that do not decode')
      return
    for idx, frame in frames:
      yield idx, frame, self._largest_face(path, idx, frame)

  def _example(self, vid, method, label, idx, frame, box, landmarks, mask, pair,
               annotation=None):
    size = self.builder_config.size
    crop = image = faces.crop(frame, box, size)
    if self.builder_config.perturbation:  # the whole frame, then the clean frame's box
      kind, level = corruptions.parse(self.builder_config.perturbation)
      image = faces.crop(corruptions.corrupt(frame, kind, level, corruptions.frame_rng(
          vid, idx)), box, size)  # labels and pair maps stay the clean frames'
    given = {} if annotation is None else {'msccnet': annotation}
    return dict(image=features.png(image), label=label, method=method, video_id=vid,
                identity=vid.split('_')[0], frame=idx, face=0, box=box,
                landmarks=faces.crop_landmarks(landmarks, box, size),
                mask=features.mask_png(mask), **features.pair_masks(pair, crop, **given))

  def _real_video(self, root, vid, split, metadata=None):
    path = self._video(root, 'real', vid)
    if not os.path.isfile(path):
      report.skip('missing real videos')
      return
    zeros = np.zeros((self.builder_config.size,) * 2, np.float32)
    for idx, frame, face in self._faces(path):
      if face is None:
        features.faceless_frame(self.info.metadata if metadata is None else metadata,
                                split, vid, idx, 'real', 'real')
        continue
      box = faces.square_box(face.box)
      yield f'real/{vid}/{idx}/0', self._example(vid, 'real', 'real', idx, frame, box,
                                               face.landmarks, zeros, None)

  def _fake_video(self, root, method, fake_id, real_id, split, metadata=None):
    fake_path, real_path = self._video(root, method, fake_id), self._video(root, 'real', real_id)
    if not os.path.isfile(fake_path) or not os.path.isfile(real_path):
      report.skip(f'missing {method} videos')
      return
    size = self.builder_config.size
    mask_path = self._video(root, method, fake_id, 'masks')
    try:
      n_fake, n_real = faces.frame_count(fake_path), faces.frame_count(real_path)
    except ValueError:
      report.skip('videos that do not decode')
      return
    indices = faces.even_indices(min(n_fake, n_real), self.builder_config.frames_per_video)
    fakes = dict(faces.read_frames_at(fake_path, indices))
    masks = dict(faces.read_frames_at(mask_path, indices)) if os.path.isfile(mask_path) else {}
    quality, *pair = self._annotation_pair(root, method, fake_id, real_id, indices)
    best = self._best_quality(root)
    if quality != best:
      report.note(f'{method} videos without a {best} pair (MSCCNet annotation from '
                  f'{quality} frames)')
    metadata = self.info.metadata if metadata is None else metadata
    used = metadata.setdefault('msccnet_annotation_frames_by_quality', {})
    for idx, real in faces.read_frames_at(real_path, indices):
      fake = fakes.get(idx)
      if fake is None or fake.shape != real.shape:
        report.skip('mismatched real/fake frames')
        continue
      face = self._largest_face(real_path, idx, real)
      if face is None:
        features.faceless_frame(metadata, split, fake_id, idx, 'fake', method)
        continue
      box = faces.square_box(face.box)
      crops = faces.crop(real, box, size), faces.crop(fake, box, size)
      annotation, q = self._annotation(quality, pair, idx, real.shape, box, crops)
      report.note(f'MSCCNet annotations from {q} frames')
      used[q] = used.get(q, 0) + 1
      if idx in masks:  # FF++ mask videos: white where the face was manipulated
        mask = (faces.crop(masks[idx], box, size).max(-1) > 127).astype(np.float32)
      else:
        report.note(f'{method} frames without a mask video (MSCCNet annotation as mask)')
        mask = annotation
      yield f'{method}/{fake_id}/{idx}/0', self._example(
          fake_id, method, 'fake', idx, fake, box, faces.landmarks_in(fake, face.box),
          mask, crops[0], annotation)
