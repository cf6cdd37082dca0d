"""A split of the configured data set, opened once (`open_split`): its source, its
metadata table (columns read once), the protocol's selection of it and its faceless
frames. Loaders, evaluation and scores files take this value, so that a split's metadata
is read once per evaluation."""
from __future__ import annotations

import dataclasses

import numpy as np

from fjax.data import selection, sources


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """An opened split.

  Attributes:
    name: the split ('train', 'test', ...).
    dataset: the configured data set name (`dataset.name`).
    source: the selected examples, in order (what loaders walk); each carries its `row`.
    table: the metadata table of every example of the split (`sources.table`).
    protocol: the rules that selected `source` (`selection.Protocol`).
    videos: per table row, its video as an integer (the same for its faceless frames).
    faceless: the faceless frames the protocol keeps, as columns video (integers as
      `videos`), frame, label, method.
  """
  name: str
  dataset: str
  source: sources.Source
  table: dict
  protocol: selection.Protocol
  videos: np.ndarray
  faceless: dict

  @property
  def rows(self) -> np.ndarray:
    """The table rows of the selected examples, in order."""
    s = self.source
    return np.arange(len(s)) if s.indices is None else np.asarray(s.indices)


def open_split(config, split: str, train: bool = False, validation: bool = False) -> Split:
  """`split` of the configured data set, its builder and table opened once, with the
  paper protocol's selection (`selection.Protocol`) and, for training, only the real
  faces (`dataset.train_real_only`) and the real/fake balance (`input.balance`). With
  `validation` (the evaluation during training) the methods are training's: under
  `dataset.holdout` or `dataset.train_method` it never sees a method training does not."""
  builder = sources.open_builder(config, split)
  source = sources.as_source(config, builder, split)
  t = sources.table(config, split, builder)
  protocol = selection.Protocol.of(config, train, validation)
  protocol.check(t, split)
  source = protocol.select(t, source)
  if train and config.dataset.train_real_only:
    source = selection.real_only(t, source)
  if train:
    source = selection.balanced(config.input.balance, t, source, split)
  faceless = protocol.faceless(t)
  _, codes = np.unique(np.r_[t['video_key'], faceless.pop('video_key')].astype(str),
                       return_inverse=True)
  codes = codes.reshape(-1).astype(np.int64)
  n = len(t['video_key'])
  return Split(split, config.dataset.name, source, t, protocol, codes[:n],
               {'video': codes[n:], **faceless})
