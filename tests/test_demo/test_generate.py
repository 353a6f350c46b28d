"""The demo dataset generator: determinism, valid COCO, consistent labels."""
import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmohem.demo.generate import (DatasetSpec, distractor_ann_file,
                                  ensure_dataset, generate_dataset,
                                  mask_to_rle)
from mmohem.demo.shapes import CLASSES, DISTRACTORS

SMALL = DatasetSpec(seed=0, num_train=10, num_val=4)
# Large enough for the class frequencies to show (about 3 s).
MEDIUM = DatasetSpec(seed=0, num_train=160, num_val=40)


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root)
        for f in files)


@pytest.fixture(scope='module')
def medium(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('medium'))
    generate_dataset(root, MEDIUM)
    return root


@pytest.fixture(scope='module')
def small_twice(tmp_path_factory):
    roots = [str(tmp_path_factory.mktemp(f'small{i}')) for i in range(2)]
    for root in roots:
        generate_dataset(root, SMALL)
    return roots


def test_same_seed_gives_byte_identical_files(small_twice):
    first, second = small_twice
    names = _files(first)
    assert names == _files(second)
    assert len(names) == 2 * (10 + 4) + 5
    match, mismatch, errors = filecmp.cmpfiles(
        first, second, names, shallow=False)
    assert mismatch == [] and errors == []


def test_other_seed_gives_other_files(small_twice, tmp_path):
    generate_dataset(
        str(tmp_path), DatasetSpec(seed=1, num_train=10, num_val=4))
    for name in ('annotations/train.json', 'train/images/000000.png',
                 'val/labels/000003.png'):
        assert not filecmp.cmp(
            osp.join(small_twice[0], name),
            osp.join(tmp_path, name),
            shallow=False)


def test_a_scene_does_not_depend_on_the_split_size(small_twice, tmp_path):
    generate_dataset(
        str(tmp_path), DatasetSpec(seed=0, num_train=3, num_val=1))
    for name in ('train/images/000002.png', 'val/labels/000000.png'):
        assert filecmp.cmp(
            osp.join(small_twice[0], name),
            osp.join(tmp_path, name),
            shallow=False)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_annotations_are_valid_coco(medium, split):
    coco = COCO(osp.join(medium, 'annotations', f'{split}.json'))
    assert len(coco.getImgIds()) == MEDIUM.count(split)
    assert [c['name']
            for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
        assert anns, 'every scene has a labelled object'
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and w > 0 and h > 0
            assert x + w <= img['width'] and y + h <= img['height']
            mask = coco.annToMask(ann)
            assert mask.sum() == ann['area'] > 0
            ys, xs = np.nonzero(mask)
            assert [
                xs.min(),
                ys.min(),
                xs.max() + 1 - xs.min(),
                ys.max() + 1 - ys.min()
            ] == [x, y, w, h]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_label_maps_match_the_annotations(medium, split):
    coco = COCO(osp.join(medium, 'annotations', f'{split}.json'))
    for img in coco.loadImgs(coco.getImgIds()):
        label = cv2.imread(
            osp.join(medium, split, 'labels', img['file_name']),
            cv2.IMREAD_UNCHANGED)
        image = cv2.imread(osp.join(medium, split, 'images', img['file_name']))
        assert label.shape == image.shape[:2] == (img['height'], img['width'])
        expected = np.zeros_like(label)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            mask = coco.annToMask(ann).astype(bool)
            assert not expected[mask].any(), 'visible masks are disjoint'
            expected[mask] = ann['category_id']
        np.testing.assert_array_equal(label, expected)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_distractors_are_annotated_on_the_side(medium, split):
    """Their visible masks are background in the label maps, disjoint from
    each other, and every kind occurs."""
    coco = COCO(osp.join(medium, distractor_ann_file(split)))
    assert [c['name']
            for c in coco.loadCats(coco.getCatIds())] == list(DISTRACTORS)
    kinds = set()
    for img in coco.loadImgs(coco.getImgIds()):
        label = cv2.imread(
            osp.join(medium, split, 'labels', img['file_name']),
            cv2.IMREAD_UNCHANGED)
        seen = np.zeros_like(label, bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann['area'] >= 12
            assert not (label[mask] > 0).any()
            assert not seen[mask].any()
            seen |= mask
            kinds.add(ann['category_id'])
    assert kinds == set(range(1, len(DISTRACTORS) + 1))
    with open(osp.join(medium, 'meta.json')) as f:
        stats = json.load(f)['stats'][split]
    assert stats['distractors'] == len(coco.getAnnIds())


def test_every_class_present_and_the_rare_class_rare(medium):
    with open(osp.join(medium, 'meta.json')) as f:
        stats = json.load(f)['stats']
    for split in ('train', 'val'):
        counts = stats[split]['instances']
        total = sum(counts.values())
        assert all(counts[name] > 0 for name in CLASSES)
        assert counts['star'] < 0.1 * total
        assert counts['star'] * 5 < min(counts['ellipse'], counts['triangle'])
        assert stats[split]['distractors'] > stats[split]['images']
        assert stats[split]['small_fraction'] > 0.5


def test_images_vary_beyond_flat_colours(medium):
    image = cv2.imread(osp.join(medium, 'train', 'images', '000000.png'))
    background = cv2.imread(
        osp.join(medium, 'train', 'labels', '000000.png'),
        cv2.IMREAD_UNCHANGED) == 0
    assert image.std() > 20
    assert len(np.unique(image[background].reshape(-1, 3), axis=0)) > 1000


def test_rle_round_trips_through_pycocotools():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (16, 16)]:
        mask = rng.uniform(size=shape) > 0.6
        mask[0, 0] = True
        rle = mask_to_rle(mask)
        decoded = mask_utils.decode(mask_utils.frPyObjects(
            rle, *shape)).astype(bool)
        np.testing.assert_array_equal(decoded, mask)
    assert mask_to_rle(np.zeros((2, 2), bool))['counts'] == [4]


def test_ensure_dataset_regenerates_only_when_the_spec_changes(tmp_path):
    spec = DatasetSpec(num_train=2, num_val=1)
    assert ensure_dataset(str(tmp_path), spec)
    assert not ensure_dataset(str(tmp_path), spec)
    assert ensure_dataset(str(tmp_path), DatasetSpec(num_train=3, num_val=1))
