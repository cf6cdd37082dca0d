"""TFDS builders of the project's data sets (array_record files, PNG-encoded images)."""
from __future__ import annotations

import difflib


def check_config(name: str, config: str | None = None) -> None:
  """ValueError naming the builder configs of data set `name` when `config` (or the
  config in `name`: 'faceforensics/c23', optionally ':version') is none of them. TFDS's
  own error lists close matches of name:version pairs and finds none for a misspelt name.
  The builder's module (data_builders.<name>) must be imported already."""
  root, _, in_name = name.split(':')[0].partition('/')
  config = config or in_name
  if not config:
    return
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  configs = tfds.builder_cls(root).BUILDER_CONFIGS
  names = [c.name for c in configs]
  if names and config not in names:
    close = difflib.get_close_matches(config, names, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ''
    # Frame-perturbed robustness configs (<base>_<kind>_<level>) named by pattern.
    perturbed = [c for c in configs if getattr(c, 'perturbation', '')]
    bases = dict.fromkeys(c.name[:-len(c.perturbation.replace(':', '_')) - 1]
                          for c in perturbed)
    listed = ', '.join(c.name for c in configs if c not in perturbed)
    if bases:
      listed += f' (and {", ".join(f"{b}_<kind>_<level>" for b in bases)}: frame-perturbed)'
    raise ValueError(f'{root} has no config {config!r}{hint}; its configs: {listed}')
