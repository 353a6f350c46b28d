"""OHEM cross-entropy for mmseg decode heads, as a pixel sampler or a loss.

Both flavours are registered as ``mmohem.OhemCrossEntropy``, one in mmseg's
``TASK_UTILS`` (``decode_head.sampler``), one in mmseg's ``MODELS``
(``decode_head.loss_decode``). They are two thin adapters over one rule
(:class:`OhemRule`) rather than one class because the two registries build
with different contracts: a sampler is built with its decode head as
``context`` and answers ``sample()``; a loss is an ``nn.Module`` built with
no context that answers ``forward()`` and ``loss_name``. A single
``nn.Module`` holding its head as ``context`` would also become a submodule
of that head, a reference cycle in the module tree.

The selection (see :mod:`mmohem.mining.pixel`): a valid pixel is hard when
the softmax probability of its true class is below ``thresh``; at least
``min_kept`` pixels per image (times the batch, mined as one pool as mmseg
does) or ``min_kept_ratio`` of the batch's valid pixels are kept, the least
confident first; ``thresh=None`` keeps the top ``min_kept`` by loss. Pixels
are ranked by their unweighted softmax cross-entropy, whatever the class
weights.

Both flavours can be armed by ``mmohem.OHEMVisHook`` (see
:mod:`mmohem.mining.capture`): an armed one stores the kept-pixel mask of
the batch's first image in ``ohem_capture``.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.losses.utils import get_class_weight
from mmseg.structures.sampler import BasePixelSampler
from torch import Tensor, nn

from mmohem.mining import (CapturableMiner, check_pixel_inputs,
                           hard_pixel_mask, select_hard_pixels, valid_pixels)
from mmohem.registry import SEG_MODELS, SEG_TASK_UTILS
from mmohem.utils import (MiningStats, check_choice, check_range,
                          reject_unknown_options, signature_options)

NAME = 'mmohem.OhemCrossEntropy'
DEFAULT_MIN_KEPT = 100000
REDUCTIONS = ('none', 'mean', 'sum')
_EPS = torch.finfo(torch.float32).eps


class OhemRule:
    """The validated selection options both flavours share.

    Args:
        owner (str): Names the flavour in error messages.
        thresh (float, optional): True-class probability in (0, 1] below
            which a pixel is hard; ``None`` ranks by loss only.
        min_kept (int, optional): Least number of pixels kept per image,
            an integer >= 1; the batch keeps ``min_kept * batch_size``.
        min_kept_ratio (float, optional): Least share in (0, 1] of the
            batch's valid pixels kept (the BiSeNet seed keeps 1/16).

    Give at most one of ``min_kept`` and ``min_kept_ratio``; with neither,
    ``min_kept=100000`` (mmseg's ``OHEMPixelSampler`` default).
    """

    def __init__(self,
                 owner: str,
                 thresh: Optional[float] = 0.7,
                 min_kept: Optional[int] = None,
                 min_kept_ratio: Optional[float] = None) -> None:
        check_range(
            owner, 'thresh', thresh, 0, 1, low_open=True, allow_none=True)
        check_range(
            owner, 'min_kept', min_kept, 1, integer=True, allow_none=True)
        check_range(
            owner,
            'min_kept_ratio',
            min_kept_ratio,
            0,
            1,
            low_open=True,
            allow_none=True)
        if min_kept is not None and min_kept_ratio is not None:
            raise ValueError(
                f'{owner}: give `min_kept` (pixels per image) or '
                '`min_kept_ratio` (share of the valid pixels), not both; got '
                f'min_kept={min_kept!r}, min_kept_ratio={min_kept_ratio!r}.')
        if min_kept_ratio is None and min_kept is None:
            min_kept = DEFAULT_MIN_KEPT
        self.thresh = None if thresh is None else float(thresh)
        self.min_kept = None if min_kept is None else int(min_kept)
        self.min_kept_ratio = min_kept_ratio

    def mining_args(self, batch_size: int) -> dict:
        """Keyword arguments of :func:`select_hard_pixels` for a batch."""
        return dict(
            thresh=self.thresh,
            min_kept=(self.min_kept or 0) * batch_size,
            min_kept_ratio=self.min_kept_ratio or 0.)

    def __repr__(self) -> str:
        return (f'thresh={self.thresh}, min_kept={self.min_kept}, '
                f'min_kept_ratio={self.min_kept_ratio}')


@SEG_TASK_UTILS.register_module(name='OhemCrossEntropy')
class OhemCrossEntropySampler(BasePixelSampler, CapturableMiner):
    """OHEM pixel sampler: ``decode_head.sampler`` flavour.

    Returns the 0/1 per-pixel weight that ``BaseDecodeHead.loss_by_feat``
    passes to every loss of ``loss_decode``. The same pixels as mmseg's
    ``OHEMPixelSampler`` with the same ``thresh`` and ``min_kept``, found
    with an ``O(N)`` top-k instead of a sort and without a softmax tensor
    of the logits' size. With ``thresh=None`` pixels are ranked by their
    softmax cross-entropy (mmseg ranks by the sum of ``loss_decode``).

    Args:
        context (nn.Module): The decode head (mmseg passes it); its
            ``ignore_index`` marks the pixels never kept.
        thresh (float, optional): See :class:`OhemRule`. Defaults to 0.7.
        min_kept (int, optional): See :class:`OhemRule`.
        min_kept_ratio (float, optional): See :class:`OhemRule`.
    """

    def __init__(self,
                 context: nn.Module,
                 thresh: Optional[float] = 0.7,
                 min_kept: Optional[int] = None,
                 min_kept_ratio: Optional[float] = None,
                 **unknown) -> None:
        super().__init__()
        owner = f'{NAME} (sampler)'
        reject_unknown_options(
            owner, unknown,
            signature_options(OhemCrossEntropySampler.__init__))
        self.rule = OhemRule(owner, thresh, min_kept, min_kept_ratio)
        _check_context(owner, context)
        self.context = context

    def sample(self, seg_logit: Tensor, seg_label: Tensor) -> Tensor:
        """Per-pixel weight: 1 for the kept pixels, 0 elsewhere.

        Args:
            seg_logit (Tensor[B, C, H, W]): Logits, resized to the labels.
            seg_label (Tensor[B, 1, H, W]): Labels.

        Returns:
            Tensor[B, H, W]: The weight, in the dtype of ``seg_logit``.

        Raises:
            FloatingPointError: When ``seg_logit`` holds NaN or inf.
            ValueError: When a label is neither a class nor ignored.
        """
        labels = _label_map(seg_label, seg_logit)
        keep = hard_pixel_mask(
            seg_logit,
            labels,
            ignore_index=self.context.ignore_index,
            name=f'{NAME} (sampler): seg_logits',
            **self.rule.mining_args(labels.size(0)))
        record_kept_pixels(keep, valid_pixels(labels,
                                              self.context.ignore_index))
        if self.ohem_capture is not None:
            self.ohem_capture.store_pixels(keep)
        return keep.to(seg_logit.dtype)


@SEG_MODELS.register_module(name='OhemCrossEntropy')
class OhemCrossEntropyLoss(nn.Module, CapturableMiner):
    """OHEM softmax cross-entropy: ``decode_head.loss_decode`` flavour.

    Each pixel's cross-entropy is computed once, in float32 whatever the
    logits' dtype (AMP); the kept pixels are selected from its detached
    values and only they contribute. Follows
    mmseg ``CrossEntropyLoss``'s conventions: ``loss_weight`` scales the
    result, ``class_weight`` weights each pixel by its true class, the
    ``ignore_index`` the head passes wins over this loss's own, ``weight``
    (a sampler's) multiplies the pixels' losses, ``avg_factor`` replaces
    the normaliser, and the loss is in the backward graph because
    ``loss_name`` starts with ``loss_``.

    ``reduction='mean'`` divides the sum of the kept pixels' weighted
    losses by:

    * ``avg_non_ignore=True`` (default): the class weights of the kept
      pixels, i.e. the mean over the kept pixels (easy pixels are treated
      as ignored), as the BiSeNet/HRNet/PaddleSeg OHEM losses do;
    * ``avg_non_ignore=False``: the class weights of all pixels, an ignored
      one counting 1 (mmseg's default normaliser; without class weights,
      ``B * H * W``), i.e. easy pixels count as zeros, exactly mmseg's
      ``CrossEntropyLoss`` fed the sampler flavour's weight.

    When every valid pixel is kept, both equal mmseg's ``CrossEntropyLoss``
    with the same ``avg_non_ignore``. A batch with no valid pixel gives 0,
    still part of the graph.

    Args:
        thresh (float, optional): See :class:`OhemRule`. Defaults to 0.7.
        min_kept (int, optional): See :class:`OhemRule`.
        min_kept_ratio (float, optional): See :class:`OhemRule`.
        class_weight (list[float] | str, optional): Weight >= 0 of each
            class, or a file holding them (as mmseg).
        loss_weight (float): Factor >= 0 of the loss.
        avg_non_ignore (bool): See above.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-pixel
            map, 0 on the pixels not kept).
        ignore_index (int, optional): Label of ignored pixels when the
            caller passes none; ``None`` ignores none.
        loss_name (str): Key of the loss; must start with ``loss_``.
    """

    def __init__(self,
                 thresh: Optional[float] = 0.7,
                 min_kept: Optional[int] = None,
                 min_kept_ratio: Optional[float] = None,
                 class_weight: Optional[Union[Sequence[float], str]] = None,
                 loss_weight: float = 1.0,
                 avg_non_ignore: bool = True,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = 255,
                 loss_name: str = 'loss_ce',
                 **unknown) -> None:
        super().__init__()
        owner = f'{NAME} (loss)'
        reject_unknown_options(
            owner, unknown, signature_options(OhemCrossEntropyLoss.__init__))
        self.rule = OhemRule(owner, thresh, min_kept, min_kept_ratio)
        check_range(owner, 'loss_weight', loss_weight, 0)
        check_choice(owner, 'avg_non_ignore', avg_non_ignore, (True, False))
        check_choice(owner, 'reduction', reduction, REDUCTIONS)
        _check_loss_name(owner, loss_name)
        self.loss_weight = float(loss_weight)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.reduction = reduction
        self.ignore_index = _ignore_index(owner, 'ignore_index', ignore_index)
        self._loss_name = loss_name
        self.register_buffer(
            'class_weight',
            _class_weight_tensor(owner, class_weight),
            persistent=False)

    @property
    def loss_name(self) -> str:
        """Key of the loss in the head's loss dict."""
        return self._loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None) -> Tensor:
        """OHEM cross-entropy of a batch.

        Args:
            cls_score (Tensor[B, C, H, W]): Logits.
            label (Tensor[B, H, W]): Labels.
            weight (Tensor[B, H, W], optional): Per-pixel weight.
            avg_factor (float, optional): Normaliser of ``'mean'``.
            reduction_override (str, optional): Replaces ``reduction``.
            ignore_index (int, optional): Replaces this loss's own.

        Returns:
            Tensor: Scalar, or Tensor[B, H, W] for ``'none'``.

        Raises:
            FloatingPointError: When ``cls_score`` holds NaN or inf.
            ValueError: When a label is neither a class nor ignored.
        """
        owner = f'{NAME} (loss)'
        check_choice(owner, 'reduction_override', reduction_override,
                     (None, ) + REDUCTIONS)
        ignore_index = self.ignore_index if ignore_index is None else \
            _ignore_index(owner, 'ignore_index', ignore_index)
        valid = valid_pixels(label, ignore_index)
        check_pixel_inputs(cls_score, label, valid, ignore_index,
                           f'{owner}: seg_logits')
        losses = F.cross_entropy(
            cls_score.float(),
            label,
            reduction='none',
            ignore_index=-100 if ignore_index is None else ignore_index)
        keep = select_hard_pixels(losses, valid,
                                  **self.rule.mining_args(label.size(0)))
        record_kept_pixels(keep, valid)
        if self.ohem_capture is not None:
            self.ohem_capture.store_pixels(keep)
        class_w = self._pixel_class_weight(label, valid, cls_score.size(1))
        pixel_w = keep.to(losses.dtype) if class_w is None else keep * class_w
        if weight is not None:
            pixel_w = pixel_w * weight
        losses = losses * pixel_w
        reduction = reduction_override or self.reduction
        if reduction == 'none':
            return self.loss_weight * losses
        if reduction == 'sum':
            return self.loss_weight * losses.sum()
        if avg_factor is None:
            avg_factor = self._normaliser(keep, valid, class_w)
        return self.loss_weight * losses.sum() / (avg_factor + _EPS)

    def _pixel_class_weight(self, label: Tensor, valid: Tensor,
                            num_classes: int) -> Optional[Tensor]:
        """Class weight of each valid pixel (Tensor[B, H, W]; 0 if not)."""
        if self.class_weight is None:
            return None
        if self.class_weight.numel() != num_classes:
            raise ValueError(
                f'{NAME} (loss): `class_weight` has '
                f'{self.class_weight.numel()} entries but the logits have '
                f'{num_classes} classes.')
        return self.class_weight[label.long().where(valid, 0)] * valid

    def _normaliser(self, keep: Tensor, valid: Tensor,
                    class_w: Optional[Tensor]) -> Union[Tensor, int]:
        """Denominator of the mean (see the class docstring)."""
        if self.avg_non_ignore:
            return keep.count_nonzero() if class_w is None else (
                keep * class_w).sum()
        if class_w is None:
            return valid.numel()
        return class_w.where(valid, 1.).sum()

    def extra_repr(self) -> str:
        return (f'{self.rule}, avg_non_ignore={self.avg_non_ignore}, '
                f'loss_weight={self.loss_weight}, loss_name={self.loss_name}')


def record_kept_pixels(keep: Tensor, valid: Tensor) -> None:
    """Log the mining statistics of a batch with one host copy (see
    :mod:`mmohem.utils.mining_stats`): ``kept_fraction`` (kept / valid
    pixels) and ``num_kept`` (kept pixels per image). A head with OHEM in
    both its loss and its auxiliary loss logs the mean of the two.

    Args:
        keep (Tensor[B, H, W]): Bool mask of the kept pixels.
        valid (Tensor[B, H, W]): Bool mask of the valid pixels.
    """
    num_kept = keep.count_nonzero().float()
    MiningStats().log(
        kept_fraction=num_kept / valid.count_nonzero().clamp(min=1),
        num_kept=num_kept / keep.size(0))


def _label_map(seg_label: Tensor, seg_logit: Tensor) -> Tensor:
    """``seg_label`` Tensor[B, 1, H, W] (or [B, H, W]) as Tensor[B, H, W]."""
    labels = seg_label.squeeze(1) if seg_label.dim() == 4 else seg_label
    if labels.shape != seg_logit.shape[:1] + seg_logit.shape[2:]:
        raise ValueError(
            f'{NAME} (sampler): seg_label of shape {tuple(seg_label.shape)} '
            f'does not match seg_logit of shape {tuple(seg_logit.shape)}.')
    return labels


def _check_context(owner: str, context: nn.Module) -> None:
    """Check that ``context`` is a decode head with an ``ignore_index``."""
    if not hasattr(context, 'ignore_index'):
        raise TypeError(
            f'{owner} must be built with its decode head as `context` (as '
            'mmseg does for `decode_head.sampler`), got '
            f'{type(context).__name__}; as a loss use it in `loss_decode`.')
    _ignore_index(owner, 'context.ignore_index', context.ignore_index)


def _ignore_index(owner: str, name: str, value) -> Optional[int]:
    """``value`` checked to be an integer label or ``None``, as an int."""
    check_range(owner, name, value, integer=True, allow_none=True)
    return None if value is None else int(value)


def _check_loss_name(owner: str, loss_name: str) -> None:
    """mmseg back-propagates only the losses whose key starts with loss_."""
    if not (isinstance(loss_name, str) and loss_name.startswith('loss_')):
        raise ValueError(
            f"{owner}: `loss_name` must be a str starting with 'loss_' "
            '(mmseg leaves other keys out of the backward pass), got '
            f'{loss_name!r}.')


def _class_weight_tensor(
        owner: str, class_weight: Optional[Union[Sequence[float],
                                                 str]]) -> Optional[Tensor]:
    """Validated class weights as a float32 Tensor[C], or ``None``."""
    if class_weight is None:
        return None
    values = get_class_weight(class_weight)
    if hasattr(values, 'tolist'):
        values = values.tolist()
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f'{owner}: `class_weight` must be a non-empty list '
                         f'of numbers >= 0 or a file of them, got '
                         f'{class_weight!r}.')
    for i, value in enumerate(values):
        check_range(owner, f'class_weight[{i}]', value, 0)
    return torch.tensor(values, dtype=torch.float32)
