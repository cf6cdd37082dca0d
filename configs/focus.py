"""FoCus: weakly supervised forgery cues from RGB + Sobel ViT-S branches (SPEC 1).

Demo (2 CPU cores, from scratch, a narrower and shallower ViT on 112 px faces; random
crops keep it from memorising the ten training people's faces):
  python -m fjax.main --config=configs/focus.py:demo --workdir=/tmp/focus_demo
  ~10 min; test y_fus AUC 0.652 / 0.581 / 0.535 for seeds 0-2 (WORKSPACE.md): above chance
  on average only, and its maps do not beat the real-face prior (`fjax.focus_maps`).
Paper (FF++ c23, 224 px, both branches from one converted ImageNet DeiT-S, the paper's
[68]; timm's deit_small_patch16_224 weights):
  python -m fjax.weights convert --arch deit_small_patch16_224 --input deit_s.safetensors --output W
  python -m fjax.main --config=configs/focus.py:paper --config.init_from=W --workdir=...
  Accelerators (batch 128, 30k steps; not timed here: no accelerator was lent). Expect the
  paper's table I through configs/focus_eval.py on these maps: ACC / AUC 96.43 / 99.15 on
  FF++ HQ, 87.31 / 91.01 on LQ.
Ablations: --config.model.aux=dct|srm|rgb, --config.model.carp=False, --config.model.cl=False.
"""
from configs import common

PRESETS = {
    'demo': {
        'input.image_size': 112, 'batch_size': 16, 'total_steps': 3600, 'eval_every': 1800,
        'checkpoint_every': 300, 'optimizer.lr': 5e-4, 'schedule.warmup_steps': 100,
        **common.SBI_TRAINING, 'input.crop_scale': 0.7,
        'model.embed_dim': 192, 'model.depth': 4, 'model.num_heads': 3, 'model.d': 16,
    },
    'paper': {
        'dataset.name': 'faceforensics/c23', 'input.image_size': 224, 'batch_size': 128,
        'total_steps': 30_000, 'eval_every': 1000, 'checkpoint_every': 1000,
        'init_into': 'rgb_vit,aux_vit',
        # Table VIII's 47.4M parameters: token-score MLPs as ViT MLP blocks (47.37M)
        'model.score_mlp': 'vit',
        **common.IMAGENET_NORM,  # DeiT-S (timm deit_small_patch16_224): ImageNet's mean/std
        **common.FOCUS_PROTOCOL,
        'input.hflip': False,  # sec. IV-A names no augmentation (docs/training.md, recipes)
    },
    'c40': {'dataset.name': 'faceforensics/c40'},
    'test': common.test_preset(32, **{'model.embed_dim': 32, 'model.depth': 1,
                                      'model.num_heads': 2, 'model.d': 4}),
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}
# The unlimited planted set (issue 28): the same recipe on natural-image crops.
PRESETS['planted_natural'] = {**PRESETS['demo'], **common.PLANTED_NATURAL}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'focus'
  c.model.aux = 'sobel'        # auxiliary modality: sobel | dct | srm | rgb
  c.model.carp = True          # False: last-block attention maps instead of CARP
  c.model.cl = True            # False: max fusion instead of Complementary Learning
  c.model.d = 32               # CARP maps per class
  c.model.embed_dim = 384      # ViT-S/16
  c.model.depth = 12
  c.model.num_heads = 6
  c.model.patch_size = 16      # ViT-S/16
  c.model.stem = 'patch'       # patch | conv (a conv stem for training from scratch)
  # sincos (fixed, sec. III-C) | learned (DeiT-S's embedding, trained) | frozen (DeiT-S's,
  # not trained): docs/models/focus.md, parameters
  c.model.pos_embed = 'sincos'
  c.model.score_mlp = 'quarter'  # token-score MLPs: quarter (D -> D/4 -> 1) | vit (D -> 4D
                                 # -> D -> 1; the paper preset: 47.37M, table VIII 47.4M)
  c.model.tau = 1.0            # Gumbel-softmax temperature
  # where CL's Gumbel noise goes: probs (Algorithm 1's pseudo-code) | log_probs (Jang et
  # al.'s Gumbel-softmax); fjax/models/focus.py CL_NOISE, docs/models/focus.md
  c.model.cl_noise = 'probs'
  c.model.alpha = 0.1          # weight of L_fus
  c.optimizer.update(name='adam', lr=1e-4)
  c.schedule.update(name='cosine')
  c.table_metrics = ('acc', 'auc')  # reported through configs/focus_eval.py (table I)
  return common.apply_preset(c, arg, PRESETS)
