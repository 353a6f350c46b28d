"""Visualisation of what OHEM mines (imports neither mmdet nor mmseg)."""
from .ohem_vis_hook import OHEMVisHook

__all__ = ['OHEMVisHook']
