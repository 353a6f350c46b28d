"""Host synchronisations of the miners, counted on the CPU."""
import torch

from mmohem.checks import count_host_syncs, miner_host_syncs


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
    """One read for the budget and the finiteness check, the NMS input's
    size, whether the loss-sorted prefix sufficed (SSD); for pixels one
    read for the input checks, one for the counts, one for the radix
    select's bucket, the tied pixels' indices."""
    counts = {k: v['calls'] for k, v in miner_host_syncs('cpu').items()}
    assert counts == {
        'RoI image (1x2000, keep 512)': ['tolist', 'nonzero'],
        'SSD batch (8x8732, keep 64)': ['tolist', 'nonzero', '__bool__'],
        'pixels (8x19x128x256)': ['tolist', 'tolist', 'tolist', 'nonzero'],
    }
