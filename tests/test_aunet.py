"""AUNet: the ART encoder's equations, feature-level mixing, token labels, the tampered
pairs of the input pipeline, ablations and a few training steps."""
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import aunet as aunet_config
from configs import common
from fjax.data import examples, labels, loaders
from fjax.models import aunet
from fjax.util.errors import UserError
from tests.conftest import run_steps


def _config():
  c = aunet_config.get_config('test')
  c.input.image_size = 32  # block11 at 2 x 2: seconds per compile
  c.model.width, c.model.heads = 32, 4
  return c


def _np_mixing(fr, ff, m, lam):
  """Eqs. 10-17 with explicit loops over examples and channels."""
  out = ff.copy()
  eps = aunet.EPS
  for b in range(fr.shape[0]):
    mb = m[b, ..., 0]
    area = mb.sum()
    for c in range(fr.shape[-1]):
      stats = []
      for f in (fr[b, ..., c], ff[b, ..., c]):
        mu = (f * mb).sum() / area
        sigma = np.sqrt(((f - mu) ** 2 * mb).sum() / area + eps)
        stats.append((mu, sigma, (f - mu) * mb / sigma))
      (mu_r, s_r, n_r), (mu_f, s_f, n_f) = stats
      l1, l2, l3 = lam[:, b]
      mu_s, s_s = l1 * mu_f + (1 - l1) * mu_r, l2 * s_f + (1 - l2) * s_r
      n_s = l3 * n_f + (1 - l3) * n_r
      out[b, ..., c] = ff[b, ..., c] * (1 - mb) + s_s * n_s + mu_s * mb
  return out


def test_feature_mixing_equals_equations_and_keeps_the_rest():
  rng = np.random.default_rng(0)
  fr, ff = (rng.normal(size=(2, 2, 5, 4, 3)) * [1, 3, 0.5] + [0, 2, -1]).astype(np.float32)
  m = np.zeros((2, 5, 4, 1))
  m[0, 1:4, 1:3], m[1, 0:2, :] = 1.0, 0.7  # a hard and a soft mask
  lam = rng.uniform(size=(3, 2))
  got = np.asarray(aunet.feature_mixing(jnp.array(fr), jnp.array(ff), jnp.array(m), jnp.array(lam)))
  np.testing.assert_allclose(got, _np_mixing(fr, ff, m, lam), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(got[0][m[0, ..., 0] == 0], ff[0][m[0, ..., 0] == 0])
  assert not np.allclose(got[0][m[0, ..., 0] == 1], ff[0][m[0, ..., 0] == 1])
  # lambda = 1 everywhere: the fake features come back unchanged.
  same = aunet.feature_mixing(jnp.array(fr), jnp.array(ff), jnp.array(m), jnp.ones((3, 2)))
  np.testing.assert_allclose(np.asarray(same), ff, rtol=1e-5, atol=1e-5)


def test_mixer_touches_only_the_fakes_at_the_drawn_layer():
  rng = np.random.default_rng(1)
  x = jnp.array(rng.normal(size=(6, 4, 4, 8)), jnp.float32)  # 3 pairs, interleaved
  mask = np.zeros((3, 16, 16), np.float32)
  mask[:, 4:12, 4:12] = 1.0
  lam = jnp.array(rng.uniform(size=(3, 3)), jnp.float32)
  between = jax.jit(aunet.mixer(jnp.array(mask), jnp.int32(5), lam), static_argnums=0)
  np.testing.assert_array_equal(np.asarray(between(4, x)), np.asarray(x))
  out = np.asarray(between(5, x))
  np.testing.assert_array_equal(out[0::2], np.asarray(x)[0::2])  # real features unchanged
  outside = np.asarray(aunet.losses.resize_map(jnp.array(mask), (4, 4))) == 0
  np.testing.assert_array_equal(out[1::2][outside], np.asarray(x)[1::2][outside])
  assert not np.allclose(out[1::2], np.asarray(x)[1::2])


def test_au_embedding_equals_a_conv_then_global_mean():
  rng = np.random.default_rng(2)
  f = jnp.array(rng.normal(size=(2, 5, 6, 4)), jnp.float32)
  m_au = jnp.array(rng.uniform(size=(2, 5, 6, 3)), jnp.float32)
  module = aunet.AUEmbedding(7)
  params = module.init(jax.random.key(0), f, m_au)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
  e = np.asarray(module.apply(params, f, m_au))
  conv = nn.Conv(7, (3, 3), padding='SAME')
  for k in range(3):
    x = f * m_au[..., k:k + 1] + f  # eq. 2's input
    ref = conv.apply({'params': params['params']}, x).mean((1, 2))
    np.testing.assert_allclose(e[:, k], np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_important_region_follows_eqs_3_to_5():
  rng = np.random.default_rng(3)
  e = rng.normal(size=(2, 4, 5))
  m_au = rng.uniform(size=(2, 3, 3, 4))
  got = np.asarray(aunet.important_region(jnp.array(e), jnp.array(m_au)))
  for b in range(2):
    a = np.array([[e[b, i] @ e[b, j] for j in range(4)] for i in range(4)])
    w = a.sum(1) / a.sum()
    for y, x in itertools.product(range(3), range(3)):
      assert abs(got[b, y, x, 0] - max(w[k] * m_au[b, y, x, k] for k in range(4))) < 1e-5


def test_token_labels_match_the_downsampled_mask():
  rng = np.random.default_rng(4)
  mask = rng.uniform(size=(2, 12, 12)).astype(np.float32) ** 2
  got = np.asarray(aunet.token_labels(jnp.array(mask), (3, 3)))
  for b, i, j in itertools.product(range(2), range(3), range(3)):
    assert got[b, i, j] == int(mask[b, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean() > 0.5)
  assert aunet.token_labels(jnp.array(mask), (5, 5)).shape == (2, 5, 5)  # not dividing


def test_pipeline_makes_real_and_tampered_pairs(data_dir):
  config = _config()
  config.dataset.data_dir = data_dir
  source = loaders.train_source(config)
  example = source[0]
  config.input.image_size = example['image'].shape[0]  # no resize: exact pixel checks
  config.input.photometric = False
  pair = examples.prepare(example, examples.Recipe.of(config), np.random.default_rng(0))
  size = config.input.image_size
  assert pair['image'].shape == (2, size, size, 3)
  assert pair['au_maps'].shape == (2, size, size, 15)
  assert 0 <= pair['au_maps'].min() and pair['au_maps'].max() <= 1 + 1e-6
  # Made once from the landmarks the two share (no crop here; the flip is random).
  ref = labels.au_maps(example['landmarks'], size)
  assert any(np.array_equal(pair['au_maps'][1], r) for r in (ref, ref[:, ::-1]))
  np.testing.assert_array_equal(pair['au_maps'][0], pair['au_maps'][1])
  np.testing.assert_array_equal(pair['label'], [0, 1])
  real_mask, fake_mask = pair['mask']
  assert real_mask.max() == 0 and 0 <= fake_mask.min() and fake_mask.max() <= 1
  assert (fake_mask > 0.5).mean() > 0.05
  real, fake = pair['image']
  np.testing.assert_array_equal(real[fake_mask == 0], fake[fake_mask == 0])
  assert np.abs(real - fake)[fake_mask > 0.5].mean() > 0.01
  # The partial mask lies inside the face hull and misses part of it (AU regions removed).
  full = _config(); full.input.tamper.partial = False
  full.dataset.data_dir, full.input.image_size = data_dir, size
  hull = examples.prepare(example, examples.Recipe.of(full), np.random.default_rng(0))['mask'][1]
  assert (fake_mask > 0.5).sum() < (hull > 0.5).sum()


def test_paper_preset_trains_with_sbi_augmentation(data_dir):
  assert aunet_config.get_config('paper').input.tamper.sbi_augment
  assert not aunet_config.get_config('demo').input.tamper.sbi_augment
  config = _config()
  config.dataset.data_dir = data_dir
  config.input.tamper.sbi_augment = True
  source = loaders.train_source(config)
  example = source[0]
  config.input.image_size = example['image'].shape[0]
  recipe = examples.Recipe.of(config)
  pairs = [examples.prepare(example, recipe, np.random.default_rng(s)) for s in range(8)]
  again = examples.prepare(example, recipe, np.random.default_rng(3))
  for key in pairs[3]:  # resume-exact: the same generator gives the same pair
    np.testing.assert_array_equal(pairs[3][key], again[key])
  changed_real = 0
  for pair in pairs:
    np.testing.assert_array_equal(pair['label'], [0, 1])
    real, fake = pair['image']
    inside = pair['mask'][1] > 0.5
    assert np.abs(real - fake)[inside].mean() > 0.01
    changed_real += not np.allclose(real, examples.prepare(example, recipe, None)['image'],
                                    atol=1e-6)
  assert changed_real >= 4  # target alteration and training transforms reach the real
  # SBI's training transforms replace the photometric jitter; they need the pairs.
  config.input.photometric = True
  with pytest.raises(UserError, match='photometric'):
    examples.check_train_options(config)
  config.input.photometric, config.input.tamper.pairs = False, False
  with pytest.raises(UserError, match='tamper.pairs'):
    examples.check_train_options(config)


# Table 4's switches, two or three to a row to keep the suite short (each row compiles one
# step); the switches of a row are independent: one of the model with one of the
# tampering, and the "Backbone" row (`model.encoders=0`: Xception and the two heads, no AU
# maps, no attention loss) with feature mixing and token supervision off.
ABLATIONS = {
    'no_au_specific,face_mask': (('model.au_specific', False), ('input.tamper.partial', False)),
    'no_au_agnostic,no_image_tampering': (('model.au_agnostic', False),
                                          ('input.tamper.image', False)),
    'backbone,no_feature_mixing,no_token_supervision': (
        ('model.encoders', 0), ('model.mixing', False), ('model.token_weight', 0.0)),
}


@pytest.mark.parametrize('ablation', ABLATIONS)
def test_ablations_train_a_step(ablation, data_dir):
  config = _config()
  config.model.encoders = 1  # one ART encoder: each switch compiles in seconds
  for key, value in ABLATIONS[ablation]:
    common._set(config, key, value)  # pylint: disable=protected-access
  *_, st, _, values = run_steps(config, data_dir, 1)
  assert np.isfinite(values[0]['loss'])
  if 'no_au_specific' in ablation or 'backbone' in ablation:
    assert values[0]['loss_att'] == 0
  if 'backbone' in ablation:
    assert not any('encoder' in k for k in st['params'])


def test_steps_lower_every_loss_term(data_dir):
  config = _config()
  config.optimizer.update(name='adam', lr=3e-4)
  model_lib, model, _, st, batch, values = run_steps(config, data_dir, 15)
  for term in ('loss_cls', 'loss_token', 'loss_att'):
    first, last = values[0][term], min(v[term] for v in values[-3:])
    assert last < 0.9 * first, (term, first, last)
  # Evaluation batches (no pairs) give scores in [0, 1] and a token-grid map.
  out = model.apply({'params': st['params'], **st['model_state']}, batch['image'][:, 0])
  assert out['tokens'].shape[1:] == (2, 2, 2)
  s = np.asarray(model_lib.score(out))
  assert s.shape == (4,) and ((0 <= s) & (s <= 1)).all()
