"""tools/benchmark.py: --work-dirs on fabricated work dirs, the demo
experiments, the log keys (old and new, and as mmdet's log analyzer reads
them), the provenance, the timers, a tiny demo run."""
import ast
import glob
import json
import os
import os.path as osp
import subprocess
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from mmohem.benchmark.logs import (current_key, ohem_name, read_work_dir,
                                   train_progress)
from mmohem.benchmark.pairs import DEMO_EXPERIMENTS
from mmohem.benchmark.plots import ohem_groups
from mmohem.benchmark.provenance import (PACKAGES, data_digest, git_state,
                                         package_versions)
from mmohem.benchmark.table import METRICS, TRAIN_WINDOW
from mmohem.benchmark.timing import time_training
from mmohem.benchmark.workdirs import parse_entries

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LAUNCH = '20261125_101500'


@pytest.fixture(scope='module')
def benchmark(load_tool):
    """tools/benchmark.py as a module."""
    return load_tool('benchmark')


def _write_scalars(path, records, rss=None):
    """An mmengine work dir whose one launch logged ``records`` to
    ``vis_data/scalars.json``; ``rss`` goes to ``mmohem_run.json``."""
    os.makedirs(osp.join(path, LAUNCH, 'vis_data'))
    with open(osp.join(path, LAUNCH, 'vis_data', 'scalars.json'), 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    _write_run_info(path, rss)
    return path


def _write_run_info(path, rss):
    """``mmohem_run.json`` with the peak RSS ``rss``, unless ``None``."""
    if rss is not None:
        with open(osp.join(path, 'mmohem_run.json'), 'w') as f:
            json.dump(dict(peak_rss_mib=rss, wall_s=12.0), f)


def _fake_work_dir(path,
                   map_value,
                   times,
                   ohem=False,
                   text_log=False,
                   rss=None):
    """An mmengine work dir: one launch with training records every 10
    iterations and one evaluation at the last; with ``ohem``, the records
    carry ``ohem/num_pos`` as mmohem logged it before the flat names."""
    records = []
    for i, seconds in enumerate(times, start=1):
        record = dict(
            lr=0.01,
            loss=2.0 / i,
            time=seconds,
            data_time=0.01,
            iter=10 * i,
            step=10 * i)
        if ohem:
            record['ohem/num_pos'] = 5.0 + i
        records.append(record)
    evaluation = {
        'coco/bbox_mAP': map_value,
        'coco/bbox_mAP_50': 0.5,
        'step': 10 * len(times)
    }
    if not text_log:
        return _write_scalars(path, records + [evaluation], rss)
    launch = osp.join(path, LAUNCH)
    os.makedirs(launch)
    with open(osp.join(launch, f'{LAUNCH}.log'), 'w') as f:
        for r in records:
            mined = (f'ohem/num_pos: {r["ohem/num_pos"]:.4f}  '
                     if ohem else '')
            f.write(f'11/25 10:15:00 - mmengine - INFO - Iter(train) '
                    f'[{r["step"]:>3}/40]  lr: 1.0000e-02  eta: 0:00:10'
                    f'  time: {r["time"]:.4f}  data_time: 0.0100  '
                    f'{mined}loss: {r["loss"]:.4f}\n')
        f.write('11/25 10:16:00 - mmengine - INFO - Iter(val) [4/4]    '
                f'coco/bbox_mAP: {map_value:.4f}  coco/bbox_mAP_50: '
                '0.5000  data_time: 0.0100  time: 0.2000\n')
    _write_run_info(path, rss)
    return path


def _arm_work_dir(path, bbox_map, fp_per_img, candidate_loss):
    """A 200-iteration run logging every 10 iterations, its candidate
    loss ``candidate_loss(step)``, then one evaluation."""
    records = [
        dict(
            lr=0.001,
            loss=1.0,
            time=0.2,
            candidate_loss=candidate_loss(step),
            step=step) for step in range(10, 201, 10)
    ]
    evaluation = {
        'coco/bbox_mAP': bbox_map,
        'distractor/fp_per_img': fp_per_img,
        'step': 200
    }
    return str(_write_scalars(path, records + [evaluation]))


def _table_rows(out):
    """The cells of benchmark.md's table rows, by (metric, arm)."""
    lines = [
        line for line in (out / 'benchmark.md').read_text().splitlines()
        if line.startswith('|')
    ]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = [[c.strip() for c in line.strip('|').split('|')]
            for line in lines[2:]]
    return {(r[2], r[3]): dict(zip(header, r)) for r in rows}


# --work-dirs ----------------------------------------------------------------


def test_three_arms_from_work_dirs(benchmark, tmp_path):
    """Values, Δ and verdicts of three arms, in each metric's direction,
    and the candidate loss averaged over the last 100 iterations."""
    base = _arm_work_dir(tmp_path / 'base', 0.30, 0.50, lambda s: 0.9)
    mmdet = _arm_work_dir(tmp_path / 'mmdet', 0.28, 0.40, lambda s: 2.0
                          if s <= 100 else s / 1000)
    mmohem = _arm_work_dir(tmp_path / 'mmohem', 0.35, 0.70, lambda s: 1.2)
    out = tmp_path / 'out'
    assert benchmark.main([
        '--work-dirs', f'arm=baseline:{base}', f'arm=mmdet OHEM:{mmdet}',
        f'arm=mmohem OHEM:{mmohem}', 'name=Faster R-CNN', '--out',
        str(out)
    ]) == 0
    rows = _table_rows(out)
    labels = {m.key: m.label for m in METRICS}
    mean_ap, fp, cand = (labels['coco/bbox_mAP'],
                         labels['distractor/fp_per_img'],
                         labels['candidate_loss'])
    assert {metric for metric, _ in rows} == {mean_ap, fp, cand}
    assert [arm for metric, arm in rows
            if metric == fp] == ['baseline', 'mmdet OHEM', 'mmohem OHEM']
    assert {row['task'] for row in rows.values()} == {'detection'}
    base_row = rows[mean_ap, 'baseline']
    assert (base_row['value'], base_row['Δ vs baseline'],
            base_row['verdict']) == ('30.0', '—', '—')
    expected = {
        (mean_ap, 'mmdet OHEM'): ('28.0', '-2.0', 'baseline better'),
        (mean_ap, 'mmohem OHEM'): ('35.0', '+5.0', 'mmohem OHEM better'),
        # Fewer distractor false positives is better.
        (fp, 'mmdet OHEM'): ('0.40', '-0.10', 'mmdet OHEM better'),
        (fp, 'mmohem OHEM'): ('0.70', '+0.20', 'baseline better'),
        # Steps 110..200 of mmdet: mean of 0.11, 0.12, ..., 0.20.
        (cand, 'baseline'): ('0.900', '—', '—'),
        (cand, 'mmdet OHEM'): ('0.155', '-0.745', 'mmdet OHEM better'),
        (cand, 'mmohem OHEM'): ('1.200', '+0.300', 'baseline better'),
    }
    for key, (value, delta, verdict) in expected.items():
        row = rows[key]
        assert row['value'] == value and row['Δ vs baseline'] == delta, row
        assert row['verdict'].startswith(verdict), row
    result = json.loads((out / 'benchmark.json').read_text())
    runs = {run['arm']: run for run in result['runs']}
    assert runs['mmdet OHEM']['train_metrics']['candidate_loss'] == (
        pytest.approx(0.155))
    assert runs['mmdet OHEM']['experiment'] == 'Faster R-CNN'
    (cand_row, ) = [
        r for r in result['rows']
        if r['metric'] == cand and r['arm'] == 'mmdet OHEM'
    ]
    assert cand_row['delta'] == pytest.approx(-0.745)
    assert cand_row['higher_is_better'] is False
    assert (out / 'benchmark.png').stat().st_size > 0


def test_work_dirs_mode_reads_two_arms_and_a_text_log(benchmark, tmp_path):
    """Two arms, one logged only as text, in the old ``ohem/...`` keys;
    --work-dirs records no demo settings and names whose provenance it
    records."""
    base = _fake_work_dir(
        tmp_path / 'base', 0.300, [9.0, 1.0, 1.2, 1.4], rss=900.0)
    ohem = _fake_work_dir(
        tmp_path / 'ohem',
        0.325, [9.0, 1.5, 1.5, 1.8],
        ohem=True,
        text_log=True,
        rss=1000.0)
    out = tmp_path / 'out'
    code = benchmark.main([
        '--work-dirs', f'arm=baseline:{base}', f'arm=OHEM:{ohem}',
        'name=R50-FPN', '--out',
        str(out)
    ])
    assert code == 0
    run = read_work_dir(str(ohem))
    assert run.series('ohem_kept_pos') == ([10, 20, 30, 40], [6, 7, 8, 9])
    assert not any(k.startswith('ohem/') for k in run.keys())
    rows = _table_rows(out)
    assert list(rows) == [('bbox mAP', 'baseline'), ('bbox mAP', 'OHEM')]
    base_row, ohem_row = rows.values()
    assert base_row['model'] == 'R50-FPN'
    # mAP x100; s/iter leaves out the first (warm-up) record: mean of the
    # other three; memory from mmohem_run.json.
    assert [base_row[k] for k in ('value', 's/iter', 'peak RSS MiB')
            ] == ['30.0', '1.200', '900']
    assert [
        ohem_row[k]
        for k in ('value', 'Δ vs baseline', 's/iter', 'peak RSS MiB')
    ] == ['32.5', '+2.5', '1.600', '1000']
    assert ohem_row['verdict'].startswith('OHEM better')
    result = json.loads((out / 'benchmark.json').read_text())
    assert result['rows'][1]['delta'] == pytest.approx(2.5)
    arms = {run['arm']: run for run in result['runs']}
    assert arms['OHEM']['sec_per_iter'] == pytest.approx(1.6)
    assert arms['OHEM']['threads'] is None  # not trained by this tool
    assert result['settings'] is None
    assert result['provenance']['data'] is None
    assert result['provenance']['git']['commit'] == _git('rev-parse', 'HEAD')
    page = (out / 'benchmark.md').read_text()
    assert 'torch threads of the runs not recorded' in page
    assert 'those that trained them are not recorded here' in page
    assert (out / 'benchmark.png').stat().st_size > 0


def test_work_dirs_mode_reads_the_benchmark_layout(benchmark, tmp_path):
    """ROOT/<model>/<arm>/seed<k>/: ``baseline`` first, the other arms
    sorted, two seeds each."""
    root = tmp_path / 'runs' / 'frcnn'
    maps = {
        'baseline': (0.30, 0.32),
        'mmohem-OHEM': (0.31, 0.35),
        'mmdet-OHEM': (0.40, 0.41)
    }
    for arm, values in maps.items():
        for seed, value in enumerate(values):
            _fake_work_dir(root / arm / f'seed{seed}', value, [1.0, 1.0])
    (root / 'notes').mkdir()  # no work dir: not an arm
    out = tmp_path / 'out'
    assert benchmark.main(
        ['--work-dirs',
         str(tmp_path / 'runs'), '--out',
         str(out)]) == 0
    rows = json.loads((out / 'benchmark.json').read_text())['rows']
    assert [r['arm']
            for r in rows] == ['baseline', 'mmdet-OHEM', 'mmohem-OHEM']
    assert rows[0]['value']['values'] == pytest.approx([30.0, 32.0])
    assert rows[2]['value']['values'] == pytest.approx([31.0, 35.0])
    table = (out / 'benchmark.md').read_text()
    assert '33.0 ± 2.8' in table
    # mmohem: Δ = 2.0 is within 2 standard errors (2 * 2.24); mmdet:
    # Δ = 9.5 is not. No cell text breaks the Markdown table.
    assert rows[2]['verdict'].endswith('within noise (Δ within 2 SE)')
    assert rows[1]['verdict'] == 'mmdet-OHEM better'
    lines = [line for line in table.splitlines() if line.startswith('|')]
    assert len({line.count('|') for line in lines}) == 1


def test_work_dirs_entries_group_into_experiments(tmp_path):
    """An experiment ends at a repeated arm name, a second ``name=`` or a
    ROOT; its arms keep their order, the first being the baseline."""
    dirs = [
        str(_fake_work_dir(tmp_path / f'w{i}', 0.3, [1.0])) for i in range(5)
    ]
    found = parse_entries([
        f'arm=plain:{dirs[0]},{dirs[1]}', f'arm=odd:name:{dirs[2]}', 'name=A',
        f'arm=plain:{dirs[3]}', f'arm=OHEM:{dirs[4]}', 'name=B',
        f'arm=again:{dirs[2]}'
    ])
    assert [(e.model, [(a.name, a.dirs) for a in e.arms]) for e in found] == [
        ('A', [('plain', dirs[:2]), ('odd:name', [dirs[2]])]),
        ('B', [('plain', [dirs[3]]), ('OHEM', [dirs[4]]),
               ('again', [dirs[2]])]),
    ]


@pytest.mark.parametrize(
    'entries, message',
    [
        (['arm=nodir'], r'arm=nodir: expected arm=NAME:DIR'),
        (['arm=:{w}', 'arm=b:{w}'], r'arm=:.*: empty name'),
        (['arm=a:', 'arm=b:{w}'], r'arm=a:: names no work dir'),
        (['arm=a:{w}', 'arm=b:{x}'], r'arm=b:.*is not an mmengine work dir'),
        (['arm=a:{w}', 'name=M'], r"experiment 'M' has a; it needs"),
        (['arm=a:{w}', 'arm=a:{w}', 'arm=b:{w}'], r"has a; it needs"),
        # The base=/ohem= spelling of earlier versions is gone: a ROOT to it.
        (['base={w}', 'ohem={w}'], r'base=.*: no such folder'),
        (['{x}'], r'no such folder'),
        (['{t}'], r'no <model>/baseline/ folders'),
    ])
def test_work_dirs_errors_name_the_entry(tmp_path, entries, message):
    work = str(_fake_work_dir(tmp_path / 'w', 0.3, [1.0]))
    (tmp_path / 'empty').mkdir()
    spelled = [
        e.format(w=work, x=tmp_path / 'missing', t=tmp_path / 'empty')
        for e in entries
    ]
    with pytest.raises(ValueError, match=message):
        parse_entries(spelled)


def test_work_dirs_layout_needs_runs_in_baseline(benchmark, tmp_path):
    (tmp_path / 'm' / 'baseline').mkdir(parents=True)
    with pytest.raises(ValueError, match='baseline holds no mmengine'):
        benchmark.main(
            ['--work-dirs',
             str(tmp_path), '--out',
             str(tmp_path / 'out')])


# The demo experiments --------------------------------------------------------


def test_demo_experiments():
    """Every arm's config exists, the first arm is the baseline, and the
    RetinaNet and other-strategy experiments are outside ``make demo``'s
    default."""
    for experiment in DEMO_EXPERIMENTS:
        baseline = experiment.arms[0]
        for arm in experiment.arms:
            assert osp.isfile(osp.join(ROOT, arm.config)), arm
        assert 'ohem' not in osp.basename(baseline.config), experiment.key
        assert experiment.folders()[0] == 'baseline'
    assert {
        e.key: len(e.arms)
        for e in DEMO_EXPERIMENTS
    } == dict(
        faster_rcnn=3,
        pspnet=3,
        ssd=3,
        faster_rcnn_peers=3,
        pspnet_peers=2,
        retinanet=3)
    assert [e.key for e in DEMO_EXPERIMENTS if not e.default
            ] == ['faster_rcnn_peers', 'pspnet_peers', 'retinanet']


#: Each other-strategy arm's config -> the keys of its model config that
#: differ from its baseline's: its strategy and nothing else.
STRATEGY_SWAPS = {
    'faster-rcnn_r18-tiny_fpn_pisa_demo.py':
    {('roi_head', 'type'), ('roi_head', 'bbox_head', 'loss_bbox'),
     ('train_cfg', 'rcnn', 'sampler'), ('train_cfg', 'rcnn', 'isr'),
     ('train_cfg', 'rcnn', 'carl')},
    'faster-rcnn_r18-tiny_fpn_libra-sampler_demo.py':
    {('train_cfg', 'rcnn', 'sampler')},
    'pspnet_r18-tiny-d8_mmseg-ohem-loss_demo.py':
    {('decode_head', 'loss_decode')},
    'retinanet_r18-tiny_fpn_ghm-c_demo.py': {('bbox_head', 'loss_cls')},
}


def _model_leaves(cfg, swapped):
    """The model config's values by path, the swapped subtrees left out."""
    leaves = {}

    def walk(node, path):
        if path in swapped:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + (key, ))
        else:
            leaves[path] = node

    walk(cfg.model.to_dict(), ())
    return leaves


@pytest.mark.parametrize('config', sorted(STRATEGY_SWAPS))
def test_other_strategy_arms_change_only_their_strategy(config):
    arm = Config.fromfile(osp.join(ROOT, 'configs', 'demo', config))
    [baseline] = [
        e.arms[0].config for e in DEMO_EXPERIMENTS if any(
            a.config.endswith(config) for a in e.arms)
    ]
    base = Config.fromfile(osp.join(ROOT, baseline))
    swapped = STRATEGY_SWAPS[config]
    assert _model_leaves(arm, swapped) == _model_leaves(base, swapped)
    for key in set(arm) | set(base):
        if key != 'model':
            assert arm.get(key) == base.get(key), key
    for path in swapped:
        node = arm.model
        for key in path:
            node = node[key]
        assert node is not None


def test_other_strategy_arms_train_a_step():
    """PISA, the Libra sampler, GHM-C and mmseg's OhemCrossEntropy
    (through mmohem.MMSegOhemCrossEntropy) build and train a step."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules as det_modules
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.utils import register_all_modules as seg_modules

    from mmohem.testing.dense_cases import demo_batch
    from mmohem.testing.pixel_cases import seg_data_samples
    det_modules(init_default_scope=False)
    seg_modules(init_default_scope=False)
    for config in sorted(STRATEGY_SWAPS):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', config))
        cfg.model.backbone.init_cfg = None
        torch.manual_seed(0)
        if config.startswith('pspnet'):
            with DefaultScope.overwrite_default_scope('mmseg'):
                model = SEG_MODELS.build(cfg.model).train()
            labels = torch.randint(0, 4, (2, 64, 64))
            losses = model.loss(
                torch.randn(2, 3, 64, 64), seg_data_samples(labels))
        else:
            with DefaultScope.overwrite_default_scope('mmdet'):
                model = DET_MODELS.build(cfg.model).train()
            losses = model(
                **demo_batch(model, (3, 2), num_classes=3), mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        assert torch.isfinite(loss), config


def test_libra_positive_sampler_draws_extras_from_every_positive():
    """Why the Libra arm does not reproduce (docs/benchmark.md): mmdet's
    InstanceBalancedPosSampler draws its extra positives from a set of
    0-dim tensors minus another, which removes nothing (tensors hash by
    identity), so the pool holds the positives already drawn, in an order
    that follows the tensors' addresses."""
    from mmdet.models.task_modules.assigners import AssignResult
    from mmdet.models.task_modules.samplers import InstanceBalancedPosSampler

    # 30 positives of ground truth 1, one of ground truth 2, 20 negatives:
    # quotas of 9 per instance take 10 of the 16 wanted, 6 are extra.
    gt_inds = torch.tensor([1] * 30 + [2] + [0] * 20)
    assigned = AssignResult(2, gt_inds, None, labels=(gt_inds > 0).long())
    sampler = InstanceBalancedPosSampler(num=64, pos_fraction=0.25)
    pools = []
    draw = sampler.random_choice

    def recorded_draw(pool, num):
        pools.append(pool)
        return draw(pool, num)

    sampler.random_choice = recorded_draw
    torch.manual_seed(0)
    assert len(sampler._sample_pos(assigned, 16)) == 16
    quota_draw, extra_pool = pools
    assert len(quota_draw) == 30
    assert sorted(extra_pool.tolist()) == list(range(31))


def test_a_baseline_two_experiments_share_trains_once(benchmark, tmp_path):
    """faster_rcnn and faster_rcnn_peers share their baseline config: each
    seed trains it once, and the second experiment's folder links to the
    run, for this command and for --work-dirs alike; a second command
    replaces the link."""
    out = tmp_path / 'out'
    args = benchmark.parse_args([
        '--demo', '--experiments', 'faster_rcnn', 'faster_rcnn_peers',
        '--seeds', '2', '--out',
        str(out)
    ])
    experiments = benchmark._demo_experiments(args.experiments)
    for _ in range(2):
        jobs = benchmark._jobs(experiments, args, str(tmp_path / 'data'))
    labels = [job.label for job in jobs]
    assert len(labels) == 2 * (3 + 2)
    assert 'faster_rcnn_peers / baseline / seed 1' not in labels
    runs = out / 'runs'
    for seed in range(2):
        shared = runs / 'faster_rcnn_peers' / 'baseline' / f'seed{seed}'
        assert shared.is_symlink()
        assert shared.resolve() == (runs / 'faster_rcnn' / 'baseline' /
                                    f'seed{seed}').resolve()
    for job in jobs:
        _arm_work_dir(job.work_dir, 0.3, 1.0, lambda step: 0.5)
    peers = benchmark._read_experiment(experiments[1], str(out), 2)
    assert [len(arm.runs) for arm in peers.arms] == [2, 2, 2]
    table = tmp_path / 'table'
    assert benchmark.main(['--work-dirs', str(runs), '--out', str(table)]) == 0
    rows = json.loads((table / 'benchmark.json').read_text())['rows']
    assert {r['arm']
            for r in rows} == {
                'baseline', 'mmdet-OHEM', 'mmohem-OHEM', 'PISA',
                'Libra-sampler'
            }
    assert all(len(r['value']['values']) == 2 for r in rows)


def test_experiments_option(benchmark, tmp_path, capsys):
    """``--experiments`` picks demo experiments; an unknown one stops the
    command before the data is generated; ``--pairs`` is no option."""
    args = benchmark.parse_args(['--demo', '--experiments', 'ssd', 'pspnet'])
    assert args.experiments == ['ssd', 'pspnet']
    with pytest.raises(SystemExit, match='unknown experiment'):
        benchmark.main([
            '--demo', '--experiments', 'nope', '--data-root',
            str(tmp_path / 'data'), '--out',
            str(tmp_path / 'out')
        ])
    assert not (tmp_path / 'data').exists()
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--demo', '--pairs', 'ssd'])
    assert 'unrecognized arguments: --pairs' in capsys.readouterr().err


def test_candidate_loss_window_is_the_last_iterations(tmp_path):
    """Records of the last TRAIN_WINDOW iterations count, earlier ones not."""
    (metric, ) = [m for m in METRICS if m.source == 'train']
    last = 3 * TRAIN_WINDOW
    path = _write_scalars(tmp_path / 'w', [
        dict(lr=0.1, candidate_loss=float(step), step=step)
        for step in (1, last - TRAIN_WINDOW, last - TRAIN_WINDOW + 1, last)
    ])
    run = read_work_dir(str(path))
    assert metric.value(run) == pytest.approx(
        (2 * last - TRAIN_WINDOW + 1) / 2)


# Real runs -------------------------------------------------------------------


def test_tiny_demo_run_writes_table_and_json(benchmark, tmp_path):
    out = tmp_path / 'out'
    code = benchmark.main([
        '--demo', '--experiments', 'pspnet', '--iters', '2', '--num-train',
        '8', '--num-val', '2', '--data-root',
        str(tmp_path / 'data'), '--out',
        str(out), '--cfg-options', 'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=1'
    ])
    assert code == 0
    result = json.loads((out / 'benchmark.json').read_text())
    arms = ['baseline', 'mmseg OHEM', 'mmohem OHEM']
    by_metric = {}
    for row in result['rows']:
        assert row['task'] == 'semantic segmentation'
        assert len(row['value']['values']) == 1
        by_metric.setdefault(row['metric'], []).append(row['arm'])
    assert by_metric['mIoU'] == arms
    assert by_metric[
        'loss over all candidates (last 100 iters)'] == arms, by_metric
    runs = {run['arm']: run for run in result['runs']}
    assert [runs[arm]['iters'] for arm in arms] == [2, 2, 2]
    assert osp.isdir(out / 'runs' / 'pspnet' / 'mmseg-OHEM' / 'seed0')
    ohem = runs['mmohem OHEM']
    assert ohem['sec_per_iter'] > 0 and ohem['memory_source'] == 'rss'
    assert ohem['memory_mib'] > 100
    assert ohem['train_metrics']['candidate_loss'] > 0
    table = (out / 'benchmark.md').read_text()
    assert 'PSPNet' in table and 'mmseg OHEM' in table
    assert (out / 'benchmark.png').stat().st_size > 0
    # Provenance: what the runs were given and how they ran, the code, the
    # packages and the data they trained on.
    settings = result['settings']
    assert settings == dict(
        seeds=1,
        iters=2,
        jobs=min(2, os.cpu_count()),
        threads=max(1,
                    os.cpu_count() // settings['jobs']))
    assert {run['threads'] for run in runs.values()} == {settings['threads']}
    assert max(run['concurrent_runs']
               for run in runs.values()) == settings['jobs']
    prov = result['provenance']
    assert prov['data'] == data_digest(str(tmp_path / 'data'))
    assert prov['git']['commit'] == _git('rev-parse', 'HEAD')
    assert prov['packages']['torch'] == torch.__version__
    assert f'sha256 {prov["data"]["sha256"][:16]}' in table
    assert (f'torch threads per run: {settings["threads"]}, up to '
            f'{settings["jobs"]} runs at once') in table


def test_retinanet_experiment_runs_on_request_only(benchmark, tmp_path):
    """The RetinaNet experiment (focal loss, GHM-C, OHEM) is outside make
    demo's default experiments and trains when named."""
    out = tmp_path / 'out'
    code = benchmark.main([
        '--demo',
        '--experiments',
        'retinanet',
        '--iters',
        '2',
        '--num-train',
        '4',
        '--num-val',
        '2',
        '--data-root',
        str(tmp_path / 'data'),
        '--out',
        str(out),
        '--cfg-options',
        'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1',
        'model.test_cfg.score_thr=0.0'  # 2 iterations score below 0.05
    ])
    assert code == 0
    result = json.loads((out / 'benchmark.json').read_text())
    row = result['rows'][0]
    assert row['model'].startswith('RetinaNet') and row['metric'] == (
        'bbox mAP')
    runs = {run['arm']: run for run in result['runs']}
    assert {
        arm: run['iters']
        for arm, run in runs.items()
    } == {
        'focal loss': 2,
        'GHM-C': 2,
        'mmohem OHEM': 2
    }


def test_train_progress_reads_the_last_training_line():
    log = '\n'.join([
        '2026/11/26 14:37:10 - mmengine - INFO - Iter(train) [ 10/800]  '
        'lr: 1.0e-03  eta: 0:01:52  time: 0.12  loss: 2.02',
        '2026/11/26 14:37:12 - mmengine - INFO - Iter(train) [ 20/800]  '
        'lr: 1.0e-03  eta: 1 day, 0:01:40  time: 0.12  loss: 1.98',
        '2026/11/26 14:37:13 - mmengine - INFO - Iter(val) [1/1]  '
        'eta: 0:00:00',
    ])
    assert train_progress(log) == (20, 800, '1 day, 0:01:40')
    assert train_progress('no training yet') is None


def _git(*args):
    return subprocess.run(['git', '-C', ROOT, *args],
                          capture_output=True,
                          text=True,
                          check=True).stdout.strip()


# Log keys --------------------------------------------------------------------


@pytest.mark.parametrize('old, new', [
    ('ohem/num_pos', 'ohem_kept_pos'),
    ('ohem/num_neg', 'ohem_kept_neg'),
    ('ohem/no_pos_images', 'ohem_no_pos_images'),
    ('ohem/nms_suppressed', 'ohem_nms_suppressed'),
    ('ohem/loss_kept', 'ohem_loss_kept'),
    ('ohem/loss_all', 'ohem_loss_all'),
    ('ohem/kept_fraction', 'ohem_kept_fraction'),
    ('ohem/num_kept', 'ohem_kept_pixels'),
    ('ohem/s1.num_pos', 'ohem_s1_kept_pos'),
    ('ohem/s0.loss_kept', 'ohem_s0_loss_kept'),
    ('ohem_kept_pos', 'ohem_kept_pos'),
    ('loss_cls', 'loss_cls'),
    ('coco/bbox_mAP', 'coco/bbox_mAP'),
])
def test_old_ohem_keys_read_as_the_new_ones(old, new):
    assert current_key(old) == new


def test_an_old_log_reads_like_a_new_one(tmp_path):
    """Old ``ohem/...`` keys give the same run, table metric and plot
    groups as the flat keys."""
    old = dict(lr=0.1, loss=1.0, step=10)
    old.update({
        'ohem/num_pos': 3.0,
        'ohem/s1.num_neg': 60.0,
        'ohem/no_pos_images': 0.25,
        'ohem/s1.loss_all': 0.5,
        'ohem/num_kept': 900.0,
        'ohem/kept_fraction': 0.2,
    })
    new = {current_key(k): v for k, v in old.items()}
    runs = [
        read_work_dir(_write_scalars(tmp_path / name, [record]))
        for name, record in (('old', old), ('new', new))
    ]
    assert runs[0].train == runs[1].train
    assert runs[0].keys() == [
        'lr', 'loss', 'step', 'ohem_kept_pos', 'ohem_s1_kept_neg',
        'ohem_no_pos_images', 'ohem_s1_loss_all', 'ohem_kept_pixels',
        'ohem_kept_fraction'
    ]
    (no_pos, ) = [m for m in METRICS if m.key.endswith('no_pos_images')]
    assert no_pos.value(runs[0]) == no_pos.value(runs[1]) == 0.25
    assert ohem_groups(runs[0].keys()) == {
        'kept examples':
        ['ohem_kept_pos', 'ohem_s1_kept_neg', 'ohem_kept_pixels'],
        'mean loss': ['ohem_s1_loss_all'],
        'rate / other': ['ohem_no_pos_images', 'ohem_kept_fraction'],
    }
    assert ohem_name('ohem_s1_kept_neg') == 'kept_neg'
    assert ohem_name('loss_cls') is None


def _mmdet_load_json_logs():
    """``load_json_logs`` of mmdet's ``tools/analysis_tools/analyze_logs.py``
    as installed (the function alone: the script imports seaborn)."""
    import mmdet
    path = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
        'analyze_logs.py')
    if not osp.isfile(path):
        pytest.skip(f'mmdet ships no {path}')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    (function, ) = [
        node for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == 'load_json_logs'
    ]
    scope = dict(json=json, defaultdict=defaultdict)
    exec(compile(ast.Module([function], []), path, 'exec'), scope)
    return scope['load_json_logs']


def _analyzed_keys(load_json_logs, record, path):
    """The keys mmdet's analyzer keeps of one log line."""
    path.write_text(json.dumps(record) + '\n')
    (log_dict, ) = load_json_logs([str(path)])
    return set(log_dict[1])


def test_mmdet_log_analyzer_keeps_every_ohem_training_scalar(
        twin_runs, tmp_path):
    """mmdet 3.3's analyze_logs.py reads a key holding ``/`` as a
    validation metric and drops the keys after it on its line: the
    training lines of an OHEM run keep every key (losses, mining
    statistics); under the old ``ohem/...`` names they lost the losses."""
    load_json_logs = _mmdet_load_json_logs()
    (scalars, ) = glob.glob(
        osp.join(twin_runs[0], '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        train = [r for r in map(json.loads, f) if 'lr' in r]
    assert train
    for record in train:
        assert {'loss_cls', 'loss_bbox', 'ohem_kept_pos'} <= set(record)
        kept = _analyzed_keys(load_json_logs, record, tmp_path / 'new.json')
        assert kept == set(record)
    # The same line with its mining statistics first, under the old names.
    mining = {k: v for k, v in train[0].items() if k.startswith('ohem_')}
    old = {k.replace('ohem_', 'ohem/', 1): v for k, v in mining.items()}
    old.update((k, v) for k, v in train[0].items() if k not in mining)
    assert 'loss_cls' not in _analyzed_keys(load_json_logs, old,
                                            tmp_path / 'old.json')


# Provenance ------------------------------------------------------------------


def test_data_digest_covers_names_and_contents(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.png').write_bytes(b'pixels')
    (tmp_path / 'meta.json').write_text('{}')
    first = data_digest(str(tmp_path))
    assert first['files'] == 2 and len(first['sha256']) == 64
    assert data_digest(str(tmp_path)) == first
    (tmp_path / 'images' / 'a.png').write_bytes(b'pixelz')
    changed = data_digest(str(tmp_path))['sha256']
    (tmp_path / 'images' / 'a.png').rename(tmp_path / 'images' / 'b.png')
    renamed = data_digest(str(tmp_path))['sha256']
    assert len({first['sha256'], changed, renamed}) == 3


def test_git_state_sees_a_dirty_tree(tmp_path):

    def git(*args):
        subprocess.run(['git', '-C', str(tmp_path), *args],
                       check=True,
                       capture_output=True)

    assert git_state(str(tmp_path))['commit'] is None
    git('init', '-q')
    (tmp_path / 'a.py').write_text('x = 1\n')
    git('add', 'a.py')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'a')
    clean = git_state(str(tmp_path))
    assert len(clean['commit']) == 40
    assert (clean['dirty'], clean['changed']) == (False, [])
    (tmp_path / 'a.py').write_text('x = 2\n')
    (tmp_path / 'b.py').write_text('')
    dirty = git_state(str(tmp_path))
    assert dirty['commit'] == clean['commit']
    assert (dirty['dirty'], dirty['changed']) == (True, [' M a.py', '?? b.py'])


def test_package_versions_are_the_imported_ones():
    import importlib.metadata
    versions = package_versions()
    assert list(versions) == list(PACKAGES)
    assert versions['torch'] == torch.__version__
    assert versions['mmseg'] == importlib.metadata.version('mmsegmentation')
    assert versions['mmdet'] == '3.3.0' and versions['mmcv'] == '2.1.0'
    assert all(versions.values()), versions


# Timers ----------------------------------------------------------------------


class _TinyModel(torch.nn.Module):
    """A model with mmengine's loss interface that calls ``owner.part``."""

    def __init__(self, owner):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.owner = owner

    def forward(self, inputs, mode):
        return dict(loss=self.owner.part(self.linear(inputs)).pow(2).mean())

    def parse_losses(self, losses):
        return losses['loss'], {}


class _Part:
    """The holder of the timed method, which raises at call ``fail_at``."""

    def __init__(self, fail_at):
        self.calls, self.fail_at = 0, fail_at

    def part(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError('step failed')
        return 2 * x


@pytest.mark.parametrize('fail_at', [None, 2])
@pytest.mark.parametrize('own', [False, True])
def test_time_training_restores_the_timed_method(fail_at, own):
    """After timing, the owner's method is what it was (its class's, or its
    own attribute), also when an iteration raises."""
    holder = _Part(fail_at)
    owner = SimpleNamespace(part=holder.part) if own else holder
    before = vars(owner).get('part')
    model = _TinyModel(owner)
    data = dict(inputs=torch.ones(3, 2))
    if fail_at is None:
        result = time_training(model, data, owner, 'part', 1, 2)
        assert len(result['iter_times']) == 2 and result['part_ms'] > 0
    else:
        with pytest.raises(RuntimeError, match='step failed'):
            time_training(model, data, owner, 'part', 1, 2)
    assert vars(owner).get('part') is before
    assert owner.part.__func__ is _Part.part
