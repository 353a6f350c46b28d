"""Small detectors built from the upstream mmdet configs, for CPU tests."""
from typing import Callable

import pytest
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope

from mmohem.testing import small_detector


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
        return small_detector(name)

    return load
