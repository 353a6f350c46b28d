import pytest
import torch
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.hub import get_config

from mmohem.det import OHEMSSDHead, SSDHead

UPSTREAM = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
OHEM = 'configs/ssd/ssdlite_mobilenetv2-scratch_mmohem-ohem_8xb24-600e_coco.py'


def _predict(head_type):
    if head_type == 'mmohem.OHEMSSDHead':
        cfg = Config.fromfile(OHEM).model
    else:
        cfg = get_config(UPSTREAM).model
        cfg.bbox_head.type = head_type
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    packed = demo_mm_inputs(1, (3, 96, 96), num_items=[2])
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        return model(**data, mode='predict')[0].pred_instances


def test_upstream_ssd_head_cannot_predict_under_mmdet_3_3():
    """The upstream bug the mmohem head works around: if this starts to
    pass, mmdet fixed it and mmohem.SSDHead can go."""
    with pytest.raises(AttributeError, match='loss_cls'):
        _predict('SSDHead')


@pytest.mark.parametrize('head_type', ['mmohem.SSDHead', 'mmohem.OHEMSSDHead'])
def test_mmohem_ssd_heads_predict(head_type):
    pred = _predict(head_type)
    assert pred.bboxes.shape[1] == 4
    assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    assert torch.isfinite(pred.scores).all()


def test_subclasses_keep_upstream_untouched():
    assert issubclass(OHEMSSDHead, SSDHead)
    assert issubclass(SSDHead, MMDetSSDHead)
    assert MODELS.get('SSDHead') is MMDetSSDHead
    assert 'loss_cls' not in vars(MMDetSSDHead)
