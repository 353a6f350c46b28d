"""Mining math in plain torch: no registry, no mmdet / mmseg imports."""
from .capture import CapturableMiner, MiningCapture
from .example_loss import (box_losses, cls_losses, delta_affine, delta_targets,
                           example_losses)
from .hard_examples import (NMS_CHUNK, MiningResult, loss_nms,
                            mine_hard_examples, select_top_losses)
from .pixel import (CHUNK_BYTES, LABELS_NAME, PixelSelection,
                    check_finite_logits, check_labels, class_targets,
                    hard_pixel_mask, kept_count, mine_pixels, num_classes,
                    pixel_bce, pixel_cross_entropy, pixel_nll, pixel_path,
                    select_hard_pixels, select_pixels, top_loss_mask,
                    valid_pixels)

__all__ = [
    'CapturableMiner', 'MiningCapture', 'MiningResult', 'NMS_CHUNK',
    'box_losses', 'cls_losses', 'delta_affine', 'delta_targets',
    'example_losses', 'loss_nms', 'mine_hard_examples', 'select_top_losses',
    'CHUNK_BYTES', 'LABELS_NAME', 'PixelSelection', 'check_finite_logits',
    'check_labels', 'class_targets', 'hard_pixel_mask', 'kept_count',
    'mine_pixels', 'num_classes', 'pixel_bce', 'pixel_cross_entropy',
    'pixel_nll', 'pixel_path', 'select_hard_pixels', 'select_pixels',
    'top_loss_mask', 'valid_pixels'
]
