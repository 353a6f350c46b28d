"""Evaluate a checkpoint with an mmengine config (mmdet or mmseg).

Usage::

    python tools/test.py configs/demo/pspnet_r18-tiny-d8_demo.py \
        work_dirs/pspnet/iter_400.pth --work-dir work_dirs/pspnet_test

The metrics are printed and written to ``<work-dir>/<timestamp>/
<timestamp>.json``. Equivalent to ``mim test mmdet|mmseg CONFIG
--checkpoint CKPT``.
"""
import argparse
import os
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmohem.utils import load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description='Test with mmengine.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where the logs go (default: the config\'s work_dir, else '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value pairs merged into the config')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='distributed launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command-line overrides applied."""
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build the runner from the config and test the checkpoint."""
    cfg = build_config(parse_args(argv))
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
              else Runner.from_cfg(cfg))
    runner.test()


if __name__ == '__main__':
    main()
