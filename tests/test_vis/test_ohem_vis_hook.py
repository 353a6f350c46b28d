"""mmohem.OHEMVisHook: lookup, options, miner discovery, drawing, and a few
training iterations of the OHEM demo configs."""
import glob
import os.path as osp
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmengine.config import Config
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from mmseg.registry import HOOKS as MMSEG_HOOKS
from torch import nn

from mmohem.benchmark.pairs import (DEMO_EXPERIMENTS, data_root_options,
                                    schedule_options)
from mmohem.demo.generate import DatasetSpec, ensure_dataset
from mmohem.mining import MiningCapture, MiningResult
from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler
from mmohem.vis import OHEMVisHook
from mmohem.vis.ohem_vis_hook import (NEG_COLOR, POS_COLOR, auto_channel_order,
                                      find_miners, fit_mask, to_rgb)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HOOK = 'mmohem.OHEMVisHook'
# Demo pair key -> path of its miner in the model.
MINERS = {
    'faster_rcnn': 'roi_head.bbox_sampler',
    'ssd': 'bbox_head.ohem_sampler',
    'pspnet': 'decode_head.sampler',
}

# Lookup and options ---------------------------------------------------------


@pytest.mark.parametrize('registry, scope', [(MMDET_HOOKS, 'mmdet'),
                                             (MMSEG_HOOKS, 'mmseg')])
def test_found_from_mmdet_and_mmseg_hooks(registry, scope):
    assert type(registry.build(dict(type=HOOK))) is OHEMVisHook
    with DefaultScope.overwrite_default_scope(scope):
        hook = HOOKS.build(dict(type=HOOK, interval=3))  # as the Runner
    assert type(hook) is OHEMVisHook and hook.interval == 3


def test_found_from_a_config_scope_without_custom_imports():
    code = '''
        import sys
        from mmengine.registry import HOOKS, init_default_scope
        for scope in ('mmdet', 'mmseg'):
            init_default_scope(scope)
            hook = HOOKS.build(dict(type='mmohem.OHEMVisHook'))
            print(type(hook).__module__)
        '''
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['mmohem.vis.ohem_vis_hook'] * 2


@pytest.mark.parametrize('options, error, message', [
    (dict(interval=0), ValueError, '`interval` must be an integer >= 1'),
    (dict(interval=1.5), ValueError, '`interval` must be an integer'),
    (dict(interval='2'), ValueError, '`interval`'),
    (dict(max_boxes=0), ValueError, '`max_boxes` must be an integer >= 1'),
    (dict(channel_order='BGR'), ValueError, '`channel_order` must be one'),
    (dict(intervall=2), TypeError, 'did you mean `interval`'),
])
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        OHEMVisHook(**options)


def test_defaults():
    hook = OHEMVisHook(interval=4.0)
    assert hook.interval == 4 and isinstance(hook.interval, int)
    assert hook.max_boxes == 200 and hook.channel_order == 'auto'


def test_demo_ohem_configs_enable_the_hook_and_the_other_arms_do_not():
    """Every arm measures the loss over all candidates; only mmohem's arm
    draws what it mines."""
    for experiment in DEMO_EXPERIMENTS:
        for arm in experiment.arms:
            hooks = Config.fromfile(osp.join(ROOT, arm.config)).custom_hooks
            expected = ['mmohem.CandidateLossHook']
            if arm.name.startswith('mmohem OHEM'):
                expected.append(HOOK)
            assert [h['type'] for h in hooks] == expected, arm


# Miners and captures --------------------------------------------------------


class Head(nn.Module):
    """Stand-in decode head holding pixel miners in every supported way."""

    def __init__(self):
        super().__init__()
        self.ignore_index = 255
        self.sampler = OhemCrossEntropySampler(context=self)
        self.stages = [OhemCrossEntropySampler(context=self), self.sampler]
        self.loss_decode = nn.ModuleList([OhemCrossEntropyLoss()])


def test_find_miners_names_each_miner_once_by_its_path():
    model = nn.Sequential()
    model.add_module('decode_head', Head())
    head = model.decode_head
    miners = find_miners(model)
    assert list(miners) == [
        'decode_head.sampler', 'decode_head.stages.0',
        'decode_head.loss_decode.0'
    ]
    assert miners['decode_head.sampler'] is head.sampler
    assert miners['decode_head.stages.0'] is head.stages[0]
    assert miners['decode_head.loss_decode.0'] is head.loss_decode[0]


def test_a_model_without_miner_fails_at_before_train():
    runner = SimpleNamespace(model=nn.Linear(2, 2), cfg=None)
    with pytest.raises(
            ValueError,
            match='Linear has no OHEM miner.*'
            'mmohem.OHEMSampler.*mmohem.OhemCrossEntropy'):
        OHEMVisHook().before_train(runner)


def test_capture_stores_a_copy_of_image_0_of_the_first_call_only():
    capture = MiningCapture()
    kept = torch.tensor([[True, False], [False, True]])
    result = MiningResult(kept, kept.clone(), ~kept)
    boxes = torch.arange(16.).view(2, 2, 4)
    capture.store_boxes(result, boxes, ~kept)
    boxes.zero_()
    capture.store_boxes(MiningResult(~kept, kept, kept), boxes, kept)
    assert capture.kept.tolist() == [True, False]
    assert capture.suppressed.tolist() == [False, True]
    assert capture.is_pos.tolist() == [False, True]
    assert capture.boxes.tolist() == [[0., 1., 2., 3.], [4., 5., 6., 7.]]
    pixels = MiningCapture()
    pixels.store_pixels(torch.tensor([[[True]], [[False]]]))
    pixels.store_pixels(torch.tensor([[[False]]]))
    assert pixels.kept.tolist() == [[True]] and pixels.boxes is None


@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
def test_pixel_miners_store_only_when_armed(flavour):
    head = Head()
    miner = head.sampler if flavour == 'sampler' else head.loss_decode[0]
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))

    def mine():
        if flavour == 'sampler':
            return miner.sample(logits, labels[:, None]).bool()
        return miner(logits, labels, reduction_override='none') > 0

    mine()
    assert 'ohem_capture' not in vars(miner) and miner.ohem_capture is None
    miner.ohem_capture = MiningCapture()
    keep = mine()
    assert torch.equal(miner.ohem_capture.kept, keep[0])


# Drawing --------------------------------------------------------------------


def test_to_rgb_and_fit_mask():
    bgr = torch.tensor([1, 2, 3], dtype=torch.uint8).view(3, 1, 1)
    assert to_rgb(bgr, bgr=True)[0, 0].tolist() == [3, 2, 1]
    assert to_rgb(bgr, bgr=False)[0, 0].tolist() == [1, 2, 3]
    assert to_rgb(torch.full((1, 2, 2), 7.), bgr=True).shape == (2, 2, 3)
    mask = torch.ones(3, 5, dtype=torch.bool)
    assert fit_mask(mask, (2, 4)).all()  # padding cropped
    assert fit_mask(mask, (4, 6)).sum() == 15


@pytest.mark.parametrize('rgb_to_bgr, order', [(True, 'rgb'), (False, 'bgr'),
                                               (None, 'bgr')])
def test_auto_channel_order(rgb_to_bgr, order):
    preprocessor = {} if rgb_to_bgr is None else dict(
        rgb_to_bgr=rgb_to_bgr, bgr_to_rgb=not rgb_to_bgr)
    cfg = Config(dict(model=dict(data_preprocessor=preprocessor)))
    assert auto_channel_order(cfg) == order


def _colour_near(image, y, x):
    """RGB of the most saturated pixel of a 3x3 window (anti-aliasing)."""
    window = image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int)
    return window[(window.max(1) - window.min(1)).argmax()].tolist()


def test_draw_colours_kept_boxes_and_pixels():
    visualizer = Visualizer.get_instance('test_ohem_vis_hook')
    image = np.full((64, 64, 3), 128, np.uint8)
    boxes = torch.tensor([[4., 4., 30., 30.], [34., 34., 70., 60.],
                          [10., 40., 20., 50.]])
    capture = MiningCapture(
        kept=torch.tensor([True, True, False]),
        boxes=boxes,
        is_pos=torch.tensor([True, False, False]),
        suppressed=torch.tensor([False, False, True]))
    drawn = OHEMVisHook().draw(visualizer, image, capture)
    assert drawn.shape == image.shape
    assert _colour_near(drawn, 4, 15) == pytest.approx(POS_COLOR, abs=60)
    assert _colour_near(drawn, 34, 50) == pytest.approx(NEG_COLOR, abs=60)
    faint = _colour_near(drawn, 40, 15)
    assert faint[0] > faint[1] + 20 and faint[0] < NEG_COLOR[0] - 40
    pixels = MiningCapture(kept=torch.zeros(80, 80, dtype=torch.bool))
    pixels.kept[:10] = True
    drawn = OHEMVisHook().draw(visualizer, image, pixels)
    assert drawn[5, 5, 0] > 150 and drawn[5, 5, 1] < 100
    assert drawn[40, 40].tolist() == [128, 128, 128]


# A few training iterations of the OHEM demo configs -------------------------


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('demo_data'))
    ensure_dataset(root, DatasetSpec(num_train=4, num_val=2))
    return root


def _train(key: str, demo_data: str, work_dir, iters: int,
           hooks: list) -> Runner:
    """Train the OHEM demo config of ``key`` on the tiny data (batch 2, no
    validation, no checkpoint) with ``hooks`` as custom hooks; leave the
    default scope as it was."""
    experiment = next(e for e in DEMO_EXPERIMENTS if e.key == key)
    arm = next(a for a in experiment.arms if a.name == 'mmohem OHEM')
    cfg = Config.fromfile(osp.join(ROOT, arm.config))
    cfg.merge_from_dict(
        dict(
            data_root_options(cfg, demo_data), **schedule_options(cfg, iters)))
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint': None
    })
    cfg.custom_hooks = hooks
    cfg.visualizer.name = work_dir.name  # a fresh one, saving in work_dir
    cfg.update(
        work_dir=str(work_dir),
        experiment_name=work_dir.name,
        val_dataloader=None,
        val_cfg=None,
        val_evaluator=None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        runner = Runner.from_cfg(cfg)
        runner.train()
    return runner


@pytest.mark.parametrize('key', list(MINERS))
def test_training_draws_the_first_image_every_interval(key, demo_data,
                                                       tmp_path):
    runner = _train(
        key, demo_data, tmp_path, iters=3, hooks=[dict(type=HOOK, interval=2)])
    pictures = glob.glob(
        str(tmp_path / '*' / 'vis_data' / 'vis_image' / '*.png'))
    assert [osp.basename(p) for p in pictures] == [f'ohem_{MINERS[key]}_2.png']
    assert cv2.imread(pictures[0]).shape == (128, 128, 3)
    miners = find_miners(runner.model)
    assert list(miners) == [MINERS[key]]
    assert all('ohem_capture' not in vars(m) for m in miners.values())


@pytest.mark.parametrize('key', ['faster_rcnn', 'pspnet'])
def test_without_the_hook_the_miners_store_nothing(key, demo_data, tmp_path,
                                                   monkeypatch):
    stored = []
    monkeypatch.setattr(MiningCapture, 'store_boxes',
                        lambda *args: stored.append(args))
    monkeypatch.setattr(MiningCapture, 'store_pixels',
                        lambda *args: stored.append(args))
    runner = _train(key, demo_data, tmp_path, iters=1, hooks=[])
    miners = find_miners(runner.model)
    assert list(miners) == [MINERS[key]]
    assert all('ohem_capture' not in vars(m) and m.ohem_capture is None
               for m in miners.values())
    assert not stored
    assert not glob.glob(str(tmp_path / '*' / 'vis_data' / 'vis_image'))
