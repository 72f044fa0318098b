"""Closed forms among the real-line and positive-half-line families.

Laplace, Cauchy, Gumbel, Pareto, LogNormal, Weibull, ...
"""
