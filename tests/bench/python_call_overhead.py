"""Per-call cost of the Python layer on a tiny problem (golden v01: B = 1,
P = 4), where the library's own work is a few microseconds: MultiBoxLoss
(fused) and match, without and with the optional inputs gt_flags /
prior_levels (which go through mbx_run). cpu-scalar path, one thread; the
best of 9 repeats of N calls, in microseconds per call.

    PYTHONPATH=build/python python tests/bench/python_call_overhead.py [--calls N]

Run it on two builds in turn (e.g. before and after a change) on the same
machine to compare; on a shared machine repeat the pair a few times.
"""

import argparse
import os
import sys
import timeit

import numpy as np

import mbx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from conftest import INPUTS, load_case  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=3000)
    a = ap.parse_args()
    meta, arr = load_case(os.path.join(HERE, "..", "data", "golden", "v01_seed_tutorial"))
    args = [arr[k] for k in INPUTS]
    ctx = mbx.Context(path="cpu-scalar", num_threads=1)
    opts = mbx.Options(meta["preset"], **meta["options"])
    loss = mbx.MultiBoxLoss(opts, context=ctx)
    flags = np.zeros(arr["gt_labels"].shape, np.int32)
    levels = np.array([arr["priors"].shape[0]], np.int32)

    def best(f):
        return min(timeit.repeat(f, number=a.calls, repeat=9)) / a.calls * 1e6

    rows = [("loss", lambda: loss(*args)),
            ("match", lambda: mbx.match(*args[:4], opts, context=ctx))]
    if "gt_flags" in mbx.match.__code__.co_varnames:
        rows += [("loss gt_flags", lambda: loss(*args, gt_flags=flags)),
                 ("loss prior_levels", lambda: loss(*args, prior_levels=levels)),
                 ("match gt_flags", lambda: mbx.match(*args[:4], opts, context=ctx,
                                                      gt_flags=flags))]
    print("mbx %s  " % mbx.version() + "  ".join("%s %.1f us" % (name, best(f))
                                                 for name, f in rows))


if __name__ == "__main__":
    main()
