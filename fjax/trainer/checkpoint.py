"""Orbax checkpoints of the train state and the grain iterator, in `workdir/checkpoints`.

Keeps the last `keep_checkpoints` steps and the best one by `config.best_metric` (its
validation metrics are written with each checkpoint, so the best is known after a resume,
and `test_checkpoint=best` tests it). Orbax writes each step to a temporary directory and
renames it when complete, so a run killed at any moment leaves only whole checkpoints;
restarting resumes from the newest of them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from fjax.data import sources
from fjax.trainer import sharding
from fjax.util import errors, files
from fjax.util.errors import UserError

LOWER_IS_BETTER = ('eer', 'loss')


def _ranking(metric: str):
  """metrics -> a key, higher is better: the value (negated for eer/loss), then the
  earlier step on a tie, so that only a strict improvement makes a new best (as the
  authors' `if AUC > Best_AUC: save`); a checkpoint saved without `metric` ranks last."""
  sign = -1.0 if any(metric.endswith(m) for m in LOWER_IS_BETTER) else 1.0
  return lambda metrics: (sign * float(metrics.get(metric, -sign * np.inf)),
                          -float(metrics.get('step', 0)))


def manager(workdir: str, config=None, read_only: bool = False) -> ocp.CheckpointManager:
  policies, best_fn = [], None
  if config is not None:
    best_fn = _ranking(config.best_metric)
    policies = [cm.LatestN(n=config.keep_checkpoints),
                cm.BestN(get_metric_fn=best_fn, n=1, keep_checkpoints_without_metrics=False)]
  # best_fn makes Orbax write each step's metrics (`<step>/metrics`): the best checkpoint
  # is then known after a resume and to --mode=eval (`best_step`).
  options = ocp.CheckpointManagerOptions(
      preservation_policy=cm.AnyPreservationPolicy(policies) if policies else None,
      best_fn=best_fn, best_mode='max',
      create=not read_only, read_only=read_only, cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(os.path.join(files.absolute(workdir), 'checkpoints'),
                               options=options,
                               item_handlers={'state': ocp.StandardCheckpointHandler(),
                                              'data': grain.checkpoint.CheckpointHandler()})


def save(mgr: ocp.CheckpointManager, step: int, state, loader_iter=None, metrics=None):
  args = {'state': ocp.args.StandardSave(state)}
  if loader_iter is not None:
    args['data'] = grain.checkpoint.CheckpointSave(loader_iter)
  metrics = {k: float(v) for k, v in (metrics or {}).items()}
  mgr.save(step, args=ocp.args.Composite(**args),
           metrics={**metrics, 'step': float(step)} if metrics else None, force=True)


TEST_CHECKPOINTS = ('latest', 'best')


def check_test_checkpoint(config) -> None:
  if config.test_checkpoint not in TEST_CHECKPOINTS:
    raise UserError(f'test_checkpoint={config.test_checkpoint!r}: use latest or best')


def best_step(mgr: ocp.CheckpointManager, metric: str) -> int | None:
  """The kept step with the best validation `metric` (the earlier one on a tie), or None
  when no kept checkpoint was saved with it."""
  rank, best = _ranking(metric), None
  for step in mgr.all_steps():
    try:
      saved = mgr.metrics(step)
    except Exception:  # pylint: disable=broad-except
      saved = None  # unreadable metrics: not a candidate
    if not saved or not np.isfinite(float(saved.get(metric, np.nan))):
      continue
    saved = {**saved, 'step': step}
    if best is None or rank(saved) > best[0]:
      best = (rank(saved), step)
  return None if best is None else best[1]


def test_step(mgr: ocp.CheckpointManager, config) -> int | None:
  """The step that evaluation and predict use: the newest, or with
  `test_checkpoint=best` the best by `best_metric` on the validation split (the newest,
  with a warning line, when no kept checkpoint holds that metric)."""
  check_test_checkpoint(config)
  latest = mgr.latest_step()
  if config.test_checkpoint == 'latest' or latest is None:
    return latest
  best = best_step(mgr, config.best_metric)
  if best is None:
    if jax.process_index() == 0:
      print(f'warning: no kept checkpoint in {mgr.directory} holds a validation '
            f'{config.best_metric}; using the newest (step {latest})', file=sys.stderr,
            flush=True)
    return latest
  return best


class CorruptCheckpoint(UserError):
  """A checkpoint that cannot be read (truncated or missing files); training falls back
  to the previous one."""


def restore(mgr: ocp.CheckpointManager, abstract_state, loader_iter=None, step=None):
  """Restores (state, step) into the given abstract state, and the data iterator's
  position into `loader_iter`; a clear error otherwise. The iterator's saved state is
  checked against this run's loader first (data set, filters, sampler, workers,
  processes), so a mismatch is named rather than reported as a corrupt checkpoint."""
  step = mgr.latest_step() if step is None else step
  where = os.path.join(str(mgr.directory), str(step))
  with _quiet_reads(where):
    _check_shapes(mgr, step, abstract_state, where)
    data = None if loader_iter is None else _data_state(where, loader_iter)
    restored = mgr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    if data is not None:
      loader_iter.set_state(data)
  return restored['state'], step


def _data_state(where: str, loader_iter) -> bytes:
  """This process's saved iterator state, checked against `loader_iter`'s loader."""
  directory = os.path.join(where, 'data')
  count = jax.process_count()
  path = os.path.join(directory, f'process_{jax.process_index()}-of-{count}.json')
  if not files.isfile(path):
    written = {int(f.split('-of-')[1].split('.')[0]) for f in
               (files.listdir(directory) if files.isdir(directory) else [])
               if f.startswith('process_') and '-of-' in f}
    if written and count not in written:
      raise UserError(f'checkpoint {where} was written by {min(written)} process(es), this '
                      f'run has {count}: resume with {min(written)} (each process saved its '
                      'own position in the data), or use another --workdir')
    raise CorruptCheckpoint(f'checkpoint {where} is corrupt or incomplete (no '
                            f'{os.path.basename(path)})')
  saved = json.loads(files.read_text(path))
  now = json.loads(loader_iter.get_state())
  if saved['data_source'] != now['data_source']:
    if saved['data_source'].startswith(sources.Source.PREFIX):
      raise UserError(f'checkpoint {where} was trained on other data '
                      f'({_source_difference(saved["data_source"], now["data_source"])}): '
                      'resume with the data options of the run that wrote it, or use '
                      'another --workdir')
    # Written before fjax described its sources (the repr then held an object address):
    # accepted when the sampler below agrees (same example count, seed and sharding).
    saved['data_source'] = now['data_source']
  if saved['sampler'] != now['sampler']:
    a, b = (dict(re.findall(r'(\w+)=([^,()]+)', r)) for r in (saved['sampler'], now['sampler']))
    diff = '; '.join(f'{k}: {a.get(k)} there, {b.get(k)} here'
                     for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
    raise UserError(f'checkpoint {where} was trained with another data order ({diff}): '
                    'resume with the config of the run that wrote it (seed, processes)')
  if saved['worker_count'] != now['worker_count']:
    raise UserError(f'checkpoint {where} was written with input.workers='
                    f'{saved["worker_count"]}, this run has {now["worker_count"]}: resume '
                    f'with --config.input.workers={saved["worker_count"]} (the data order '
                    'depends on it)')
  return json.dumps(saved).encode()


def _source_difference(saved: str, now: str) -> str:
  prefix = len(sources.Source.PREFIX)
  a, b = json.loads(saved[prefix:]), json.loads(now[prefix:])
  return '; '.join(f'{k}: {a.get(k)} there, {b.get(k)} here'
                   for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def set_aside(mgr: ocp.CheckpointManager, step: int) -> str:
  """Renames an unreadable checkpoint to `<step>.corrupt[-n]` (kept for inspection, out
  of Orbax's sight); process 0 renames, every process waits for it."""
  src = os.path.join(str(mgr.directory), str(step))
  dst, n = f'{src}.corrupt', 1
  while files.exists(dst):
    dst, n = f'{src}.corrupt-{n}', n + 1
  if jax.process_index() == 0:
    files.rename(src, dst)
  sharding.barrier('set_aside')
  return dst


@contextlib.contextmanager
def _quiet_reads(where: str):
  """Orbax's reader threads print tracebacks when a read fails, sometimes after the
  failure reached us: fd 2 points at /dev/null while reading, and stays there when the
  read fails (`fjax.util.errors.fail` writes to the saved real stderr; a run that goes on
  calls `speak_again`)."""
  errors.REAL_STDERR = errors.REAL_STDERR if errors.REAL_STDERR is not None else os.dup(2)
  saved = os.dup(2)
  os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
  try:
    yield
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise CorruptCheckpoint(f'checkpoint {where} is corrupt or incomplete '
                            f'({type(e).__name__}: {str(e).splitlines()[0][:200]})') from e
  os.dup2(saved, 2)
  os.close(saved)


def speak_again() -> None:
  """fd 2 back on the real stderr after a failed read that the run survives."""
  if errors.REAL_STDERR is not None:
    os.dup2(errors.REAL_STDERR, 2)


def _check_shapes(mgr, step, abstract_state, where):
  meta = mgr.item_metadata(step)['state']
  if meta is None:
    raise CorruptCheckpoint(f'checkpoint {where} is corrupt or incomplete (no state metadata)')
  want = _shapes(abstract_state)
  have = _shapes(meta)
  if want != have:
    missing = sorted(set(want) - set(have))[:2]
    wrong = [k for k in want if k in have and want[k] != have[k]][:2]
    detail = (f'missing {missing}' if missing else
              f'{wrong[0]} is {have[wrong[0]]} there, {want[wrong[0]]} here' if wrong else
              f'unexpected {sorted(set(have) - set(want))[:2]}')
    raise UserError(f'checkpoint {where} holds another model or shape ({detail}); '
                    'use another --workdir')


def _shapes(tree) -> dict:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {sharding.path_name(p): tuple(getattr(x, 'shape', ())) for p, x in flat}


def check_workdir_model(workdir: str, config) -> None:
  """Refuses a workdir whose saved config names another model."""
  path = os.path.join(workdir, 'config.json')
  if not files.exists(path):
    return
  try:
    saved = json.loads(files.read_text(path))['model']['name']
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f'{path} is not a config written by fjax') from e
  if saved != config.model.name:
    raise UserError(f'workdir {workdir} holds a {saved!r} run, not {config.model.name!r}; '
                    'use another --workdir')


def load_pretrained(path: str) -> dict:
  """{'params': ..., ...} from an Orbax checkpoint written by `fjax.weights` or a workdir
  (its newest train state). Arrays come back as NumPy."""
  path = files.absolute(path)
  if files.isdir(os.path.join(path, 'checkpoints')):
    mgr = manager(path, read_only=True)
    if mgr.latest_step() is None:
      raise UserError(f'init_from {path}: the workdir holds no checkpoint')
    with _quiet_reads(path):
      tree = mgr.restore(mgr.latest_step(), args=ocp.args.Composite(
          state=ocp.args.StandardRestore()))['state']
  elif files.isdir(path):
    with _quiet_reads(path):
      tree = ocp.StandardCheckpointer().restore(path)
  else:
    raise UserError(f'init_from {path}: no such checkpoint directory')
  return {k: v for k, v in tree.items() if k in ('params', 'model_state')}


def nest_pretrained(loaded: dict, init_into: str) -> dict:
  """Places converted backbone weights under the model's module name(s): with
  `init_into='rgb_vit,aux_vit'` both branches start from the same weights ('' = as saved)."""
  if not init_into:
    return loaded
  modules = [m.strip() for m in init_into.split(',') if m.strip()]
  nest = lambda tree: {m: tree for m in modules}
  return {'params': nest(loaded.get('params', {})),
          'model_state': {col: nest(tree) for col, tree in loaded.get('model_state', {}).items()}}


def merge_pretrained(target: dict, loaded: dict, label: str) -> tuple[dict, dict]:
  """Copies every leaf of `loaded` whose path exists in `target` (shapes must agree).
  Returns (merged, report): report['loaded'] counts the copied arrays, 'dropped' lists
  the loaded paths the model lacks, 'uninitialised' the model's paths inside the
  top-level modules `loaded` fills that it does not hold, 'fresh' the top-level modules
  it does not touch (left at their initialisation by design: init_into / init_only)."""
  flat_loaded = {_slash(p): v for p, v in jax.tree_util.tree_flatten_with_path(loaded)[0]}
  flat_target = [_slash(p) for p, _ in jax.tree_util.tree_flatten_with_path(target)[0]]
  filled = {_module(k) for k in flat_loaded}
  count = 0

  def pick(path, leaf):
    nonlocal count
    key = _slash(path)
    if key not in flat_loaded:
      return leaf
    value = np.asarray(flat_loaded[key])
    if value.shape != leaf.shape:
      raise UserError(f'init_from {label}: {key} has shape {value.shape}, '
                      f'the model wants {leaf.shape}')
    count += 1
    return value.astype(leaf.dtype)
  merged = jax.tree_util.tree_map_with_path(pick, target)
  if count == 0:
    raise UserError(f'init_from {label}: no parameter path matches this model')
  report = {'loaded': count, 'dropped': sorted(set(flat_loaded) - set(flat_target)),
            'uninitialised': [k for k in flat_target
                              if k not in flat_loaded and _module(k) in filled],
            'fresh': sorted({_module(k) for k in flat_target} - filled)}
  return merged, report


def init_report(label: str, report: dict, strict: bool) -> list[str]:
  """The lines `init_from` prints: arrays loaded, dropped (in the checkpoint, not in the
  model), left uninitialised inside the modules it fills, modules it leaves fresh.
  `strict` (config.init_strict): a dropped or uninitialised array is one UserError."""
  dropped, missing = report['dropped'], report['uninitialised']
  if strict and (dropped or missing):
    raise UserError(f'init_from {label} with init_strict=True: {len(dropped)} arrays '
                    f'dropped ({_few(dropped)}), {len(missing)} left uninitialised '
                    f'({_few(missing)})')
  lines = [f'init_from {label}: {report["loaded"]} arrays loaded']
  if dropped:
    lines.append(f'init_from {label}: {len(dropped)} arrays dropped (the model has no '
                 f'such array): {_few(dropped)}')
  if missing:
    lines.append(f'init_from {label}: {len(missing)} arrays of the modules it fills left '
                 f'at their initialisation: {_few(missing)}')
  if report['fresh']:
    lines.append(f'init_from {label}: modules left at their initialisation (not in '
                 f'init_from / init_only): {", ".join(report["fresh"])}')
  return lines


def _slash(path) -> str:
  """A pytree path as 'params/backbone/conv1/kernel'."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'idx', k))) for k in path)


def _module(key: str) -> str:
  """The top-level module of a slash path: params/<module>/..., model_state/<col>/<module>/..."""
  parts = key.split('/')
  return parts[2] if parts[0] == 'model_state' and len(parts) > 2 else parts[1]


def _few(keys, n: int = 6) -> str:
  """Up to n paths in full; more as counts per module (the path's first two names after
  its collection: 'backbone/block12 (20)')."""
  if len(keys) <= n:
    return ', '.join(keys) or 'none'
  groups: dict[str, int] = {}
  for k in keys:
    parts = k.split('/')
    name = '/'.join(parts[2:4] if parts[0] == 'model_state' else parts[1:3])
    groups[name] = groups.get(name, 0) + 1
  return ', '.join(f'{g} ({c})' for g, c in sorted(groups.items()))
