"""One decoded example -> the model's inputs: self-blending, tampering (AUNet's pairs),
augmentation, corruption (robustness), resizing, the per-pixel label maps made from the
final image and landmarks, normalisation and the example's table row, packed as the batch
schema (`schema`) declares."""
from __future__ import annotations

import dataclasses
import zlib

import cv2
import grain
import numpy as np

from fjax.data import (augment, corruptions, forgeries, labels, masks, schema, selection,
                       self_blend, tamper)
from fjax.util.errors import UserError


# 'method_label': the class of a five-way detector (FF++'s four methods; -1 for others).
METHOD_CLASSES = ('real', 'Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures')


@dataclasses.dataclass(frozen=True)
class Tamper:
  """AUNet's tampering of real faces (`input.tamper`)."""
  pairs: bool = False
  partial: bool = True
  image: bool = True
  max_removed: int = 0
  sbi_augment: bool = False


@dataclasses.dataclass(frozen=True)
class Recipe:
  """The values that turn one example into model inputs, read once from the config
  (`Recipe.of`): the per-example functions take these, not the config, and grain's
  workers receive this small frozen record."""
  image_size: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  labels: tuple[str, ...] = ()
  noise_sigma: float = 0.0
  mask_source: str = 'mask'
  self_blend_prob: float = 0.0
  artefact: str = 'blend'
  photometric: bool = False
  hflip: bool = False
  crop_scale: float = 1.0
  corruption: str = ''
  augment: str = ''
  scale_range: tuple[float, float] = (0.5, 2.0)
  crop_max_ratio: float = 0.75
  tamper: Tamper = Tamper()
  au_landmarks: bool = False  # ship landmarks and the flip, not AU maps (au_maps_on=device)

  @classmethod
  def of(cls, config) -> 'Recipe':
    i = config.input
    t = i.tamper
    return cls(
        image_size=i.image_size, mean=tuple(i.mean), std=tuple(i.std),
        labels=tuple(k for k in i.labels if k not in schema.on_device(config)),
        noise_sigma=i.noise_sigma,
        mask_source=config.dataset.mask_source, self_blend_prob=i.self_blend_prob,
        artefact=i.artefact,
        photometric=i.photometric, hflip=i.hflip, crop_scale=i.crop_scale,
        corruption=i.corruption, augment=i.augment, scale_range=tuple(i.scale_range),
        crop_max_ratio=i.crop_max_ratio,
        tamper=Tamper(t.pairs, t.partial, t.image, t.max_removed, t.sbi_augment),
        au_landmarks='au_maps' in schema.on_device(config))


def label_maps(image: np.ndarray, landmarks: np.ndarray, names=(),
               noise_sigma: float = 0.0) -> dict[str, np.ndarray]:
  """The extra label maps `names` of one face crop: the wavelet noise residual (SPEC 4,
  sigma `noise_sigma`) and the 15 AU maps (SPEC 5), at the crop's resolution."""
  maps = {}
  if 'noise' in names:
    maps['noise'] = labels.noise_residual(image, noise_sigma)
  if 'au_maps' in names:
    maps['au_maps'] = labels.au_maps(landmarks, image.shape[0])
  return maps


def _resize(x: np.ndarray, size: int) -> np.ndarray:
  if x.shape[0] == size and x.shape[1] == size:
    return x
  interp = cv2.INTER_AREA if x.shape[0] > size else cv2.INTER_LINEAR
  if x.ndim == 3 and x.shape[-1] > 4:  # OpenCV resizes at most 4 channels at a time
    return np.concatenate([_resize(x[..., i:i + 4], size).reshape(size, size, -1)
                           for i in range(0, x.shape[-1], 4)], axis=-1)
  return cv2.resize(x, (size, size), interpolation=interp)


def normalize(image_uint8: np.ndarray, mean, std) -> np.ndarray:
  """uint8 RGB -> float32 (x / 255 - mean) / std, the model's input convention."""
  image = image_uint8.astype(np.float32) / 255.0
  return ((image - np.float32(mean)) / np.float32(std)).astype(np.float32)


def prepare(example: dict, recipe: Recipe, rng: np.random.Generator | None) -> dict:
  """Decoded example -> model inputs; `rng` enables training augmentation.

  Augmentations: on-the-fly fakes of real faces (probability `input.self_blend_prob`;
  `input.artefact`: a self-blend, or the planted cue), whole-image photometric jitter
  (`input.photometric`) and a horizontal flip applied to the image and every label map.
  With `input.tamper.pairs` (AUNet's TAP) a training example is a real face and its
  tampered counterpart, stacked on a leading pair axis of every array.
  """
  if rng is not None and recipe.tamper.pairs:
    return tampered_pair(example, recipe, rng)
  image = example['image']
  source = recipe.mask_source
  mask = masks.read_mask(example, source)
  label = int(example['label'])
  if rng is not None and label == 0 and rng.random() < recipe.self_blend_prob:
    if recipe.artefact == 'planted':
      fake, mask = forgeries.planted_cue(image, rng)
    else:
      fake, mask = self_blend.self_blend(image, example['landmarks'], rng)
    if source != 'mask':  # the same map the data set stores, made from this new pair
      mask = masks.pair_map(source, image, fake)
    image, label = fake, 1
  image, maps = _at_input_size(image, mask, example, recipe, rng)
  if rng is not None and recipe.hflip and rng.random() < 0.5:
    image, maps = _flip(image, maps)
  return _pack(image, maps, label, example, recipe)


def tampered_pair(example: dict, recipe: Recipe, rng: np.random.Generator) -> dict:
  """A real face (label 0, zero mask) and its image-level tampered fake (label 1, mask
  M_p), with the same training transforms (`input.tamper.sbi_augment`: SBI's released
  ones, one draw for both, and its random-margin final crop), photometric jitter, crop
  and flip, stacked on axis 0."""
  t = recipe.tamper
  real, fake, mask = tamper.tampered_counterpart(example['image'], example['landmarks'], rng,
                                                 t.partial, t.image, t.max_removed,
                                                 sbi=t.sbi_augment, artefact=recipe.artefact)
  if t.sbi_augment:  # SBI's training transforms, then its final crop, for both images
    from fjax.data import sbi_augment  # pylint: disable=g-import-not-at-top
    real, fake = sbi_augment.training(real, fake, rng)
    real, fake, mask, landmarks = sbi_augment.crop_pair(real, fake, mask,
                                                        example['landmarks'], rng)
    example = dict(example, landmarks=landmarks)
  jitter_seed = int(rng.integers(2 ** 31))
  pair = [_at_input_size(real, np.zeros_like(mask), example, recipe,
                         np.random.default_rng(jitter_seed))]
  # The AU maps come from the landmarks, which the two share (the same crop from the same
  # seed): made once, for the real face, and given to its fake.
  shared = {k: v for k, v in pair[0][1].items() if k == 'au_maps'}
  fake_recipe = dataclasses.replace(recipe, labels=tuple(k for k in recipe.labels
                                                         if k not in shared))
  image, maps = _at_input_size(fake, mask, example, fake_recipe,
                               np.random.default_rng(jitter_seed))
  pair.append((image, {**maps, **shared}))
  flip = recipe.hflip and rng.random() < 0.5
  packed = [_pack(*(_flip(*p) if flip else p), label, example, recipe)
            for p, label in zip(pair, (0, 1))]
  return {k: np.stack([packed[0][k], packed[1][k]]) for k in packed[0]}


def _at_input_size(image, mask, example, recipe, rng):
  """Photometric jitter and a random crop (training), corruption (robustness), resize to
  the input size; the label maps are made there from the final image and landmarks."""
  if rng is not None and recipe.photometric:
    image = augment.photometric(image, rng)
  landmarks = example['landmarks']
  if rng is not None and recipe.augment == 'msccnet':
    return _msccnet_augment(image, mask, landmarks, recipe, rng)
  if rng is not None and recipe.crop_scale < 1:
    image, mask, landmarks = augment.random_crop(image, mask, landmarks, rng,
                                                 recipe.crop_scale)
  if recipe.corruption:  # robustness evaluation: kind:level, seeded per example
    kind, level = recipe.corruption.split(':')
    image = corruptions.corrupt(image, kind, int(level), np.random.default_rng(
        zlib.crc32(bytes(example['video_id'])) + int(example['frame'])))
  size = recipe.image_size
  # landmarks (x, y) follow the resize per axis: SBI's final crop need not be square
  scale = np.float32([size / image.shape[1], size / image.shape[0]])
  image = _resize(np.ascontiguousarray(image), size)
  maps = {'mask': _resize(np.ascontiguousarray(mask), size).astype(np.float32),
          **label_maps(image, landmarks * scale, recipe.labels, recipe.noise_sigma)}
  if recipe.au_landmarks:  # the train step makes the AU maps from these (au_regions)
    maps.update(landmarks=landmarks * scale, flipped=0)
  return image, maps


def _msccnet_augment(image, mask, landmarks, recipe, rng):
  """MSCCNet's released training transforms (`input.augment=msccnet`; the flip follows in
  `prepare`): rescale and crop, photometric distortion, label maps made on the crop, then
  centred padding to the input size. The image is padded with the mean colour, 0 after
  normalisation as the released Padding (after Normalize) gives; the mask with
  `IGNORE` (-1, the released ignore index 255: MSCCNet's losses skip those pixels), the
  other label maps with 0."""
  size = recipe.image_size
  image, mask, landmarks = augment.rescale_crop(
      image, mask, landmarks, rng, size, recipe.scale_range,
      recipe.crop_max_ratio)
  image = augment.photometric_distortion(image, rng)
  maps = {'mask': mask.astype(np.float32),
          **label_maps(image, landmarks, recipe.labels, recipe.noise_sigma)}
  image, _ = augment.pad_center(image.astype(np.float32), size,
                                np.float32(recipe.mean) * 255)
  return image, {k: augment.pad_center(v, size, IGNORE if k == 'mask' else 0)[0]
                 for k, v in maps.items()}


IGNORE = -1.0  # mask value of pixels no loss sees (MSCCNet's padded border)


def _flip(image, maps):
  """The image and its maps flipped horizontally; shipped landmarks stay as they were, with
  `flipped` set (the device flips the AU maps it makes from them, as the host does)."""
  flipped = {k: v if k in schema.AU_INPUTS else v[:, ::-1] for k, v in maps.items()}
  if 'flipped' in maps:
    flipped['flipped'] = 1
  return image[:, ::-1], flipped


def _pack(image, maps, label: int, example: dict, recipe) -> dict:
  """The model inputs of one example, as the batch schema (`schema.KEYS`) declares them."""
  out = {'image': normalize(np.ascontiguousarray(image), recipe.mean, recipe.std), **maps,
         'label': label, 'valid': 1.0, 'row': example.get('row', -1)}
  if 'method_label' in recipe.labels:
    method = 'real' if label == 0 else bytes(example['method']).decode()
    out['method_label'] = METHOD_CLASSES.index(method) if method in METHOD_CLASSES else -1
  return schema.cast(out)


class TrainTransform(grain.transforms.RandomMap):

  def __init__(self, recipe: Recipe):
    self.recipe = recipe

  def random_map(self, element, rng):
    return prepare(element, self.recipe, rng)


class EvalTransform(grain.transforms.Map):

  def __init__(self, recipe: Recipe):
    self.recipe = recipe

  def map(self, element):
    return prepare(element, self.recipe, None)


AUGMENT = ('', 'msccnet')


def check_train_options(config) -> None:
  i = config.input
  if not 0 < i.crop_scale <= 1:
    raise UserError(f'input.crop_scale={i.crop_scale}: the smallest crop side, '
                    'a fraction of the face crop in (0, 1]')
  if i.tamper.pairs and not config.dataset.train_real_only:
    raise UserError('input.tamper.pairs tampers real faces only: set '
                    'dataset.train_real_only=True')
  if i.tamper.sbi_augment and not i.tamper.pairs:
    raise UserError('input.tamper.sbi_augment augments AUNet\'s tampered pairs: set '
                    'input.tamper.pairs=True')
  if i.artefact not in ('blend', 'planted'):
    raise UserError(f'input.artefact={i.artefact!r}: use blend or planted')
  if i.tamper.sbi_augment and i.photometric:
    raise UserError('input.tamper.sbi_augment brings SBI\'s training transforms (colour, '
                    'JPEG); leave input.photometric=False')
  if i.balance not in selection.BALANCE:
    raise UserError(f'input.balance={i.balance!r}: use {", ".join(selection.BALANCE)}')
  if i.balance != 'none' and config.dataset.train_real_only:
    raise UserError(f'input.balance={i.balance!r} balances stored reals and fakes; '
                    'dataset.train_real_only trains on reals only')
  if i.augment not in AUGMENT:
    raise UserError(f'input.augment={i.augment!r}: use \'\' or msccnet')
  if i.augment == 'msccnet' and i.crop_scale < 1:
    raise UserError('input.augment=msccnet crops itself: leave input.crop_scale at 1')
  low, high = i.scale_range
  if i.augment == 'msccnet' and not 0 < low <= high:
    raise UserError(f'input.scale_range={tuple(i.scale_range)}: need 0 < low <= high')
