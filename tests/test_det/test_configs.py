import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config

from mmohem.det import OHEMDenseHeadMixin, OHEMSampler
from mmohem.det.dense_miner import DenseBoxMiner

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs')
RCNN_SWAP = ('train_cfg.rcnn.sampler', )
SSD_SWAP = ('train_cfg.sampler', 'bbox_head.type')
RETINA_SWAP = SSD_SWAP + ('bbox_head.loss_cls', )
CONFIGS = {
    'faster_rcnn/faster-rcnn_r50_fpn_mmohem-ohem_1x_coco.py':
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', RCNN_SWAP),
    'faster_rcnn/faster-rcnn_r50-caffe-c4_mmohem-ohem_1x_coco.py':
    ('faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py', RCNN_SWAP),
    'cascade_rcnn/cascade-rcnn_r50_fpn_mmohem-ohem_1x_coco.py':
    ('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', RCNN_SWAP),
    'mask_rcnn/mask-rcnn_r50_fpn_mmohem-ohem_1x_coco.py':
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', RCNN_SWAP),
    'ssd/ssd300_mmohem-ohem_coco.py': ('ssd/ssd300_coco.py', SSD_SWAP),
    'ssd/ssd512_mmohem-ohem_coco.py': ('ssd/ssd512_coco.py', SSD_SWAP),
    'ssd/ssdlite_mobilenetv2-scratch_mmohem-ohem_8xb24-600e_coco.py':
    ('ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py', SSD_SWAP),
    'retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py':
    ('retinanet/retinanet_r50_fpn_1x_coco.py', RETINA_SWAP),
}
# The loss-NMS threshold of each config: the paper's 0.7, the Focal Loss
# paper's best OHEM setting (0.5) for RetinaNet.
NMS_THR = {'retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py': 0.5}


def _unscoped(value):
    """Drop the ``_scope_`` keys mmengine adds to dicts of an mmdet:: base."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def _drop(tree, path):
    """Remove ``path`` ('a.b.c') from ``tree``, in each element of lists."""
    head, _, rest = path.partition('.')
    nodes = tree if isinstance(tree, list) else [tree]
    for node in nodes:
        if rest:
            _drop(node[head], rest)
        else:
            node.pop(head)


def _without(cfg, swapped):
    cfg = _unscoped(cfg.to_dict())
    cfg.pop('custom_imports', None)
    for path in swapped:
        _drop(cfg['model'], path)
    return cfg


def _ohem_modules(model):
    if isinstance(getattr(model, 'bbox_head', None), OHEMDenseHeadMixin):
        return [model.bbox_head.ohem_sampler]
    samplers = model.roi_head.bbox_sampler
    return samplers if isinstance(samplers, list) else [samplers]


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_builds_and_only_swaps_the_sampler(name):
    base_name, swapped = CONFIGS[name]
    cfg = Config.fromfile(osp.join(ROOT, name))
    assert cfg.custom_imports == dict(
        imports=['mmohem'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    base = get_config(f'mmdet::{base_name}')
    assert _without(cfg, swapped) == _without(base, swapped)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    dense = isinstance(getattr(model, 'bbox_head', None), OHEMDenseHeadMixin)
    samplers = _ohem_modules(model)
    assert samplers and all(
        isinstance(s, DenseBoxMiner if dense else OHEMSampler)
        for s in samplers)
    assert all(s.rule.nms_thr == NMS_THR.get(name, 0.7)
               and s.rule.pos_fraction is None for s in samplers)
