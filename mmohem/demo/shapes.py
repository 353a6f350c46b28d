"""Outlines and surface textures of the demo scenes' items.

An item is a filled outline (a list of polygons, holes drawn as value 0)
painted with a texture. The three labelled classes pair one outline with
one texture family; the unlabelled distractors borrow the same textures on
other outlines, so neither cue alone tells an object from a distractor.
"""
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

#: Labelled classes, in category-id order (ids start at 1; 0 is background).
CLASSES: Tuple[str, ...] = ('ellipse', 'triangle', 'star')
#: Texture family of each class; distractors use the same families.
CLASS_TEXTURE: Dict[str, str] = {
    'ellipse': 'stripes',
    'triangle': 'checker',
    'star': 'rings',
}
#: Unlabelled outlines: each resembles a class (ring ~ ellipse, pentagon ~
#: star, rectangle / cross ~ textured blobs of any class).
DISTRACTORS: Tuple[str, ...] = ('ring', 'rectangle', 'pentagon', 'cross')

Polygon = Tuple[np.ndarray, int]
_SUPERSAMPLE = 4
_ELLIPSE_VERTICES = 40


def outline(kind: str, rng: np.random.Generator, center: Tuple[float, float],
            size: float) -> List[Polygon]:
    """Polygons of one item, in image pixel coordinates.

    Args:
        kind (str): A class of :data:`CLASSES` or a distractor of
            :data:`DISTRACTORS`.
        rng (np.random.Generator): Source of the shape's random aspect,
            rotation and jitter.
        center (tuple[float, float]): Centre ``(x, y)`` in pixels.
        size (float): Longest extent of the item in pixels.

    Returns:
        list[tuple[np.ndarray, int]]: ``(points[K, 2], fill)`` pairs drawn
        in order, ``fill`` 1 for the shape and 0 for a hole.
    """
    angle = rng.uniform(0, 2 * np.pi)
    radius = size / 2
    if kind in ('ellipse', 'ring'):
        aspect = rng.uniform(0.45, 1.0)
        outer = _ellipse(radius, radius * aspect)
        polys = [(outer, 1)]
        if kind == 'ring':
            polys.append((outer * rng.uniform(0.45, 0.7), 0))
    elif kind in ('triangle', 'pentagon'):
        count = 3 if kind == 'triangle' else 5
        jitter = rng.uniform(-0.25, 0.25, count) * (2 * np.pi / count)
        polys = [(_regular(count, radius, jitter), 1)]
    elif kind == 'star':
        inner = rng.uniform(0.38, 0.55)
        radii = np.tile([radius, radius * inner], 5)
        polys = [(_polar(radii, np.arange(10) * np.pi / 5), 1)]
    elif kind == 'rectangle':
        half = np.array([radius, radius * rng.uniform(0.35, 0.9)])
        polys = [(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half, 1)]
    elif kind == 'cross':
        arm = radius * rng.uniform(0.25, 0.4)
        polys = [(_cross(radius, arm), 1)]
    else:
        raise ValueError(f'unknown item kind {kind!r}')
    rotation = np.array([[np.cos(angle), -np.sin(angle)],
                         [np.sin(angle), np.cos(angle)]])
    return [(pts @ rotation.T + np.asarray(center), fill)
            for pts, fill in polys]


def coverage(polygons: List[Polygon], shape: Tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage of ``polygons`` on an image grid.

    Args:
        polygons (list[tuple[np.ndarray, int]]): Output of :func:`outline`.
        shape (tuple[int, int]): Image ``(height, width)``.

    Returns:
        np.ndarray: Float32 ``[H, W]`` in [0, 1], the share of each pixel
        the item covers (drawn at 4x resolution, then area-averaged).
    """
    height, width = shape
    canvas = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    for pts, fill in polygons:
        scaled = np.round(pts * _SUPERSAMPLE).astype(np.int32)
        cv2.fillPoly(canvas, [scaled], int(fill))
    return cv2.resize(
        canvas.astype(np.float32), (width, height),
        interpolation=cv2.INTER_AREA)


def texture(family: str, rng: np.random.Generator, center: Tuple[float, float],
            shape: Tuple[int, int]) -> np.ndarray:
    """A texture field in [0, 1] over the whole image, centred on an item.

    Args:
        family (str): ``'stripes'``, ``'checker'`` or ``'rings'``.
        rng (np.random.Generator): Source of period and orientation.
        center (tuple[float, float]): Item centre ``(x, y)``.
        shape (tuple[int, int]): Image ``(height, width)``.

    Returns:
        np.ndarray: Float32 ``[H, W]``.
    """
    u, v = _local_coords(rng, center, shape)
    return _TEXTURES[family](rng, u, v).astype(np.float32)


def _stripes(rng: np.random.Generator, u: np.ndarray,
             v: np.ndarray) -> np.ndarray:
    period = rng.uniform(3.0, 6.0)
    return 0.5 + 0.5 * np.sin(2 * np.pi * u / period)


def _checker(rng: np.random.Generator, u: np.ndarray,
             v: np.ndarray) -> np.ndarray:
    cell = rng.uniform(2.0, 4.0)
    return (np.floor(u / cell) + np.floor(v / cell)) % 2


def _rings(rng: np.random.Generator, u: np.ndarray,
           v: np.ndarray) -> np.ndarray:
    period = rng.uniform(3.0, 6.0)
    return 0.5 + 0.5 * np.cos(2 * np.pi * np.hypot(u, v) / period)


_TEXTURES: Dict[str, Callable[..., np.ndarray]] = {
    'stripes': _stripes,
    'checker': _checker,
    'rings': _rings,
}


def _local_coords(rng: np.random.Generator, center: Tuple[float, float],
                  shape: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to ``center``, randomly rotated."""
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    xs -= center[0]
    ys -= center[1]
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = -xs * np.sin(angle) + ys * np.cos(angle)
    return u, v


def _polar(radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _ellipse(rx: float, ry: float) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, _ELLIPSE_VERTICES, endpoint=False)
    return np.stack([rx * np.cos(angles), ry * np.sin(angles)], axis=1)


def _regular(count: int, radius: float, jitter: np.ndarray) -> np.ndarray:
    angles = np.arange(count) * 2 * np.pi / count + jitter
    return _polar(np.full(count, radius), angles)


def _cross(radius: float, arm: float) -> np.ndarray:
    r, a = radius, arm
    return np.array([[-a, -r], [a, -r], [a, -a], [r, -a], [r, a], [a, a],
                     [a, r], [-a, r], [-a, a], [-r, a], [-r, -a], [-a, -a]])
