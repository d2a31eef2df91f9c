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

# A quotient (the DMUL of a numerator by the reciprocal chain) may feed the
# division's residual and correction FMAs within this many instructions.
QUOTIENT_WINDOW = 8
REG = re.compile(r"\bR(\d+)\b")
# Instructions that overwrite a 64-bit register pair (anything else that
# writes one half, e.g. the MOV of a constant's low word, leaves it alone).
WRITES_PAIR = re.compile(r"^(?:@!?U?P\w+\s+)?(DADD|DMUL|DFMA|F2F\.F64|I2F\.F64|LDG|LDS|LD|MUFU)\b")


class Flow:
    """Which registers belong to a correctly rounded division or square root:
    the result of MUFU.RCP64H / MUFU.RSQ64H and every FMA fed by it ("chain"),
    and the quotient DMUL fed by the chain ("quotient", for a few
    instructions). An FMA reading neither is a contraction."""

    def __init__(self):
        self.chain, self.quotient = set(), {}

    def step(self, i, op):
        """Returns True when `op` is an FMA that is not part of a sequence."""
        body = re.sub(r"^@!?U?P\w+\s+", "", op)
        regs = [int(r) & ~1 for r in REG.findall(body)]
        dest, srcs = (regs[0], regs[1:]) if regs else (None, [])
        is_fma = re.match(r"[DF]FMA\b", body) is not None
        bad = False
        if is_fma:
            probe = re.match(r"FFMA\S*\s+\S+,\s*RZ,", body) is not None
            fed = any(r in self.chain or (r in self.quotient and i - self.quotient[r] <= QUOTIENT_WINDOW)
                      for r in srcs)
            bad = not (probe or fed)
            if body.startswith("DFMA") and dest is not None:
                self.quotient.pop(dest, None)
                (self.chain.add if fed else self.chain.discard)(dest)
            return bad
        if dest is None or not WRITES_PAIR.match(body):
            return False
        self.quotient.pop(dest, None)
        self.chain.discard(dest)
        if body.startswith("MUFU.RCP64H") or body.startswith("MUFU.RSQ64H"):
            self.chain.add(dest)
        elif body.startswith("DMUL") and any(r in self.chain for r in srcs):
            self.quotient[dest] = i
        return False


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
        if m:  # one listing per architecture: keep them all
            fn = m.group(1)
            while fn in funcs:
                fn += "'"
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
        flow = Flow()
        for i, (addr, op) in enumerate(body):
            if addr >= end:
                break
            if flow.step(i, op):
                bad.append("%s: %s" % (fn, op))
            if "MUFU.RCP64H" in op:
                divisions += 1
            if "MUFU.RSQ64H" in op:
                roots += 1
            if re.search(r"\bD(ADD|MUL)\b", op):
                arith += 1
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


if __name__ == "__main__":
    sys.exit(main())
