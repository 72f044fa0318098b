"""JAX-native paths of the discrete measures (see ``kldiv.discrete._native``)."""
