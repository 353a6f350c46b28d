from .config import load_config, parse_tool_args
from .options import check_choice, check_range, reject_unknown_options

__all__ = [
    'check_choice', 'check_range', 'load_config', 'parse_tool_args',
    'reject_unknown_options'
]
