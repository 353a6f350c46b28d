"""Shared pytest settings: tests run on CPU, single-threaded where it helps."""
import torch

torch.set_num_threads(2)
