"""The loss over all candidates: what it sums, and that measuring it
changes nothing the training step uses."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope

from mmohem.hooks import LOG_KEY, CandidateLossHook
from mmohem.hooks.candidate_loss_hook import candidate_loss_fn
from mmohem.utils import read_only

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _demo_model(name, scope):
    """A demo model with random weights (no checkpoint), in train mode."""
    import importlib
    importlib.import_module(f'{scope}.utils').register_all_modules(False)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', name)).model
    cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg)
    model.init_weights()
    return model.train()


def _det_batch(num_gts=(3, 0)):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(1)
    return demo_mm_inputs(
        len(num_gts), [[3, 128, 128]] * len(num_gts),
        num_items=list(num_gts),
        num_classes=3)


def _measure(model, batch):
    fn = candidate_loss_fn(model)
    with read_only(model):
        data = model.data_preprocessor(batch, True)
        return fn(model, data['inputs'], data['data_samples']), data


def test_roi_candidates_are_every_proposal_and_every_gt(monkeypatch):
    from mmdet.models.roi_heads import StandardRoIHead
    model = _demo_model('faster-rcnn_r18-tiny_fpn_ohem_demo.py', 'mmdet')
    seen = {}
    bbox_loss = StandardRoIHead.bbox_loss

    def spy(self, x, sampling_results):
        seen['rois'] = [len(r.priors) for r in sampling_results]
        seen['gts'] = [int(r.pos_is_gt.sum()) for r in sampling_results]
        return bbox_loss(self, x, sampling_results)

    monkeypatch.setattr(StandardRoIHead, 'bbox_loss', spy)
    loss, data = _measure(model, _det_batch())
    proposal_cfg = model.train_cfg.rpn_proposal
    assert seen['gts'] == [3, 0]
    # up to max_per_img proposals per image, plus its ground truth boxes
    assert seen['rois'][0] > 3 + 64 and seen['rois'][1] > 64
    assert all(n <= proposal_cfg.max_per_img + g
               for n, g in zip(seen['rois'], seen['gts']))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    assert model.roi_head.bbox_sampler.__class__.__name__ == 'OHEMSampler'


def test_pisa_candidate_loss_is_the_plain_loss_over_every_roi():
    """PISA's RoI head re-weights its examples and needs its own sampler:
    the loss over all candidates is StandardRoIHead's, as the baseline's,
    with the same weights and inputs."""
    pisa = _demo_model('faster-rcnn_r18-tiny_fpn_pisa_demo.py', 'mmdet')
    plain = _demo_model('faster-rcnn_r18-tiny_fpn_demo.py', 'mmdet')
    plain.roi_head.bbox_head.loss_bbox = pisa.roi_head.bbox_head.loss_bbox
    plain.load_state_dict(pisa.state_dict())
    loss, _ = _measure(pisa, _det_batch())
    expected, _ = _measure(plain, _det_batch())
    assert torch.isfinite(loss) and loss > 0
    assert torch.allclose(loss, expected)
    assert type(pisa.roi_head.bbox_sampler).__name__ == 'ScoreHLRSampler'


def test_ssd_candidate_loss_is_the_mean_over_every_anchor():
    """With every negative kept, SSD's own loss (normalised by the number
    of positives) rescaled to the number of anchors is the same mean."""
    model = _demo_model('ssdlite_mobilenetv2-tiny_demo.py', 'mmdet')
    batch = _det_batch((3, 2))
    loss, data = _measure(model, batch)
    head = model.bbox_head
    head.train_cfg['neg_pos_ratio'] = 10**6
    with torch.no_grad():
        model.eval()
        upstream = model.loss(data['inputs'], data['data_samples'])
        feats = model.extract_feat(data['inputs'])
        cls_scores, _ = head(feats)
    from mmdet.models.utils import unpack_gt_instances

    from mmohem.det.ohem_dense_head import dense_targets
    gts, ignores, metas = unpack_gt_instances(data['data_samples'])
    targets = dense_targets(head, cls_scores, _, gts, metas, ignores)
    total = sum(upstream['loss_cls']) + sum(upstream['loss_bbox'])
    expected = total * targets.avg_factor / targets.labels.numel()
    assert torch.allclose(loss, expected, rtol=1e-4)


def test_segmentor_candidate_loss_is_the_mean_over_valid_pixels():
    from mmengine.structures import PixelData
    from mmseg.models.utils import resize
    from mmseg.structures import SegDataSample
    model = _demo_model('pspnet_r18-tiny-d8_ohem_demo.py', 'mmseg')
    torch.manual_seed(2)
    labels = torch.randint(0, 4, (2, 1, 128, 128))
    labels[0, :, :64] = 255
    samples = [
        SegDataSample(
            gt_sem_seg=PixelData(data=lab),
            metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128)))
        for lab in labels
    ]
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 128, 128)) for _ in range(2)],
        data_samples=samples)
    loss, data = _measure(model, batch)
    with read_only(model):
        logits = model.decode_head(model.extract_feat(data['inputs']))
    logits = resize(logits, (128, 128), mode='bilinear', align_corners=False)
    expected = F.cross_entropy(logits, labels[:, 0], ignore_index=255)
    assert torch.allclose(loss, expected, rtol=1e-5)
    for sample in samples:
        sample.gt_sem_seg.data[:] = 255
    loss, _ = _measure(model, batch)
    assert loss == 0


@pytest.mark.parametrize(
    'config',
    [
        'faster-rcnn_r18-tiny_fpn_demo.py',
        # GHM-C moves its running bin counts at every call of the loss.
        'retinanet_r18-tiny_fpn_ghm-c_demo.py'
    ])
def test_hook_logs_on_its_iterations_and_changes_nothing(config):
    model = _demo_model(config, 'mmdet')
    hub = MessageHub.get_instance(f'test_candidate_loss_hook_{config}')
    runner = SimpleNamespace(model=model, iter=0, message_hub=hub)
    hook = CandidateLossHook(interval=5)
    hook.before_train(runner)
    batch = _det_batch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    for it in range(10):
        runner.iter = it
        hook.before_train_iter(runner, it, batch)
    history = hub.get_scalar(f'train/{LOG_KEY}')
    assert len(history.data[0]) == 2  # iterations 4 and 9 (0-based)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_models_it_cannot_measure_are_refused():
    with pytest.raises(TypeError, match='mmdet detectors and mmseg'):
        candidate_loss_fn(torch.nn.Linear(2, 2))
    cascade = SimpleNamespace(
        rpn_head=object(),
        roi_head=SimpleNamespace(bbox_sampler=[object(), object()]))
    with pytest.raises(TypeError, match='cascades are not measured'):
        candidate_loss_fn(cascade)
    with pytest.raises(ValueError, match='interval'):
        CandidateLossHook(interval=0)
