"""What a build skipped or noted, counted by reason, for the final report of
`data_builders.build`. The counts of work done elsewhere (worker processes, Beam
workers) are taken with `capture` there and added here by data_builders.parallel."""
from __future__ import annotations

import collections
import contextlib

COUNTS: collections.Counter = collections.Counter()


def skip(what: str, n: int = 1) -> None:
  """Counts unusable input left out of the data set ('frames without a face')."""
  COUNTS[f'skipped {what}'] += n


def note(what: str, n: int = 1) -> None:
  """Counts a fallback that kept the example ('frames whose mask is the annotation')."""
  COUNTS[what] += n


@contextlib.contextmanager
def capture():
  """Counts the `with` block's skips and notes in a fresh Counter (yielded) instead of
  COUNTS, which is left as it was."""
  global COUNTS
  outer, COUNTS = COUNTS, collections.Counter()
  try:
    yield COUNTS
  finally:
    COUNTS = outer
