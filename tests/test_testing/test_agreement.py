"""The CPU/device agreement check and the NMS memory check, on the CPU."""
from mmohem.testing import mining_agreement, nms_memory


def test_agreement_runs_every_case_and_keeps_examples():
    results = mining_agreement('cpu', images=2, cands=400)
    assert len(results) == 4
    assert all(r['kept'] > 0 and r['differ'] == 0 for r in results.values())


def test_nms_memory_reports_both_modes_with_the_same_survivors():
    rows = nms_memory([800, 1600], 'cpu', images=4)
    assert [(r['boxes'], r['mode']) for r in rows] == [(800, 'chunked'),
                                                       (800, 'one call'),
                                                       (1600, 'chunked'),
                                                       (1600, 'one call')]
    assert rows[0]['survivors'] == rows[1]['survivors'] > 0
    assert all(r['peak_mib'] is None and r['ms'] > 0 for r in rows)
