# Type information for mbx.jax (needs jax). Arrays are jax.Array or
# anything jnp.asarray takes; typed loosely so that this file needs no jax
# stubs.
from typing import Any, Dict, Optional, Tuple

from ._core import _OptionValue, _PresetLike

__all__ = ["multibox_loss", "match", "library_path", "TARGETS"]

_Array = Any

TARGETS: Dict[str, Tuple[str, Optional[str]]]

def library_path() -> str: ...
def multibox_loss(priors: _Array, gt_boxes: _Array, gt_labels: _Array, gt_counts: _Array,
                  loc: _Array, conf: _Array, *, preset: _PresetLike = ...,
                  gt_flags: Optional[_Array] = ..., prior_levels: Optional[_Array] = ...,
                  **options: Any) -> Tuple[_Array, _Array, _Array]: ...
def match(priors: _Array, gt_boxes: _Array, gt_labels: _Array, gt_counts: _Array, *,
          preset: _PresetLike = ..., num_classes: int = ...,
          gt_flags: Optional[_Array] = ..., prior_levels: Optional[_Array] = ...,
          **options: Any) -> Tuple[_Array, _Array, _Array, _Array]: ...
