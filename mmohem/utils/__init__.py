from .markdown import markdown_table
from .mining_stats import KEY_PREFIX, MiningStats
from .options import (check_choice, check_range, reject_unknown_options,
                      signature_options)
from .read_only import kept_buffers, read_only

__all__ = [
    'KEY_PREFIX', 'MiningStats', 'check_choice', 'check_range', 'kept_buffers',
    'markdown_table', 'read_only', 'reject_unknown_options',
    'signature_options'
]
