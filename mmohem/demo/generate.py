"""Write the demo dataset: COCO boxes + masks and PNG label maps.

Layout under ``root`` (the same scenes serve detection and segmentation)::

    annotations/train.json   COCO: boxes, uncompressed-RLE masks, 3 classes
    annotations/val.json
    annotations/train_distractors.json  the same for the unlabelled
    annotations/val_distractors.json    distractors, one category per kind
    train/images/000000.png  RGB scene (stored as OpenCV writes it)
    train/labels/000000.png  uint8 label map: 0 background, 1..3 classes
    val/images/ val/labels/
    meta.json                spec, generator version and per-split counts

Every scene draws from its own generator seeded by ``(seed, split,
index)``, so the output is byte-identical for a seed and independent of
the number of scenes asked for. ``meta.json`` is written last: its
presence with the same spec means the dataset is complete and current.

Usage::

    python -m mmohem.demo.generate --out data/mmohem_demo --seed 0
"""
import argparse
import dataclasses
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from .scene import SceneSpec, render_scene
from .shapes import CLASSES, DISTRACTORS

#: Bump when the scenes change, so that stale data are regenerated.
GENERATOR_VERSION = 2
DEFAULT_ROOT = osp.join('data', 'mmohem_demo')
SPLITS = ('train', 'val')
COCO_SMALL_AREA = 32**2


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What to generate.

    Attributes:
        seed (int): Seed of every scene generator.
        num_train (int): Scenes in the train split.
        num_val (int): Scenes in the val split.
        scene (SceneSpec): The scene distribution.
    """

    seed: int = 0
    num_train: int = 512
    num_val: int = 128
    scene: SceneSpec = SceneSpec()

    def count(self, split: str) -> int:
        """Number of scenes of ``split``."""
        return self.num_train if split == 'train' else self.num_val

    def to_dict(self) -> dict:
        """JSON-able form, stored in ``meta.json``."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def generate_dataset(root: str, spec: DatasetSpec = DatasetSpec()) -> dict:
    """Render and write every split of the dataset.

    Args:
        root (str): Output directory (created; existing files replaced).
        spec (DatasetSpec): What to generate.

    Returns:
        dict: The content of ``meta.json``.
    """
    stats = {split: _write_split(root, split, spec) for split in SPLITS}
    meta = dict(
        version=GENERATOR_VERSION,
        classes=list(CLASSES),
        spec=spec.to_dict(),
        stats=stats)
    _dump_json(meta, osp.join(root, 'meta.json'), indent=2)
    return meta


def ensure_dataset(root: str, spec: DatasetSpec = DatasetSpec()) -> bool:
    """Generate the dataset unless ``root`` already holds this spec's.

    Args:
        root (str): Dataset directory.
        spec (DatasetSpec): What it must hold.

    Returns:
        bool: Whether it was generated now.
    """
    meta_path = osp.join(root, 'meta.json')
    if osp.isfile(meta_path):
        with open(meta_path, encoding='utf-8') as f:
            meta = json.load(f)
        if (meta.get('version') == GENERATOR_VERSION
                and meta.get('spec') == spec.to_dict()):
            return False
    generate_dataset(root, spec)
    return True


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one scene."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of a bool mask (column-major run lengths).

    Args:
        mask (np.ndarray): Bool ``[H, W]``.

    Returns:
        dict: ``{'counts': [...], 'size': [H, W]}``, counts starting with
        a run of zeros.
    """
    flat = np.asarray(mask, bool).flatten(order='F').astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return dict(counts=counts, size=list(mask.shape))


def _write_split(root: str, split: str, spec: DatasetSpec) -> dict:
    """Render one split; write its PNGs and COCO file; return its counts."""
    for sub in ('images', 'labels'):
        os.makedirs(osp.join(root, split, sub), exist_ok=True)
    images: List[dict] = []
    annotations: List[dict] = []
    distractors: List[dict] = []
    for index in range(spec.count(split)):
        scene = render_scene(scene_rng(spec.seed, split, index), spec.scene)
        name = f'{index:06d}.png'
        cv2.imwrite(osp.join(root, split, 'images', name), scene.image)
        cv2.imwrite(osp.join(root, split, 'labels', name), scene.label_map)
        images.append(
            dict(
                id=index + 1,
                file_name=name,
                width=spec.scene.size,
                height=spec.scene.size))
        annotations += [
            _annotation(obj.mask, index + 1, obj.label,
                        len(annotations) + 1 + k)
            for k, obj in enumerate(scene.objects)
        ]
        distractors += [
            _annotation(item.mask, index + 1,
                        DISTRACTORS.index(item.kind) + 1,
                        len(distractors) + 1 + k)
            for k, item in enumerate(scene.distractors)
        ]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    _dump_json(
        _coco(images, annotations, CLASSES),
        osp.join(root, 'annotations', f'{split}.json'))
    _dump_json(
        _coco(images, distractors, DISTRACTORS),
        osp.join(root, distractor_ann_file(split)))
    return _split_stats(annotations, len(images), len(distractors))


def distractor_ann_file(split: str) -> str:
    """The distractors' COCO file of ``split``, relative to the root."""
    return osp.join('annotations', f'{split}_distractors.json')


def _coco(images: List[dict], annotations: List[dict],
          names: Sequence[str]) -> dict:
    """A COCO file; category ids are 1-based indices into ``names``."""
    return dict(
        info=dict(
            description='mmohem demo scenes', version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(names)
        ])


def _annotation(mask: np.ndarray, image_id: int, category_id: int,
                ann_id: int) -> dict:
    """COCO annotation of one visible mask: its box, area and RLE."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    box = [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        bbox=[float(v) for v in box],
        area=float(len(xs)),
        iscrowd=0,
        segmentation=mask_to_rle(mask))


def _split_stats(annotations: List[dict], num_images: int,
                 distractors: int) -> dict:
    per_class: Dict[str, int] = {name: 0 for name in CLASSES}
    for ann in annotations:
        per_class[CLASSES[ann['category_id'] - 1]] += 1
    small = sum(ann['area'] < COCO_SMALL_AREA for ann in annotations)
    return dict(
        images=num_images,
        instances=per_class,
        distractors=distractors,
        small_fraction=round(small / max(len(annotations), 1), 4))


def _dump_json(obj: dict, path: str, indent: Optional[int] = None) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent)
        f.write('\n')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default=DEFAULT_ROOT,
        help='output directory (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=DatasetSpec.seed)
    parser.add_argument('--num-train', type=int, default=DatasetSpec.num_train)
    parser.add_argument('--num-val', type=int, default=DatasetSpec.num_val)
    parser.add_argument(
        '--size',
        type=int,
        default=SceneSpec.size,
        help='image side in pixels')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Generate the dataset from the command line and print its counts."""
    args = parse_args(argv)
    spec = DatasetSpec(
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        scene=SceneSpec(size=args.size))
    start = time.perf_counter()
    meta = generate_dataset(args.out, spec)
    print(f'wrote {args.out} in {time.perf_counter() - start:.1f} s: '
          f'{json.dumps(meta["stats"])}')


if __name__ == '__main__':
    main()
