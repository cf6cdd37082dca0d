"""Which examples of a split a paper's protocol uses: methods, leave-one-out, cross-
manipulation, frames per video, single-subject videos, real/fake balance. Index lists
only: grain shuffles them, workers read them, and the resume check sees each filter's
name and the example count."""
from __future__ import annotations

import numpy as np

from fjax.data import faces, sources
from fjax.util.errors import UserError


def filtered(config, split: str, source: sources.Source, keep, name: str) -> sources.Source:
  """The examples of a split for which keep(label, method) holds (labels and methods read
  without decoding any image); `name` describes the filter."""
  t = sources.table(config, split)
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


def protocol(config, split: str, source: sources.Source, train: bool) -> sources.Source:
  """The paper protocol's selection of a split: `dataset.methods` (reals and these
  methods' fakes), `dataset.holdout` (leave one out), `dataset.train_method` (cross-
  manipulation: training sees that method's fakes only, evaluation every method), the
  frames per video (`frames_train` / `frames_test`: N evenly spaced among each video's
  sampled frames, faceless ones included, of a denser build) and, in evaluation of a
  data set named in `dataset.single_subject`, its videos with one face in every frame."""
  d = config.dataset
  methods, t = tuple(d.methods), sources.table(config, split)
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
    keys = np.array([sources.video_key(m, v) for m, v in zip(t['method'], t['video_id'])], object)
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
                   if f in chosen[sources.video_key(m, v)]], np.int64)


def _chosen_frames(t: dict, n: int) -> dict[str, set[int]]:
  """video key -> its N frames, evenly spaced (as the builders sample a video's frames)
  among its sampled frames."""
  return {k: {f[i] for i in faces.even_indices(len(f), n)}
          for k, f in _video_frames(t).items()}


def _video_frames(t: dict) -> dict[str, list[int]]:
  frames: dict[str, set] = {}
  for m, v, f in zip(t['method'], t['video_id'], t['frame']):
    frames.setdefault(sources.video_key(m, v), set()).add(int(f))
  for v, f, _, m in t['faceless']:
    frames.setdefault(sources.video_key(m, v), set()).add(int(f))
  return {k: sorted(f) for k, f in frames.items()}


def faceless_rows(config, split: str, source: sources.Source):
  """(video hashes, frames, labels, methods) of the faceless frames of the videos
  `source` holds, at the frames the protocol selected (`frames_test`)."""
  t = sources.table(config, split)
  idx = np.arange(len(t['label'])) if source.indices is None else source.indices
  videos = {sources.video_key(t['method'][i], t['video_id'][i]) for i in idx}
  held = config.dataset.holdout
  methods = tuple(config.dataset.methods)
  rows = [(v, int(f), int(label), m) for v, f, label, m in t['faceless']
          if (label == 0 or ((not methods or m in methods) and (not held or m == held)))]
  if config.dataset.frames_test:
    chosen = _chosen_frames(t, config.dataset.frames_test)
    rows = [r for r in rows if r[1] in chosen[sources.video_key(r[3], r[0])]]
  if config.dataset.name.split('/')[0] in config.dataset.single_subject:  # with its video
    all_keys = {sources.video_key(m, v) for m, v in zip(t['method'], t['video_id'])}
    rows = [r for r in rows if sources.video_key(r[3], r[0]) in videos
            or sources.video_key(r[3], r[0]) not in all_keys]
  hashes = np.array([sources.name_hash(sources.video_key(m, v).encode())
                     for v, _, _, m in rows], np.int64)
  return (hashes, np.array([r[1] for r in rows], np.int64),
          np.array([r[2] for r in rows], bool), np.array([r[3] for r in rows], object))


BALANCE = ('none', 'pair', 'oversample_real')


def balanced(config, split: str, source: sources.Source) -> sources.Source:
  """`input.balance`: 'pair' lists each fake followed by its real counterpart (the real
  face of the same identity at the nearest frame; FF++: the target video's frame), as
  MSCCNet's released FF++ loader does, so a real appears once per fake made from it and
  reals without a fake are left out; 'oversample_real' lists every fake and the reals
  cycled to as many. Index lists only: grain shuffles them, workers read them, and the
  resume check sees the filter's name and the example count."""
  mode = config.input.balance
  if mode == 'none':
    return source
  meta = sources.metadata(config, split)
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
