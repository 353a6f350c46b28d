"""Detection part of mmohem (needs mmdet)."""
from mmohem.registry import has_package

if not has_package('mmdet'):
    raise ImportError(
        "mmohem.det needs mmdet: pip install 'mmdet>=3.0.0,<3.4.0'")

from .mining_rule import BoxMiningRule  # noqa: E402
from .ohem_dense_head import OHEMDenseHeadMixin  # noqa: E402
from .ohem_dense_head import OHEMAnchorHead, OHEMRetinaHead
from .ohem_sampler import OHEMSampler  # noqa: E402
from .ohem_ssd_head import OHEMSSDHead  # noqa: E402
from .ssd_head import SSDHead  # noqa: E402

__all__ = [
    'BoxMiningRule', 'OHEMAnchorHead', 'OHEMDenseHeadMixin', 'OHEMRetinaHead',
    'OHEMSampler', 'OHEMSSDHead', 'SSDHead'
]
