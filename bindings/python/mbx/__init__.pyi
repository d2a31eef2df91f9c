# Type information for the mbx package (the implementation is mbx/__init__.py).
from . import mbx_native as mbx_native
from ._core import (
    OPTION_NAMES as OPTION_NAMES,
    PRESETS as PRESETS,
    Context as Context,
    ContextBusyError as ContextBusyError,
    DeviceError as DeviceError,
    Error as Error,
    InternalError as InternalError,
    InvalidArgumentError as InvalidArgumentError,
    LossResult as LossResult,
    MatchResult as MatchResult,
    MultiBoxLoss as MultiBoxLoss,
    NoDeviceError as NoDeviceError,
    Options as Options,
    OutOfMemoryError as OutOfMemoryError,
    Status as Status,
    UnsupportedError as UnsupportedError,
    cuda_available as cuda_available,
    decode as decode,
    match as match,
    options as options,
    path_available as path_available,
    priors_retinanet as priors_retinanet,
    priors_retinanet_levels as priors_retinanet_levels,
    priors_ssd as priors_ssd,
    version as version,
    version_number as version_number,
    workspace_size as workspace_size,
)

__version__: str
__all__ = [
    "PRESETS", "OPTION_NAMES", "Context", "ContextBusyError", "DeviceError", "Error",
    "InternalError", "InvalidArgumentError", "LossResult", "MatchResult", "MultiBoxLoss",
    "NoDeviceError", "Options", "OutOfMemoryError", "Status", "UnsupportedError",
    "cuda_available", "decode", "match", "options", "path_available", "priors_retinanet",
    "priors_retinanet_levels", "priors_ssd", "version", "version_number", "workspace_size", "__version__",
]
