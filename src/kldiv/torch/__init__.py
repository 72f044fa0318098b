"""PyTorch training losses: thin ``nn.Module`` s over kldiv's functional core.

Importing this subpackage imports torch; ``import kldiv`` alone does not.
"""

from kldiv._schedules import ConstantSchedule, CyclicalSchedule, LinearSchedule, SigmoidSchedule
from kldiv.torch._losses import DistillationLoss, KLDivLoss, TopKTeacher
from kldiv.torch._penalty import KLPenalty
from kldiv.torch._reduction import count_items, reduce_items

__all__ = [
    "ConstantSchedule",
    "CyclicalSchedule",
    "DistillationLoss",
    "KLDivLoss",
    "KLPenalty",
    "LinearSchedule",
    "SigmoidSchedule",
    "TopKTeacher",
    "count_items",
    "reduce_items",
]
