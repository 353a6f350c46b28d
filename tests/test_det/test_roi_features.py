"""The read-only pass's RoI features: mmdet's SingleRoIExtractor's, in
fewer operations and host reads."""
import pytest
import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

from mmohem.det import roi_features as rf
from mmohem.testing.launches import count_launches

STRIDES = [4, 8, 16, 32]


def _extractor(strides=STRIDES, channels=8):
    return SingleRoIExtractor(
        dict(type='RoIAlign', output_size=7, sampling_ratio=0), channels,
        strides)


def _feats(strides=STRIDES, channels=8, images=2, size=512):
    gen = torch.Generator().manual_seed(0)
    return tuple(
        torch.randn(images, channels, size // s, size // s, generator=gen)
        for s in strides)


def _rois(num, images=2, size=512, largest=512, seed=0):
    """Random RoIs of every size from a point to ``largest``."""
    gen = torch.Generator().manual_seed(seed)
    side = torch.rand(num, 1, generator=gen).pow(3) * largest
    corner = torch.rand(num, 2, generator=gen) * (size - side)
    index = torch.randint(images, (num, 1), generator=gen).float()
    return torch.cat([index, corner, corner + side], 1)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_roi_levels_are_mmdets(dtype):
    """The same level for every RoI, those whose scale sits exactly on a
    level's boundary (56 * 2^k) or one step beside it included."""
    edges = torch.tensor([56., 112., 224., 448.])
    sides = torch.cat([
        edges,
        torch.nextafter(edges, torch.zeros(4)),
        torch.nextafter(edges, torch.full((4, ), 1e4)),
        torch.tensor([0., 1., 1e4])
    ])
    square = torch.stack(
        [torch.zeros_like(sides), sides, sides, 2 * sides, 2 * sides], 1)
    rois = torch.cat([square, _rois(2000)]).to(dtype)
    extractor = _extractor()
    levels = rf.roi_levels(rois, extractor.finest_scale, 4)
    assert torch.equal(levels, extractor.map_roi_levels(rois, 4))
    assert set(levels.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize('scale_factor', [None, 1.3])
@pytest.mark.parametrize('largest', [512, 200])
def test_roi_features_are_the_extractors(scale_factor, largest):
    """Equal features, for RoIs on every level and on the lowest two
    alone, degenerate RoIs and rescaled RoIs (Double-Head's regression
    branch) included."""
    extractor, feats = _extractor(), _feats()
    rois = _rois(500, largest=largest)
    rois[:3, 3:] = rois[:3, 1:3]  # zero width and height
    levels = set(rf.roi_levels(rois, extractor.finest_scale, 4).tolist())
    assert levels == ({0, 1, 2, 3} if largest == 512 else {0, 1})
    assert torch.equal(
        rf.roi_features(extractor, feats, rois, scale_factor),
        extractor(feats, rois, scale_factor))


def test_roi_features_of_one_level_and_of_none():
    """One level: the layer on all RoIs, unscaled, as the extractor; no RoI:
    an empty batch of features."""
    single = _extractor(strides=[16])
    feats = _feats(strides=[16])
    rois = _rois(40)
    assert torch.equal(
        rf.roi_features(single, feats, rois, 2.0), single(feats, rois, 2.0))
    extractor = _extractor()
    empty = rf.roi_features(extractor, _feats(), rois[:0])
    assert empty.shape == (0, 8, 7, 7)


def test_roi_features_launch_fewer_operations_with_one_host_read():
    """One sort, one host read for the levels' bounds, one RoIAlign per
    level and one copy back, where mmdet's extractor compares and reads
    the device once per level and adds a term for each empty level."""
    extractor, feats = _extractor(), _feats()
    rois = _rois(500)
    ours = count_launches(lambda: rf.roi_features(extractor, feats, rois))
    theirs = count_launches(lambda: extractor(feats, rois))
    assert ours['host_reads'] == 1 and theirs['host_reads'] == 4
    assert ours['by_op']['mmcv.roi_align_forward'] == 4
    for op in ('sort', 'searchsorted', 'cat', 'index_copy_', 'bucketize'):
        assert ours['by_op'][op] == 1, op
    # The levels 7; the sort, the bounds, the sorted RoIs 3; per level
    # mmcv's RoIAlign, its three output buffers and its kernel, 4; the
    # concatenation and the copy back 2.
    assert ours['ops'] == 7 + 3 + 4 * 4 + 2
    assert ours['ops'] < theirs['ops'] - 10


class _OwnForward(SingleRoIExtractor):

    def forward(self, feats, rois, roi_scale_factor=None):
        return super().forward(feats, rois, roi_scale_factor)


def test_read_only_features_swap_and_restore():
    """Inside, a SingleRoIExtractor computes its features without its
    level rule and per-level search (the same features) and its mmcv
    layers run torchvision's kernel on the CPU; both are restored after,
    also when the pass raises; an extractor with its own forward, or
    whose forward was replaced, keeps it."""
    extractor, feats, rois = _extractor(), _feats(), _rois(50)
    mapped = []
    map_roi_levels = extractor.map_roi_levels
    extractor.map_roi_levels = lambda *args: mapped.append(
        1) or map_roi_levels(*args)
    expected = extractor(feats, rois)
    with pytest.raises(RuntimeError, match='stop'):
        with rf.read_only_features(extractor, torch.device('cpu')):
            assert all(layer.use_torchvision for layer in extractor.roi_layers)
            assert torch.allclose(
                extractor(feats, rois), expected, rtol=0, atol=1e-6)
            raise RuntimeError('stop')
    assert len(mapped) == 1  # the call before the context
    assert 'forward' not in vars(extractor)
    assert not any(layer.use_torchvision for layer in extractor.roi_layers)
    own = _OwnForward(
        dict(type='RoIAlign', output_size=7, sampling_ratio=0), 8, STRIDES)
    with rf.read_only_features(own, torch.device('cpu')):
        assert 'forward' not in vars(own)
    replaced = _extractor()
    replaced.forward = forward = replaced.forward
    with rf.read_only_features(replaced, torch.device('cpu')):
        assert vars(replaced)['forward'] is forward
    assert vars(replaced)['forward'] is forward
