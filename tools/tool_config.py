"""Command-line plumbing shared by train.py and test.py beside it: the
config with the tools' overrides, the common options, the runner."""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def load_config(path: str,
                launcher: str = 'none',
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """A config file with the tools' command-line overrides applied.

    Args:
        path (str): The config file.
        launcher (str): mmengine launcher (``'none'``, ``'pytorch'``, ...).
        cfg_options (dict, optional): ``--cfg-options`` key/value pairs.
        work_dir (str, optional): ``--work-dir``; without it, the config's
            own ``work_dir``, else ``work_dirs/<config name>``.

    Returns:
        Config: The merged config.
    """
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir:
        cfg.work_dir = work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = osp.join('work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The runner a config asks for: ``runner_type`` from the ``RUNNERS``
    registry if given, else mmengine's ``Runner``.

    Args:
        cfg (Config): A full training or testing config.

    Returns:
        Runner: The runner, built.
    """
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def parse_tool_args(
        parser: argparse.ArgumentParser,
        argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Add the options every tool takes, parse, and export ``LOCAL_RANK``.

    Adds ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank`` (as ``torch.distributed.launch`` passes it) to a
    parser that already has the tool's own arguments.
    """
    parser.add_argument(
        '--work-dir',
        help='where logs and checkpoints go (default: the config\'s '
        'work_dir, else work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value pairs merged into the config, e.g. '
        'train_cfg.max_iters=100 randomness.seed=1')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='distributed launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
