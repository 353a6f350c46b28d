"""Train a model from an mmengine config (mmdet or mmseg) with mmengine's Runner.

Usage::

    python tools/train.py configs/demo/faster-rcnn_r18-tiny_fpn_ohem_demo.py \
        --work-dir work_dirs/frcnn_ohem --cfg-options randomness.seed=1

Equivalent to ``mim train mmdet CONFIG`` / ``mim train mmseg CONFIG``; the
config's ``default_scope`` picks the registries. ``tools/dist_train.sh``
starts it once per process with ``--launcher pytorch``.

Distributed training on CPU: mmengine's ``pytorch`` launcher calls
``torch.cuda.set_device`` and its default model wrapper passes
``device_ids``, both of which need CUDA. Without CUDA this script therefore
initialises the process group itself with the ``gloo`` backend (from the
``torchrun`` environment) and wraps the model with
``MMDistributedDataParallel(device_ids=None)``; the Runner then finds the
process group ready and trains as usual. With CUDA nothing changes.
"""
import argparse
from typing import Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmohem.utils import load_config, parse_tool_args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description='Train with mmengine.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or, given alone, from the latest '
        'checkpoint of the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    return parse_tool_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command-line overrides applied."""
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit(
                '--amp: mmengine\'s AmpOptimWrapper runs only on CUDA (or '
                'NPU/MLU/MUSA) devices and this machine has none; train '
                'without --amp on CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.launcher != 'none' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build the runner from the config and train."""
    args = parse_args(argv)
    cfg = build_config(args)
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        torch_dist.init_process_group(backend='gloo')
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
              else Runner.from_cfg(cfg))
    runner.train()


if __name__ == '__main__':
    main()
