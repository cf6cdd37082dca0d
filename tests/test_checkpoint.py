"""Keep the last K checkpoints and the best one (kill -9 / SIGTERM resumes: test_faults.py)."""
import json
import os

from conftest import TEST_CONFIG, run_cli


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
