"""The main job reproduces: two runs of one demo arm with the same seed and
thread count, launched together as ``make demo`` launches its runs, train
the same losses and mining statistics and reach the same metrics."""
from mmohem.benchmark.logs import read_work_dir

#: Logged scalars that measure the machine, not the training.
TIMING_KEYS = ('time', 'data_time', 'eta', 'memory')


def _training(run):
    """Every logged training record without its timings."""
    return [{
        k: v
        for k, v in record.items() if k not in TIMING_KEYS
    } for record in run.train]


def test_two_runs_of_an_arm_train_and_score_the_same(twin_runs):
    first, second = (read_work_dir(d) for d in twin_runs)
    records = _training(first)
    assert [r['step'] for r in records] == [1, 2, 3, 4]
    # The comparison has something to compare: losses that move, mining
    # statistics, the loss over all candidates and evaluation metrics.
    assert len({r['loss'] for r in records}) == len(records)
    assert all('ohem_kept_pos' in r and 'candidate_loss' in r for r in records)
    assert 'coco/bbox_mAP' in first.metrics
    assert records == _training(second)
    assert first.metrics == second.metrics
    # Both ran at once with one torch thread each, and say so.
    assert (first.threads, first.concurrent_runs) == (1, 2)
    assert (second.threads, second.concurrent_runs) == (1, 2)
