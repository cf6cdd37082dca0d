"""What a build skipped or noted, counted by reason, for the final report of
`data_builders.build`. Builders run in the building process (no Beam), so a module-level
counter is enough."""
from __future__ import annotations

import collections

COUNTS: collections.Counter = collections.Counter()


def skip(what: str, n: int = 1) -> None:
  """Counts unusable input left out of the data set ('frames without a face')."""
  COUNTS[f'skipped {what}'] += n


def note(what: str, n: int = 1) -> None:
  """Counts a fallback that kept the example ('frames whose mask is the annotation')."""
  COUNTS[what] += n
