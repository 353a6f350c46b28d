"""Pretrain the demo backbones on crops of the demo world (their
"ImageNet"), and write the checkpoints the demo configs start from.

Each backbone is built from the demo config that uses it (one source for
its architecture), with a global-average-pool + linear classifier on its
deepest output that the detector or segmentor uses, and trained to tell
the 3 classes, the 4 distractor kinds and background apart on crops from
scenes that no demo split contains (:mod:`mmohem.demo.crops`). Batches are
class-balanced (the star is rare in the scenes). Dilated ResNets are
pretrained undilated (the weights do not depend on the dilation), as
ImageNet ResNets are before they go into PSPNet.

Writes, per backbone, ``<out>/<name>.pth`` (the backbone's ``state_dict``
only, keys as the backbone names them, for ``init_cfg=dict(type=
'Pretrained', checkpoint=...)``) and ``<out>/<name>.json``: the command,
seed, settings, crop counts, held-out accuracy and time that produced it.

Usage::

    python tools/pretrain_demo_backbones.py            # all, shipped files
    python tools/pretrain_demo_backbones.py --backbones mobilenetv2-tiny
"""
import argparse
import json
import math
import os
import os.path as osp
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from mmohem.demo.crops import CROP_CLASSES, render_crops

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_OUT = osp.join(ROOT, 'checkpoints', 'demo')


@dataclass(frozen=True)
class Backbone:
    """A demo backbone to pretrain.

    Attributes:
        name (str): File name of its checkpoint, without extension.
        config (str): A demo config whose ``model.backbone`` it is,
            relative to the repository.
        scope (str): ``'mmdet'`` or ``'mmseg'``, whose registry builds it.
        overrides (dict): Backbone arguments changed for classification.
    """

    name: str
    config: str
    scope: str
    overrides: Dict[str, object] = field(default_factory=dict)


BACKBONES = (
    Backbone('resnet18-tiny', 'configs/demo/_base_/r18_tiny.py', 'mmdet'),
    Backbone('resnetv1c18-tiny', 'configs/demo/pspnet_r18-tiny-d8_demo.py',
             'mmseg', dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2))),
    Backbone('mobilenetv2-tiny',
             'configs/demo/ssdlite_mobilenetv2-tiny_demo.py', 'mmdet'),
)


class Classifier(nn.Module):
    """A backbone with a pooled linear head on its last output.

    Args:
        backbone (nn.Module): Returns a tuple of feature maps.
        channels (int): Channels of its last output.
        num_classes (int): Classes to predict.
    """

    def __init__(self, backbone: nn.Module, channels: int,
                 num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Logits, Tensor[B, num_classes], of Tensor[B, 3, H, W]."""
        feature = self.backbone(images)[-1]
        return self.fc(feature.mean((2, 3)))


def build_backbone(spec: Backbone) -> nn.Module:
    """The backbone of ``spec.config``, outputting only its deepest used
    level, without initialisation from a checkpoint."""
    import importlib
    importlib.import_module(f'{spec.scope}.models')
    registry = importlib.import_module(f'{spec.scope}.registry').MODELS
    cfg = Config.fromfile(osp.join(ROOT, spec.config)).model.backbone
    cfg.update(spec.overrides)
    cfg.update(out_indices=(max(cfg.out_indices), ), init_cfg=None)
    if spec.scope == 'mmseg':
        cfg.pop('pretrained', None)
    backbone = registry.build(cfg)
    backbone.init_weights()
    return backbone


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--backbones',
        nargs='+',
        choices=[b.name for b in BACKBONES],
        default=[b.name for b in BACKBONES])
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--train-scenes',
        type=int,
        default=2000,
        help='scenes cropped for training (default: %(default)s)')
    parser.add_argument(
        '--val-scenes',
        type=int,
        default=300,
        help='scenes cropped for the held-out accuracy')
    parser.add_argument('--crop-size', type=int, default=48)
    parser.add_argument('--iters', type=int, default=1200)
    parser.add_argument('--batch-size', type=int, default=96)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--threads', type=int, help='torch threads')
    return parser.parse_args(argv)


def to_tensor(images: np.ndarray) -> Tensor:
    """Uint8 BGR ``[N, H, W, 3]`` as normalised RGB Tensor[N, 3, H, W]
    (the demo configs' mean and std)."""
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    rgb = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2)
    return (rgb.float() - mean) / std


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and quarter turn of each batch."""
    if torch.rand((), generator=generator) < 0.5:
        images = images.flip(-1)
    turns = int(torch.randint(4, (), generator=generator))
    return torch.rot90(images, turns, (2, 3))


def accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in %, in eval mode, batches of 512."""
    model.eval()
    with torch.no_grad():
        preds = torch.cat(
            [model(chunk).argmax(1) for chunk in images.split(512)])
    model.train()
    return float((preds == labels).float().mean() * 100)


def fit(model: nn.Module, data: Dict[str, Tensor], args: argparse.Namespace,
        name: str) -> None:
    """Train ``model`` on class-balanced, augmented batches of the crops:
    AdamW, a 5% linear warm-up then a cosine decay."""
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = max(args.iters // 20, 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 *
        (1 + math.cos(math.pi * step / args.iters)))
    counts = torch.bincount(data['train_y'], minlength=len(CROP_CLASSES))
    weights = (1.0 / counts.clamp(min=1).float())[data['train_y']]
    model.train()
    for step in range(args.iters):
        idx = torch.multinomial(
            weights, args.batch_size, replacement=True, generator=generator)
        logits = model(augment(data['train_x'][idx], generator))
        loss = nn.functional.cross_entropy(logits, data['train_y'][idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % max(args.iters // 10, 1) == 0:
            print(
                f'{name}: iter {step + 1}/{args.iters} loss {loss.item():.3f}',
                flush=True)


def train(spec: Backbone, data: Dict[str, Tensor], args: argparse.Namespace,
          argv: Optional[Sequence[str]]) -> Dict[str, object]:
    """Pretrain one backbone; save it; return its provenance record."""
    torch.manual_seed(args.seed)
    backbone = build_backbone(spec)
    backbone.eval()
    with torch.no_grad():
        channels = backbone(data['train_x'][:1])[-1].shape[1]
    model = Classifier(backbone, channels, len(CROP_CLASSES))
    start = time.perf_counter()
    fit(model, data, args, spec.name)
    record = dict(
        name=spec.name,
        config=spec.config,
        overrides=spec.overrides,
        classes=list(CROP_CLASSES),
        command=' '.join(
            shlex.quote(a)
            for a in ['python', 'tools/pretrain_demo_backbones.py'] +
            list(sys.argv[1:] if argv is None else argv)),
        torch=torch.__version__,
        settings=dict(vars(args), out=_relative(args.out)),
        crops={k: int(data[f'{k}_y'].numel())
               for k in ('train', 'val')},
        train_accuracy=accuracy(model, data['train_x'][:4096],
                                data['train_y'][:4096]),
        val_accuracy=accuracy(model, data['val_x'], data['val_y']),
        train_s=round(time.perf_counter() - start, 1))
    os.makedirs(args.out, exist_ok=True)
    torch.save(backbone.state_dict(), osp.join(args.out, f'{spec.name}.pth'))
    with open(
            osp.join(args.out, f'{spec.name}.json'), 'w',
            encoding='utf-8') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    return record


def _relative(path: str) -> str:
    """``path`` relative to the repository when inside it."""
    rel = osp.relpath(osp.abspath(path), ROOT)
    return path if rel.startswith('..') else rel


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    """Render the crops once, pretrain each backbone, print the records."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = {}
    for split, scenes in (('train', args.train_scenes), ('val',
                                                         args.val_scenes)):
        images, labels = render_crops(args.seed, split, scenes, args.crop_size)
        data[f'{split}_x'] = to_tensor(images)
        data[f'{split}_y'] = torch.from_numpy(labels)
    records = []
    for spec in BACKBONES:
        if spec.name in args.backbones:
            record = train(spec, data, args, argv)
            print(
                json.dumps({
                    k: record[k]
                    for k in ('name', 'val_accuracy', 'train_s')
                }))
            records.append(record)
    return records


if __name__ == '__main__':
    main()
