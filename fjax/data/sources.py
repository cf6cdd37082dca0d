"""A built TFDS data set as grain sources: finding (and, for the demo set, building) it,
checking its shards, joining FoCus maps, and the columns (labels, methods, videos, frames,
faces) read once without decoding images. Each example carries its `row` in that table."""
from __future__ import annotations

import importlib
import io
import json
import os

import cv2
import grain
import numpy as np

import data_builders
from fjax.data import masks
from fjax.util import files, locks
from fjax.util.errors import UserError


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
    data_builders.check_config(name)  # a bad config: its configs named, not TFDS's error
    return make(), make
  except (ValueError, tfds.core.registered.DatasetNotFoundError) as e:
    # The whole message: TFDS puts what to do on the lines after the first.
    message = ' '.join(l.strip() for l in str(e).splitlines() if l.strip())
    raise UserError(f'data set {name!r}: {message}') from e


def is_built(config) -> bool:
  """Whether the configured data set can be read (the demo set is built on first use)."""
  builder, _ = _builder(config)
  return config.dataset.name.split('/')[0] == 'demo_forgeries' or builder.is_prepared()


def open_builder(config, split: str):
  """The configured data set's builder, prepared (demo_forgeries is built on first use),
  with `split` among its splits, the configured mask source among its features and the
  split's shards whole."""
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
  masks.check_mask_source(config, builder.info.features.keys())
  check_shards(builder, split)
  return builder


def data_source(config, split: str) -> 'Source':
  """The split as a random-access source; builds demo_forgeries on first use."""
  return as_source(config, open_builder(config, split), split)


def as_source(config, builder, split: str, decoders=None) -> 'Source':
  """Every example of `split` of an opened builder (`open_builder`), FoCus maps joined
  when `dataset.mask_source` is focus and images are decoded."""
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
    row = i if self.indices is None else int(self.indices[i])
    return {**self.base[row], 'row': row}  # its row in the split's table

  def __repr__(self):
    return self.PREFIX + json.dumps({**self.description, 'examples': len(self)},
                                    sort_keys=True)

  def where(self, name: str, indices: np.ndarray) -> 'Source':
    """The examples of the base source at `indices`, selected by the filter `name`."""
    return Source(self.base, {**self.description,
                              'filters': [*self.description['filters'], name]}, indices)


def video_key(method: str, video_id: str) -> str:
  """The id of a video across methods: FF++ names a fake by its pair of ids under every
  method (Deepfakes/000_003, Face2Face/000_003), so the method is part of it."""
  return f'{method}/{video_id}'


def metadata(config, split: str, builder=None) -> Source:
  """The split with every image feature left as PNG bytes (labels and ids only)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = builder or open_builder(config, split)
  images = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)]
  return as_source(config, builder, split, {k: tfds.decode.SkipDecoding() for k in images})


_TABLES: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}


COLUMNS = ('label', 'method', 'video_id', 'identity', 'frame', 'face')


def table(config, split: str, builder=None) -> dict[str, np.ndarray]:
  """Columns `COLUMNS` of every example of a split (`face`: 0 in data sets built before it
  was stored), `video_key` (`video_key` of each row) and `faceless`: the build's sampled
  frames without a face, as rows (video_id, frame, label, method). Read once per data set
  and split in a process (`builder`: the split's opened builder, else one is opened when
  the table is not held yet); the first read walks the split without decoding images and
  saves the columns beside the data set (`fjax-columns-<split>.npz`, plain arrays, loaded
  without pickle) for later processes."""
  key = (config.dataset.name, data_dir(config), split)
  if key not in _TABLES:
    _TABLES[key] = _read_table(config, split, builder or open_builder(config, split))
  return _TABLES[key]


def _read_table(config, split: str, builder) -> dict[str, np.ndarray]:
  info = builder.info
  path = os.path.join(os.fspath(info.data_dir), f'fjax-columns-{split}.npz')
  out = _load_columns(path, info.splits[split].num_examples)
  if out is None:
    source = metadata(config, split, builder)
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
  keys = [video_key(m, v) for m, v in zip(out['method'], out['video_id'])]
  out['video_key'] = np.array(keys, object)
  faceless = (info.metadata or {}).get('faceless_frames') or {}
  out['faceless'] = [tuple(r) for r in faceless.get(split, [])]
  return out


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
