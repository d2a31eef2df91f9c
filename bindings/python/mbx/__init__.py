"""mbx: target matching and SSD MultiBox / RetinaNet focal loss, forward and
backward, for anchor-based object detectors.

    import mbx
    loss = mbx.MultiBoxLoss(preset="ssd_pytorch", neg_pos_ratio=3)
    out = loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad=True)
    out.loss_loc, out.loss_conf, out.num_pos, out.grad_loc, out.grad_conf
    t = mbx.match(priors, gt_boxes, gt_labels, gt_counts, preset="torchvision_retinanet")
    t.conf_target, t.matched_gt, t.loc_target, t.num_pos

Inputs are numpy arrays or any object with ``__dlpack__`` (torch tensors on
CPU or CUDA, ...), taken zero-copy; outputs are of the same kind and on the
same device. ``mbx.torch`` adds a torch.autograd.Function and nn.Modules
(including a drop-in for ssd.pytorch's MultiBoxLoss). Errors raise
``mbx.Error`` (``mbx.InvalidArgumentError``, also a ValueError, for bad
input) carrying the library's message. The native library is libmbx.so
(shipped in this package); it needs the system's oneTBB runtime
(libtbb.so.12, Debian/Ubuntu package libtbb12).
"""

from ._core import (  # noqa: F401
    PRESETS,
    OPTION_NAMES,
    Context,
    ContextBusyError,
    DeviceError,
    Error,
    InternalError,
    InvalidArgumentError,
    LossResult,
    MatchResult,
    MultiBoxLoss,
    NoDeviceError,
    Options,
    OutOfMemoryError,
    Status,
    UnsupportedError,
    cuda_available,
    decode,
    match,
    options,
    path_available,
    priors_retinanet,
    priors_retinanet_levels,
    priors_ssd,
    version,
    version_number,
    workspace_size,
)
from . import mbx_native  # noqa: F401  (the raw SWIG module, 1:1 with mbx.h)

__version__ = version()
__all__ = [
    "PRESETS", "OPTION_NAMES", "Context", "ContextBusyError", "DeviceError", "Error",
    "InternalError", "InvalidArgumentError", "LossResult", "MatchResult", "MultiBoxLoss",
    "NoDeviceError", "Options", "OutOfMemoryError", "Status", "UnsupportedError",
    "cuda_available", "decode", "match", "options", "path_available", "priors_retinanet",
    "priors_retinanet_levels", "priors_ssd", "version", "version_number", "workspace_size", "__version__",
]
