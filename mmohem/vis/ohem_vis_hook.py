"""``mmohem.OHEMVisHook``: draw what OHEM mines on a training image."""
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.visualization import Visualizer
from torch import Tensor, nn

from mmohem.mining import CapturableMiner, MiningCapture
from mmohem.registry import HOOKS
from mmohem.utils import (check_choice, check_range, reject_unknown_options,
                          signature_options)

#: RGB colours: kept positives, kept negatives, kept pixels.
POS_COLOR = (0, 255, 0)
NEG_COLOR = (255, 0, 0)
PIXEL_COLOR = (255, 0, 255)
#: Line styles of the kept boxes and, faint, of those the loss-NMS removed.
KEPT_STYLE = dict(alpha=0.9, line_widths=0.8)
SUPPRESSED_STYLE = dict(alpha=0.4, line_widths=0.5)
PIXEL_ALPHA = 0.5
CHANNEL_ORDERS = ('auto', 'bgr', 'rgb')


@HOOKS.register_module()
class OHEMVisHook(Hook):
    """Draw the hard examples OHEM mines, every ``interval`` iterations.

    On a drawing iteration, for the first image of the batch and for each
    OHEM miner of the model, a grey copy of the image goes through
    ``Visualizer.get_current_instance().add_image`` (so into every
    configured vis backend, e.g. ``vis_data/vis_image/ohem_<miner>_<iter>.png``
    with ``LocalVisBackend``), with:

    * boxes (``mmohem.OHEMSampler`` of a RoI head or of
      ``mmohem.OHEMSSDHead``): the kept candidates, positives in green and
      negatives in red, and faintly those the loss-based NMS removed. The
      boxes are those the NMS compared (proposals, prior anchors or, with
      ``nms_boxes='predicted'``, predictions), clipped to the image;
    * pixels (``mmohem.OhemCrossEntropy``, sampler or loss): the kept
      pixels in magenta over the image.

    ``<miner>`` is the miner's path in the model, e.g.
    ``roi_head.bbox_sampler`` (``roi_head.bbox_sampler.1`` for a cascade
    stage), ``bbox_head.ohem_sampler``, ``decode_head.sampler`` or
    ``decode_head.loss_decode``.

    Costs nothing between drawings: the miners are armed (given an empty
    :class:`~mmohem.mining.MiningCapture`) only before a drawing iteration,
    store their first image's masks on the device, and are disarmed after
    it. A model without an OHEM miner fails at ``before_train``.

    The picture is ``data_batch['inputs'][0]`` as the dataloader yields it,
    whose pixels are those of the mined boxes and masks (any batch padding
    is cropped); a data preprocessor that rescales the batch
    (``batch_augments`` such as ``BatchSyncRandomResize``) would misplace
    them.

    Args:
        interval (int): Draw every ``interval`` training iterations, an
            integer >= 1.
        max_boxes (int): At most this many boxes of each kind (kept
            positives, kept negatives, suppressed positives, suppressed
            negatives) are drawn, the first in candidate order; an integer
            >= 1.
        channel_order (str): Channel order of ``data_batch['inputs']``:
            ``'bgr'``, ``'rgb'``, or ``'auto'``: RGB when the config's
            ``model.data_preprocessor`` has ``rgb_to_bgr=True``, otherwise
            BGR (mmcv's loading order, which ``bgr_to_rgb=True`` converts).
    """

    def __init__(self,
                 interval: int = 50,
                 max_boxes: int = 200,
                 channel_order: str = 'auto',
                 **unknown) -> None:
        owner = 'mmohem.OHEMVisHook'
        reject_unknown_options(owner, unknown,
                               signature_options(OHEMVisHook.__init__))
        check_range(owner, 'interval', interval, low=1, integer=True)
        check_range(owner, 'max_boxes', max_boxes, low=1, integer=True)
        check_choice(owner, 'channel_order', channel_order, CHANNEL_ORDERS)
        self.interval = int(interval)
        self.max_boxes = int(max_boxes)
        self.channel_order = channel_order
        self._miners: Dict[str, CapturableMiner] = {}
        self._bgr = channel_order == 'bgr'

    def before_train(self, runner) -> None:
        """Find the model's miners and the input channel order.

        Raises:
            ValueError: When the model has no OHEM miner.
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._miners = find_miners(model)
        if not self._miners:
            raise ValueError(
                f'mmohem.OHEMVisHook: {type(model).__name__} has no OHEM '
                'miner to draw. Searched every submodule, and the samplers '
                "they hold, for mmohem.OHEMSampler (a RoI head's "
                "`bbox_sampler`, an mmohem dense head's `ohem_sampler`) "
                "and mmohem.OhemCrossEntropy (a decode head's `sampler` or "
                '`loss_decode`). Train an OHEM config or remove the hook '
                'from custom_hooks.')
        if self.channel_order == 'auto':
            self._bgr = auto_channel_order(runner.cfg) == 'bgr'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Arm the miners before a drawing iteration (main process only)."""
        if self.every_n_train_iters(runner, self.interval) and \
                is_main_process():
            for miner in self._miners.values():
                miner.ohem_capture = MiningCapture()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Disarm the miners and draw what they stored."""
        taken = {name: disarm(miner) for name, miner in self._miners.items()}
        captures = {
            name: capture
            for name, capture in taken.items()
            if capture is not None and not capture.empty
        }
        if not captures:
            return
        image = to_rgb(data_batch['inputs'][0], self._bgr)
        visualizer = Visualizer.get_current_instance()
        for name, capture in captures.items():
            visualizer.add_image(
                f'ohem_{name}',
                self.draw(visualizer, image, capture),
                step=runner.iter + 1)

    def draw(self, visualizer: Visualizer, image: np.ndarray,
             capture: MiningCapture) -> np.ndarray:
        """Draw one capture over ``image``.

        Args:
            visualizer (Visualizer): Draws.
            image (np.ndarray): uint8 RGB image, array[H, W, 3]; drawn on
                in grey, so that the colours stand out.
            capture (MiningCapture): What a miner stored.

        Returns:
            np.ndarray: The drawn uint8 RGB image, array[H, W, 3].
        """
        visualizer.set_image(grey(image))
        if capture.boxes is None:
            visualizer.draw_binary_masks(
                fit_mask(capture.kept, image.shape[:2]),
                colors=PIXEL_COLOR,
                alphas=PIXEL_ALPHA)
        else:
            self._draw_boxes(visualizer, capture, image.shape[:2])
        return visualizer.get_image()

    def _draw_boxes(self, visualizer: Visualizer, capture: MiningCapture,
                    shape: Tuple[int, int]) -> None:
        """Suppressed boxes (faint) under kept negatives under positives."""
        height, width = shape
        boxes = capture.boxes.detach().float().cpu()
        boxes = boxes.clamp(min=0).minimum(
            boxes.new_tensor([width, height, width, height]) - 1)
        drawable = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        is_pos = capture.is_pos.cpu()
        kept = capture.kept.cpu() & drawable
        suppressed = capture.suppressed.cpu() & drawable
        for mask, color, style in (
            (suppressed & ~is_pos, NEG_COLOR, SUPPRESSED_STYLE),
            (suppressed & is_pos, POS_COLOR, SUPPRESSED_STYLE),
            (kept & ~is_pos, NEG_COLOR, KEPT_STYLE),
            (kept & is_pos, POS_COLOR, KEPT_STYLE),
        ):
            chosen = boxes[mask][:self.max_boxes]
            if len(chosen):
                visualizer.draw_bboxes(chosen, edge_colors=color, **style)


def find_miners(model: nn.Module) -> Dict[str, CapturableMiner]:
    """Every OHEM miner of ``model``, by its dotted path in the model.

    Miners are submodules (the loss flavour) or plain attributes of a
    module, alone or in a list (``roi_head.bbox_sampler``, a list in a
    cascade; ``bbox_head.ohem_sampler``; ``decode_head.sampler``).

    Args:
        model (nn.Module): The unwrapped model.

    Returns:
        dict[str, CapturableMiner]: Each miner once, in module order.
    """
    found: Dict[str, CapturableMiner] = {}
    seen = set()
    for name, module in model.named_modules():
        candidates = {name: module}
        for attr, value in vars(module).items():
            candidates.update(_attribute_miners(_join(name, attr), value))
        for path, miner in candidates.items():
            if isinstance(miner, CapturableMiner) and id(miner) not in seen:
                seen.add(id(miner))
                found[path] = miner
    return found


def disarm(miner: CapturableMiner) -> Optional[MiningCapture]:
    """Take the capture of ``miner`` back, restoring the class default."""
    return vars(miner).pop('ohem_capture', None)


def auto_channel_order(cfg: Any) -> str:
    """``'rgb'`` when ``cfg.model.data_preprocessor.rgb_to_bgr``, else
    ``'bgr'``."""
    model = cfg.get('model') if cfg is not None else None
    preprocessor = model.get('data_preprocessor') if isinstance(model,
                                                                dict) else None
    rgb = isinstance(preprocessor, dict) and preprocessor.get('rgb_to_bgr')
    return 'rgb' if rgb else 'bgr'


def to_rgb(image: Tensor, bgr: bool) -> np.ndarray:
    """A network input as a drawable RGB image.

    Args:
        image (Tensor[C, H, W]): ``data_batch['inputs'][i]``, C = 1 or 3.
        bgr (bool): Whether the channels are in BGR order.

    Returns:
        np.ndarray: uint8 array[H, W, 3], RGB.
    """
    image = image.detach().clamp(0, 255).to(torch.uint8).cpu()
    if bgr and image.size(0) == 3:
        image = image.flip(0)
    image = image.expand(3, -1, -1)
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 RGB array[H, W, 3] -> its grey levels, still array[H, W, 3]."""
    return cv2.cvtColor(
        cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def fit_mask(mask: Tensor, shape: Sequence[int]) -> np.ndarray:
    """A bool mask cropped (batch padding) or padded with False to
    ``shape``.

    Args:
        mask (Tensor[h, w]): Bool mask anchored at the top-left corner.
        shape (tuple[int, int]): Image ``(H, W)``.

    Returns:
        np.ndarray: Bool array[H, W].
    """
    fitted = torch.zeros(tuple(shape), dtype=torch.bool)
    height, width = min(shape[0], mask.size(0)), min(shape[1], mask.size(1))
    fitted[:height, :width] = mask[:height, :width].cpu()
    return fitted.numpy()


def _attribute_miners(path: str, value: Any) -> Dict[str, Any]:
    """``{path: value}``, or one entry per item of a list or tuple."""
    if isinstance(value, (list, tuple)):
        return {f'{path}.{i}': item for i, item in enumerate(value)}
    return {path: value}


def _join(prefix: str, name: str) -> str:
    return f'{prefix}.{name}' if prefix else name
