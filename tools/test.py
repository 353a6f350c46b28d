"""Evaluate a checkpoint with an mmengine config (mmdet or mmseg).

Usage::

    python tools/test.py configs/demo/pspnet_r18-tiny-d8_demo.py \
        work_dirs/pspnet/iter_400.pth --work-dir work_dirs/pspnet_test

The metrics are printed and written to ``<work-dir>/<timestamp>/
<timestamp>.json``. The package ships it as ``mmohem/.mim/tools/test.py``,
which ``mim test mmohem CONFIG --checkpoint CKPT`` runs (CONFIG: a path, or
the file name of a shipped config).
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config
from tool_config import build_runner, load_config, parse_tool_args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description='Test with mmengine.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    return parse_tool_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command-line overrides applied."""
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build the runner from the config and test the checkpoint."""
    cfg = build_config(parse_args(argv))
    runner = build_runner(cfg)
    runner.test()


if __name__ == '__main__':
    main()
