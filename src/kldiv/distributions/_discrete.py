"""Discrete distributions.

Bernoulli, Binomial, Categorical, OneHotCategorical, Geometric, Poisson,
Multinomial, NegativeBinomial.
"""

__all__: list[str] = []
