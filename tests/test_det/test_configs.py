import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config

from mmohem.det import OHEMSampler

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs')
CONFIGS = {
    'faster_rcnn/faster-rcnn_r50_fpn_ohem_1x_coco.py':
    'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe-c4_ohem_1x_coco.py':
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'cascade_rcnn/cascade-rcnn_r50_fpn_ohem_1x_coco.py':
    'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn/mask-rcnn_r50_fpn_ohem_1x_coco.py':
    'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}


def _unscoped(value):
    """Drop the ``_scope_`` keys mmengine adds to dicts of an mmdet:: base."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def _without_samplers(model_cfg):
    model = _unscoped(model_cfg.to_dict())
    rcnn = model['train_cfg']['rcnn']
    for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
        stage.pop('sampler')
    return model


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_builds_and_only_swaps_the_sampler(name):
    cfg = Config.fromfile(osp.join(ROOT, name))
    assert cfg.custom_imports.imports == ['mmohem']
    assert cfg.default_scope == 'mmdet'
    base = get_config(f'mmdet::{CONFIGS[name]}')
    assert _without_samplers(cfg.model) == _without_samplers(base.model)
    assert _unscoped({k: v for k, v in cfg.to_dict().items()
                      if k not in ('model', 'custom_imports')}) == _unscoped(
                          {k: v for k, v in base.to_dict().items()
                           if k != 'model'})
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    samplers = model.roi_head.bbox_sampler
    samplers = samplers if isinstance(samplers, list) else [samplers]
    assert all(isinstance(s, OHEMSampler) for s in samplers)
    assert all(s.num == 512 and s.nms_thr == 0.7 and s.pos_fraction is None
               for s in samplers)
