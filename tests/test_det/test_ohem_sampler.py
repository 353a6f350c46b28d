import logging

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.samplers import OHEMSampler as MMDetOHEMSampler
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub

import mmohem.det.mining_rule as ohem_module
from mmohem.det import OHEMSampler
from mmohem.testing import amp_gradient_check, set_sampler

OHEM = dict(type='mmohem.OHEMSampler', num=32)


def _samplers(model):
    sampler = model.roi_head.bbox_sampler
    return sampler if isinstance(sampler, list) else [sampler]


class _MiningSpy:
    """Record every call of mine_hard_examples and the head's read-only
    forward outputs."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = ohem_module.mine_hard_examples

        def spy(*args, **kwargs):
            result = real(*args, **kwargs)
            self.calls.append((args, result))
            return result

        monkeypatch.setattr(ohem_module, 'mine_hard_examples', spy)


def _train_step(model, num_items=(3, 0), num_classes=80, with_mask=False):
    packed = demo_mm_inputs(
        len(num_items), (3, 128, 128),
        num_items=list(num_items),
        num_classes=num_classes,
        with_mask=with_mask)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return losses


def _signature(kept, losses, boxes, labels):
    """The kept candidates as sorted (loss, box, label) rows.

    Boxes clipped to the image border can be exact duplicates with the same
    loss; either copy is a correct pick, so selections are compared by what
    was kept, not by index.
    """
    labels = torch.zeros_like(losses) if labels is None else labels.float()
    rows = torch.cat([losses[..., None], boxes, labels[..., None]],
                     dim=-1)[kept]
    return sorted(map(tuple, rows.tolist()))


def _check_selection(spy, reference_mining, num):
    assert spy.calls, 'the OHEM sampler was not called'
    for args, result in spy.calls:
        losses, valid, is_pos, boxes, num_arg, nms_thr, labels = args[:7]
        assert num_arg == num
        expected = reference_mining(losses, valid, is_pos, boxes, labels, num,
                                    nms_thr)
        assert _signature(result.kept, losses, boxes,
                          labels) == _signature(expected, losses, boxes,
                                                labels)
        assert result.kept.sum() <= num


@pytest.mark.parametrize('config', [
    'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'double_heads/dh-faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
])
def test_training_step_mines_what_the_rule_says(config, detector_cfg,
                                                monkeypatch, reference_mining):
    cfg = detector_cfg(config)
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    assert all(isinstance(s, OHEMSampler) for s in _samplers(model))
    spy = _MiningSpy(monkeypatch)
    losses = _train_step(model, with_mask='mask' in config)
    _check_selection(spy, reference_mining, num=32)
    stages = len(_samplers(model))
    assert len(spy.calls) == 2 * stages  # one call per image and stage
    for key, value in losses.items():
        if 'loss' in key:
            values = value if isinstance(value, list) else [value]
            assert all(torch.isfinite(v).all() for v in values), key
    grads = [p.grad for p in model.roi_head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_torchvision_roi_align_kernel_mines_the_same(detector_cfg,
                                                     monkeypatch):
    """The README's CPU speed-up (``use_torchvision=True``, which the
    read-only pass takes on the CPU anyway) keeps every mined example
    unchanged."""
    import torchvision.ops
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    packed = demo_mm_inputs(2, (3, 128, 128), num_items=[3, 1], num_classes=80)
    data = model.data_preprocessor(packed, True)
    tv_calls = []
    tv_roi_align = torchvision.ops.roi_align

    def counted_roi_align(input,
                          boxes,
                          output_size,
                          spatial_scale=1.0,
                          sampling_ratio=-1,
                          aligned=False):
        tv_calls.append(1)
        return tv_roi_align(input, boxes, output_size, spatial_scale,
                            sampling_ratio, aligned)

    # mmcv's RoIAlign imports torchvision's kernel at call time and looks
    # for an ``aligned`` argument in its signature.
    monkeypatch.setattr(torchvision.ops, 'roi_align', counted_roi_align)
    kept, calls = [], []
    for use_torchvision in (False, True):
        for layer in model.roi_head.bbox_roi_extractor.roi_layers:
            layer.use_torchvision = use_torchvision
        spy = _MiningSpy(monkeypatch)
        tv_calls.clear()
        torch.manual_seed(0)
        model(**data, mode='loss')
        calls.append(len(tv_calls))
        kept.append([(args[0], result.kept) for args, result in spy.calls])
    # The read-only pass runs torchvision's kernel in both; the training
    # forward switches to it in the second.
    assert 0 < calls[0] < calls[1]
    assert len(kept[0]) == len(kept[1]) == 2
    for (losses, mask), (tv_losses, tv_mask) in zip(*kept):
        assert mask.any()
        assert torch.equal(losses, tv_losses)
        assert torch.equal(mask, tv_mask)


def test_cascade_stages_score_with_their_own_head(detector_cfg):
    cfg = detector_cfg('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    samplers = _samplers(model)
    assert [s.stage for s in samplers] == [0, 1, 2]
    assert [s.bbox_head for s in samplers] == list(model.roi_head.bbox_head)


def test_cls_loss_is_cross_entropy_of_read_only_forward(
        detector_cfg, monkeypatch):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, dict(OHEM, loss='cls'))
    model = MODELS.build(cfg)
    roi_head = model.roi_head
    scored = []
    real_forward = roi_head._bbox_forward

    def forward(*args):
        out = real_forward(*args)
        if not torch.is_grad_enabled():
            scored.append((out['cls_score'], roi_head.training))
        return out

    monkeypatch.setattr(roi_head, '_bbox_forward', forward)
    spy = _MiningSpy(monkeypatch)
    _train_step(model)
    assert len(scored) == 2
    for (args, _), (cls_score, training) in zip(spy.calls, scored):
        losses, valid, is_pos, _, _, _, labels = args[:7]
        assert not training  # scored in eval mode, restored afterwards
        expected = F.cross_entropy(cls_score, labels[0], reduction='none')
        assert torch.allclose(losses[0], expected)
        assert cls_score.requires_grad is False
    assert roi_head.training


def test_box_term_adds_to_positives_only(detector_cfg, monkeypatch):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    roi_head = model.roi_head
    scores = []
    real_forward = roi_head._bbox_forward

    def forward(*args):
        out = real_forward(*args)
        if not torch.is_grad_enabled():
            scores.append(out['cls_score'])
        return out

    monkeypatch.setattr(roi_head, '_bbox_forward', forward)
    spy = _MiningSpy(monkeypatch)
    _train_step(model, num_items=(4, 2))
    for (args, _), cls_score in zip(spy.calls, scores):
        losses, _, is_pos, _, _, _, labels = args[:7]
        ce = F.cross_entropy(cls_score, labels[0], reduction='none')
        box = losses[0] - ce
        assert is_pos.any()
        assert torch.allclose(box[~is_pos[0]], torch.zeros(()), atol=1e-6)
        assert (box[is_pos[0]] > 0).all()


def test_no_ground_truth_and_few_candidates(detector_cfg, monkeypatch):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, dict(OHEM, num=100000))
    model = MODELS.build(cfg)
    spy = _MiningSpy(monkeypatch)
    losses = _train_step(model, num_items=(0, 0))
    assert torch.isfinite(losses['loss_cls'])
    for args, result in spy.calls:
        valid, is_pos = args[1], args[2]
        assert not is_pos.any()
        assert torch.equal(result.kept, valid & ~result.suppressed)


def test_all_ground_truth_of_one_label(detector_cfg, monkeypatch,
                                       reference_mining):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.roi_head.bbox_head.num_classes = 2
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    spy = _MiningSpy(monkeypatch)
    _train_step(model, num_items=(5, 2), num_classes=2)  # demo labels: 1
    _check_selection(spy, reference_mining, num=32)
    for args, _ in spy.calls:
        labels, is_pos = args[6], args[2]
        assert set(labels[is_pos].tolist()) <= {1}


def test_half_precision_scores(detector_cfg, monkeypatch):
    """Under CUDA AMP the head scores in float16; mining stays float32.

    (mmdet's RPN NMS refuses CPU autocast, so the head output is cast.)
    """
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    real_forward = model.roi_head._bbox_forward

    def half_forward(*args):
        out = real_forward(*args)
        if not torch.is_grad_enabled():
            out = {
                k: v.half() if torch.is_tensor(v) else v
                for k, v in out.items()
            }
        return out

    monkeypatch.setattr(model.roi_head, '_bbox_forward', half_forward)
    spy = _MiningSpy(monkeypatch)
    losses = _train_step(model)
    assert torch.isfinite(losses['loss_cls'])
    assert all(args[0].dtype == torch.float32 for args, _ in spy.calls)


def test_pos_fraction_quota(detector_cfg, monkeypatch):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, dict(OHEM, pos_fraction=0.25, neg_pos_ub=2))
    model = MODELS.build(cfg)
    spy = _MiningSpy(monkeypatch)
    _train_step(model, num_items=(6, 1))
    for args, result in spy.calls:
        is_pos = args[2]
        kept_pos = int((result.kept & is_pos).sum())
        assert kept_pos <= 8
        assert int((result.kept & ~is_pos).sum()) <= 2 * max(kept_pos, 1)


def test_records_mining_statistics(detector_cfg):
    cfg = detector_cfg('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    hub = MessageHub.get_instance('test_ohem_stats')
    _train_step(model)
    scalars = MessageHub.get_current_instance().log_scalars
    for stage in range(3):
        for name in ('kept_pos', 'kept_neg', 'no_pos_images', 'nms_suppressed',
                     'loss_kept', 'loss_all'):
            assert f'train/ohem_s{stage}_{name}' in scalars
    kept = scalars['train/ohem_s0_loss_kept'].current()
    assert kept >= scalars['train/ohem_s0_loss_all'].current()
    assert 0 <= scalars['train/ohem_s0_nms_suppressed'].current() <= 1
    assert hub is MessageHub.get_current_instance()


@pytest.mark.parametrize('option, value, match', [
    ('num', 0, r'`num` must be an integer >= 1'),
    ('num', 2.5, r'`num` must be an integer >= 1'),
    ('nms_thr', 0, r'`nms_thr` must be a number in \(0, 1\] or None'),
    ('nms_thr', 1.5, r'`nms_thr` must be a number in \(0, 1\] or None'),
    ('loss', 'bbox', r"`loss` must be one of 'cls', 'cls\+bbox'"),
    ('pos_fraction', 0, r'`pos_fraction` must be a number in \(0, 1\]'),
    ('nms_thresh', 0.5, r'unknown option\(s\) `nms_thresh` \(did you mean '
     r'`nms_thr`\?\)'),
    ('nms_boxes', 'predicted', r'`nms_boxes` is not used for StandardRoIHead '
     r'\(a RoI head\)'),
    ('score_chunk', 0, r'`score_chunk` must be an integer >= 1'),
])
def test_invalid_options_fail_at_build(option, value, match, detector_cfg):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    set_sampler(cfg, {**OHEM, option: value})
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(cfg)


def test_rpn_use_is_a_clear_error(detector_cfg):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.train_cfg.rpn.sampler = dict(OHEM)
    with pytest.raises(
            TypeError, match='built for RPNHead, which has no '
            'bbox head'):
        MODELS.build(cfg)


def test_scoped_and_upstream_names_resolve_to_their_own_class():
    assert TASK_UTILS.get('mmohem.OHEMSampler') is OHEMSampler
    assert TASK_UTILS.get('OHEMSampler') is MMDetOHEMSampler


ROI_HEAD_CONFIGS = [
    'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'double_heads/dh-faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
]


@pytest.mark.parametrize('config', ROI_HEAD_CONFIGS)
def test_every_roi_head_parameter_trains_under_autocast(config):
    """The read-only forward must not leave autocast a cached weight cast
    without gradient for the training forward: with OHEM the RoI head's
    parameters get gradients exactly where they do with the baseline.
    mmdet's own OHEMSampler freezes the bbox head this way (README)."""
    result = amp_gradient_check(config, 'cpu', torch.bfloat16)
    assert result['trained'] > 0
    assert result['mmohem_missing'] == [] and result['ok']
    if config == ROI_HEAD_CONFIGS[0]:
        assert {'bbox_head.fc_cls.weight', 'bbox_head.shared_fcs.0.weight'
                } <= set(result['mmdet_missing'])


def test_scoring_in_chunks_gives_the_same_losses(detector_cfg, monkeypatch):
    cfg = detector_cfg(ROI_HEAD_CONFIGS[1])  # C4: BatchNorm in the head
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg).train()  # norm_eval: frozen BN statistics
    spy = _MiningSpy(monkeypatch)
    torch.manual_seed(0)
    _train_step(model)
    whole = [args[0] for args, _ in spy.calls]
    spy.calls.clear()
    for sampler in _samplers(model):
        sampler.score_chunk = 7
    torch.manual_seed(0)
    _train_step(model)
    chunked = [args[0] for args, _ in spy.calls]
    assert len(chunked) == len(whole) == 2
    for a, b in zip(chunked, whole):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_statistics_are_published_once_per_iteration(detector_cfg):
    cfg = detector_cfg(ROI_HEAD_CONFIGS[0])
    set_sampler(cfg, OHEM)
    model = MODELS.build(cfg)
    hub = MessageHub.get_instance('test_ohem_stats_once')
    _train_step(model, num_items=(3, 2))
    values, counts = hub.log_scalars['train/ohem_kept_pos'].data
    assert len(values) == 1 and counts.tolist() == [1]
    _train_step(model, num_items=(3, 2))
    assert len(hub.log_scalars['train/ohem_kept_pos'].data[0]) == 2


def _build_log(monkeypatch, cfg):
    """Build ``cfg`` and return what the sampler logged, by level."""
    import mmohem.det.mining_rule as rule_module
    import mmohem.det.ohem_sampler as sampler_module
    logged = []
    for module in (rule_module, sampler_module):
        monkeypatch.setattr(
            module,
            'print_log',
            lambda msg, logger=None, level=20: logged.append((level, msg)))
    MODELS.build(cfg)
    return logged


def test_build_logs_the_effective_rule(detector_cfg, monkeypatch):
    cfg = detector_cfg(ROI_HEAD_CONFIGS[0])
    set_sampler(cfg, dict(OHEM, nms_thr=0.5))
    (level, line), = _build_log(monkeypatch, cfg)
    assert level == 20
    assert line == (
        'mmohem.OHEMSampler for StandardRoIHead: OHEMSampler('
        'BoxMiningRule(num=32, num_per_pos=None, nms_thr=0.5, '
        "nms_per_label=True, loss='cls+bbox', pos_fraction=None, "
        'neg_pos_ub=-1), add_gt_as_proposals=True, smooth_l1_beta=1.0, '
        'score_chunk=auto (256 MiB))')


def test_random_sampler_keys_merged_without_delete_are_a_warning(
        detector_cfg, monkeypatch):
    """A sampler dict written over the base config's RandomSampler without
    ``_delete_=True`` keeps its pos_fraction and neg_pos_ub."""
    cfg = detector_cfg(ROI_HEAD_CONFIGS[0])
    cfg.train_cfg.rcnn.sampler.update(type='mmohem.OHEMSampler')
    logged = _build_log(monkeypatch, cfg)
    warnings = [msg for level, msg in logged if level == logging.WARNING]
    assert len(warnings) == 1 and '`_delete_=True`' in warnings[0]
    assert 'pos_fraction=0.25' in logged[-1][1]
    set_sampler(cfg, dict(OHEM, pos_fraction=0.25))  # a quota, on purpose
    assert all(level != logging.WARNING
               for level, _ in _build_log(monkeypatch, cfg))


def test_one_forward_scores_what_fits_the_memory_budget(detector_cfg):
    """FPN: 256 x 7 x 7 RoI features, 2674 candidates per forward; the
    small C4 head's 256 x 4 x 4 features, 8192."""
    chunks = []
    for config in ROI_HEAD_CONFIGS[:2]:
        cfg = detector_cfg(config)
        set_sampler(cfg, OHEM)
        chunks.append(MODELS.build(cfg).roi_head.bbox_sampler._chunk())
    assert chunks == [2674, 8192]


@pytest.mark.parametrize('config', [
    'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
])
def test_cpu_read_only_pass_scores_as_mmcvs_kernel(config, detector_cfg):
    """The read-only pass runs torchvision's RoIAlign kernel on the CPU:
    the scores are mmcv's kernel's, and the training forward keeps the
    config's kernel."""
    from mmohem.utils import read_only
    cfg = detector_cfg(config)
    set_sampler(cfg, OHEM)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    sampler, head = model.roi_head.bbox_sampler, model.roi_head
    packed = demo_mm_inputs(1, (3, 128, 128), num_items=[3], num_classes=80)
    feats = model.extract_feat(model.data_preprocessor(packed, True)['inputs'])
    gen = torch.Generator().manual_seed(0)
    corners = torch.rand(300, 2, generator=gen) * 100
    rois = torch.cat([
        torch.zeros(300, 1), corners,
        corners + 4 + 60 * torch.rand(300, 2, generator=gen)
    ], 1)
    layers = head.bbox_roi_extractor.roi_layers
    kernels = []
    for layer in layers:
        layer.register_forward_pre_hook(
            lambda module, args: kernels.append(module.use_torchvision))
    ours = sampler._score(feats, rois)
    assert kernels and all(kernels)
    kernels.clear()
    with read_only(head):
        theirs = head._bbox_forward(feats, rois)
    assert kernels and not any(kernels)
    for key in ('cls_score', 'bbox_pred'):
        assert torch.allclose(ours[key], theirs[key], rtol=0, atol=1e-6)
    assert not any(layer.use_torchvision for layer in layers)
