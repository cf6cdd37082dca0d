"""tfds.data_source -> grain: shard by process, shuffle, decode, augment, batch.

Train batches come from a `grain.DataLoader` whose iterator state is saved in every
checkpoint (exact resumption). Evaluation walks a split once, each process its own shard,
padded to a fixed number of equal batches with `valid = 0` rows so that every process runs
the same jitted steps. Host-side strings (video ids) are hashed to int64 so that they can
be gathered across processes (int32: jax runs without x64).
"""
from __future__ import annotations

import importlib
import io
import json
import math
import os
import zlib

import cv2
import grain
import jax
import numpy as np

from fjax import files, locks, metrics
from fjax.errors import UserError
from fjax.preprocess import augment, corruptions, faces, labels, self_blend, tamper

DEVICE_KEYS = ('image', 'label', 'mask', 'valid', 'video_hash', 'method_hash', 'frame', 'face')
# Per-pixel labels a config may add (`input.labels`), made on the fly from the final image
# and landmarks, flipped and resized with the image: name -> channels.
LABEL_CHANNELS = {'noise': 3, 'au_maps': 15}
# 'method_label': the class of a five-way detector (FF++'s four methods; -1 for others).
METHOD_CLASSES = ('real', 'Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures')


def device_keys(config) -> tuple[str, ...]:
  unknown = set(config.input.labels) - set(LABEL_CHANNELS) - {'method_label'}
  if unknown:
    raise UserError(f'input.labels: unknown {sorted(unknown)}; known: {sorted(LABEL_CHANNELS)}')
  return DEVICE_KEYS + tuple(config.input.labels)


def label_maps(image: np.ndarray, landmarks: np.ndarray, config) -> dict[str, np.ndarray]:
  """The extra label maps of one face crop: the wavelet noise residual (SPEC 4, sigma
  `input.noise_sigma`) and the 15 AU maps (SPEC 5), at the crop's resolution."""
  maps = {}
  if 'noise' in config.input.labels:
    maps['noise'] = labels.noise_residual(image, config.input.noise_sigma)
  if 'au_maps' in config.input.labels:
    maps['au_maps'] = labels.au_maps(landmarks, image.shape[0])
  return maps


def data_dir(config) -> str:
  return (config.dataset.data_dir or os.environ.get('TFDS_DATA_DIR')
          or os.path.expanduser('~/tensorflow_datasets'))


def _builder(config):
  """(the configured data set's TFDS builder, a function making a new one)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name = config.dataset.name
  root = name.split('/')[0]
  try:
    importlib.import_module(f'data_builders.{root}')
  except ModuleNotFoundError as e:
    raise UserError(f'unknown data set {name!r}: no data_builders/{root}') from e
  make = lambda: tfds.builder(name, data_dir=data_dir(config), file_format='array_record')
  try:
    return make(), make
  except (ValueError, tfds.core.registered.DatasetNotFoundError) as e:  # e.g. a bad config
    raise UserError(f'data set {name!r}: {str(e).splitlines()[0]}') from e


def is_built(config) -> bool:
  """Whether the configured data set can be read (the demo set is built on first use)."""
  builder, _ = _builder(config)
  return config.dataset.name.split('/')[0] == 'demo_forgeries' or builder.is_prepared()


def data_source(config, split: str, decoders=None):
  """The split as a random-access source; builds demo_forgeries on first use."""
  name = config.dataset.name
  root = name.split('/')[0]
  builder, make = _builder(config)
  if not builder.is_prepared():
    if root != 'demo_forgeries':
      raise UserError(f'data set {name} is not built in {data_dir(config)}; build it with '
                      f'python -m data_builders.build {root} --config {builder.builder_config.name}'
                      f' --manual_dir=... --data_dir={data_dir(config)}')
    builder = locks.prepared(make)  # embedded media: nothing to fetch
  if split not in builder.info.splits:
    raise UserError(f'data set {name} has no split {split!r} '
                    f'(it has {sorted(builder.info.splits)})')
  check_mask_source(config, builder.info.features.keys())
  check_shards(builder, split)
  source = builder.as_data_source(split=split, decoders=decoders)
  joined = config.dataset.mask_source == 'focus' and decoders is None
  if joined:
    source = WithFocusMaps(source, config.dataset.focus_maps, split)
  return Source(source, {'dataset': builder.info.full_name, 'split': split,
                         'focus_maps': joined, 'filters': []})


_CHECKED_SHARDS: set[tuple[str, int, float]] = set()


def check_shards(builder, split: str) -> None:
  """One line naming the file when a shard of the split is missing, truncated or
  damaged: each file must hold the number of records its build recorded (a truncated
  array_record file opens, reads fewer records and fails later, mid-training)."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  info = builder.info.splits[split]
  for path, expected in zip(info.filepaths, info.shard_lengths):
    path = str(path)
    try:
      key = (path, *files.size_and_mtime(path))
      if key in _CHECKED_SHARDS:
        continue
      reader = array_record_module.ArrayRecordReader(path)
      count = reader.num_records()
      reader.close()
    except (OSError, RuntimeError, ValueError) as e:
      count, key = None, f'cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})'
    if count != expected:
      problem = key if count is None else f'holds {count} of its {expected} records'
      raise UserError(f'data file {path} {problem}: it is missing, truncated or damaged; '
                      f'rebuild {builder.info.full_name} (delete its folder, then python -m '
                      'data_builders.build)')
    _CHECKED_SHARDS.add(key)


class WithFocusMaps:
  """A split's examples with `mask_focus`, the map `python -m fjax.focus_maps` wrote for
  the example at the same index."""

  def __init__(self, source, directory: str, split: str):
    path = os.path.join(directory, f'{split}.array_record')
    if not files.isfile(path):
      raise UserError(f'{directory} holds no FoCus maps for split {split!r}')
    self.source, self.maps = source, grain.sources.ArrayRecordDataSource([path])
    if len(self.maps) != len(source):
      raise UserError(f'{path} holds {len(self.maps)} maps for {len(source)} examples: '
                      'made from another data set')

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    png = np.frombuffer(self.maps[i], np.uint8)
    return dict(self.source[i], mask_focus=cv2.imdecode(png, cv2.IMREAD_GRAYSCALE)[..., None])


class Source:
  """A split's examples, all of them or those at `indices`, with a description of what
  was selected. Grain saves `repr(source)` with the iterator state and refuses a resume
  whose source differs, so the repr is the description (data set with config and
  version, split, FoCus maps joined or not, filters in order, example count) and never an
  object address; `checkpoint.check_data_state` names the fields that differ."""

  PREFIX = 'fjax.Source'

  def __init__(self, base, description: dict, indices: np.ndarray | None = None):
    self.base, self.description, self.indices = base, description, indices

  def __len__(self):
    return len(self.base) if self.indices is None else len(self.indices)

  def __getitem__(self, i):
    return self.base[i if self.indices is None else int(self.indices[i])]

  def __repr__(self):
    return self.PREFIX + json.dumps({**self.description, 'examples': len(self)},
                                    sort_keys=True)

  def where(self, name: str, indices: np.ndarray) -> 'Source':
    """The examples of the base source at `indices`, selected by the filter `name`."""
    return Source(self.base, {**self.description,
                              'filters': [*self.description['filters'], name]}, indices)


def name_hash(name: bytes) -> np.int32:
  """A string as a non-negative int32 (crc32) that can travel in a global batch."""
  return np.int32(zlib.crc32(name) & 0x7FFFFFFF)


def _metadata(config, split: str):
  """The split with every image feature left as PNG bytes (labels and ids only)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = data_source(config, split, decoders={})
  images = [k for k, f in source.base.dataset_info.features.items()
            if isinstance(f, tfds.features.Image)]
  return data_source(config, split, decoders={k: tfds.decode.SkipDecoding() for k in images})


_TABLES: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
COLUMNS = ('label', 'method', 'video_id', 'identity', 'frame', 'face')


def table(config, split: str) -> dict[str, np.ndarray]:
  """Columns `COLUMNS` of every example of a split (`face`: 0 in data sets built before it
  was stored), and `faceless`: the build's sampled frames without a face, as rows
  (video_id, frame, label, method). Read once per data set and split: the first read
  walks the split without decoding images and saves the columns beside the data set
  (`fjax-columns-<split>.npz`, plain arrays, loaded without pickle) for later processes."""
  source = _metadata(config, split)
  key = (source.description['dataset'], data_dir(config), split)
  if key not in _TABLES:
    info = source.base.dataset_info
    path = os.path.join(os.fspath(info.data_dir), f'fjax-columns-{split}.npz')
    out = _load_columns(path, len(source))
    if out is None:
      out = {k: [] for k in COLUMNS}
      for i in range(len(source)):  # one example at a time: the PNG bytes are not kept
        r = source[i]
        for k in COLUMNS:
          v = r.get(k, 0)
          out[k].append(bytes(v).decode() if k in ('method', 'video_id', 'identity')
                        else int(v))
      out = {k: np.array(v, np.int64 if k in ('frame', 'face', 'label') else str)
             for k, v in out.items()}
      _save_columns(path, out)
    out = {k: v.astype(object) if v.dtype.kind == 'U' else v for k, v in out.items()}
    out['label'] = out['label'].astype(np.int32)
    faceless = (info.metadata or {}).get('faceless_frames') or {}
    out['faceless'] = [tuple(r) for r in faceless.get(split, [])]
    _TABLES[key] = out
  return _TABLES[key]


def _load_columns(path: str, count: int) -> dict | None:
  try:
    with files.path(path).open('rb') as raw, np.load(raw, allow_pickle=False) as f:
      out = {k: f[k] for k in COLUMNS}
  except (OSError, KeyError, ValueError):
    return None
  return out if all(len(v) == count for v in out.values()) else None


def _save_columns(path: str, columns: dict) -> None:
  """Written whole (`files.write_bytes`: a temporary name renamed, or one object upload),
  never half a file; a read-only data directory just means the next process reads the
  split again."""
  data = io.BytesIO()
  np.savez(data, **columns)
  try:
    files.write_bytes(path, data.getvalue())
  except OSError:
    pass


def method_names(config, split: str) -> dict[int, str]:
  """name_hash -> name of every manipulation method in a split (per-method AUC)."""
  return {int(name_hash(n.encode())): n for n in set(table(config, split)['method'])}


def video_key(method: str, video_id: str) -> str:
  """The id of a video across methods: FF++ names a fake by its pair of ids under every
  method (Deepfakes/000_003, Face2Face/000_003), so the method is part of it."""
  return f'{method}/{video_id}'


def filtered(config, split: str, source: Source, keep, name: str) -> Source:
  """The examples of a split for which keep(label, method) holds (labels and methods read
  without decoding any image); `name` describes the filter."""
  t = table(config, split)
  indices = np.arange(len(t['label'])) if source.indices is None else source.indices
  return source.where(name, np.array([i for i in indices if keep(
      int(t['label'][i]), t['method'][i])], np.int64))


def real_only(config, split: str, source):
  """The real faces of a split: what SBI and AUNet train on, every fake being made on the
  fly from them."""
  return filtered(config, split, source, lambda label, _: label == 0, 'real_only')


def with_holdout(config, split: str, source, train: bool):
  """Leave-one-out over manipulation methods (`dataset.holdout`): training never sees the
  held-out method; evaluation sees real faces and that method only."""
  held = config.dataset.holdout
  if not held:
    return source
  if train:
    return filtered(config, split, source, lambda label, method: method != held,
                    f'without {held}')
  return filtered(config, split, source,
                  lambda label, method: label == 0 or method == held, f'real and {held}')


def protocol(config, split: str, source: Source, train: bool) -> Source:
  """The paper protocol's selection of a split: `dataset.methods` (reals and these
  methods' fakes), `dataset.holdout` (leave one out), `dataset.train_method` (cross-
  manipulation: training sees that method's fakes only, evaluation every method), the
  frames per video (`frames_train` / `frames_test`: N evenly spaced among each video's
  sampled frames, faceless ones included, of a denser build) and, in evaluation of a
  data set named in `dataset.single_subject`, its videos with one face in every frame."""
  d, e = config.dataset, config.evaluation
  if e.video_score not in metrics.VIDEO_SCORES or e.faceless not in metrics.FACELESS:
    raise UserError(f'evaluation.video_score={e.video_score!r}, faceless={e.faceless!r}: '
                    f'use {" | ".join(metrics.VIDEO_SCORES)} and {" | ".join(metrics.FACELESS)}')
  methods, t = tuple(d.methods), table(config, split)
  known = sorted(set(t['method'][t['label'] == 1]))
  for name in (*methods, d.holdout, d.train_method):
    if name and name not in known:
      raise UserError(f'data set {d.name} split {split} has no method {name!r}; it has '
                      f'{", ".join(known)}')
  if methods:
    source = filtered(config, split, source,
                      lambda label, m: label == 0 or m in methods, 'methods ' + ','.join(methods))
  source = with_holdout(config, split, source, train)
  if train and d.train_method:
    source = filtered(config, split, source, lambda label, m: label == 0 or m == d.train_method,
                      f'train on {d.train_method}')
  frames = d.frames_train if train else d.frames_test
  if frames:
    keep = set(_frame_subset(t, frames).tolist())
    idx = np.arange(len(t['frame'])) if source.indices is None else source.indices
    source = source.where(f'{frames} frames per video',
                          np.array([i for i in idx if i in keep], np.int64))
  if not train and d.name.split('/')[0] in d.single_subject:
    keys = np.array([video_key(m, v) for m, v in zip(t['method'], t['video_id'])], object)
    several = set(keys[t['face'] > 0])
    idx = np.arange(len(keys)) if source.indices is None else source.indices
    source = source.where('single subject',
                          np.array([i for i in idx if keys[i] not in several], np.int64))
  return source


def _frame_subset(t: dict, n: int) -> np.ndarray:
  """Indices of the examples at N evenly spaced frames of each video's sampled frames
  (the stored ones and the faceless ones the build recorded)."""
  chosen = _chosen_frames(t, n)
  return np.array([i for i, (m, v, f) in enumerate(zip(t['method'], t['video_id'], t['frame']))
                   if f in chosen[video_key(m, v)]], np.int64)


def _chosen_frames(t: dict, n: int) -> dict[str, set[int]]:
  """video key -> its N frames, evenly spaced (as the builders sample a video's frames)
  among its sampled frames."""
  return {k: {f[i] for i in faces.even_indices(len(f), n)}
          for k, f in _video_frames(t).items()}


def _video_frames(t: dict) -> dict[str, list[int]]:
  frames: dict[str, set] = {}
  for m, v, f in zip(t['method'], t['video_id'], t['frame']):
    frames.setdefault(video_key(m, v), set()).add(int(f))
  for v, f, _, m in t['faceless']:
    frames.setdefault(video_key(m, v), set()).add(int(f))
  return {k: sorted(f) for k, f in frames.items()}


def faceless_rows(config, split: str, source: Source):
  """(video hashes, frames, labels, methods) of the faceless frames of the videos
  `source` holds, at the frames the protocol selected (`frames_test`)."""
  t = table(config, split)
  idx = np.arange(len(t['label'])) if source.indices is None else source.indices
  videos = {video_key(t['method'][i], t['video_id'][i]) for i in idx}
  held = config.dataset.holdout
  methods = tuple(config.dataset.methods)
  rows = [(v, int(f), int(label), m) for v, f, label, m in t['faceless']
          if (label == 0 or ((not methods or m in methods) and (not held or m == held)))]
  if config.dataset.frames_test:
    chosen = _chosen_frames(t, config.dataset.frames_test)
    rows = [r for r in rows if r[1] in chosen[video_key(r[3], r[0])]]
  if config.dataset.name.split('/')[0] in config.dataset.single_subject:  # with its video
    all_keys = {video_key(m, v) for m, v in zip(t['method'], t['video_id'])}
    rows = [r for r in rows if video_key(r[3], r[0]) in videos
            or video_key(r[3], r[0]) not in all_keys]
  hashes = np.array([name_hash(video_key(m, v).encode()) for v, _, _, m in rows], np.int64)
  return (hashes, np.array([r[1] for r in rows], np.int64),
          np.array([r[2] for r in rows], bool), np.array([r[3] for r in rows], object))


def _resize(x: np.ndarray, size: int) -> np.ndarray:
  if x.shape[0] == size and x.shape[1] == size:
    return x
  interp = cv2.INTER_AREA if x.shape[0] > size else cv2.INTER_LINEAR
  if x.ndim == 3 and x.shape[-1] > 4:  # OpenCV resizes at most 4 channels at a time
    return np.concatenate([_resize(x[..., i:i + 4], size).reshape(size, size, -1)
                           for i in range(0, x.shape[-1], 4)], axis=-1)
  return cv2.resize(x, (size, size), interpolation=interp)


def normalize(image_uint8: np.ndarray, config) -> np.ndarray:
  """uint8 RGB -> float32 (x / 255 - mean) / std, the model's input convention."""
  image = image_uint8.astype(np.float32) / 255.0
  return ((image - np.float32(config.input.mean)) / np.float32(config.input.std)).astype(
      np.float32)


MASK_SOURCES = ('mask', *labels.PAIR_MAPS, 'diff@0.1', 'focus')


def mask_feature(source: str) -> str:
  """The stored feature a `dataset.mask_source` reads."""
  return 'mask' if source == 'mask' else f'mask_{source.split("@")[0]}'


def _as_source(mask: np.ndarray, source: str) -> np.ndarray:
  return (mask > 0.1).astype(np.float32) if source == 'diff@0.1' else mask  # MG2


def read_mask(example: dict, source: str) -> np.ndarray:
  return _as_source(example[mask_feature(source)][..., 0].astype(np.float32) / 255.0, source)


def check_mask_source(config, features) -> None:
  """One clear line when the config asks for a map the data set does not hold."""
  name = config.dataset.mask_source
  if name not in MASK_SOURCES:
    raise UserError(f'dataset.mask_source={name!r} is not one of {", ".join(MASK_SOURCES)}')
  if name == 'focus':
    if config.input.self_blend_prob > 0:
      raise UserError('dataset.mask_source=focus has no map for faces self-blended on the '
                      'fly; set input.self_blend_prob=0')
    if not files.isfile(os.path.join(config.dataset.focus_maps, 'info.json')):
      raise UserError(f'dataset.focus_maps={config.dataset.focus_maps!r} holds no maps '
                      'written by python -m fjax.focus_maps')
    return
  if mask_feature(name) not in features:
    raise UserError(f'data set {config.dataset.name} holds no {mask_feature(name)!r} '
                    f'for dataset.mask_source={name!r}')


def prepare(example: dict, config, rng: np.random.Generator | None) -> dict:
  """Decoded example -> model inputs; `rng` enables training augmentation.

  Augmentations: on-the-fly self-blending of real faces (probability
  `input.self_blend_prob`), whole-image photometric jitter (`input.photometric`) and a
  horizontal flip applied to the image and every label map. With `input.tamper.pairs`
  (AUNet's TAP) a training example is a real face and its tampered counterpart, stacked
  on a leading pair axis of every array.
  """
  if rng is not None and config.input.tamper.pairs:
    return tampered_pair(example, config, rng)
  image = example['image']
  source = config.dataset.mask_source
  mask = read_mask(example, source)
  label = int(example['label'])
  if rng is not None and label == 0 and rng.random() < config.input.self_blend_prob:
    fake, mask = self_blend.self_blend(image, example['landmarks'], rng)
    if source != 'mask':  # the same map the data set stores, made from this new pair
      mask = _as_source(labels.PAIR_MAPS[source.split('@')[0]](image, fake), source)
    image, label = fake, 1
  image, maps = _at_input_size(image, mask, example, config, rng)
  if rng is not None and config.input.hflip and rng.random() < 0.5:
    image, maps = _flip(image, maps)
  return _pack(image, maps, label, example, config)


def tampered_pair(example: dict, config, rng: np.random.Generator) -> dict:
  """A real face (label 0, zero mask) and its image-level tampered fake (label 1, mask
  M_p), with the same training transforms (`input.tamper.sbi_augment`: SBI's released
  ones, one draw for both), photometric jitter, crop and flip, stacked on axis 0."""
  t = config.input.tamper
  real, fake, mask = tamper.tampered_counterpart(example['image'], example['landmarks'], rng,
                                                 t.partial, t.image, t.max_removed,
                                                 sbi=t.sbi_augment, artefact=t.artefact)
  if t.sbi_augment:
    from fjax.preprocess import sbi_augment  # pylint: disable=g-import-not-at-top
    real, fake = sbi_augment.training(real, fake, rng)
  jitter_seed = int(rng.integers(2 ** 31))
  pair = [_at_input_size(image, m, example, config, np.random.default_rng(jitter_seed))
          for image, m in ((real, np.zeros_like(mask)), (fake, mask))]
  flip = config.input.hflip and rng.random() < 0.5
  packed = [_pack(*(_flip(*p) if flip else p), label, example, config)
            for p, label in zip(pair, (0, 1))]
  return {k: np.stack([packed[0][k], packed[1][k]]) for k in packed[0]}


def _at_input_size(image, mask, example, config, rng):
  """Photometric jitter and a random crop (training), corruption (robustness), resize to
  the input size; the label maps are made there from the final image and landmarks."""
  if rng is not None and config.input.photometric:
    image = augment.photometric(image, rng)
  landmarks = example['landmarks']
  if rng is not None and config.input.augment == 'msccnet':
    return _msccnet_augment(image, mask, landmarks, config, rng)
  if rng is not None and config.input.crop_scale < 1:
    image, mask, landmarks = augment.random_crop(image, mask, landmarks, rng,
                                                 config.input.crop_scale)
  if config.input.corruption:  # robustness evaluation: kind:level, seeded per example
    kind, level = config.input.corruption.split(':')
    image = corruptions.corrupt(image, kind, int(level), np.random.default_rng(
        zlib.crc32(bytes(example['video_id'])) + int(example['frame'])))
  size = config.input.image_size
  scale = size / image.shape[0]
  image = _resize(np.ascontiguousarray(image), size)
  maps = {'mask': _resize(np.ascontiguousarray(mask), size).astype(np.float32),
          **label_maps(image, landmarks * scale, config)}
  return image, maps


def _msccnet_augment(image, mask, landmarks, config, rng):
  """MSCCNet's released training transforms (`input.augment=msccnet`; the flip follows in
  `prepare`): rescale and crop, photometric distortion, label maps made on the crop, then
  centred padding to the input size. The image is padded with the mean colour, 0 after
  normalisation as the released Padding (after Normalize) gives; the mask with
  `IGNORE` (-1, the released ignore index 255: MSCCNet's losses skip those pixels), the
  other label maps with 0."""
  size = config.input.image_size
  image, mask, landmarks = augment.rescale_crop(
      image, mask, landmarks, rng, size, tuple(config.input.scale_range),
      config.input.crop_max_ratio)
  image = augment.photometric_distortion(image, rng)
  maps = {'mask': mask.astype(np.float32), **label_maps(image, landmarks, config)}
  image, _ = augment.pad_center(image.astype(np.float32), size,
                                np.float32(config.input.mean) * 255)
  return image, {k: augment.pad_center(v, size, IGNORE if k == 'mask' else 0)[0]
                 for k, v in maps.items()}


IGNORE = -1.0  # mask value of pixels no loss sees (MSCCNet's padded border)


def _flip(image, maps):
  return image[:, ::-1], {k: v[:, ::-1] for k, v in maps.items()}


def _pack(image, maps, label: int, example: dict, config) -> dict:
  out = {k: np.ascontiguousarray(v, np.float32) for k, v in maps.items()}
  if 'method_label' in config.input.labels:
    method = 'real' if label == 0 else bytes(example['method']).decode()
    method_label = METHOD_CLASSES.index(method) if method in METHOD_CLASSES else -1
    out['method_label'] = np.int32(method_label)
  return {'image': normalize(np.ascontiguousarray(image), config),
          **out, 'label': np.int32(label), 'valid': np.float32(1.0),
          'video_hash': name_hash(video_key(bytes(example['method']).decode(),
                                            bytes(example['video_id']).decode()).encode()),
          'method_hash': name_hash(bytes(example['method'])),
          'frame': np.int32(example['frame']), 'face': np.int32(example.get('face', 0))}


class TrainTransform(grain.transforms.RandomMap):

  def __init__(self, config):
    self.config = config

  def random_map(self, element, rng):
    return prepare(element, self.config, rng)


class EvalTransform(grain.transforms.Map):

  def __init__(self, config):
    self.config = config

  def map(self, element):
    return prepare(element, self.config, None)


BALANCE = ('none', 'pair', 'oversample_real')
AUGMENT = ('', 'msccnet')


def check_train_options(config) -> None:
  i = config.input
  if not 0 < i.crop_scale <= 1:
    raise UserError(f'input.crop_scale={i.crop_scale}: the smallest crop side, '
                    'a fraction of the face crop in (0, 1]')
  if i.tamper.pairs and not config.dataset.train_real_only:
    raise UserError('input.tamper.pairs tampers real faces only: set '
                    'dataset.train_real_only=True')
  if i.tamper.sbi_augment and not i.tamper.pairs:
    raise UserError('input.tamper.sbi_augment augments AUNet\'s tampered pairs: set '
                    'input.tamper.pairs=True')
  if i.tamper.artefact not in ('blend', 'planted'):
    raise UserError(f'input.tamper.artefact={i.tamper.artefact!r}: use blend or planted')
  if i.tamper.sbi_augment and i.photometric:
    raise UserError('input.tamper.sbi_augment brings SBI\'s training transforms (colour, '
                    'JPEG); leave input.photometric=False')
  if i.balance not in BALANCE:
    raise UserError(f'input.balance={i.balance!r}: use {", ".join(BALANCE)}')
  if i.balance != 'none' and config.dataset.train_real_only:
    raise UserError(f'input.balance={i.balance!r} balances stored reals and fakes; '
                    'dataset.train_real_only trains on reals only')
  if i.augment not in AUGMENT:
    raise UserError(f'input.augment={i.augment!r}: use \'\' or msccnet')
  if i.augment == 'msccnet' and config.model.name != 'msccnet':
    raise UserError('input.augment=msccnet is MSCCNet\'s released pipeline: its padded '
                    'border is labelled -1, which only MSCCNet\'s losses skip')
  if i.augment == 'msccnet' and i.crop_scale < 1:
    raise UserError('input.augment=msccnet crops itself: leave input.crop_scale at 1')
  low, high = i.scale_range
  if i.augment == 'msccnet' and not 0 < low <= high:
    raise UserError(f'input.scale_range={tuple(i.scale_range)}: need 0 < low <= high')


def train_source(config) -> 'Source':
  """The training examples after the holdout, real-only and balance options: what one
  epoch walks through."""
  check_train_options(config)
  split = config.dataset.split_train
  source = protocol(config, split, data_source(config, split), train=True)
  if config.dataset.train_real_only:
    source = real_only(config, split, source)
  return balanced(config, split, source)


def balanced(config, split: str, source: Source) -> Source:
  """`input.balance`: 'pair' lists each fake followed by its real counterpart (the real
  face of the same identity at the nearest frame; FF++: the target video's frame), as
  MSCCNet's released FF++ loader does, so a real appears once per fake made from it and
  reals without a fake are left out; 'oversample_real' lists every fake and the reals
  cycled to as many. Index lists only: grain shuffles them, workers read them, and the
  resume check sees the filter's name and the example count."""
  mode = config.input.balance
  if mode == 'none':
    return source
  meta = _metadata(config, split)
  indices = range(len(meta)) if source.indices is None else source.indices
  rows = [(int(i), int(ex['label']), bytes(ex['identity']).decode(), int(ex['frame']))
          for i, ex in ((i, meta[int(i)]) for i in indices)]
  picked, strangers = balance_indices(rows, mode)
  if picked is None:
    raise UserError(f'input.balance={mode}: split {split} needs real and fake examples')
  name = mode + (f' ({strangers} fakes without a real of their identity)' if strangers
                 else '')
  return source.where(name, picked)


def balance_indices(rows, mode: str) -> tuple[np.ndarray | None, int]:
  """rows of (index, label, identity, frame) -> (the balanced index list, the number of
  fakes paired with a real of another identity, having none of their own), or None when
  the rows lack reals or fakes. 'pair': fake, its real, fake, its real, ...; a fake's
  real is its identity's at the nearest frame (the earlier one on a tie)."""
  reals = [r for r in rows if r[1] == 0]
  fakes = [r for r in rows if r[1] != 0]
  if not reals or not fakes:
    return None, 0
  if mode == 'oversample_real':
    picked = [f[0] for f in fakes] + [reals[k % len(reals)][0] for k in range(len(fakes))]
    return np.array(picked, np.int64), 0
  by_identity: dict[str, list[tuple[int, int]]] = {}
  for index, _, identity, frame in reals:
    by_identity.setdefault(identity, []).append((frame, index))
  picked, strangers = [], 0
  for k, (index, _, identity, frame) in enumerate(fakes):
    own = by_identity.get(identity)
    if own:
      real = min(own, key=lambda fi: (abs(fi[0] - frame), fi[0]))[1]
    else:  # no real face of this identity in the split: another real, in turn
      real, strangers = reals[k % len(reals)][0], strangers + 1
    picked += [index, real]
  return np.array(picked, np.int64), strangers


def train_loader(config, local_batch: int, source: Source | None = None) -> grain.DataLoader:
  """The training loader over `source` (default: `train_source(config)`)."""
  source = train_source(config) if source is None else source
  if len(source) < local_batch * jax.process_count():
    raise UserError(f'split {config.dataset.split_train} has {len(source)} examples, '
                    f'fewer than one batch of {config.batch_size}')
  sampler = grain.samplers.IndexSampler(
      num_records=len(source), shuffle=True, seed=config.seed, num_epochs=None,
      shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=True))
  return grain.DataLoader(
      data_source=source, sampler=sampler, worker_count=config.input.workers,
      operations=[TrainTransform(config),
                  grain.transforms.Batch(local_batch, drop_remainder=True)])


def eval_source(config, split: str) -> Source:
  """The examples of a split that evaluation sees under the configured protocol."""
  return protocol(config, split, data_source(config, split), train=False)


def eval_batches(config, split: str, local_batch: int, source: Source | None = None):
  """(number of batches, examples, iterator of padded local batches) of one pass over
  `source` (default: `eval_source`)."""
  source = eval_source(config, split) if source is None else source
  sampler = grain.samplers.IndexSampler(
      num_records=len(source), shuffle=False, num_epochs=1,
      shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=False))
  loader = grain.DataLoader(
      data_source=source, sampler=sampler, worker_count=config.input.workers,
      operations=[EvalTransform(config),
                  grain.transforms.Batch(local_batch, drop_remainder=False)])
  per_process = math.ceil(len(source) / jax.process_count())
  num_batches = math.ceil(per_process / local_batch)

  def padded():
    # Grain's workers batch their own share of the records (with 2 workers, 8 examples
    # arrive as two batches of 4), so the rows are re-cut into full local batches here.
    rows, sent = None, 0
    for batch in loader:
      rows = batch if rows is None else {k: np.concatenate([rows[k], batch[k]]) for k in batch}
      while len(rows['label']) >= local_batch:
        yield {k: v[:local_batch] for k, v in rows.items()}
        rows, sent = {k: v[local_batch:] for k, v in rows.items()}, sent + 1
    for _ in range(sent, num_batches):  # the rest, then all-padding batches
      yield {k: _pad(v, local_batch) for k, v in rows.items()}
      rows = {k: v[:0] for k, v in rows.items()}
  return num_batches, len(source), padded()


def _pad(x: np.ndarray, n: int) -> np.ndarray:
  if len(x) == n:
    return x
  return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], x.dtype)])
