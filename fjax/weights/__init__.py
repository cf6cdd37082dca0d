"""ImageNet weights from timm state dicts into the fjax backbones, and the authors' released
checkpoints of Detect and Locate and MSCCNet into whole fjax models.

    module, variables = fjax.weights.load('resnet50', 'resnet50.safetensors')
    module.apply(variables, images_nhwc, train=False)   # == timm's model(images_nchw)
    module, variables = fjax.weights.load_model('msccnet', 'epoch_best.pth', 'paper,official')
    module.apply(variables, images_nhwc, train=False)   # the released model's outputs

The timm naming rule and layouts: `timm.py`; the released models' key maps:
`fjax/weights/<model>.py`, driven by `released.py`.
"""
from fjax.weights.released import RELEASED, from_state_dict, load_model, released_config
from fjax.weights.timm import (ARCHS, LEAF, build, convert, fill, load, read_state_dict,
                               timm_key, to_flax_layout, v1c_key)

__all__ = ['ARCHS', 'LEAF', 'RELEASED', 'build', 'convert', 'fill', 'from_state_dict', 'load',
           'load_model', 'read_state_dict', 'released_config', 'timm_key', 'to_flax_layout',
           'v1c_key']
