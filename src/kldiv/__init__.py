"""kldiv: the Kullback–Leibler divergence, exact where it can be, on every array library.

``D(P ‖ Q) = Σ P log(P/Q)``, P the true distribution and Q the approximation,
always in that order. See https://github.com/kldiv/kldiv and ``DESIGN.md``.

Examples:
    >>> import kldiv
    >>> float(kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5]))
    0.0201355
"""

from kldiv import distributions, reports
from kldiv._validation import set_default_validate
from kldiv.discrete import (
    cross_entropy,
    cross_entropy_from_log_probs,
    cross_entropy_from_logits,
    entropy,
    entropy_from_log_probs,
    entropy_from_logits,
    generalized_kl,
    js_from_log_probs,
    js_from_logits,
    js_from_probs,
    kl_from_log_probs,
    kl_from_logits,
    kl_from_probs,
)
from kldiv.distributions import kl_divergence, register_kl, registered_pairs
from kldiv.errors import KLDivError, NoClosedFormError
from kldiv.estimators import (
    ELBO,
    Estimate,
    elbo,
    estimate,
    histogram_kl,
    kl_from_sample_log_probs,
    knn_kl,
)

__version__ = "0.1.0"

__all__ = [
    "ELBO",
    "Estimate",
    "KLDivError",
    "NoClosedFormError",
    "__version__",
    "cross_entropy",
    "cross_entropy_from_log_probs",
    "cross_entropy_from_logits",
    "distributions",
    "elbo",
    "entropy",
    "entropy_from_log_probs",
    "entropy_from_logits",
    "estimate",
    "generalized_kl",
    "histogram_kl",
    "js_from_log_probs",
    "js_from_logits",
    "js_from_probs",
    "kl_divergence",
    "kl_from_log_probs",
    "kl_from_logits",
    "kl_from_probs",
    "kl_from_sample_log_probs",
    "knn_kl",
    "register_kl",
    "registered_pairs",
    "reports",
    "set_default_validate",
]
