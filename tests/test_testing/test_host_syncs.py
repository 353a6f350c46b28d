"""Host synchronisations of the miners, counted on the CPU."""
import torch

from mmohem.testing import count_host_syncs, miner_host_syncs
from mmohem.testing.host_syncs import cuda_sync_calls


def test_counter_sees_host_reads_and_mask_indexing():
    values = torch.arange(6.)
    mask = values > 2

    def step():
        values[mask].sum().item()
        bool(mask.any())
        values.topk(2)  # stays on the device

    result = count_host_syncs(step, 'cpu')
    assert result['calls'] == ['__getitem__[bool mask]', 'item', '__bool__']


def test_miners_wait_for_the_device_only_where_the_data_decides():
    """One image (RoI): one read, for the finiteness check, which the RoI
    sampler leaves to its statistics (``check_finite=False``); a batch
    (SSD): one read for the budget and the finiteness check, one for
    whether the loss-sorted prefixes sufficed (their NMS takes every entry
    of the prefixes, so its input's size is known); for pixels on
    the CPU path one read for the input checks and the counts, then the
    radix select's bucket and the tied pixels' indices."""
    counts = {k: v['calls'] for k, v in miner_host_syncs('cpu').items()}
    assert counts == {
        'RoI image (1x2000, keep 512)': ['tolist'],
        'SSD batch (8x8732, keep 64)': ['tolist', '__bool__'],
        'pixels (8x19x128x256)': ['tolist', 'tolist', 'nonzero'],
    }


def test_cuda_count_leaves_out_the_prototype_notice():
    """The warnings one CUDA step gave on an H200: torch's notice that sync
    debug mode is a prototype, then one warning per synchronising call."""
    notice = ('Synchronization debug mode is a prototype feature and does '
              'not yet detect all synchronizing operations (Triggered '
              'internally at /pytorch/torch/csrc/cuda/Module.cpp:1003.)')
    call = ('called a synchronizing CUDA operation (Triggered internally '
            'at /pytorch/c10/cuda/CUDAFunctions.cpp:162.)')
    assert cuda_sync_calls([notice, call, 'unrelated', call]) == [call] * 2
