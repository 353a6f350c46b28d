"""Small detectors built from the upstream mmdet configs, for CPU tests."""
from typing import Callable

import pytest
from mmengine.config import ConfigDict
from mmengine.hub import get_config
from mmengine.registry import DefaultScope

import mmohem  # noqa: F401

SMALL_FPN = dict(depth=18, init_cfg=None)
FPN_IN = [64, 128, 256, 512]


def shrink(model: ConfigDict) -> ConfigDict:
    """Turn an R50 detector config into an R18 one with no pretrained init."""
    model.backbone.update(SMALL_FPN)
    if model.get('neck') is not None:
        model.neck.in_channels = FPN_IN
        return model
    # C4: backbone stages 1-3, shared head = stage 4 (R18: 256 -> 512 ch).
    model.backbone.style = 'pytorch'
    model.rpn_head.in_channels = 256
    model.rpn_head.feat_channels = 256
    model.roi_head.shared_head.update(depth=18, style='pytorch',
                                      init_cfg=None)
    model.roi_head.bbox_roi_extractor.out_channels = 256
    model.roi_head.bbox_head.in_channels = 512
    return model


@pytest.fixture(scope='module', autouse=True)
def mmdet_scope():
    """Build with mmdet as default scope, as an mmdet config does."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture
def detector_cfg() -> Callable[[str], ConfigDict]:
    """Factory: upstream config name -> shrunk model config."""

    def load(name: str) -> ConfigDict:
        return shrink(get_config(f'mmdet::{name}').model)

    return load
