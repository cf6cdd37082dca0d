"""A run's files as the report reads them: config.json (and the preset it matches),
metrics.jsonl, scores/*.jsonl, eval_table.json, robustness.json. Nothing is computed
here but what names the run."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os

from fjax import registry, run as run_lib
from fjax.util import files
from fjax.util.errors import UserError

# Keys that say where and on what a run ran, not what it trained: left out of the preset
# comparison.
MACHINE_KEYS = ('dataset.data_dir', 'mesh.')


@dataclasses.dataclass
class RunFiles:
  """One workdir read once. `scores`: file stem (`<data set>_<split>`) -> rows; `test`:
  the last test record of metrics.jsonl (the run's own test split), or {}."""
  workdir: str
  name: str
  config: object
  preset: str
  records: list
  scores: dict
  test: dict
  eval_table: dict | None
  robustness: dict | None

  @property
  def model(self) -> str:
    return self.config.model.name

  @property
  def own_scores(self) -> str:
    """The scores file stem of the run's own test split."""
    c = self.config.dataset
    return f'{c.name.replace("/", "_")}_{c.split_test}'


def _read_json(path: str):
  return json.loads(files.read_text(path)) if files.isfile(path) else None


def _jsonl(path: str) -> list[dict]:
  if not files.isfile(path):
    return []
  return [json.loads(line) for line in files.read_text(path).splitlines() if line.strip()]


def flat(d: dict, prefix: str = '') -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}; lists as tuples (comparable)."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = tuple(v) if isinstance(v, list) else v
  return out


def _diff(a: dict, b: dict) -> dict:
  return {k: a.get(k) for k in sorted(set(a) | set(b))
          if a.get(k) != b.get(k) and not k.startswith(MACHINE_KEYS)}


def preset_of(config) -> str:
  """The presets of the model's config file that the run's config matches best (added
  greedily while they bring it closer), then the keys it still differs in, e.g.
  `demo + total_steps=1200`. config.json keeps the values, not the command line."""
  module = importlib.import_module(f'configs.{registry.model_module(config.model.name).CONFIG}')
  saved = flat(config.to_dict())
  names = [n for n, p in module.PRESETS.items() if not callable(p)]
  chosen, best = [], _diff(saved, flat(module.get_config().to_dict()))
  while True:
    trials = {n: _diff(saved, flat(module.get_config(','.join(chosen + [n])).to_dict()))
              for n in names if n not in chosen}
    if not trials:
      break
    name = min(trials, key=lambda n: len(trials[n]))
    if len(trials[name]) >= len(best):
      break
    chosen, best = chosen + [name], trials[name]
  rest = [f'{k}={v}' for k, v in best.items()]
  return ' + '.join([','.join(chosen) or '(defaults)'] + rest)


def read_run(workdir: str, name: str | None = None) -> RunFiles:
  """A workdir's files; a folder that is not a run, or a run without scores, is one
  line."""
  config = run_lib.saved_config(workdir)
  records = _jsonl(os.path.join(workdir, 'metrics.jsonl'))
  directory = os.path.join(workdir, 'scores')
  scores = {}
  if files.isdir(directory):
    for f in sorted(files.listdir(directory)):
      if f.endswith('.jsonl'):
        scores[f[:-len('.jsonl')]] = _jsonl(os.path.join(directory, f))
  if not scores:
    raise UserError(f'{workdir}: no scores/*.jsonl (train it to the end, or run '
                    '--mode=eval, first)')
  tests = [r for r in records if r.get('split') == config.dataset.split_test]
  return RunFiles(workdir=workdir, name=name or os.path.basename(os.path.normpath(workdir)),
                  config=config, preset=preset_of(config), records=records, scores=scores,
                  test=tests[-1] if tests else {},
                  eval_table=_read_json(os.path.join(workdir, 'eval_table.json')),
                  robustness=_read_json(os.path.join(workdir, 'robustness.json')))


def read_runs(workdirs: list[str]) -> list[RunFiles]:
  """Every --workdir, each named by its folder (made unique by a number when two share
  one)."""
  runs, seen = [], {}
  for w in workdirs:
    base = os.path.basename(os.path.normpath(w))
    seen[base] = seen.get(base, 0) + 1
    runs.append(read_run(w, base if seen[base] == 1 else f'{base}-{seen[base]}'))
  return runs
