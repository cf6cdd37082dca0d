"""Tables I-II of FoCus: the test metrics of evaluation-model runs, one per map source.

  python -m fjax.compare_maps runs/eval_focus runs/eval_ssim ...
  fjax-compare-maps runs/eval_*      (installed: the same command)

Reads each workdir's config.json (its dataset.mask_source) and the last test row of its
metrics.jsonl; prints one line per run: map source, AUC, ACC, EER.
"""
from __future__ import annotations

import json
import os

from fjax.util import cli, files
from fjax.util.errors import UserError, fail


def row(workdir: str) -> dict:
  try:
    config = json.loads(files.read_text(os.path.join(workdir, 'config.json')))
    lines = files.read_text(os.path.join(workdir, 'metrics.jsonl')).splitlines()
    tests = [r for r in map(json.loads, lines) if r.get('split') == 'test']
  except (OSError, ValueError) as e:
    raise UserError(f'{workdir}: not a finished fjax run ({e})') from e
  if not tests:
    raise UserError(f'{workdir}: no test evaluation in metrics.jsonl')
  source = 'none' if config['model'].get('no_map') else config['dataset']['mask_source']
  return {'map': source, **{k: tests[-1][k] for k in ('auc', 'acc', 'eer')}}


def main(argv):
  dirs = argv[1:]  # the workdirs: positional arguments (no flags)
  if not dirs:
    fail('usage: python -m fjax.compare_maps WORKDIR...')
  try:
    rows = [row(d) for d in dirs]
  except UserError as e:
    fail(str(e))
  print(f'{"map source":<12} {"AUC":>7} {"ACC":>7} {"EER":>7}')
  for r in rows:
    print(f'{r["map"]:<12} {r["auc"]:>7.4f} {r["acc"]:>7.4f} {r["eer"]:>7.4f}')


def entry():
  """`python -m fjax.compare_maps` and the `fjax-compare-maps` console script
  (fjax.util.cli)."""
  cli.run(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
