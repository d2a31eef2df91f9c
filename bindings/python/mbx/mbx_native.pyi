# mbx.mbx_native: the raw SWIG module, 1:1 with mbx.h (functions, MBX_*
# constants, mbx_options_t). Untyped: use the mbx API.
from typing import Any

def __getattr__(name: str) -> Any: ...
