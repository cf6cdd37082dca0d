"""Which examples of a split a paper's protocol uses: methods, leave-one-out, cross-
manipulation, frames per video, single-subject videos, real/fake balance. Each rule is a
keep-mask over rows of the split's metadata table (`sources.table`), the same for its
examples and for the faceless frames its build recorded. Index lists only: grain
shuffles them, workers read them, and the resume check sees each filter's name and the
example count."""
from __future__ import annotations

import dataclasses

import numpy as np

from fjax.data import faces, sources
from fjax.util.errors import UserError


@dataclasses.dataclass(frozen=True)
class Protocol:
  """The paper protocol's rules for a split, read once from the config (`Protocol.of`):
  `methods` (reals and these methods' fakes), `holdout` (leave one out: training never
  sees it, evaluation sees reals and it only), `train_method` (cross-manipulation:
  training sees that method's fakes only, evaluation every method), `frames` per video
  (N evenly spaced among each video's sampled frames, faceless ones included, of a denser
  build), `single_subject` (evaluation of a data set named in `dataset.single_subject`:
  its videos with one face in every frame) and `subject_only` (evaluation under
  `evaluation.video_score='mean_faces'`, the frame-level papers' rule: each frame's
  largest stored face alone, `_largest_face`; the other faces, bystanders of a fake frame
  included, are no rows; docs/evaluation.md "Which face a frame-level paper scores"). `train`: the
  method rules are training's (training itself, and validation during training, which
  must not see the held-out method nor, under cross-manipulation, the other methods)."""
  dataset: str
  train: bool
  methods: tuple[str, ...] = ()
  holdout: str = ''
  train_method: str = ''
  frames: int = 0
  single_subject: bool = False
  subject_only: bool = False

  @classmethod
  def of(cls, config, train: bool, validation: bool = False) -> 'Protocol':
    """The rules of training (`train`), of validation during training (`validation`:
    training's methods, evaluation's frames) or of evaluation (neither)."""
    d = config.dataset
    return cls(d.name, train or validation, tuple(d.methods), d.holdout, d.train_method,
               d.frames_train if train else d.frames_test,
               not train and d.name.split('/')[0] in d.single_subject,
               not train and config.evaluation.video_score == 'mean_faces')

  def check(self, t: dict, split: str) -> None:
    """One line when a method the rules name has no fakes in the split."""
    known = sorted(set(t['method'][t['label'] == 1]))
    for name in (*self.methods, self.holdout, self.train_method):
      if name and name not in known:
        raise UserError(f'data set {self.dataset} split {split} has no method {name!r}; it '
                        f'has {", ".join(known)}')

  def rules(self, t: dict, rows: dict) -> list[tuple[str, np.ndarray]]:
    """(name, keep-mask over `rows`) of each rule that applies, in order; `rows`: columns
    label, method, video_key, frame (the table's examples, or `faceless_columns`)."""
    real, method = rows['label'] == 0, rows['method']
    isin = lambda values, kept: np.array([v in kept for v in values], bool)
    out = []
    if self.methods:
      out.append(('methods ' + ','.join(self.methods), real | isin(method, self.methods)))
    held = self.holdout
    if held and self.train:
      out.append((f'without {held}', method != held))
    elif held:
      out.append((f'real and {held}', real | (method == held)))
    if self.train and self.train_method:
      out.append((f'train on {self.train_method}', real | (method == self.train_method)))
    if self.frames:
      chosen = _chosen_frames(t, self.frames)
      out.append((f'{self.frames} frames per video', np.array(
          [f in chosen[v] for v, f in zip(rows['video_key'], rows['frame'])], bool)))
    if self.single_subject:  # videos with several faces in a stored frame left out
      several = set(t['video_key'][t['face'] > 0])
      out.append(('single subject', ~isin(rows['video_key'], several)))
    if self.subject_only and 'face' in rows:  # faceless frames have no face to drop
      out.append(('largest face', _largest_face(rows)))
    return out

  def select(self, t: dict, source: sources.Source) -> sources.Source:
    """The examples of a whole split (`source`) the rules keep, each rule a filter."""
    keep = np.ones(len(t['label']), bool)
    for name, mask in self.rules(t, t):
      keep &= mask
      source = source.where(name, np.flatnonzero(keep))
    return source

  def faceless(self, t: dict) -> dict[str, np.ndarray]:
    """The faceless frames of the split (`faceless_columns`) the rules keep."""
    rows = faceless_columns(t)
    keep = np.ones(len(rows['frame']), bool)
    for _, mask in self.rules(t, rows):
      keep &= mask
    return {k: v[keep] for k, v in rows.items()}


def _largest_face(rows: dict) -> np.ndarray:
  """Keep-mask of each frame's largest stored face: the lowest `face` (rank by box area)
  among the rows of its (video, frame). A test set stores every face (face 0 kept); the
  demo set stores one chosen face per frame, whatever its rank in the photo (kept)."""
  face = np.asarray(rows['face'], np.int64)
  if not len(face):
    return np.ones(0, bool)
  video = np.unique(np.asarray(rows['video_key'], object), return_inverse=True)[1].reshape(-1)
  frame = np.asarray(rows['frame'], np.int64)
  key = np.unique(video * (frame.max() + 1) + frame, return_inverse=True)[1].reshape(-1)
  lowest = np.full(key.max() + 1, np.iinfo(np.int64).max)
  np.minimum.at(lowest, key, face)
  return face == lowest[key]


def faceless_columns(t: dict) -> dict[str, np.ndarray]:
  """The table's faceless frames as columns video_key, frame, label, method."""
  rows = t['faceless']
  return {'video_key': np.array([sources.video_key(m, v) for v, _, _, m in rows], object),
          'frame': np.array([r[1] for r in rows], np.int64),
          'label': np.array([r[2] for r in rows], np.int32),
          'method': np.array([r[3] for r in rows], object)}


def real_only(t: dict, source: sources.Source) -> sources.Source:
  """The real faces of a split (`source`, rows of the table `t`): what SBI and AUNet
  train on, every fake being made on the fly from them."""
  indices = np.arange(len(t['label'])) if source.indices is None else source.indices
  return source.where('real_only', indices[t['label'][indices] == 0])


def _chosen_frames(t: dict, n: int) -> dict[str, set[int]]:
  """video key -> its N frames, evenly spaced (as the builders sample a video's frames)
  among its sampled frames (the stored ones and the faceless ones the build recorded)."""
  frames: dict[str, set] = {}
  for k, f in zip(t['video_key'], t['frame']):
    frames.setdefault(k, set()).add(int(f))
  for v, f, _, m in t['faceless']:
    frames.setdefault(sources.video_key(m, v), set()).add(int(f))
  return {k: {f[i] for i in faces.even_indices(len(f), n)}
          for k, f in ((k, sorted(f)) for k, f in frames.items())}


BALANCE = ('none', 'pair', 'oversample_real')


def balanced(mode: str, t: dict, source: sources.Source, split: str) -> sources.Source:
  """`input.balance`: 'pair' lists each fake followed by its real counterpart (the real
  face of the same identity at the nearest frame; FF++: the target video's frame), as
  MSCCNet's released FF++ loader does, so a real appears once per fake made from it and
  reals without a fake are left out; 'oversample_real' lists every fake and the reals
  cycled to as many. Index lists only: grain shuffles them, workers read them, and the
  resume check sees the filter's name and the example count."""
  if mode == 'none':
    return source
  indices = range(len(t['label'])) if source.indices is None else source.indices
  rows = [(int(i), int(t['label'][i]), t['identity'][i], int(t['frame'][i]))
          for i in indices]
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
