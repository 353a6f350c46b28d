"""Render one synthetic scene: image, label map and per-object masks.

What makes the scenes worth mining:

- most of every image is easy background (a smooth colour field with soft
  blobs and grain), so a random sampler spends most negatives on it;
- unlabelled distractors carry the class textures on other outlines (hard
  negatives: a striped ring looks like a striped ellipse);
- one class (``star``) is rare, and most objects are small (COCO ``small``);
- items overlap in painter's order (occlusion), colours, contrast, shading,
  blur and noise vary per item and per image.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .shapes import (CLASS_TEXTURE, CLASSES, DISTRACTORS, coverage, outline,
                     texture)


@dataclass(frozen=True)
class SceneSpec:
    """Distribution the scenes are drawn from.

    Attributes:
        size (int): Image height and width in pixels.
        num_objects (tuple[int, int]): Inclusive range of labelled objects.
        num_distractors (tuple[int, int]): Inclusive range of distractors.
        class_probs (tuple[float, ...]): Probability of each class of
            :data:`CLASSES` for a labelled object.
        item_size (tuple[float, float]): Range of item extents in pixels,
            sampled log-uniformly (small items are the most frequent).
        min_visible (float): Least visible share of a labelled object once
            later items are drawn over it.
        min_area (int): Least visible pixels of a labelled object.
        placement_tries (int): Placements tried per item before giving up.
    """

    size: int = 128
    num_objects: Tuple[int, int] = (1, 5)
    num_distractors: Tuple[int, int] = (2, 4)
    class_probs: Tuple[float, ...] = (0.53, 0.42, 0.05)
    item_size: Tuple[float, float] = (8.0, 64.0)
    min_visible: float = 0.4
    min_area: int = 12
    placement_tries: int = 30


@dataclass
class SceneObject:
    """A labelled object of a scene.

    Attributes:
        label (int): Category id, 1-based index into :data:`CLASSES`.
        mask (np.ndarray): Bool ``[H, W]``, its visible pixels.
    """

    label: int
    mask: np.ndarray


@dataclass
class Distractor:
    """An unlabelled distractor of a scene.

    Attributes:
        kind (str): Its outline, one of :data:`DISTRACTORS`.
        mask (np.ndarray): Bool ``[H, W]``, its visible pixels.
    """

    kind: str
    mask: np.ndarray


@dataclass
class Scene:
    """A rendered scene.

    Attributes:
        image (np.ndarray): Uint8 ``[H, W, 3]``.
        label_map (np.ndarray): Uint8 ``[H, W]``, 0 background (distractors
            included), else the category id of the visible object.
        objects (list[SceneObject]): Labelled objects, in drawing order.
        distractors (list[Distractor]): Distractors with at least
            ``SceneSpec.min_area`` visible pixels, in drawing order.
    """

    image: np.ndarray
    label_map: np.ndarray
    objects: List[SceneObject] = field(default_factory=list)
    distractors: List[Distractor] = field(default_factory=list)


def render_scene(rng: np.random.Generator, spec: SceneSpec) -> Scene:
    """Draw one scene from ``spec``.

    Args:
        rng (np.random.Generator): The only source of randomness.
        spec (SceneSpec): The scene distribution.

    Returns:
        Scene: The image, its label map and its labelled objects.
    """
    shape = (spec.size, spec.size)
    image = _background(rng, spec.size)
    owner = np.full(shape, -1, np.int32)
    kinds: List[str] = []
    labels: List[int] = []
    areas: List[int] = []
    for kind in _item_kinds(rng, spec):
        alpha = _place(rng, spec, kind, owner, labels, areas)
        if alpha is None:
            continue
        image = _paint(rng, image, alpha, kind)
        owner[alpha >= 0.5] = len(labels)
        kinds.append(kind)
        labels.append(CLASSES.index(kind) + 1 if kind in CLASSES else 0)
        areas.append(int(np.count_nonzero(alpha >= 0.5)))
    objects = [
        SceneObject(label, owner == idx) for idx, label in enumerate(labels)
        if label > 0
    ]
    distractors = [
        Distractor(kinds[idx], owner == idx)
        for idx, label in enumerate(labels)
        if label == 0 and np.count_nonzero(owner == idx) >= spec.min_area
    ]
    label_map = np.zeros(shape, np.uint8)
    for obj in objects:
        label_map[obj.mask] = obj.label
    return Scene(_finish(rng, image), label_map, objects, distractors)


def _item_kinds(rng: np.random.Generator, spec: SceneSpec) -> List[str]:
    """Labelled classes and distractors of a scene, in drawing order."""
    num_obj = rng.integers(spec.num_objects[0], spec.num_objects[1] + 1)
    num_dis = rng.integers(spec.num_distractors[0],
                           spec.num_distractors[1] + 1)
    kinds = list(rng.choice(CLASSES, size=num_obj, p=spec.class_probs))
    kinds += list(rng.choice(DISTRACTORS, size=num_dis))
    return [str(k) for k in rng.permutation(kinds)]


def _place(rng: np.random.Generator, spec: SceneSpec, kind: str,
           owner: np.ndarray, labels: List[int],
           areas: List[int]) -> Optional[np.ndarray]:
    """Coverage of a placement that keeps every labelled object visible.

    Args:
        rng (np.random.Generator): Source of size, position and outline.
        spec (SceneSpec): The scene distribution.
        kind (str): The item to place.
        owner (np.ndarray): Int32 ``[H, W]``, index of the item drawn last
            at each pixel, -1 for none.
        labels (list[int]): Category id of each drawn item, 0 for a
            distractor.
        areas (list[int]): Pixels of each drawn item when it was drawn.

    Returns:
        np.ndarray, optional: Float32 ``[H, W]`` coverage, or ``None`` when
        no placement within ``spec.placement_tries`` leaves each earlier
        labelled object ``min_visible`` of its pixels and at least
        ``min_area`` pixels, with the new item itself (possibly cut by the
        border) covering ``min_area`` pixels.
    """
    low, high = np.log(spec.item_size[0]), np.log(spec.item_size[1])
    for _ in range(spec.placement_tries):
        size = float(np.exp(rng.uniform(low, high)))
        center = tuple(rng.uniform(size * 0.3, spec.size - size * 0.3, 2))
        alpha = coverage(outline(kind, rng, center, size), owner.shape)
        covered = alpha >= 0.5
        if covered.sum() >= spec.min_area and _keeps_visible(
                covered, owner, labels, areas, spec):
            return alpha
    return None


def _keeps_visible(covered: np.ndarray, owner: np.ndarray, labels: List[int],
                   areas: List[int], spec: SceneSpec) -> bool:
    """Whether drawing over ``covered`` leaves every labelled item seen."""
    for idx, (label, area) in enumerate(zip(labels, areas)):
        if label == 0:
            continue
        left = np.count_nonzero((owner == idx) & ~covered)
        if left < max(spec.min_area, spec.min_visible * area):
            return False
    return True


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour field, soft blobs and fine grain: easy negatives."""
    grid = rng.uniform(40, 215, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    for _ in range(rng.integers(2, 7)):
        cx, cy = rng.uniform(0, size, 2)
        sigma = rng.uniform(5, 20)
        blob = np.exp(-((xs - cx)**2 + (ys - cy)**2) / (2 * sigma**2))
        image += blob[..., None] * rng.uniform(-50, 50, 3).astype(np.float32)
    grain = rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    return image + cv2.GaussianBlur(grain, (0, 0), 1.0)[..., None]


def _paint(rng: np.random.Generator, image: np.ndarray, alpha: np.ndarray,
           kind: str) -> np.ndarray:
    """Composite a textured, shaded item with coverage ``alpha``."""
    family = CLASS_TEXTURE.get(kind) or str(
        rng.choice(sorted(set(CLASS_TEXTURE.values()))))
    ys, xs = np.nonzero(alpha > 0)
    center = (float(xs.mean()), float(ys.mean()))
    pattern = texture(family, rng, center, alpha.shape)[..., None]
    base = rng.uniform(0, 255, 3).astype(np.float32)
    other = np.clip(base + rng.normal(0, 70, 3), 0, 255).astype(np.float32)
    colour = base * (1 - pattern) + other * pattern
    tilt = rng.uniform(-0.006, 0.006, 2)
    grid = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]].astype(np.float32)
    shading = 1 + tilt[0] * (grid[1] - center[0]) + tilt[1] * (
        grid[0] - center[1])
    colour = colour * shading[..., None]
    return image * (1 - alpha[..., None]) + colour * alpha[..., None]


def _finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera-like variation: contrast, brightness, blur, noise."""
    image = (image - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-15, 15)
    if rng.uniform() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9))
    image = image + rng.normal(0, rng.uniform(2, 7), image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
