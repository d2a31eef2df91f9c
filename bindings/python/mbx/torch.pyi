# Type information for mbx.torch (needs torch).
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from ._core import Context as Context, Options as Options, _OptionValue, _PresetLike
from ._core import MultiBoxLoss as _CoreLoss

__all__ = ["Context", "Options", "MultiBoxLossFunction", "multibox_loss", "Loss", "MultiBoxLoss",
           "pack_targets", "priors_ssd", "priors_retinanet", "priors_retinanet_levels",
           "use_mbx_loss",
           "all_reduced_positives"]

_Device = Union[torch.device, str, int, None]
# gt_flags [B, G] / prior_levels [L], int32, on the inputs' device; None = absent.
_OptionalInt32 = Union[torch.Tensor, Sequence[int], Sequence[Sequence[int]], None]

class MultiBoxLossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor,
                gt_boxes: torch.Tensor, gt_labels: torch.Tensor, gt_counts: torch.Tensor,
                criterion: _CoreLoss, gt_flags: _OptionalInt32 = ...,
                prior_levels: _OptionalInt32 = ...
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    @staticmethod
    def backward(ctx: Any, g_loss_loc: torch.Tensor, g_loss_conf: torch.Tensor,
                 g_num_pos: Any) -> Tuple[Optional[torch.Tensor], ...]: ...
    @classmethod
    def apply(cls, *args: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...  # type: ignore[override, unused-ignore]

def multibox_loss(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor,
                  gt_boxes: torch.Tensor, gt_labels: torch.Tensor, gt_counts: torch.Tensor,
                  preset: _PresetLike = ..., criterion: Optional[_CoreLoss] = ..., *,
                  gt_flags: _OptionalInt32 = ..., prior_levels: _OptionalInt32 = ...,
                  **overrides: _OptionValue) -> Tuple[torch.Tensor, torch.Tensor]: ...

class Loss(torch.nn.Module):
    criterion: _CoreLoss
    num_pos: Optional[torch.Tensor]
    def __init__(self, preset: _PresetLike = ..., context: Optional[Context] = ...,
                 **overrides: _OptionValue) -> None: ...
    @property
    def options(self) -> Options: ...
    def forward(self, loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor,
                gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                gt_counts: torch.Tensor, gt_flags: _OptionalInt32 = ...,
                prior_levels: _OptionalInt32 = ...) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def __call__(self, loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor,
                 gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                 gt_counts: torch.Tensor, gt_flags: _OptionalInt32 = ...,
                 prior_levels: _OptionalInt32 = ...) -> Tuple[torch.Tensor, torch.Tensor]: ...

def pack_targets(targets: Sequence[torch.Tensor], device: _Device = ...
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

class MultiBoxLoss(torch.nn.Module):
    """Drop-in for amdegroot/ssd.pytorch's MultiBoxLoss."""
    num_classes: int
    threshold: float
    background_label: int
    negpos_ratio: float
    variance: List[float]
    criterion: _CoreLoss
    num_pos: Optional[torch.Tensor]
    def __init__(self, num_classes: int, overlap_thresh: float, prior_for_matching: bool,
                 bkg_label: int, neg_mining: bool, neg_pos: float, neg_overlap: float,
                 encode_target: bool, use_gpu: bool = ..., *,
                 variance: Sequence[float] = ..., context: Optional[Context] = ...) -> None: ...
    def forward(self, predictions: Sequence[torch.Tensor],
                targets: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def __call__(self, predictions: Sequence[torch.Tensor],
                 targets: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]: ...

def priors_ssd(config: Union[str, int] = ..., device: _Device = ...) -> torch.Tensor: ...
def priors_retinanet(image_height: int, image_width: int, device: _Device = ...) -> torch.Tensor: ...
def priors_retinanet_levels(image_height: int, image_width: int,
                            device: _Device = ...) -> torch.Tensor: ...
def use_mbx_loss(model: torch.nn.Module, preset: Optional[str] = ...,
                 **options: Any) -> torch.nn.Module: ...
def all_reduced_positives(group: Any = ...) -> Any: ...
