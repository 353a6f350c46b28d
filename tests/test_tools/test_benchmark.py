"""tools/benchmark.py: --work-dirs on fabricated work dirs, a tiny demo run."""
import json
import os
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def benchmark(load_tool):
    """tools/benchmark.py as a module."""
    return load_tool('benchmark')


def _fake_work_dir(path,
                   map_value,
                   times,
                   ohem=False,
                   text_log=False,
                   rss=None):
    """An mmengine work dir: one launch with training records every 10
    iterations and one evaluation at iteration 40."""
    launch = osp.join(path, '20261125_101500')
    os.makedirs(osp.join(launch, 'vis_data'))
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
    if text_log:
        with open(osp.join(launch, '20261125_101500.log'), 'w') as f:
            for r in records:
                f.write(f'11/25 10:15:00 - mmengine - INFO - Iter(train) '
                        f'[{r["step"]:>3}/40]  lr: 1.0000e-02  eta: 0:00:10'
                        f'  time: {r["time"]:.4f}  data_time: 0.0100  '
                        f'loss: {r["loss"]:.4f}\n')
            f.write('11/25 10:16:00 - mmengine - INFO - Iter(val) [4/4]    '
                    f'coco/bbox_mAP: {map_value:.4f}  coco/bbox_mAP_50: '
                    '0.5000  data_time: 0.0100  time: 0.2000\n')
    else:
        with open(osp.join(launch, 'vis_data', 'scalars.json'), 'w') as f:
            for record in records + [evaluation]:
                f.write(json.dumps(record) + '\n')
    if rss is not None:
        with open(osp.join(path, 'mmohem_run.json'), 'w') as f:
            json.dump(dict(peak_rss_mib=rss, wall_s=12.0), f)
    return path


def test_work_dirs_mode_builds_the_table(benchmark, tmp_path):
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
        '--work-dirs', f'base={base}', f'ohem={ohem}', 'name=R50-FPN', '--out',
        str(out)
    ])
    assert code == 0
    table = (out / 'benchmark.md').read_text()
    header, rule, row = [
        line for line in table.splitlines() if line.startswith('|')
    ][:3]
    assert 'peak RSS MiB' in header
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[:2] == ['detection', 'R50-FPN']
    # mAP x100; s/iter leaves out the first (warm-up) record: mean of the
    # other three; memory from mmohem_run.json.
    for text in ('30.0', '32.5', '+2.5', 'OHEM better', '1.200', '1.600',
                 '900', '1000'):
        assert text in row, (text, row)
    result = json.loads((out / 'benchmark.json').read_text())
    assert result['rows'][0]['model'] == 'R50-FPN'
    assert result['rows'][0]['delta'] == pytest.approx(2.5)
    sides = {run['side']: run for run in result['runs']}
    assert sides['ohem']['sec_per_iter'] == pytest.approx(1.6)
    assert (out / 'benchmark.png').stat().st_size > 0


def test_work_dirs_mode_reads_the_benchmark_layout(benchmark, tmp_path):
    root = tmp_path / 'runs' / 'frcnn'
    for seed, (base_map, ohem_map) in enumerate([(0.30, 0.31), (0.32, 0.35)]):
        _fake_work_dir(root / 'baseline' / f'seed{seed}', base_map, [1.0, 1.0])
        _fake_work_dir(
            root / 'ohem' / f'seed{seed}', ohem_map, [1.0, 1.0], ohem=True)
    out = tmp_path / 'out'
    assert benchmark.main(
        ['--work-dirs',
         str(tmp_path / 'runs'), '--out',
         str(out)]) == 0
    row = json.loads((out / 'benchmark.json').read_text())['rows'][0]
    assert row['baseline']['values'] == pytest.approx([30.0, 32.0])
    assert row['ohem']['values'] == pytest.approx([31.0, 35.0])
    table = (out / 'benchmark.md').read_text()
    assert '31.0 ± 1.4' in table
    # Δ = 2.0 is within 2 standard errors (2 * 2.24): the verdict says so,
    # and no cell text breaks the Markdown table.
    lines = [line for line in table.splitlines() if line.startswith('|')]
    assert 'within noise' in lines[2]
    assert len({line.count('|') for line in lines}) == 1


def test_work_dirs_mode_rejects_a_folder_without_runs(benchmark, tmp_path):
    with pytest.raises(ValueError, match='baseline'):
        benchmark.main(
            ['--work-dirs',
             str(tmp_path), '--out',
             str(tmp_path / 'out')])


def test_tiny_demo_run_writes_table_and_json(benchmark, tmp_path):
    out = tmp_path / 'out'
    code = benchmark.main([
        '--demo', '--pairs', 'pspnet', '--iters', '3', '--num-train', '8',
        '--num-val', '2', '--data-root',
        str(tmp_path / 'data'), '--out',
        str(out), '--cfg-options', 'train_dataloader.batch_size=2',
        'default_hooks.logger.interval=1'
    ])
    assert code == 0
    result = json.loads((out / 'benchmark.json').read_text())
    (row, ) = result['rows']
    assert row['task'] == 'semantic segmentation'
    assert len(row['baseline']['values']) == len(row['ohem']['values']) == 1
    runs = {run['side']: run for run in result['runs']}
    assert runs['baseline']['iters'] == runs['ohem']['iters'] == 3
    assert runs['ohem']['sec_per_iter'] > 0
    assert runs['ohem']['memory_source'] == 'rss'
    assert runs['ohem']['memory_mib'] > 100
    table = (out / 'benchmark.md').read_text()
    assert 'PSPNet' in table and 'mIoU' in table
    assert (out / 'benchmark.png').stat().st_size > 0


def test_retinanet_pair_runs_on_request_only(benchmark, tmp_path):
    """The focal-loss vs OHEM RetinaNet pair is outside make demo's default
    pairs and trains when named."""
    assert [p.key for p in benchmark.DEMO_PAIRS
            if not p.default] == ['retinanet']
    out = tmp_path / 'out'
    code = benchmark.main([
        '--demo',
        '--pairs',
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
    (row, ) = result['rows']
    assert row['model'].startswith('RetinaNet') and row['metric'] == (
        'bbox mAP')
    runs = {run['side']: run for run in result['runs']}
    assert runs['baseline']['iters'] == runs['ohem']['iters'] == 2


def test_train_progress_reads_the_last_training_line():
    from mmohem.benchmark.logs import train_progress
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
