"""Training hooks that measure what OHEM changes (import neither mmdet nor
mmseg until a model needs them)."""
from .candidate_loss_hook import LOG_KEY, CandidateLossHook

__all__ = ['CandidateLossHook', 'LOG_KEY']
