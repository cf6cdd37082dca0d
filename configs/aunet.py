"""AUNet (Bai et al., CVPR 2023): action-unit relation transformer trained with tampered-AU
prediction on real faces only (every fake is made on the fly from them).

Demo (2 CPU cores, from scratch on the embedded demo set's real faces):
  python -m fjax.main --config=configs/aunet.py:demo --workdir=/tmp/aunet_demo
  ~10 min; test AUC 0.756 (face swaps 0.895, self-blends 0.734, local edits 0.584).
Paper (FF++ c23 real faces, 224 px, ImageNet Xception converted with fjax.weights):
  python -m fjax.main --config=configs/aunet.py:paper --config.init_from=W --workdir=...
  Accelerators (not timed here). Paper: FF++ AUC 99.89 (table 1); cross-dataset (table 3)
  Celeb-DF 92.77, DFD 99.22, DFDC 73.82, DFDC preview 86.16, FFIW 81.45.
  Trains with SBI's released augmentation (input.tamper.sbi_augment: source transforms on
  the source or the target, shared training transforms with JPEG; the demo keeps fjax's
  lighter alteration and photometric jitter).
Table 4 ablations: --config.model.au_specific=False (w/o AU-specific branch),
  .au_agnostic=False, --config.input.tamper.partial=False (w/o M_p: whole face mask),
  --config.input.tamper.image=False (w/o IT), --config.model.mixing=False (w/o FM),
  --config.model.token_weight=0 (w/o LS); lambda_t: --config.model.token_weight=T.
"""
from configs import common

PRESETS = {
    'demo': {
        'input.image_size': 96, 'batch_size': 8, 'total_steps': 400, 'eval_every': 200,
        'checkpoint_every': 100, 'optimizer.name': 'adam', 'optimizer.lr': 5e-4,
        'schedule.name': 'cosine', 'schedule.warmup_steps': 20, 'input.photometric': True,
    },
    'paper': {
        # batch_size counts pairs: 16 real faces + their 16 tampered fakes = 32 images.
        'input.image_size': 224, 'batch_size': 16,
        # Sec. 4.1: eight frames per training video; evaluation as SBI's released inference
        # (the protocol AUNet follows, sec. 4.2): 32 frames per video, a frame's highest face
        # score, the mean over frames, faceless frames skipped (both from the 270-frame
        # build). The paper's tables 1-2 name FF++ raw: `paper,raw`.
        'dataset.name': 'faceforensics/c23_270', 'dataset.methods': common.FF4,
        'dataset.frames_train': 8, 'dataset.frames_test': 32,
        'evaluation.video_score': 'mean_frame_max', 'evaluation.faceless': 'skip',
        # Sec. 4.1: 100 epochs of SGD; SBI's ([45]) epoch (one pass over the real
        # training faces) and its LinearDecayLR (linear to 0 over the last quarter)
        'epochs': 100, 'schedule.name': 'linear_decay', 'schedule.decay_start': 0.75,
        'eval_every': 1000, 'checkpoint_every': 1000,
        'init_into': 'backbone', **common.INCEPTION_NORM,  # legacy_xception's statistics
        'input.tamper.sbi_augment': True,  # eq. 8 "as proposed in [45]": SBI's released code
        # The 15 AU maps made in the train step from the landmarks (their blur was 2/3 of
        # the host's work per pair; 3 MB per image less to batch and ship).
        'input.au_maps_on': 'device',
    },
    'raw': {'dataset.name': 'faceforensics/raw', 'dataset.frames_test': 20},
    # Table 1: the ART trained on FF++'s real and fake faces, without TAP (token labels
    # from the data set's masks; no pairs, so no feature mixing).
    'supervised': {'dataset.train_real_only': False, 'input.tamper.pairs': False,
                   'input.tamper.sbi_augment': False},
    'test': common.test_preset(64, **{'batch_size': 2, **common.TEST_XCEPTION}),
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'aunet'
  c.model.num_aus = 15
  c.model.encoders = 3         # stacked ART encoders
  c.model.width = 256          # C' (transformer width) and the attention convs' width
  c.model.heads = 8
  c.model.au_specific = True
  c.model.au_agnostic = True
  c.model.mixing = True        # feature-level mixing at one random backbone layer per step
  c.model.mix_beta = 1.0       # lambda_1..3 ~ Beta(a, a)
  c.model.cls_weight = 1.0     # lambda_c
  c.model.token_weight = 30.0  # lambda_t (0: w/o local tampering supervision)
  c.model.att_weight = 0.5     # lambda_a
  c.dataset.train_real_only = True
  c.input.tamper.pairs = True
  c.input.labels = ('au_maps',)
  c.optimizer.update(name='sgd', lr=1e-3, momentum=0.9)
  c.schedule.update(name='constant')
  c.table_metrics = ('video_auc',)  # tables 1-3: AUC of videos, SBI's protocol (32 frames)
  return common.apply_preset(c, arg, PRESETS)
