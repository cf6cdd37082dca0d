"""Grad-CAM / Score-CAM (fjax.cam) against hand-computed maps and loops, the pictures
predict draws (score, titles, colour bar), and both CLIs on a real model."""
import json
import os

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import data_builders.demo_forgeries  # noqa: F401  (registers the builder)
from conftest import run_cli
from data_builders.demo_forgeries import media
from fjax import cam
from fjax.predict import pictures


class Features(nn.Module):
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    return nn.relu(nn.Conv(5, (3, 3), strides=self.stride, name='conv')(x))


class Head(nn.Module):
  @nn.compact
  def __call__(self, a):
    return nn.Dense(1, name='fc')(a.mean((1, 2)))[:, 0]


class Tiny(nn.Module):
  """conv + ReLU -> global average pool -> dense: Grad-CAM is the classic CAM / hw."""
  stride: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    return {'logit': Head(name='head')(Features(self.stride, name='features')(x))}


class TinyLib:
  score = staticmethod(lambda o: jax.nn.sigmoid(o['logit']))


FEATURES = cam.Target(('features',))


def _tiny(stride=1, size=8, batch=2, seed=0):
  x = jax.random.normal(jax.random.PRNGKey(seed + 1), (batch, size, size, 3))
  model = Tiny(stride)
  return model, model.init(jax.random.PRNGKey(seed), x), x


def test_gradcam_of_a_hand_computed_case():
  """A 1x1 identity conv on a 2x2 image with two channels, fc weights (1, -2): the
  gradient of the logit in each cell is w_k / 4, so the map is ReLU(A0 / 4 - A1 / 2)."""
  model = Tiny()
  x = jnp.array([[[4., 0.], [2., 1.]], [[0., 1.], [1., 0.]]]).transpose(1, 2, 0)[None]
  x = jnp.concatenate([x, jnp.zeros((1, 2, 2, 1))], -1)  # [1, 2, 2, 3]
  variables = model.init(jax.random.PRNGKey(0), x)
  params = jax.tree_util.tree_map(np.zeros_like, variables['params'])
  kernel = np.zeros((3, 3, 3, 5), np.float32)
  kernel[1, 1, 0, 0] = kernel[1, 1, 1, 1] = 1  # A_k = x_k (x >= 0), channels 2..4 zero
  params['features']['conv']['kernel'] = kernel
  params['head']['fc']['kernel'] = np.array([[1.], [-2.], [0.], [0.], [0.]], np.float32)
  params['head']['fc']['bias'] = np.array([0.5], np.float32)
  grid, a, grads = cam.gradcam_grid(model, {'params': params}, x, FEATURES,
                                    lambda o: o['logit'])
  np.testing.assert_allclose(grads[0, :, :, :2], [[[0.25, -0.5]] * 2] * 2)
  np.testing.assert_allclose(grid[0], [[1.0, 0.0], [0.0, 0.25]], atol=1e-6)
  np.testing.assert_allclose(cam.finish(grid, (2, 2))[0], [[1.0, 0.0], [0.0, 0.25]], atol=1e-6)


def test_gradcam_is_cam_of_the_dense_weights_and_input_targets_agree():
  model, variables, x = _tiny(stride=2, size=12)
  grid, a, _ = jax.jit(lambda v, x: cam.gradcam_grid(model, v, x, FEATURES,
                                                     lambda o: o['logit']))(variables, x)
  w = variables['params']['head']['fc']['kernel'][:, 0]
  classic = np.maximum(np.einsum('bhwk,k->bhw', a, w), 0) / (a.shape[1] * a.shape[2])
  np.testing.assert_allclose(grid, classic, rtol=1e-5, atol=1e-7)
  assert grid.shape == (2, 6, 6) and np.ptp(grid) > 0
  # The same activations reached as the head's input; the interceptor at delta = 0
  # leaves the forward pass unchanged.
  by_input = cam.gradcam_grid(model, variables, x, cam.Target(('head',), 'input'),
                              lambda o: o['logit'])[0]
  np.testing.assert_allclose(by_input, grid, rtol=1e-5, atol=1e-7)
  out, _ = cam.apply_at(model, variables, x, FEATURES, jnp.zeros_like(a))
  np.testing.assert_array_equal(out['logit'], model.apply(variables, x)['logit'])
  with pytest.raises(Exception, match='never ran'):
    cam.apply_at(model, variables, x, cam.Target(('nowhere',)))


def test_scorecam_against_a_loop_over_channels(monkeypatch):
  model, variables, x = _tiny(stride=2, size=8, batch=2, seed=0)  # weights of both signs
  prob = lambda o: jax.nn.sigmoid(o['logit'])
  # 5 channels, 2 faces, 4 images per forward: chunks of 2 channels, the last one padded.
  grid, weights = jax.jit(lambda v, x: cam.scorecam_grid(model, v, x, FEATURES, prob, 4))(
      variables, x)
  _, a = cam.apply_at(model, variables, x, FEATURES)
  a, x = np.asarray(a), np.asarray(x)
  base = float(prob(model.apply(variables, np.zeros_like(x[:1])))[0])
  expect_w = np.zeros((2, 5))
  for b in range(2):
    for k in range(5):
      up = cv2.resize(a[b, :, :, k], (8, 8), interpolation=cv2.INTER_LINEAR)
      span = up.max() - up.min()
      mask = (up - up.min()) / span if span > 0 else (up > 0).astype(np.float32)
      expect_w[b, k] = float(prob(model.apply(variables, (x[b] * mask[..., None])[None]))[0]) - base
  np.testing.assert_allclose(weights, expect_w, atol=2e-6)
  assert (expect_w < 0).any() and (expect_w > 0).any()
  expect = np.maximum(np.einsum('bhwk,bk->bhw', a, expect_w), 0)
  np.testing.assert_allclose(grid, expect, rtol=1e-4, atol=1e-7)
  # Through make(): upsampled bilinearly and divided by each face's maximum.
  monkeypatch.setitem(cam.TARGETS, 'tiny', lambda m: FEATURES)
  p, maps = jax.jit(cam.make('scorecam', 'tiny', model, TinyLib, 4))(variables, x)
  np.testing.assert_allclose(p, prob(model.apply(variables, x)), rtol=1e-6)
  up = np.stack([cv2.resize(g, (8, 8), interpolation=cv2.INTER_LINEAR) for g in expect])
  np.testing.assert_allclose(maps, up / up.max((1, 2), keepdims=True), atol=1e-4)
  assert maps.shape == (2, 8, 8) and maps.max() == 1


def test_tokens_on_their_grid():
  t = jnp.arange(2 * 10 * 4, dtype=jnp.float32).reshape(2, 10, 4)
  np.testing.assert_array_equal(cam.to_grid(t[:, 1:]), t[:, 1:].reshape(2, 3, 3, 4))
  np.testing.assert_array_equal(cam.to_grid(t), t[:, 1:].reshape(2, 3, 3, 4))  # class token
  with pytest.raises(Exception, match='square grid'):
    cam.to_grid(t[:, 3:])


def test_every_model_has_a_target_and_logit():
  from fjax import registry  # pylint: disable=g-import-not-at-top
  assert set(cam.TARGETS) == set(registry.available())
  # the softmax heads' log-odds is y_fake - y_real = logit(softmax[:, 1])
  y = jnp.array([[0.3, 1.7], [2.0, -1.0]])
  np.testing.assert_allclose(cam.LOGITS['focus']({'y_fus': y}),
                             cam.log_odds(jax.nn.softmax(y)[:, 1]), rtol=1e-5)


def _face(seed=0):
  return np.random.default_rng(seed).integers(0, 256, (256, 256, 3)).astype(np.uint8)


def test_overlay_carries_score_titles_and_an_absolute_colour_bar():
  face = _face()
  low = pictures.overlay(face, np.full((4, 4), 0.14, np.float32), 0.14)
  high = pictures.overlay(face, np.full((4, 4), 0.70, np.float32), 0.70)
  top = pictures.TOP
  assert low.shape == (top + 256, 512 + pictures.BAR_W, 3)
  np.testing.assert_array_equal(low[top:, :256], face)  # the face, untouched
  for picture, value in ((low, 0.14), (high, 0.70)):  # drawn absolute, not per face
    expected = cv2.addWeighted(face, 0.55, pictures.jet(np.full((256, 256), value)), 0.45, 0)
    np.testing.assert_array_equal(picture[top:, 256:512], expected)
  assert np.abs(low[top:, 256:512].astype(int) - high[top:, 256:512]).mean() > 20
  # the colour bar: the colour of 1 at its top, of 0 at its bottom
  x, y_top, y_bottom = pictures.bar_position(low.shape)
  np.testing.assert_array_equal(low[y_top, x], pictures.jet(np.ones((1, 1)))[0, 0])
  np.testing.assert_array_equal(low[y_bottom, x], pictures.jet(np.zeros((1, 1)))[0, 0])
  assert tuple(pictures.jet(np.ones((1, 1)))[0, 0]) == (128, 0, 0)  # JET: dark red / blue
  assert tuple(pictures.jet(np.zeros((1, 1)))[0, 0]) == (0, 0, 128)
  # the score in the header differs, so do the header pixels; the scale label differs
  assert (low[:pictures.HEADER_H] != high[:pictures.HEADER_H]).any()
  cam_picture = pictures.overlay(face, np.full((4, 4), 0.70, np.float32), 0.70, 'gradcam')
  bar = slice(512 + pictures.BAR_X + pictures.BAR_STRIPE, None)
  assert (cam_picture[top:, bar] != high[top:, bar]).any()  # 'norm. per face' vs 'probability'
  # titles over the panels: text pixels in each panel's title strip
  titles = low[pictures.HEADER_H:top]
  for k in range(2):
    assert (titles[:, k * 256:(k + 1) * 256] > 128).any()


def test_gradcam_through_predict_and_map_export(data_dir, trained_workdir, tmp_path):
  out = tmp_path / 'cam'
  run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input',
          media.insightface_image('t1.jpg'), '--output', str(out), '--cam=gradcam',
          '--batch_size=8')
  rows = [json.loads(line) for line in open(out / 'predictions.jsonl')]
  assert len(rows) == 6 and all(r['map'] == 'gradcam' for r in rows)
  picture = cv2.cvtColor(cv2.imread(str(out / rows[0]['overlay'])), cv2.COLOR_BGR2RGB)
  assert picture.shape == (pictures.TOP + 256, 512 + pictures.BAR_W, 3)
  x, y_top, y_bottom = pictures.bar_position(picture.shape)
  assert tuple(picture[y_top, x]) == (128, 0, 0) and tuple(picture[y_bottom, x]) == (0, 0, 128)
  # Xception at 32 px has a 1 x 1 exit grid: each face's map is constant (1, or 0 where
  # ReLU cut it), drawn as the colour of 1 or 0 over the face.
  face = picture[pictures.TOP:, :256]
  drawn = picture[pictures.TOP:, 256:512].astype(int)
  options = [cv2.addWeighted(face, 0.55, pictures.jet(np.full((256, 256), v)), 0.45, 0)
             for v in (0.0, 1.0)]
  assert min(np.abs(drawn - o).max() for o in options) <= 1
  # The same maps exported as a mask source (FoCus table VI's GradCAM row).
  maps = tmp_path / 'maps'
  proc = run_cli('fjax.focus_maps', f'--workdir={trained_workdir}', f'--output={maps}',
                 '--splits=test', '--map=gradcam', data_dir=data_dir)
  assert 'pixel AUC' in proc.stdout
  info = json.load(open(maps / 'info.json'))
  assert info['map'].startswith('gradcam (fjax.cam, xception_baseline at backbone output')
  from tests.test_focus_maps import assert_one_map_per_example  # pylint: disable=g-import-not-at-top
  assert_one_map_per_example(str(maps), 'test', data_dir)
