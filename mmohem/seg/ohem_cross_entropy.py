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
confident first, and at least one pixel whenever one is valid;
``thresh=None`` keeps the top ``min_kept`` by loss. Pixels are ranked by
their unweighted softmax cross-entropy, whatever the class weights.

Binary segmentation the mmseg 1.x way (``out_channels=1``, ``num_classes=2``
and ``loss_decode`` with ``use_sigmoid=True``; label 1 foreground, 0
background) ranks by the per-pixel binary cross-entropy with logits: the
sampler finds such a head in its context, the loss takes
``use_sigmoid=True``.

Both flavours can be armed by ``mmohem.OHEMVisHook`` (see
:mod:`mmohem.mining.capture`): an armed one stores the kept-pixel mask of
the batch's first image in ``ohem_capture``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmseg.models import losses as mmseg_losses
from mmseg.models.losses.utils import get_class_weight, weight_reduce_loss
from mmseg.structures.sampler import BasePixelSampler
from torch import Tensor, nn

from mmohem.mining import (CapturableMiner, PixelSelection, class_targets,
                           mine_pixels, num_classes, pixel_bce,
                           pixel_cross_entropy, select_pixels, valid_pixels)
from mmohem.registry import SEG_MODELS, SEG_TASK_UTILS
from mmohem.utils import (MiningStats, check_choice, check_range,
                          reject_unknown_options, signature_options)

NAME = 'mmohem.OhemCrossEntropy'
DEFAULT_MIN_KEPT = 100000
REDUCTIONS = ('none', 'mean', 'sum')
#: mmseg losses that cannot apply the per-pixel weight a pixel sampler
#: passes to every loss of ``loss_decode``: they fail on it (DiceLoss and
#: FocalLoss assert or mismatch shapes, the others take no ``weight``) or
#: drop it (TverskyLoss, LovaszLoss, HuasdorffDisstanceLoss).
UNWEIGHTED_LOSSES = ('DiceLoss', 'FocalLoss', 'TverskyLoss', 'LovaszLoss',
                     'HuasdorffDisstanceLoss', 'BoundaryLoss', 'SiLogLoss',
                     'OhemCrossEntropy')


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
    passes to every loss of ``loss_decode``, so each of them must apply it:
    building fails on a loss that cannot (:data:`UNWEIGHTED_LOSSES`, e.g.
    ``DiceLoss``; put the loss flavour in ``loss_decode`` instead). The
    same pixels as mmseg's ``OHEMPixelSampler`` with the same ``thresh``
    and ``min_kept``, found without a sort and without a softmax tensor of
    the logits' size. With ``thresh=None`` pixels are ranked by their
    softmax cross-entropy (mmseg ranks by the sum of ``loss_decode``). A
    binary head (``out_channels=1``, its losses with ``use_sigmoid=True``)
    is mined by the per-pixel binary cross-entropy of its single logit.

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
        _check_weighted_losses(owner, context)
        self.sigmoid = _is_sigmoid_head(owner, context)
        self.context = context

    def sample(self, seg_logit: Tensor, seg_label: Tensor) -> Tensor:
        """Per-pixel weight: 1 for the kept pixels, 0 elsewhere.

        Args:
            seg_logit (Tensor[B, C, H, W]): Logits, resized to the labels;
                Tensor[B, 1, H, W] for a binary head.
            seg_label (Tensor[B, 1, H, W]): Labels.

        Returns:
            Tensor[B, H, W]: The weight, in the dtype of ``seg_logit``.

        Raises:
            FloatingPointError: When ``seg_logit`` holds NaN or inf.
            ValueError: When a label is neither a class nor ignored, or the
                channels do not match the head.
        """
        labels = _label_map(seg_label, seg_logit)
        self._check_channels(seg_logit)
        mined = mine_pixels(
            seg_logit,
            labels,
            ignore_index=self.context.ignore_index,
            name=f'{NAME} (sampler): seg_logits',
            sigmoid=self.sigmoid,
            **self.rule.mining_args(labels.size(0)))
        record_kept_pixels(mined, labels.size(0))
        if self.ohem_capture is not None:
            self.ohem_capture.store_pixels(mined.keep)
        return mined.keep.to(seg_logit.dtype)

    def _check_channels(self, seg_logit: Tensor) -> None:
        """One channel exactly when the head is a binary sigmoid head."""
        channels = seg_logit.size(1)
        if self.sigmoid and channels != 1:
            raise ValueError(
                f'{NAME} (sampler): the decode head is binary '
                '(`out_channels`=1, `use_sigmoid`=True) but seg_logit has '
                f'{channels} channels (shape {tuple(seg_logit.shape)}).')
        if not self.sigmoid and channels == 1:
            raise ValueError(
                f'{NAME} (sampler): seg_logit has 1 channel but the decode '
                'head is not a binary sigmoid head (its `out_channels` is '
                f'{getattr(self.context, "out_channels", None)!r}); for '
                'binary segmentation set out_channels=1, num_classes=2 and '
                'use_sigmoid=True in its loss_decode, as mmseg does.')


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
    ``loss_name`` starts with ``loss_``. With ``use_sigmoid=True`` it is
    the binary cross-entropy with logits of a single-channel binary head
    (``out_channels=1``; label 1 foreground, 0 background), mined the same
    way (hard: probability of the true class below ``thresh``).

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
            class (2 entries, background and foreground, with
            ``use_sigmoid``), or a file holding them (as mmseg).
        loss_weight (float): Factor >= 0 of the loss.
        avg_non_ignore (bool): See above.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` (the per-pixel
            map, 0 on the pixels not kept).
        ignore_index (int, optional): Label of ignored pixels when the
            caller passes none; ``None`` ignores none.
        loss_name (str): Key of the loss; must start with ``loss_``.
        use_sigmoid (bool): Binary cross-entropy of single-channel logits
            instead of the softmax cross-entropy. Defaults to False.
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
                 use_sigmoid: bool = False,
                 **unknown) -> None:
        super().__init__()
        owner = f'{NAME} (loss)'
        reject_unknown_options(
            owner, unknown, signature_options(OhemCrossEntropyLoss.__init__))
        self.rule = OhemRule(owner, thresh, min_kept, min_kept_ratio)
        check_range(owner, 'loss_weight', loss_weight, 0)
        check_choice(owner, 'avg_non_ignore', avg_non_ignore, (True, False))
        check_choice(owner, 'reduction', reduction, REDUCTIONS)
        check_choice(owner, 'use_sigmoid', use_sigmoid, (True, False))
        _check_loss_name(owner, loss_name)
        self.loss_weight = float(loss_weight)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.reduction = reduction
        self.use_sigmoid = bool(use_sigmoid)
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
            cls_score (Tensor[B, C, H, W]): Logits; Tensor[B, 1, H, W] with
                ``use_sigmoid``.
            label (Tensor[B, H, W]): Labels.
            weight (Tensor[B, H, W], optional): Per-pixel weight.
            avg_factor (float, optional): Normaliser of ``'mean'``.
            reduction_override (str, optional): Replaces ``reduction``.
            ignore_index (int, optional): Replaces this loss's own.

        Returns:
            Tensor: Scalar, or Tensor[B, H, W] for ``'none'``.

        Raises:
            FloatingPointError: When ``cls_score`` holds NaN or inf.
            ValueError: When a label is neither a class nor ignored, or the
                channels do not match ``use_sigmoid``.
        """
        owner = f'{NAME} (loss)'
        check_choice(owner, 'reduction_override', reduction_override,
                     (None, ) + REDUCTIONS)
        ignore_index = self.ignore_index if ignore_index is None else \
            _ignore_index(owner, 'ignore_index', ignore_index)
        self._check_channels(cls_score)
        mined, losses = self._mine(cls_score, label, ignore_index)
        record_kept_pixels(mined, label.size(0))
        if self.ohem_capture is not None:
            self.ohem_capture.store_pixels(mined.keep)
        class_w = self._pixel_class_weight(label, ignore_index, cls_score)
        losses = losses * (
            mined.keep if class_w is None else mined.keep * class_w)
        reduction = reduction_override or self.reduction
        if reduction == 'mean' and avg_factor is None:
            avg_factor = self._normaliser(mined, label, ignore_index, class_w)
        return self.loss_weight * weight_reduce_loss(
            losses, weight, reduction,
            avg_factor if reduction == 'mean' else None)

    def _check_channels(self, cls_score: Tensor) -> None:
        """One channel exactly when ``use_sigmoid``."""
        channels = cls_score.size(1)
        if self.use_sigmoid and channels != 1:
            raise ValueError(
                f'{NAME} (loss): `use_sigmoid`=True takes the single-channel '
                'logits of a binary head (out_channels=1), got '
                f'{channels} channels (shape {tuple(cls_score.shape)}); set '
                f'use_sigmoid=False for a softmax over {channels} classes.')
        if not self.use_sigmoid and channels == 1:
            raise ValueError(
                f'{NAME} (loss): got single-channel logits (shape '
                f'{tuple(cls_score.shape)}), a binary head (out_channels=1);'
                ' set `use_sigmoid`=True for its binary cross-entropy '
                '(`use_sigmoid`=False, the default, is a softmax over >= 2 '
                'classes).')

    def _mine(self, cls_score: Tensor, label: Tensor,
              ignore_index: Optional[int]) -> Tuple[PixelSelection, Tensor]:
        """The kept pixels and every pixel's differentiable loss
        (Tensor[B, H, W], float32)."""
        name = f'{NAME} (loss): seg_logits'
        target = class_targets(label,
                               num_classes(cls_score, self.use_sigmoid, name))
        losses = pixel_bce(cls_score, target) if self.use_sigmoid else \
            pixel_cross_entropy(cls_score, target)
        mined = select_pixels(
            cls_score,
            label,
            target,
            losses,
            ignore_index=ignore_index,
            name=name,
            sigmoid=self.use_sigmoid,
            **self.rule.mining_args(label.size(0)))
        return mined, losses

    def _pixel_class_weight(self, label: Tensor, ignore_index: Optional[int],
                            cls_score: Tensor) -> Optional[Tensor]:
        """Class weight of each valid pixel (Tensor[B, H, W]; 0 if not)."""
        if self.class_weight is None:
            return None
        classes = 2 if self.use_sigmoid else cls_score.size(1)
        if self.class_weight.numel() != classes:
            which = ' (background, foreground: use_sigmoid=True)' \
                if self.use_sigmoid else ''
            raise ValueError(
                f'{NAME} (loss): `class_weight` has '
                f'{self.class_weight.numel()} entries but the logits have '
                f'{classes} classes{which}.')
        target = class_targets(label, classes)
        return self.class_weight[target] * valid_pixels(label, ignore_index)

    def _normaliser(self, mined: PixelSelection, label: Tensor,
                    ignore_index: Optional[int],
                    class_w: Optional[Tensor]) -> Union[Tensor, int]:
        """Denominator of the mean (see the class docstring)."""
        if self.avg_non_ignore:
            return mined.num_kept if class_w is None else (mined.keep *
                                                           class_w).sum()
        if class_w is None:
            return label.numel()
        return class_w.where(valid_pixels(label, ignore_index), 1.).sum()

    def extra_repr(self) -> str:
        return (f'{self.rule}, avg_non_ignore={self.avg_non_ignore}, '
                f'use_sigmoid={self.use_sigmoid}, '
                f'loss_weight={self.loss_weight}, loss_name={self.loss_name}')


def record_kept_pixels(mined: PixelSelection, batch_size: int) -> None:
    """Log the mining statistics of a batch from counts already on the host
    (see :mod:`mmohem.utils.mining_stats`): ``kept_fraction`` (kept / valid
    pixels) and ``kept_pixels`` (kept pixels per image). A head with OHEM
    in both its loss and its auxiliary loss logs the mean of the two.

    Args:
        mined (PixelSelection): The batch's selection.
        batch_size (int): Images in the batch.
    """
    MiningStats().log(
        kept_fraction=mined.num_kept / max(mined.num_valid, 1),
        kept_pixels=mined.num_kept / max(batch_size, 1))


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


def _decode_losses(context: nn.Module) -> List[nn.Module]:
    """The losses of the head's ``loss_decode`` (none if it has none)."""
    losses = getattr(context, 'loss_decode', None)
    if losses is None:
        return []
    if isinstance(losses, (nn.ModuleList, list, tuple)):
        return list(losses)
    return [losses]


def _check_weighted_losses(owner: str, context: nn.Module) -> None:
    """Raise ``ValueError`` when a loss of the head's ``loss_decode``
    cannot apply the sampler's per-pixel weight (mmseg's own sampler ends
    in an ``AssertionError`` inside ``dice_loss``)."""
    unweighted = tuple(
        getattr(mmseg_losses, name) for name in UNWEIGHTED_LOSSES
        if hasattr(mmseg_losses, name))
    for i, loss in enumerate(_decode_losses(context)):
        if isinstance(loss, unweighted):
            name = type(loss).__name__
            raise ValueError(
                f'{owner}: loss_decode[{i}] is {name}, which cannot apply the '
                'per-pixel weight a pixel sampler passes to every loss of '
                f'`loss_decode` (not supported: {", ".join(UNWEIGHTED_LOSSES)}'
                f'). Remove `sampler` and put dict(type=\'{NAME}\', ...) (the '
                f'loss flavour) in `loss_decode` beside {name}, which then '
                'stays unweighted.')


def _is_sigmoid_head(owner: str, context: nn.Module) -> bool:
    """Whether ``context`` is a binary head mmseg's way (``out_channels=1``);
    then each loss of its ``loss_decode`` that has ``use_sigmoid`` must
    set it."""
    if getattr(context, 'out_channels', None) != 1:
        return False
    for i, loss in enumerate(_decode_losses(context)):
        if not getattr(loss, 'use_sigmoid', True):
            raise ValueError(
                f'{owner}: the decode head is binary (`out_channels`=1) but '
                f'loss_decode[{i}] ({type(loss).__name__}) has '
                '`use_sigmoid`=False; set use_sigmoid=True (mmseg binary '
                'segmentation: out_channels=1, num_classes=2), or '
                'out_channels=num_classes for a softmax head.')
    return True


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
