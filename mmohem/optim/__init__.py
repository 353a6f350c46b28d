"""Optimizer wrappers (import neither mmdet nor mmseg)."""
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
