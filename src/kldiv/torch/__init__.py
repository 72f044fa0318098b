"""PyTorch training losses: thin ``nn.Module`` s over kldiv's functional core, and the ELBO.

Importing this subpackage imports torch; ``import kldiv`` alone does not.
"""

from kldiv._schedules import ConstantSchedule, CyclicalSchedule, LinearSchedule, SigmoidSchedule
from kldiv.torch._chunked import FusedLinearDistillationLoss
from kldiv.torch._elbo import elbo
from kldiv.torch._gaussian import FullCovarianceGaussianKLLoss, GaussianKLLoss
from kldiv.torch._losses import DistillationLoss, KLDivLoss
from kldiv.torch._penalty import KLPenalty
from kldiv.torch._reduction import count_items, reduce_items
from kldiv.torch._teachers import TeacherHead, TopKTeacher

__all__ = [
    "ConstantSchedule",
    "CyclicalSchedule",
    "DistillationLoss",
    "FullCovarianceGaussianKLLoss",
    "FusedLinearDistillationLoss",
    "GaussianKLLoss",
    "KLDivLoss",
    "KLPenalty",
    "LinearSchedule",
    "SigmoidSchedule",
    "TeacherHead",
    "TopKTeacher",
    "count_items",
    "elbo",
    "reduce_items",
]
