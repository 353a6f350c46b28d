"""Embedded demo dataset: synthetic scenes for detection and segmentation.

The modules of this package use numpy and OpenCV only (no mmdet / mmseg
import). Make the data with ``python -m mmohem.demo.generate --out
data/mmohem_demo`` or :func:`mmohem.demo.generate.generate_dataset`.
"""
