"""Shared pytest fixtures. Tests run on CPU."""
import pytest
import torch

torch.set_num_threads(2)


def _iou_matrix(boxes):
    """IoU of every pair of boxes, Tensor[N, N] as a list of lists."""
    lt = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    return (inter / (area[:, None] + area[None] - inter)).tolist()


def _reference_mining(losses,
                      valid,
                      is_pos,
                      boxes,
                      labels,
                      num,
                      thr,
                      pos_fraction=None,
                      neg_pos_ub=-1):
    """Plain greedy loss-NMS then top-num, one image and one box at a time."""
    kept = torch.zeros_like(valid)
    for b in range(losses.size(0)):
        order = [
            i for i in losses[b].argsort(descending=True).tolist()
            if valid[b, i]
        ]
        iou = _iou_matrix(boxes[b])
        lab = None if labels is None else labels[b].tolist()
        survivors = []
        for i in order:
            if thr is None or all(
                (lab is not None and lab[i] != lab[j]) or iou[i][j] <= thr
                    for j in survivors):
                survivors.append(i)
        if pos_fraction is None:
            chosen = survivors[:num]
        else:
            pos = [i for i in survivors if is_pos[b, i]]
            neg = [i for i in survivors if not is_pos[b, i]]
            pos = pos[:int(num * pos_fraction)]
            num_neg = num - len(pos)
            if neg_pos_ub >= 0:
                num_neg = min(num_neg, int(neg_pos_ub * max(1, len(pos))))
            chosen = pos + neg[:num_neg]
        kept[b, chosen] = True
    return kept


@pytest.fixture
def reference_mining():
    """Plain loop reference of loss-NMS + top-k (+ quota) selection."""
    return _reference_mining
