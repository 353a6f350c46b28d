"""Distractor pixels a segmentor claims for a class."""
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.evaluator import BaseMetric

from mmohem.registry import SEG_METRICS
from .distractors import Distractors, distractor_pixels_claimed


@SEG_METRICS.register_module()
class DistractorPixelMetric(BaseMetric):
    """Share of distractor pixels predicted as a class, in %.

    The distractors are background in the label maps; a pixel of theirs
    predicted as any other label is a false positive. Logged as
    ``distractor/pixel_fp`` (all distractor pixels of the split pooled).

    Args:
        ann_file (str): COCO file of the distractors of the evaluated split.
        background (int): The background label of the label maps.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Key prefix, default ``'distractor'``.
    """

    default_prefix: Optional[str] = 'distractor'

    def __init__(self,
                 ann_file: str,
                 background: int = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.distractors = Distractors(ann_file)
        self.background = background

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Claimed and total distractor pixels of each image of a batch."""
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy()
            mask = self.distractors.mask(sample['img_path'], pred.shape)
            self.results.append(
                (distractor_pixels_claimed(pred, mask,
                                           self.background), int(mask.sum())))

    def compute_metrics(self, results: List[Tuple[int,
                                                  int]]) -> Dict[str, float]:
        """``pixel_fp``: claimed over all distractor pixels, in %."""
        claimed = sum(r[0] for r in results)
        total = sum(r[1] for r in results)
        return dict(pixel_fp=100 * claimed / max(total, 1))
