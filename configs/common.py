"""Defaults every config shares; a model config overrides what its paper fixes.

Every key a user may set exists here, so that `--config.a.b=value` on a misspelt key fails
at flag parsing instead of being silently ignored.
"""
from __future__ import annotations

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # remat: recompute each backbone block's activations in the backward pass (memory for
  # compute; the same gradients).
  c.model = ml_collections.ConfigDict(dict(name='', dtype='float32', remat=False,
                                           middle_blocks=8))
  c.dataset = ml_collections.ConfigDict(dict(
      name='demo_forgeries', data_dir='', split_train='train', split_eval='validation',
      split_test='test',
      mask_source='mask',  # mask | msccnet | diff | diff@0.1 | ssim | focus
      train_real_only=False,  # train on the split's real faces only (fakes made on the fly)
      holdout='',  # a manipulation method left out of training, the only one evaluated
      methods=(),  # the manipulation methods used, in training and evaluation (() = all)
      train_method='',  # cross-manipulation: train on this method's fakes, test on all
      # Frames per video: N evenly spaced among each video's stored frames (0 = all)
      frames_train=0, frames_test=0,
      # data sets (e.g. ('dfdc',)) evaluated on their videos with one face in every frame
      single_subject=(),
      focus_maps=''))  # with mask_source=focus: the output of python -m fjax.focus_maps
  # How face scores become frame and video scores (fjax.trainer.metrics.VIDEO_SCORES, FACELESS):
  # 'mean_frame_max' (a frame's highest face score, a video's mean over frames) or
  # 'mean_faces'; frames without a face: 'skip' (a video without any face scores 0.5) or
  # 'half' (each scores 0.5). Evaluation and predict follow the same rule. robustness
  # (--mode=robustness): 'frame' evaluates the data set's builds with whole frames
  # perturbed before face cropping (DeeperForensics-1.0's order); 'crop' perturbs the
  # stored crops (cheap, any data set; sizes then act at crop scale).
  c.evaluation = ml_collections.ConfigDict(dict(video_score='mean_frame_max',
                                                faceless='skip', robustness='crop'))
  c.input = ml_collections.ConfigDict(dict(
      image_size=64, workers=0, hflip=True, photometric=False,
      # Fakes made on the fly from real training faces: with probability self_blend_prob,
      # of the kind `artefact` ('blend': a self-blended image; 'planted': the planted
      # cue, demo_forgeries/planted's fakes); AUNet's tampered pairs (below) use it too
      self_blend_prob=0.0, artefact='blend',
      crop_scale=1.0,  # < 1: random square crops of side U(crop_scale, 1) in training
      labels=(), noise_sigma=5.0,  # extra on-the-fly labels: 'noise', 'au_maps'
      # where the noise label is made: 'host' (grain workers, NumPy/PyWavelets) or
      # 'device' (in the train step, JAX: fjax/models/wavelet.py; the same residual)
      noise_on='host',
      # where AUNet's 15 AU maps are made: 'host' (grain workers) or 'device' (in the train
      # step from the shipped landmarks: fjax/models/au_regions.py; the same maps)
      au_maps_on='host',
      corruption='',  # 'kind:level' applied to every image (--mode=robustness sets it)
      # (x / 255 - mean) / std in training, evaluation and predict: the statistics the
      # backbone's weights were trained with (INCEPTION_NORM / IMAGENET_NORM below)
      mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
      # Training-set balance: 'none' | 'pair' (each fake and its real counterpart, same
      # identity and nearest frame: a real repeats once per fake made from it and reals
      # without a fake are left out, as MSCCNet's datasets/ff.py lists them) |
      # 'oversample_real' (every fake, and the reals cycled to as many)
      balance='none',
      # Training augmentation beyond flip/photometric/crop_scale: '' | 'msccnet' (the
      # released pipeline: rescale by U(scale_range) keeping the ratio, a random crop
      # of image_size, redrawn up to 10 times until both mask classes are in it and
      # neither fills crop_max_ratio, mmseg's photometric distortion, centred padding)
      augment='', scale_range=(0.5, 2.0), crop_max_ratio=0.75))
  # AUNet's tampered pairs (TAP): each training example is a real face and its fake made
  # through the partial face mask (partial=False: the whole face mask; image=False: no
  # image-level tampering), max_removed AU regions at most. sbi_augment: SBI's released
  # augmentation (fjax/data/sbi_augment.py): its source transforms on the source or
  # the target, and its training transforms (colour, JPEG 40-100 with p=0.5) on the real
  # and the fake with the same parameters; False: fjax's lighter source alteration only.
  # With input.artefact='planted' the fake plants the planted cue's noise inside M_p
  # instead of eq. 9's blend of an altered source (AUNet on demo_forgeries/planted).
  c.input.tamper = ml_collections.ConfigDict(dict(pairs=False, partial=True, image=True,
                                                  max_removed=3, sbi_augment=False))
  c.batch_size = 16           # global batch, split over processes and devices
  c.eval_batch_size = 32
  c.accum_steps = 1           # micro-batches per step (gradients averaged, one update):
                              # the batch of batch_size in accum_steps passes of less memory
  c.total_steps = 100
  c.epochs = 0                # > 0: total_steps = epochs * (training examples after
                              # filters and balance // batch_size), set when training starts
  c.optimizer = ml_collections.ConfigDict(dict(
      name='adam', lr=1e-4, weight_decay=0.0, momentum=0.9, b1=0.9, b2=0.999,
      grad_clip=0.0))
  # end_factor: the rate decays to end_factor * lr (cosine, poly: the floor);
  # linear_decay (SBI's): lr until decay_start of the epochs (or steps), then linear to 0
  c.schedule = ml_collections.ConfigDict(dict(name='cosine', warmup_steps=0, power=0.9,
                                              end_factor=0.0, decay_start=0.75))
  # Mesh axes and their sizes (-1: all remaining devices). The batch is split over
  # `data`; parameters are replicated unless a rule in `param_rules` matches their path:
  # a list of (regex, partition spec), e.g. [('.*kernel', (None, 'model'))].
  c.mesh = ml_collections.ConfigDict(dict(axes=('data',), shape=(-1,)))
  c.mesh.param_rules = ()
  c.checkpoint_every = 50
  c.keep_checkpoints = 2
  c.best_metric = 'auc'       # the eval metric whose best checkpoint is kept too
  c.test_checkpoint = 'latest'  # latest | best (by best_metric on split_eval): the state
                                # the final test pass, --mode=eval and predict use
  c.table_metrics = ()        # the metrics the paper's tables report (printed after test)
  c.eval_every = 50
  c.log_every = 10
  c.seed = 0
  c.init_from = ''            # Orbax checkpoint of converted weights or a workdir
  c.init_into = ''            # module(s) the init_from weights go into: 'backbone' or 'a,b'
  c.init_only = ''            # take only these top-level modules from init_from ('' = all)
  c.init_strict = False       # True: stop when init_from holds arrays the model lacks or
                              # leaves arrays of the modules it fills uninitialised
  c.train_only = ''           # the optimizer updates only these top-level modules ('' = all;
                              # the others stay exactly as initialised, weight decay included)
  return c


# Input statistics of the weights a paper preset starts from (timm's pretrained cfgs):
# legacy_xception and AugReg ViT use 0.5 / 0.5; ResNet-50 and EfficientNet ImageNet's
# (MSCCNet's released config: 123.675, 116.28, 103.53 / 58.395, 57.12, 57.375 on 0..255).
INCEPTION_NORM = {'input.mean': (0.5, 0.5, 0.5), 'input.std': (0.5, 0.5, 0.5)}
IMAGENET_NORM = {'input.mean': (0.485, 0.456, 0.406), 'input.std': (0.229, 0.224, 0.225)}


# FaceForensics++'s manipulation methods: the four of the original release (FoCus, local
# similarity, Detect and Locate, AUNet) and with FaceShifter (MSCCNet).
FF4 = ('Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures')
FF5 = FF4 + ('FaceShifter',)


# FoCus sec. IV-A: four methods, 10 frames per video for training and testing, frame-level
# scores, DFDC's one-subject videos (used by focus.py and focus_eval.py).
FOCUS_PROTOCOL = {'dataset.methods': FF4, 'dataset.frames_train': 10,
                  'dataset.frames_test': 10, 'dataset.single_subject': ('dfdc',),
                  'evaluation.video_score': 'mean_faces'}


# Detect and Locate sec. IV-A-1: four methods, 270 frames per training video and 100 per
# validation / test video (from the 270-frame build), the real faces repeated to as many as
# the fakes (x4), frame-level scores (its table II also gives the Xception baseline's).
DETECT_AND_LOCATE_PROTOCOL = {'dataset.name': 'faceforensics/c23_270', 'dataset.methods': FF4,
                              'dataset.frames_train': 270, 'dataset.frames_test': 100,
                              'input.balance': 'oversample_real',
                              'evaluation.video_score': 'mean_faces'}


# The planted-cue demos (issue 18): demo_forgeries/planted, whose fakes carry faint
# noise with an exact mask. Trained as the demo sets are (SBI's protocol): real faces
# only, half of them made fake on the fly with the same cue (`input.artefact`), so every
# epoch brings new fakes (AUNet: its tampering step plants the noise inside M_p); no
# photometric jitter or JPEG (they would erase a faint cue); the map metrics reported.
# Training on the set's stored fakes instead (sessions 9-10's figures):
# --config.dataset.train_real_only=False --config.input.self_blend_prob=0.
PLANTED = {'dataset.name': 'demo_forgeries/planted', 'dataset.train_real_only': True,
           'input.self_blend_prob': 0.5, 'input.artefact': 'planted',
           'input.photometric': False,
           'table_metrics': ('auc', 'pixel_auc', 'pixel_auc_fakes', 'pixel_auc_painted',
                             'iou', 'miou')}
# The unlimited planted set (issue 28): the same cue on random crops, scales and flips of
# natural images (demo_forgeries/planted_natural), test crops from held-out images.
PLANTED_NATURAL = {**PLANTED, 'dataset.name': 'demo_forgeries/planted_natural'}


# The demo sets' training protocol (SBI): real faces only, half of them self-blended on
# the fly, photometric jitter on every image.
SBI_TRAINING = {'dataset.train_real_only': True, 'input.self_blend_prob': 0.5,
                'input.photometric': True}


# The Xception-based test presets compute one middle-flow block of eight (the taps keep
# their names and shapes): a third of the graph, and of the compile time, of every test.
TEST_XCEPTION = {'model.middle_blocks': 1}


def test_preset(image_size: int, **extra) -> dict:
  """Seconds-long runs on the tiny demo set for the test suite."""
  return {'input.image_size': image_size, 'batch_size': 4, 'eval_batch_size': 8,
          'total_steps': 2, 'eval_every': 2, 'checkpoint_every': 2, 'log_every': 1,
          'dataset.name': 'demo_forgeries/tiny', **extra}


def apply_preset(config: ml_collections.ConfigDict, arg: str | None,
                 presets: dict[str, dict]) -> ml_collections.ConfigDict:
  """Applies comma-separated presets (`demo`, `paper`, `key=value` protocol variants)."""
  for word in filter(None, (arg or '').split(',')):
    name, _, value = word.partition('=')
    if name not in presets:
      raise ValueError(f'unknown preset {word!r}; this config knows {sorted(presets)}')
    updates = presets[name](value) if callable(presets[name]) else presets[name]
    with config.unlocked():
      for key, val in updates.items():
        _set(config, key, val)
  return config


def _set(config, dotted: str, value):
  *parents, leaf = dotted.split('.')
  for p in parents:
    config = config[p]
  config[leaf] = value
