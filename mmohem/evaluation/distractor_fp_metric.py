"""False positives of a detector on the unlabelled distractors."""
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmohem.registry import DET_METRICS
from .distractors import Distractors, count_distractor_hits


@DET_METRICS.register_module()
class DistractorFPMetric(BaseMetric):
    """Confident detections on distractors, per image.

    A detection counts when its score is at least ``score_thr`` and its
    IoU with a distractor's visible box is at least ``iou_thr``; OHEM's
    claim is that mining the hard negatives (the distractors) lowers this.
    Logged as ``distractor/fp_per_img`` (mean over the val images).

    Args:
        ann_file (str): COCO file of the distractors of the evaluated split.
        score_thr (float): Least score of a counted detection.
        iou_thr (float): Least IoU with a distractor.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Key prefix, default ``'distractor'``.
    """

    default_prefix: Optional[str] = 'distractor'

    def __init__(self,
                 ann_file: str,
                 score_thr: float = 0.3,
                 iou_thr: float = 0.5,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        for name, value in (('score_thr', score_thr), ('iou_thr', iou_thr)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        self.distractors = Distractors(ann_file)
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Count the distractor hits of each image of a batch."""
        for sample in data_samples:
            pred = sample['pred_instances']
            self.results.append(
                count_distractor_hits(
                    pred['bboxes'].cpu(), pred['scores'].cpu(),
                    self.distractors.boxes(sample['img_path']), self.score_thr,
                    self.iou_thr))

    def compute_metrics(self, results: List[int]) -> Dict[str, float]:
        """``fp_per_img``: mean count over the images."""
        return dict(fp_per_img=sum(results) / max(len(results), 1))
