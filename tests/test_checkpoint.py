"""Keep the last K checkpoints and the best one (kill -9 / SIGTERM resumes: test_faults.py)."""
import json
import os

from conftest import TEST_CONFIG, read_metrics, run_cli


def test_keeps_last_k_and_best(data_dir, tmp_path):
  workdir = str(tmp_path / 'keep')
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}',
          '--config.total_steps=8', '--config.checkpoint_every=1', '--config.eval_every=2',
          '--config.keep_checkpoints=2', data_dir=data_dir)
  evals = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  evals = {r['step']: r['auc'] for r in evals if r['split'] == 'validation'}
  kept = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit())
  assert {7, 8} <= set(kept) and len(kept) <= 3, (kept, evals)
  assert max(evals.get(s, -1) for s in kept) == max(evals.values()), (kept, evals)


def test_best_validation_checkpoint_is_tested_and_survives_a_resume(data_dir, tmp_path):
  # miou_all_real (the all-real map's mIoU) is the same at every evaluation: a tie, and
  # only a strict improvement makes a new best (the authors' `if AUC > Best_AUC`), so
  # the best is the first evaluated step, 2, while the run goes on to 4.
  workdir = str(tmp_path / 'best')
  args = (f'--config={TEST_CONFIG}', f'--workdir={workdir}', '--config.checkpoint_every=1',
          '--config.eval_every=2', '--config.keep_checkpoints=1',
          '--config.best_metric=miou_all_real', '--config.test_checkpoint=best')
  run_cli('fjax.main', *args, '--config.total_steps=2', data_dir=data_dir)
  # The resumed run saves steps 3 and 4 and must keep 2: its metrics are on disk.
  run_cli('fjax.main', *args, '--config.total_steps=4', data_dir=data_dir)
  kept = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit())
  assert kept == [2, 4]
  tests = [r for r in read_metrics(workdir) if r['split'] == 'test']
  assert [(r['step'], r['checkpoint_step']) for r in tests] == [(2, 2), (4, 2)]
  assert tests[0]['auc'] == tests[1]['auc']  # the same state tested twice
  proc = run_cli('fjax.main', *args, '--mode=eval', data_dir=data_dir)
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result['step'] == 2 and result['auc'] == tests[1]['auc']


def test_init_from_reports_dropped_and_uninitialised_arrays_and_strict_stops():
  """DeiT-S weights into FoCus's two sin-cos branches: its learned position embedding is
  dropped (printed), an array the checkpoint lacks stays uninitialised (printed), the
  modules init_into does not name are listed as fresh; init_strict stops on one line."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  from configs import focus  # pylint: disable=g-import-not-at-top
  from fjax import registry  # pylint: disable=g-import-not-at-top
  from fjax.trainer import checkpoint  # pylint: disable=g-import-not-at-top
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  config = focus.get_config('test')
  model = registry.model_module('focus').build(config)
  shapes = jax.eval_shape(lambda x: model.init({'params': jax.random.key(0),
                                                'gumbel': jax.random.key(1)}, x),
                          jax.ShapeDtypeStruct((1, 32, 32, 3), np.float32))
  target = {'params': jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes['params']),
            'model_state': {}}
  deit = jax.tree.map(np.ones_like, dict(target['params']['rgb_vit']))
  deit['pos_embed'] = np.ones((1, 5, 32), np.float32)  # the ViT's learned embedding
  del deit['norm']  # an array the checkpoint lacks: the final norm's scale and bias
  loaded = checkpoint.nest_pretrained({'params': deit}, 'rgb_vit,aux_vit')
  merged, report = checkpoint.merge_pretrained(target, loaded, 'W')
  n = len(jax.tree.leaves(target['params']['rgb_vit']))
  assert report['loaded'] == 2 * (n - 2)
  assert report['dropped'] == ['params/aux_vit/pos_embed', 'params/rgb_vit/pos_embed']
  assert sorted(report['uninitialised']) == [
      f'params/{b}/norm/{k}' for b in ('aux_vit', 'rgb_vit') for k in ('bias', 'scale')]
  assert report['fresh'] == sorted(set(target['params']) - {'rgb_vit', 'aux_vit'})
  assert (merged['params']['aux_vit']['cls_token'] == 1).all()
  assert (merged['params']['aux_vit']['norm']['scale'] == 0).all()  # as initialised here
  lines = checkpoint.init_report('W', report, strict=False)
  assert lines[0] == f'init_from W: {2 * (n - 2)} arrays loaded'
  assert 'params/rgb_vit/pos_embed' in lines[1] and 'params/rgb_vit/norm/scale' in lines[2]
  assert 'fusion_block' in lines[3]
  with pytest.raises(UserError, match='init_strict=True: 2 arrays dropped') as e:
    checkpoint.init_report('W', report, strict=True)
  assert '\n' not in str(e.value) and '4 left uninitialised' in str(e.value)
  # A checkpoint that fills its modules exactly passes the strict check.
  del deit['pos_embed']
  deit['norm'] = jax.tree.map(np.ones_like, dict(target['params']['rgb_vit']['norm']))
  _, exact = checkpoint.merge_pretrained(
      target, checkpoint.nest_pretrained({'params': deit}, 'rgb_vit,aux_vit'), 'W')
  assert len(checkpoint.init_report('W', exact, strict=True)) == 2  # loaded + fresh modules
