"""Classification crops of the demo world, for pretraining the demo
backbones (the synthetic stand-in for an ImageNet start).

A crop is a square around one item of a scene (a labelled object or a
distractor, each of its own class) or a window of bare background, resized
to ``size`` x ``size``. Scenes come from seed streams that the demo dataset
never uses (:func:`mmohem.demo.generate.scene_rng` draws ``(seed, 0 | 1,
index)`` for train and val; the crops draw ``(seed, 2 | 3, index)``), so no
demo train or val scene is seen in pretraining.
"""
from typing import List, Tuple

import cv2
import numpy as np

from .scene import Scene, SceneSpec, render_scene
from .shapes import CLASSES, DISTRACTORS

#: Crop classes: the labelled classes, each distractor kind, background.
CROP_CLASSES: Tuple[str, ...] = CLASSES + DISTRACTORS + ('background', )
#: Seed-stream part of each crop split (the demo's splits use 0 and 1).
CROP_STREAMS = {'train': 2, 'val': 3}
_CONTEXT = (1.1, 1.6)
_BACKGROUND_SIDE = (12.0, 64.0)
_BACKGROUND_MAX_COVER = 0.05
_BACKGROUND_PER_SCENE = 2


def render_crops(seed: int, split: str, num_scenes: int,
                 size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Crops of ``num_scenes`` scenes of the pretraining ``split``.

    Args:
        seed (int): Seed of the scene generators.
        split (str): ``'train'`` or ``'val'`` of :data:`CROP_STREAMS`.
        num_scenes (int): Scenes to render.
        size (int): Side of each crop in pixels.

    Returns:
        tuple[np.ndarray, np.ndarray]: Uint8 ``[N, size, size, 3]`` crops
        and int64 ``[N]`` indices into :data:`CROP_CLASSES`.
    """
    if split not in CROP_STREAMS:
        raise ValueError(f'split must be one of {sorted(CROP_STREAMS)}, '
                         f'got {split!r}')
    spec = SceneSpec()
    images: List[np.ndarray] = []
    labels: List[int] = []
    for index in range(num_scenes):
        rng = np.random.default_rng([seed, CROP_STREAMS[split], index])
        scene = render_scene(rng, spec)
        for mask, label in _items(scene):
            images.append(_crop(scene.image, _item_window(rng, mask), size))
            labels.append(label)
        for window in _background_windows(rng, scene, _BACKGROUND_PER_SCENE):
            images.append(_crop(scene.image, window, size))
            labels.append(len(CROP_CLASSES) - 1)
    return np.stack(images), np.asarray(labels, np.int64)


def _items(scene: Scene) -> List[Tuple[np.ndarray, int]]:
    """``(visible mask, crop class)`` of every item of a scene."""
    items = [(obj.mask, obj.label - 1) for obj in scene.objects]
    items += [(d.mask, len(CLASSES) + DISTRACTORS.index(d.kind))
              for d in scene.distractors]
    return items


def _item_window(rng: np.random.Generator,
                 mask: np.ndarray) -> Tuple[float, float, float]:
    """``(centre x, centre y, side)`` of a square around a mask, with some
    context and jitter."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) * rng.uniform(*_CONTEXT)
    jitter = rng.uniform(-0.1, 0.1, 2) * side
    return ((x0 + x1) / 2 + jitter[0], (y0 + y1) / 2 + jitter[1], side)


def _background_windows(rng: np.random.Generator, scene: Scene,
                        count: int) -> List[Tuple[float, float, float]]:
    """Up to ``count`` squares where items cover at most 5% of pixels."""
    covered = scene.label_map > 0
    for item in scene.distractors:
        covered |= item.mask
    integral = cv2.integral(covered.astype(np.uint8))
    height, width = covered.shape
    low, high = np.log(_BACKGROUND_SIDE[0]), np.log(_BACKGROUND_SIDE[1])
    windows = []
    for _ in range(20 * count):
        side = float(np.exp(rng.uniform(low, high)))
        x0 = int(rng.integers(0, width - int(side) + 1))
        y0 = int(rng.integers(0, height - int(side) + 1))
        x1, y1 = x0 + int(side), y0 + int(side)
        hit = (
            integral[y1, x1] - integral[y0, x1] - integral[y1, x0] +
            integral[y0, x0])
        if hit <= _BACKGROUND_MAX_COVER * int(side)**2:
            windows.append(((x0 + x1) / 2, (y0 + y1) / 2, float(int(side))))
            if len(windows) == count:
                break
    return windows


def _crop(image: np.ndarray, window: Tuple[float, float, float],
          size: int) -> np.ndarray:
    """The square ``window`` of ``image`` resized to ``size`` (reflected
    beyond the border)."""
    cx, cy, side = window
    scale = size / side
    matrix = np.array(
        [[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]],
        np.float32)
    return cv2.warpAffine(
        image,
        matrix, (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101)
