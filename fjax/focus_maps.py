"""FoCus manipulation maps as a product: a trained FoCus run's fused CAR maps for every
face of a data set, stored next to it so that any model trains with
`--config.dataset.mask_source=focus --config.dataset.focus_maps=OUT`.

  python -m fjax.focus_maps --workdir=FOCUS_RUN --output=OUT [--splits=train,validation,test]
      [--unlabeled | --map=a_rgb|a_aux]
  python -m fjax.focus_maps --workdir=ANY_RUN --output=OUT --map=gradcam|scorecam
      [--unlabeled] [--cam_batch=64]
  (installed: `fjax-focus-maps ...`, the same command)

OUT/<split>.array_record holds one PNG per example, in the split's order: a_fus (eq. 5)
bilinearly resized to the data set's crop size, zeros for real faces as the paper does;
with --unlabeled every face gets eq. 9's fake-class map (labels unknown); --map=a_rgb or
a_aux exports one branch's CAR map (eq. 4) instead, to see which branch localises.
--map=gradcam or scorecam exports a CAM of the fake logit (fjax.cam: bilinear at the input
size, normalised per face) of a run of any model, FoCus's table VI GradCAM / ScoreCAM rows:
the maps then supervise a model as FoCus's do (zeros for real faces; with --unlabeled every
face keeps its map).
OUT/info.json names the run, the data set and the grid. The command prints, per split,
how the maps of the fakes overlap the data set's own masks: pixel AUC over the fakes'
pixels (`pixel_auc_fakes`) and IoU at 0.5, next to the same figures for the real-face prior
(the mean map of the split's real faces, given to every fake): maps that beat only chance
but not their prior mark where faces are, not forgeries; and `pixel_auc_painted`, the
pooled pixel AUC (all faces) of each face's detection score painted over its pixels: what
detection alone reaches on a pooled pixel AUC (fjax.trainer.metrics).
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
from absl import flags, logging

from fjax.trainer import metrics
from fjax.util import cli
from fjax.util.errors import UserError, fail


def _png(m: np.ndarray) -> bytes:
  ok, buf = cv2.imencode('.png', np.round(np.clip(m, 0, 1) * 255).astype(np.uint8))
  if not ok:
    raise UserError('PNG encoding failed')
  return buf.tobytes()


def _levels(m: np.ndarray) -> np.ndarray:
  """The grey levels (0..255) that _png stores for a map in [0, 1]."""
  return np.round(np.clip(m, 0, 1) * 255).astype(np.int64)


def _hist_overlap(hist: np.ndarray) -> tuple[float, np.ndarray]:
  """Pixel AUC and the 2x2 confusion matrix at 0.5 (grey level >= 128) from
  [non-mask, mask] pixel counts per grey level [2, 256]."""
  cm = np.stack([hist[:, :128].sum(1), hist[:, 128:].sum(1)], 1)  # [true, predicted]
  return metrics.auc_from_counts(*hist), cm


class Overlap:
  """How the fakes' maps overlap their true masks, exact on the stored 8-bit maps and in
  constant memory: pixel counts per grey level inside and outside the masks, and per
  pixel how many fakes' masks cover it, so that the real-face prior (the mean map of the
  split's real faces, given to every fake) is scored the same way at the end. A map that
  only marks where faces usually are scores as well as its prior."""

  def __init__(self):
    self.hist, self.covered, self.fakes, self.real_sum, self.reals = 0, 0, 0, 0.0, 0
    self.painted = 0  # the painted map's histogram (metrics.painted_histogram), all faces

  def _paint(self, score: float, mask: np.ndarray):
    self.painted = self.painted + metrics.painted_histogram([score], mask[None])

  def add_fake(self, m: np.ndarray, mask: np.ndarray, score: float):
    q = _levels(m)
    self.hist = self.hist + np.stack([np.bincount(q[~mask], minlength=256),
                                      np.bincount(q[mask], minlength=256)])
    self.covered, self.fakes = self.covered + mask, self.fakes + 1
    self._paint(score, mask)

  def add_real(self, m: np.ndarray, score: float):
    self.real_sum, self.reals = self.real_sum + m, self.reals + 1
    self._paint(score, np.zeros(m.shape, bool))

  def report(self) -> dict:
    auc, cm = _hist_overlap(self.hist)
    out = {'fakes': self.fakes, 'pixel_auc_fakes': auc,
           'pixel_auc_painted': metrics.pixel_auc(self.painted)['pixel_auc'],
           'iou_at_0.5': metrics.pixel_metrics(cm)['iou'],
           'iou_all_fake': metrics.trivial_baselines(cm)['iou_all_fake']}
    if self.reals:
      q = _levels(self.real_sum / self.reals).ravel()
      w = np.stack([self.fakes - self.covered.ravel(), self.covered.ravel()])
      auc, cm = _hist_overlap(np.stack([np.bincount(q, weights=x, minlength=256) for x in w]))
      out.update(pixel_auc_real_prior=auc, iou_real_prior=metrics.pixel_metrics(cm)['iou'])
    return out


MAPS = {'a_fus': 'a_fus (eq. 5)', 'a_rgb': 'a_rgb (eq. 4)', 'a_aux': 'a_aux (eq. 4)'}


def export(workdir: str, output: str, splits: list[str], unlabeled: bool = False,
           batch_size: int = 32, map_name: str = 'a_fus', cam_batch: int = 64) -> dict:
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  from fjax import cam, inference  # pylint: disable=g-import-not-at-top
  from fjax.data import loaders, sources  # pylint: disable=g-import-not-at-top
  is_cam = map_name in cam.METHODS
  if unlabeled and map_name not in ('a_fus', *cam.METHODS):
    raise UserError('--unlabeled exports the fused fake-class map (eq. 9); leave out --map')
  config, forward = inference.load_run(workdir, cam=map_name if is_cam else None,
                                       cam_batch=cam_batch)
  if config.model.name != 'focus' and not is_cam:
    raise UserError(f'{workdir} holds a {config.model.name!r} run, not a FoCus one '
                    '(any model: --map=gradcam or scorecam)')
  if is_cam:
    target = cam.for_model(config.model.name, forward.model)[0]
    description = (f'{map_name} (fjax.cam, {config.model.name} at {target.describe()}, '
                   'normalised per face)')
  else:
    description = 'a_fus_fake (eq. 9)' if unlabeled else MAPS[map_name]
  if os.path.exists(output):
    raise UserError(f'{output} exists; choose a new --output directory')
  # every example of each split, in the split's order (no protocol selection)
  config.dataset.update(holdout='', methods=(), frames_test=0, single_subject=())
  config.input.workers = 0  # grain's workers batch their own shares: another order
  report = {}
  tmp = output + '.incomplete'
  os.makedirs(tmp, exist_ok=True)
  key = 'a_fus_fake' if unlabeled else map_name
  for split in splits:
    crop = sources.data_source(config, split)[0]['image'].shape[0]
    writer = array_record_module.ArrayRecordWriter(os.path.join(tmp, f'{split}.array_record'),
                                                   'group_size:1')
    overlap = Overlap()
    for batch in loaders.eval_batches(config, split, batch_size)[2]:  # in order
      if is_cam:
        scores, grids = (np.asarray(x) for x in forward(batch['image']))
      else:
        scores = np.asarray(forward(batch['image'])[0])
        grids = np.asarray(forward.panels(batch['image'], batch['mask'])[key])
      for grid, score, label, valid, mask in zip(grids, scores, batch['label'],
                                                 batch['valid'], batch['mask']):
        if not valid:
          continue
        full = cv2.resize(grid.astype(np.float32), (crop, crop), interpolation=cv2.INTER_LINEAR)
        at_mask = cv2.resize(full, mask.shape[::-1], interpolation=cv2.INTER_AREA)
        if label == 1:
          overlap.add_fake(at_mask, mask > 0.5, score)
        else:
          overlap.add_real(at_mask, score)
          if not unlabeled:
            full = np.zeros_like(full)  # real faces: zero maps
        writer.write(_png(full))
    writer.close()
    if overlap.fakes:
      report[split] = overlap.report()
  with open(os.path.join(tmp, 'info.json'), 'w') as f:
    json.dump({'workdir': os.path.abspath(workdir), 'dataset': config.dataset.name,
               'model': config.model.name, 'splits': splits, 'map': description,
               'unlabeled': unlabeled,
               'report': report}, f, indent=2)
  os.rename(tmp, output)  # complete: never a half-written map set under the final name
  return report


def _define_flags():
  flags.DEFINE_string('workdir', None, 'A trained FoCus run (any run with --map=gradcam or '
                      'scorecam).', required=True)
  flags.DEFINE_string('output', None, 'Where the maps go (a new directory).', required=True)
  flags.DEFINE_string('splits', 'train,validation,test', 'Splits to export, comma-separated.')
  flags.DEFINE_bool('unlabeled', False, "Eq. 9's map for every face.")
  flags.DEFINE_enum('map', 'a_fus', sorted(MAPS) + ['gradcam', 'scorecam'], "The fused map "
                    "(default), one branch's CAR map, or a CAM of any model (fjax.cam).")
  flags.DEFINE_integer('cam_batch', 64, 'Images per Score-CAM forward pass (channels x '
                       'faces).')


def main(argv):
  cli.reject_arguments(argv, 'python -m fjax.focus_maps --workdir=RUN --output=OUT')
  args = flags.FLAGS
  logging.set_verbosity(logging.ERROR)
  try:
    if args.cam_batch < 1:
      raise UserError(f'--cam_batch must be at least 1, not {args.cam_batch}')
    report = export(args.workdir, args.output, args.splits.split(','), args.unlabeled,
                    map_name=args.map, cam_batch=args.cam_batch)
  except UserError as e:
    fail(str(e))
  for split, r in report.items():
    line = (f'{split}: {r["fakes"]} fakes, pixel AUC over the fakes {r["pixel_auc_fakes"]:.3f}'
            f', IoU@0.5 {r["iou_at_0.5"]:.3f} (all-fake map {r["iou_all_fake"]:.3f}; '
            f'painted map, pooled: pixel AUC {r["pixel_auc_painted"]:.3f})')
    if 'pixel_auc_real_prior' in r:
      line += (f'; real-face prior: pixel AUC {r["pixel_auc_real_prior"]:.3f}, '
               f'IoU@0.5 {r["iou_real_prior"]:.3f}')
    print(line)
  print(f'maps -> {args.output}')


def entry():
  """`python -m fjax.focus_maps` and the `fjax-focus-maps` console script (fjax.util.cli)."""
  _define_flags()
  cli.run(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
