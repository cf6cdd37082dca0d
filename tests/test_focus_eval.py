"""FoCus's evaluation model: the 40x40 map at 320 px, one run per map source, the table."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from configs import focus_eval
from fjax.models import focus_eval as model_lib
from tests.conftest import run_cli


def test_b4_fpn_gives_a_40x40_map_at_320():
  model = model_lib.build(focus_eval.get_config())
  x = jax.ShapeDtypeStruct((2, 320, 320, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
  assert out['map_logits'].shape == (2, 40, 40) and out['logits'].shape == (2, 2)


def test_runs_per_map_source_and_the_comparison_table(data_dir, straight_run, tmp_path):
  # Table I's rows: trained on FoCus's maps (the fault matrix's run, conftest) and on none.
  dirs = [straight_run('focus_eval_on_focus_maps'), str(tmp_path / 'none')]
  run_cli('fjax.main', '--config=configs/focus_eval.py:test,maps=none', f'--workdir={dirs[1]}',
          data_dir=data_dir)
  table = run_cli('fjax.compare_maps', *dirs).stdout.splitlines()
  assert table[0].split() == ['map', 'source', 'AUC', 'ACC', 'EER']
  assert [line.split()[0] for line in table[1:]] == ['focus', 'none']
