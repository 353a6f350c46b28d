"""``mmohem.CandidateLossHook``: log the mean loss over all training
candidates, for any arm (baseline or OHEM)."""
from typing import Callable, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from mmohem.registry import HOOKS
from mmohem.utils import check_range, kept_buffers, read_only

#: Its key in the logs (``train/`` in the MessageHub).
LOG_KEY = 'candidate_loss'

LossFn = Callable[[nn.Module, Tensor, list], Tensor]


@HOOKS.register_module()
class CandidateLossHook(Hook):
    """Every ``interval`` iterations, before the training step, log the
    mean loss of the model over all the candidates of the batch: every RoI
    (two-stage detectors), every anchor (``AnchorHead`` dense heads, SSD,
    RetinaNet), every valid pixel (segmentors).

    One read-only pass (no gradient, eval mode, every buffer restored after
    it, the batch the step is about to train on): see
    :mod:`mmohem.det.candidate_loss` and :mod:`mmohem.seg.candidate_loss`
    for what is summed. The value goes to
    the MessageHub as ``train/candidate_loss``; give the log processor
    ``custom_cfg=[dict(data_src='candidate_loss', method_name='mean',
    window_size=1)]``
    and the same interval as the logger so that each log line shows the
    latest value rather than a window mean. A model it cannot measure
    fails at ``before_train``.

    Args:
        interval (int): Iterations between measurements.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 10) -> None:
        check_range(
            'CandidateLossHook', 'interval', interval, low=1, integer=True)
        self.interval = int(interval)
        self._loss_fn: Optional[LossFn] = None

    def before_train(self, runner) -> None:
        """Pick the measure of the model; raise if it has none."""
        self._loss_fn = candidate_loss_fn(_unwrap(runner.model))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Measure the batch on measuring iterations."""
        if data_batch is None or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = _unwrap(runner.model)
        with read_only(model), kept_buffers(model):
            data = model.data_preprocessor(data_batch, True)
            loss = self._loss_fn(model, data['inputs'], data['data_samples'])
        runner.message_hub.update_scalar(f'train/{LOG_KEY}', float(loss))


def candidate_loss_fn(model: nn.Module) -> LossFn:
    """The candidate-loss function of a detector or segmentor.

    Raises:
        TypeError: If the model is neither kind, or of a kind not measured.
    """
    if hasattr(model, 'decode_head'):
        from mmohem.seg.candidate_loss import (check_segmentor,
                                               segmentor_candidate_loss)
        check_segmentor(model)
        return segmentor_candidate_loss
    if hasattr(model, 'roi_head') or hasattr(model, 'bbox_head'):
        from mmohem.det.candidate_loss import (check_detector,
                                               detector_candidate_loss)
        check_detector(model)
        return detector_candidate_loss
    raise TypeError('CandidateLossHook measures mmdet detectors and mmseg '
                    f'segmentors, got {type(model).__name__}.')


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model
