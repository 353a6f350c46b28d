"""The mining steps whose launches are counted, each beside its peer.

Every case is a mining step of mmohem and of what it replaces, on the same
inputs: the RoI sampling of a Faster R-CNN FPN head, the loss of an SSD300
and of a RetinaNet head, the pixel sampler and the pixel loss (forward and
backward) of a segmentation head, mmohem's on both of its pixel paths.
``tools/analysis_tools/count_launches.py`` and the GPU
check's ``launches`` section count them with :func:`count_launches`; the
test suite pins each budget.
"""
from typing import Callable, Dict, List

from .dense_cases import retina_case, ssd_case
from .launches import count_launches
from .pixel_cases import REGIMES, loss_steps, pixel_batch, sampler_steps
from .roi_case import roi_sampling_step

#: The options of mmdet's Faster R-CNN RandomSampler, which mmdet's
#: OHEMSampler shares.
ROI_UPSTREAM = dict(
    num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)
ROI_SAMPLERS = {
    'mmdet RandomSampler': dict(ROI_UPSTREAM, type='RandomSampler'),
    'mmdet OHEMSampler': dict(ROI_UPSTREAM, type='OHEMSampler'),
    'mmohem.OHEMSampler': dict(type='mmohem.OHEMSampler', num=512),
}
#: Logits of the pixel cases, (B, C, H, W), and the options of both sides
#: (``min_kept`` per image: 1000 of its 8192 pixels).
PIXEL_SHAPE = (2, 19, 64, 128)
PIXEL_OPTIONS = dict(thresh=0.7, min_kept=1000)
#: The arm each case's ratio is taken against.
PEERS = {
    'RoI sampling': 'mmdet OHEMSampler',
    'SSD300 loss': 'mmdet SSDHead',
    'RetinaNet loss': 'mmdet RetinaHead',
    **{
        f'pixel sampler, {r}': 'mmseg OHEMPixelSampler'
        for r in REGIMES
    },
    **{
        f'pixel loss, {r}': 'mmseg OhemCrossEntropy loss'
        for r in REGIMES
    },
}


def launch_cases(device: str = 'cpu',
                 proposals: int = 2000) -> Dict[str, Dict[str, Callable]]:
    """Case name -> arm name -> step, each built on ``device``.

    Args:
        device (str): Where the steps run.
        proposals (int): Proposals per image of the RoI case (2 images).
    """
    ssd_ours, ssd_peer = ssd_case(device=device)
    retina_ours, retina_peer = retina_case(device=device)
    return {
        'RoI sampling': {
            arm:
            roi_sampling_step(sampler, proposals=proposals, device=device)
            for arm, sampler in ROI_SAMPLERS.items()
        },
        'SSD300 loss': {
            'mmdet SSDHead': ssd_peer,
            'mmohem.OHEMSSDHead': ssd_ours
        },
        'RetinaNet loss': {
            'mmdet RetinaHead': retina_peer,
            'mmohem.OHEMRetinaHead': retina_ours
        },
        **pixel_launch_cases(device),
    }


def pixel_launch_cases(device: str = 'cpu') -> Dict[str, Dict[str, Callable]]:
    """The pixel sampler and pixel loss cases of :func:`launch_cases`, in
    both logit regimes, on :data:`PIXEL_SHAPE`."""
    cases = {}
    for regime in REGIMES:
        logits, labels = pixel_batch(PIXEL_SHAPE, regime, device=device)
        cases[f'pixel sampler, {regime}'] = sampler_steps(
            logits, labels, **PIXEL_OPTIONS)
        cases[f'pixel loss, {regime}'] = loss_steps(logits.requires_grad_(),
                                                    labels, **PIXEL_OPTIONS)
    return cases


def count_cases(device: str = 'cpu', proposals: int = 2000) -> List[Dict]:
    """:func:`count_rows` of every case of :func:`launch_cases`."""
    return count_rows(launch_cases(device, proposals), device)


def count_rows(cases: Dict[str, Dict[str, Callable]],
               device: str = 'cpu') -> List[Dict]:
    """One row per case and arm: ``ops``, ``host_reads``, ``kernels`` (on
    CUDA) and ``vs_peer``, the ratio of ``ops`` (of ``kernels`` on CUDA)
    to the case's peer's (:data:`PEERS`).

    Args:
        cases (dict): Case name -> arm name -> step, as
            :func:`launch_cases` returns them.
        device (str): Where the steps run.
    """
    rows = []
    for case, arms in cases.items():
        counts = {
            arm: count_launches(step, device)
            for arm, step in arms.items()
        }
        key = 'kernels' if device == 'cuda' else 'ops'
        peer = counts[PEERS[case]][key]
        for arm, count in counts.items():
            rows.append(
                dict(
                    case=case,
                    arm=arm,
                    ops=count['ops'],
                    host_reads=count['host_reads'],
                    kernels=count.get('kernels'),
                    vs_peer=count[key] / peer))
    return rows
