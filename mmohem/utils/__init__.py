from .config import build_runner, load_config, parse_tool_args
from .markdown import markdown_table
from .mining_stats import KEY_PREFIX, MiningStats
from .options import (check_choice, check_range, reject_unknown_options,
                      signature_options)
from .read_only import read_only

__all__ = [
    'KEY_PREFIX', 'MiningStats', 'build_runner', 'check_choice', 'check_range',
    'load_config', 'markdown_table', 'parse_tool_args', 'read_only',
    'reject_unknown_options', 'signature_options'
]
