"""Load an mmengine config the way the command-line tools do."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


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
