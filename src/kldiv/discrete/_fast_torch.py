"""PyTorch-native kernels of the discrete measures (see ``kldiv.discrete._native``)."""
