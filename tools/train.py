"""Train a model from an mmengine config (mmdet or mmseg) with mmengine's
Runner.

Usage::

    python tools/train.py configs/demo/faster-rcnn_r18-tiny_fpn_ohem_demo.py \
        --work-dir work_dirs/frcnn_ohem --cfg-options randomness.seed=1

The config's ``default_scope`` picks the registries. The package ships this
script as ``mmohem/.mim/tools/train.py``, which ``mim train mmohem CONFIG``
runs: CONFIG is a path, or the file name of a shipped config (e.g.
``faster-rcnn_r18-tiny_fpn_ohem_demo.py``). ``mim train mmdet|mmseg PATH``
runs mmdet's / mmseg's own script instead. ``tools/dist_train.sh`` starts
this one once per process with ``--launcher pytorch``.

Distributed training on CPU: mmengine's ``pytorch`` launcher calls
``torch.cuda.set_device`` and its default model wrapper passes
``device_ids``, both of which need CUDA. Without CUDA this script therefore
initialises the process group itself with the ``gloo`` backend (from the
``torchrun`` environment) and wraps the model with
``MMDistributedDataParallel(device_ids=None)``; the Runner then finds the
process group ready and trains as usual. With CUDA nothing changes.

With ``randomness.deterministic=True`` the script sets
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set) before CUDA starts,
which cuBLAS needs for deterministic results (see :func:`deterministic_env`).

``--amp`` without CUDA trains under a bfloat16 CPU autocast
(``mmohem.CPUAmpOptimWrapper``), which mmengine's ``AmpOptimWrapper`` does
not offer; see :func:`use_amp`.
"""
import argparse
import os
from typing import Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from tool_config import build_runner, load_config, parse_tool_args


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
        '--amp',
        action='store_true',
        help='mixed precision: AmpOptimWrapper (float16) with CUDA, '
        'mmohem.CPUAmpOptimWrapper (bfloat16) without')
    return parse_tool_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command-line overrides applied."""
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    deterministic_env(cfg)
    if args.amp:
        use_amp(cfg)
    if args.launcher != 'none' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def deterministic_env(cfg: Config) -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for a deterministic run.

    mmengine's ``deterministic=True`` calls
    ``torch.use_deterministic_algorithms(True)``, under which cuBLAS raises
    unless this variable was set before its first use; a value the user set
    is kept.
    """
    if cfg.get('randomness', {}).get('deterministic', False):
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')


def use_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision.

    With CUDA, mmengine's ``AmpOptimWrapper`` (float16, dynamic loss
    scale); without, ``mmohem.CPUAmpOptimWrapper`` (bfloat16 autocast),
    except for models with an RPN, whose proposals go through mmcv's CPU
    ``nms`` kernel, which takes float32 only.
    """
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        return
    if cfg.model.get('rpn_head') is not None:
        raise SystemExit(
            '--amp on a CPU: this model has an RPN (model.rpn_head), whose '
            'proposals go through mmcv\'s CPU nms kernel, which takes '
            'float32 only (bfloat16 autocast fails there); train it without '
            '--amp on a CPU, or with --amp on a GPU.')
    cfg.optim_wrapper.type = 'mmohem.CPUAmpOptimWrapper'
    for key in ('loss_scale', 'dtype'):  # AmpOptimWrapper's own options
        cfg.optim_wrapper.pop(key, None)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build the runner from the config and train."""
    args = parse_args(argv)
    cfg = build_config(args)
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        torch_dist.init_process_group(backend='gloo')
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
