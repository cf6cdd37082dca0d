"""How FoCus's Complementary Learning mask reads at test time (issue 28): per checkpoint of
a FoCus run, on one split, the RGB share of the mask and the localisation of each map.

  python -m fjax.focus_cl --workdir=FOCUS_RUN [--split=test] [--draws=8] [--steps=300,600]

Readings of Algorithm 1 at test time (the paper's pseudo-code samples the Gumbel noise
unconditionally; fjax's model takes the argmax without noise at evaluation):
  argmax    the noiseless argmax (the model's `cl_mask`, `a_fus`);
  sampled   one Gumbel draw per image, as at training (`--draws` draws, figures averaged);
  expected  the map averaged over the noise: P(RGB kept) a_rgb + (1 - P) a_aux, with P in
            closed form (focus.keep_probability; the mean of the draws checks it).
Per reading: `rgb_share` (mean over positions of the fakes and reals of the split) and the
fused map's `pixel_auc_fakes` and IoU at 0.5 on the fakes (maps bilinearly resized to the
mask); also each branch's CAR map (a_rgb, a_aux) and the detection AUC of y_fus under
the argmax and the sampled mask. Prints one JSON object per checkpoint.
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags, logging

from fjax.models import losses
from fjax.trainer import metrics
from fjax.util import cli
from fjax.util.errors import UserError, fail


class _Maps:
  """Pixel histograms over the fakes' pixels, one per named map."""

  def __init__(self):
    self.hist = {}

  def add(self, name, maps, masks, fakes):
    h = metrics.pixel_histogram(maps[fakes], masks[fakes])
    self.hist[name] = self.hist.get(name, 0) + h

  def report(self):
    out = {}
    for name, h in self.hist.items():
      out[f'pixel_auc_fakes_{name}'] = metrics.pixel_auc(h)['pixel_auc']
      out[f'iou_{name}'] = metrics.pixel_metrics(metrics.confusion_from_histogram(h))['iou']
    return out


def measure(config, forward, split: str, draws: int, batch_size: int = 32) -> dict:
  """The figures of the module docstring for one restored checkpoint (`forward`:
  inference.load_run's function: its model and variables)."""
  from fjax.data import loaders  # pylint: disable=g-import-not-at-top
  model, variables = forward.model, forward.variables

  @jax.jit
  def run(images, mask_shape_like, key):
    plain = model.apply(variables, images, train=False)
    size = mask_shape_like.shape[1:]
    up = lambda m: losses.resize_map(m.astype(jnp.float32), size)
    p = plain['cl_p_rgb']
    out = {'score': jax.nn.softmax(plain['y_fus'], -1)[:, 1], 'share_argmax': plain['cl_mask'],
           'share_expected': p, 'a_rgb': up(plain['a_rgb']), 'a_aux': up(plain['a_aux']),
           'a_fus_argmax': up(plain['a_fus']),
           'a_fus_expected': up(p * plain['a_rgb'] + (1 - p) * plain['a_aux'])}
    def draw(k):
      noisy = model.apply(variables, images, train=True, rngs={'gumbel': k})
      return (jax.nn.softmax(noisy['y_fus'], -1)[:, 1], noisy['cl_mask'], up(noisy['a_fus']))
    s, m, a = jax.lax.map(draw, jax.random.split(key, draws))
    out.update(score_sampled=s, share_sampled=m.mean(0), a_fus_sampled=a,
               a_fus_draw_mean=a.mean(0))
    return out

  maps, shares, scores, labels = _Maps(), {}, {'argmax': [], 'sampled': []}, []
  key = jax.random.key(0)
  for batch in loaders.eval_batches(config, split, batch_size)[2]:
    key, sub = jax.random.split(key)
    out = jax.device_get(run(batch['image'], batch['mask'], sub))
    keep = np.asarray(batch['valid']) > 0
    fakes = (np.asarray(batch['label']) > 0) & keep
    masks = np.asarray(batch['mask']) > 0.5
    labels.append(np.asarray(batch['label'])[keep])
    scores['argmax'].append(out['score'][keep])
    scores['sampled'].append(out['score_sampled'][:, keep])
    for r in ('argmax', 'sampled', 'expected'):
      shares.setdefault(r, []).append(out[f'share_{r}'][keep].mean((1, 2)))
    for name in ('a_rgb', 'a_aux', 'a_fus_argmax', 'a_fus_expected', 'a_fus_draw_mean'):
      maps.add(name, out[name], masks, fakes)
    for k in range(draws):
      maps.add('a_fus_sampled', out['a_fus_sampled'][k], masks, fakes)
  labels = np.concatenate(labels)
  res = {f'rgb_share_{r}': float(np.concatenate(v).mean()) for r, v in shares.items()}
  res['auc_argmax'] = metrics.auc(labels, np.concatenate(scores['argmax']))
  sampled = np.concatenate(scores['sampled'], 1)
  res['auc_sampled'] = float(np.mean([metrics.auc(labels, s) for s in sampled]))
  res.update(maps.report())
  return res


def _steps(workdir: str) -> list[int]:
  from fjax.trainer import checkpoint  # pylint: disable=g-import-not-at-top
  return sorted(checkpoint.manager(workdir, read_only=True).all_steps())


def main(argv):
  cli.reject_arguments(argv, 'python -m fjax.focus_cl --workdir=FOCUS_RUN')
  args = flags.FLAGS
  logging.set_verbosity(logging.ERROR)
  from fjax import inference  # pylint: disable=g-import-not-at-top
  try:
    if args.draws < 1:
      raise UserError(f'--draws must be at least 1, not {args.draws}')
    steps = [int(s) for s in args.steps.split(',')] if args.steps else _steps(args.workdir)
    for step in steps:
      config, forward = inference.load_run(args.workdir, step)
      if config.model.name != 'focus' or not config.model.cl:
        raise UserError(f'{args.workdir} holds no FoCus run with Complementary Learning')
      config.dataset.update(holdout='', methods=(), frames_test=0, single_subject=())
      config.input.workers = 0
      print(json.dumps({'step': step, **measure(config, forward, args.split, args.draws)}),
            flush=True)
  except UserError as e:
    fail(str(e))


def entry():
  flags.DEFINE_string('workdir', None, 'A trained FoCus run.', required=True)
  flags.DEFINE_string('split', 'test', 'The split to measure on.')
  flags.DEFINE_integer('draws', 8, 'Gumbel draws per image for the sampled reading.')
  flags.DEFINE_string('steps', '', 'Checkpoint steps, comma-separated (default: every '
                      'one kept).')
  cli.run(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
