"""Closed forms among the multivariate and structural families."""
