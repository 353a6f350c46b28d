"""Pretraining crops: classes, determinism, streams apart from the demo."""
import numpy as np
import pytest

from mmohem.demo.crops import CROP_CLASSES, CROP_STREAMS, render_crops
from mmohem.demo.generate import scene_rng
from mmohem.demo.scene import SceneSpec, render_scene


def test_crops_cover_every_class_and_are_deterministic():
    images, labels = render_crops(0, 'train', 40, 24)
    assert images.shape == (len(labels), 24, 24, 3)
    assert images.dtype == np.uint8
    assert set(labels.tolist()) == set(range(len(CROP_CLASSES)))
    again, again_labels = render_crops(0, 'train', 40, 24)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)


def test_crop_streams_differ_from_each_other_and_from_the_demo():
    train, _ = render_crops(0, 'train', 1, 16)
    val, _ = render_crops(0, 'val', 1, 16)
    assert not np.array_equal(train[0], val[0])
    spec = SceneSpec()
    first = render_scene(
        np.random.default_rng([0, CROP_STREAMS['train'], 0]), spec).image
    for split in ('train', 'val'):
        demo = render_scene(scene_rng(0, split, 0), spec).image
        assert not np.array_equal(first, demo)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match='split must be one of'):
        render_crops(0, 'test', 1, 16)
