from .config import load_config
from .options import check_choice, check_range, reject_unknown_options

__all__ = [
    'check_choice', 'check_range', 'load_config', 'reject_unknown_options'
]
