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
