"""tools/gpu_check.py run on the CPU (--quick): every section reports, the
report is written, and --device cuda without a GPU is refused."""
import json
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'gpu_check.py')


def test_cpu_run_reports_every_section(tmp_path, run_script):
    result = run_script(SCRIPT, '--device', 'cpu', '--quick', '--out',
                        str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert report['failed'] == []
    assert report['build']['ok'] and report['build']['ops_run']
    assert [r['config'] for r in report['amp']] == [
        'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
        'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
        'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'
    ]
    for amp in report['amp']:
        assert amp['dtype'] == 'bfloat16' and amp['trained'] > 0
        assert amp['mmohem_missing'] == [] and amp['mmdet_missing']
    assert all(r['differ'] == 0 for r in report['agreement'].values())
    assert {r['boxes'] for r in report['nms']} == {2000, 4000}
    assert set(report['syncs']) == {
        'RoI image (1x2000, keep 512)', 'SSD batch (8x8732, keep 64)',
        'pixels (8x19x128x256)'
    }
    arms = {(r['case'], r['arm']) for r in report['launches']}
    assert ('RoI sampling', 'mmohem.OHEMSampler') in arms
    assert all(r['ops'] > 0 for r in report['launches'])
    text = (tmp_path / 'gpu_check.md').read_text()
    for heading in ('## Build', '## RoI-head gradients under autocast',
                    '## Same examples on the CPU and the device',
                    '## Loss-based NMS: peak memory and time',
                    '## Host synchronisations per miner step',
                    '## Launches per mining step'):
        assert heading in text
    assert '**passed**' in text


def test_cuda_without_a_gpu_is_refused(tmp_path, run_script):
    result = run_script(SCRIPT, '--device', 'cuda', '--out', str(tmp_path))
    assert result.returncode == 2
    assert 'torch sees no CUDA device here' in result.stderr


def test_a_config_that_raises_fails_its_row_and_the_others_run(
        load_tool, monkeypatch):
    gpu_check = load_tool('gpu_check')
    import mmohem.testing

    def fake_check(name, device, dtype, depth, size):
        if name == gpu_check.AMP_CONFIGS[0]:
            raise RuntimeError('Index put requires the source and '
                               'destination dtypes match')
        return dict(
            config=name,
            dtype='bfloat16',
            trained=4,
            mmohem_missing=[],
            mmdet_missing=['fc_cls.weight'],
            ok=True)

    monkeypatch.setattr(mmohem.testing, 'amp_gradient_check', fake_check)
    rows = gpu_check.check_amp('cpu', quick=True)
    assert [r['ok'] for r in rows] == [False, True, True]
    assert rows[0]['error'].startswith('RuntimeError: Index put')
    assert [r['config'] for r in rows] == list(gpu_check.AMP_CONFIGS)
    results = dict(amp=rows)
    failed = gpu_check.failures(results)
    assert failed == [f'amp: {gpu_check.AMP_CONFIGS[0]}']
    text = gpu_check.report(results, 'cpu', failed, 'cmd')
    assert 'error: RuntimeError: Index put' in text
    assert '| 4 | 0 | 1 |' in text


def test_ops_that_raise_fail_the_build_with_the_error(load_tool, monkeypatch):
    gpu_check = load_tool('gpu_check')

    def no_cuda_ops(device):
        raise RuntimeError('nms_impl is not compiled with GPU support')

    monkeypatch.setattr(gpu_check, 'mmcv_ops_run', no_cuda_ops)
    build = gpu_check.check_build('cpu')
    assert not build['ok'] and not build['ops_run']
    assert build['error'] == ('RuntimeError: nms_impl is not compiled with '
                              'GPU support')
    assert gpu_check.failures(dict(build=build)) == ['build']
