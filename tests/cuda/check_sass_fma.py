#!/usr/bin/env python3
"""No contracted FMA in the matching kernels (docs/SPEC.md §2: IoU decisions must be
bit-identical to the CPU, so the float64 IoU arithmetic may not be fused).

    cuobjdump -sass libmbx.so.0 | python3 tests/cuda/check_sass_fma.py [--kernels REGEX]

The kernels checked by default are those that decide from IoUs or IoFs
(match_best_gt_kernel, match_force_scan_kernel, match_force_apply_kernel,
which tests prior 0 against the ignore regions, docs/SPEC.md §2.7,
bipartite_kernel, he_select_kernel, the HARD_EXAMPLE NMS, and the ATSS
kernels of atss.cu, which also decide from centre distances);
match_finalize_kernel only encodes targets, which are compared with
tolerances. The legitimate sources of DFMA in these kernels are the
correctly rounded double division
(__ddiv_rn): MUFU.RCP64H followed by a Newton sequence of DFMA, an FFMA with
RZ that probes the divisor's exponent, and a called slow-path subroutine
(the code at and after the first CALL target, skipped here); and the
correctly rounded square root of the ATSS distance (__dsqrt_rn): MUFU.RSQ64H
followed by its Newton sequence. An FMA counts as part of a division when it
follows a MUFU.RCP64H within WINDOW instructions, as part of a square root
when it follows a MUFU.RSQ64H within SQRT_WINDOW; any other FMA is a
contraction and fails the check.
Exit status 0 when clean, 1 with the offending lines listed otherwise.
"""

import argparse
import re
import sys

WINDOW = 12
SQRT_WINDOW = 24


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", default=r"match_cu.*(best_gt|force_scan|force_apply)|bipartite_kernel"
                                         r"|he_select_kernel|atss_(init|select|claim)_kernel",
                    help="regex on the mangled kernel name")
    ap.add_argument("sass", nargs="?", help="cuobjdump -sass output (default: stdin)")
    args = ap.parse_args()
    text = open(args.sass).read() if args.sass else sys.stdin.read()
    pat = re.compile(args.kernels)
    # Split into kernels: name -> [(address, instruction)].
    funcs, fn = {}, None
    for line in text.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            fn = m.group(1)
            funcs[fn] = []
            continue
        ins = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if ins and fn is not None:
            funcs[fn].append((int(ins.group(1), 16), ins.group(2).strip()))
    kernels, divisions, roots, arith, bad = set(), 0, 0, 0, []
    for fn, body in funcs.items():
        if not pat.search(fn):
            continue
        kernels.add(fn)
        targets = [int(m.group(1), 16) for _, op in body
                   for m in [re.search(r"CALL\.\S*\s+(0x[0-9a-f]+)", op)] if m]
        end = min(targets) if targets else float("inf")
        since_rcp = since_rsq = 10 ** 9
        for addr, op in body:
            if addr >= end:
                break
            bad_here = check(op, fn, since_rcp, since_rsq)
            since_rcp += 1
            since_rsq += 1
            if "MUFU.RCP64H" in op:
                since_rcp = 0
                divisions += 1
            if "MUFU.RSQ64H" in op:
                since_rsq = 0
                roots += 1
            if re.search(r"\bD(ADD|MUL)\b", op):
                arith += 1
            if bad_here:
                bad.append(bad_here)
    print("checked %d kernels: %d double divisions, %d double square roots, %d DADD/DMUL"
          % (len(kernels), divisions, roots, arith))
    if not kernels:
        print("no kernel matched %r" % args.kernels)
        return 1
    if bad:
        print("FMA outside a division sequence (contracted arithmetic):")
        print("\n".join(bad[:50]))
        return 1
    print("OK: every FMA in these kernels belongs to a correctly rounded division or square root")
    return 0


def check(op, fn, since_rcp, since_rsq=10 ** 9):
    if re.search(r"\b[DF]FMA\b", op):
        in_division = since_rcp < WINDOW or since_rsq < SQRT_WINDOW
        exponent_probe = re.search(r"\bFFMA\S*\s+\S+,\s*RZ,", op) is not None
        if not (in_division or exponent_probe):
            return "%s: %s" % (fn, op)
    return None


if __name__ == "__main__":
    sys.exit(main())
