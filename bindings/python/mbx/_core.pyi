# Type information for mbx._core (the public API re-exported by mbx).
import enum
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple, Type, Union

import numpy as np
import numpy.typing as npt

__all__ = [
    "Error", "InvalidArgumentError", "UnsupportedError", "OutOfMemoryError",
    "NoDeviceError", "DeviceError", "ContextBusyError", "InternalError",
    "Status", "PRESETS", "OPTION_NAMES", "Options", "Context", "MultiBoxLoss",
    "LossResult", "MatchResult", "match", "decode", "priors_ssd",
    "priors_retinanet", "priors_retinanet_levels", "version", "version_number", "cuda_available",
    "path_available", "options",
]

class _SupportsDLPack(Protocol):
    """Anything with ``__dlpack__`` (numpy arrays, torch tensors, JAX / CuPy arrays)."""
    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...

# An input tensor: a numpy array or any DLPack exporter, zero-copy.
_TensorLike = Union[npt.NDArray[Any], _SupportsDLPack]
# An output tensor: of the kind and on the device of the reference input
# (numpy.ndarray for numpy inputs, torch.Tensor for torch inputs, ...).
_Tensor = Any
# An option value: an enum value name, a number, a bool, or four floats (variances).
_OptionValue = Union[str, int, float, bool, Sequence[float]]
_PresetLike = Union[str, int, "Options"]
_PathLike = Union[str, int]

class Error(RuntimeError):
    status: int
    status_name: str
    message: str

class InvalidArgumentError(Error, ValueError): ...
class UnsupportedError(Error): ...
class OutOfMemoryError(Error, MemoryError): ...
class NoDeviceError(Error): ...
class DeviceError(Error): ...
class ContextBusyError(Error): ...
class InternalError(Error): ...

class Status(enum.IntEnum):
    OK = 0
    INVALID_ARGUMENT = 1
    UNSUPPORTED = 2
    OUT_OF_MEMORY = 3
    NO_DEVICE = 4
    DEVICE_ERROR = 5
    CONTEXT_BUSY = 6
    INTERNAL_ERROR = 7

def version() -> str: ...
def version_number() -> int: ...
def cuda_available() -> bool: ...
def path_available(path: _PathLike) -> bool: ...

PRESETS: Tuple[str, ...]
OPTION_NAMES: Tuple[str, ...]

class Options:
    preset: Union[str, int]
    def __init__(self, preset: _PresetLike = ..., **overrides: _OptionValue) -> None: ...
    def replace(self, **overrides: _OptionValue) -> "Options": ...
    def to_dict(self) -> Dict[str, Union[str, int, float, bool, List[float]]]: ...
    def __getitem__(self, name: str) -> Union[str, int, float, bool, List[float]]: ...
    @property
    def native(self) -> Any: ...

def options(preset: _PresetLike = ..., **overrides: _OptionValue) -> Dict[str, Union[str, int, float, bool, List[float]]]: ...
def workspace_size(B: int, P: int, G: int, C: int, preset: _PresetLike = ...,
                   **overrides: _OptionValue) -> int: ...

class Context:
    def __init__(self, num_threads: int = ..., path: _PathLike = ..., cuda_stream: Any = ...,
                 cuda_validation: bool = ...) -> None: ...
    @property
    def num_threads(self) -> int: ...
    @num_threads.setter
    def num_threads(self, n: int) -> None: ...
    @property
    def path(self) -> str: ...
    @path.setter
    def path(self, path: _PathLike) -> None: ...
    @property
    def cuda_validation(self) -> bool: ...
    @cuda_validation.setter
    def cuda_validation(self, enabled: bool) -> None: ...
    @property
    def cuda_stream(self) -> Optional[int]: ...
    @cuda_stream.setter
    def cuda_stream(self, stream: Any) -> None: ...
    @property
    def workspace_bytes(self) -> int: ...
    def release_workspace(self) -> None: ...
    def set_workspace(self, buffer: Union[None, Tuple[int, int], Any]) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Context": ...
    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None: ...

class LossResult:
    loss_loc: _Tensor
    loss_conf: _Tensor
    num_pos: _Tensor
    grad_loc: Optional[_Tensor]
    grad_conf: Optional[_Tensor]
    def __init__(self, loss_loc: _Tensor, loss_conf: _Tensor, num_pos: _Tensor,
                 grad_loc: Optional[_Tensor] = ..., grad_conf: Optional[_Tensor] = ...) -> None: ...
    @property
    def loss(self) -> _Tensor: ...
    def __iter__(self) -> Iterator[Optional[_Tensor]]: ...

_GradLoss = Union[Tuple[Any, Any], List[Any], _TensorLike, None]
# An optional int32 input (gt_flags [B, G], prior_levels [L]): a tensor, a
# list of ints (converted on the reference input's device) or None.
_OptionalInt32 = Union[_TensorLike, Sequence[int], Sequence[Sequence[int]], None]

class MultiBoxLoss:
    options: Options
    context: Context
    def __init__(self, preset: _PresetLike = ..., context: Optional[Context] = ...,
                 **overrides: _OptionValue) -> None: ...
    def __call__(self, priors: _TensorLike, gt_boxes: _TensorLike, gt_labels: _TensorLike,
                 gt_counts: _TensorLike, loc: _TensorLike, conf: _TensorLike, grad: bool = ...,
                 grad_loss: _GradLoss = ...,
                 out: Optional[Tuple[_TensorLike, _TensorLike]] = ..., *,
                 gt_flags: _OptionalInt32 = ...,
                 prior_levels: _OptionalInt32 = ...) -> LossResult: ...
    def forward(self, priors: _TensorLike, gt_boxes: _TensorLike, gt_labels: _TensorLike,
                gt_counts: _TensorLike, loc: _TensorLike, conf: _TensorLike, *,
                gt_flags: _OptionalInt32 = ...,
                prior_levels: _OptionalInt32 = ...) -> LossResult: ...
    def backward(self, priors: _TensorLike, gt_boxes: _TensorLike, gt_labels: _TensorLike,
                 gt_counts: _TensorLike, loc: _TensorLike, conf: _TensorLike,
                 grad_loss: _GradLoss = ...,
                 out: Optional[Tuple[_TensorLike, _TensorLike]] = ..., *,
                 gt_flags: _OptionalInt32 = ...,
                 prior_levels: _OptionalInt32 = ...) -> Tuple[_Tensor, _Tensor]: ...

class MatchResult:
    conf_target: _Tensor
    matched_gt: _Tensor
    loc_target: _Tensor
    num_pos: _Tensor
    def __init__(self, conf_target: _Tensor, matched_gt: _Tensor, loc_target: _Tensor,
                 num_pos: _Tensor) -> None: ...
    def __iter__(self) -> Iterator[_Tensor]: ...

def match(priors: _TensorLike, gt_boxes: _TensorLike, gt_labels: _TensorLike, gt_counts: _TensorLike,
          preset: _PresetLike = ..., *, num_classes: int = ...,
          gt_flags: _OptionalInt32 = ..., prior_levels: _OptionalInt32 = ...,
          context: Optional[Context] = ..., **overrides: _OptionValue) -> MatchResult: ...
def decode(priors: _TensorLike, loc: _TensorLike, preset: _PresetLike = ..., *,
           context: Optional[Context] = ..., **overrides: _OptionValue) -> _Tensor: ...
def priors_ssd(config: Union[str, int] = ...) -> npt.NDArray[np.float32]: ...
def priors_retinanet(image_height: int, image_width: int) -> npt.NDArray[np.float32]: ...
def priors_retinanet_levels(image_height: int, image_width: int) -> npt.NDArray[np.int32]: ...
