"""Multivariate distributions: MultivariateNormal, LowRankMultivariateNormal, Dirichlet, Wishart."""

__all__: list[str] = []
