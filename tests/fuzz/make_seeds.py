"""Writes the committed seed corpora of the fuzz targets (deterministic).

    /usr/bin/python3 tests/fuzz/make_seeds.py

Seeds are byte programs for tests/fuzz/fuzz_common.h's decoder: a spread of
shapes, presets, geometry and logit modes; libFuzzer mutates from there.
"""
import os, random

HERE = os.path.dirname(os.path.abspath(__file__))


def seed(rng, head, n):
    body = bytes(rng.randrange(256) for _ in range(n))
    return bytes(head) + body


def v03_seed(rng, valid_only, i):
    """A tame program (no option mutation or perturbation, 1-byte logits)
    whose bytes up to the 0.3 section are counted exactly as
    fuzz_common.h's decode() reads them, then that section: ext bits 1
    (gt_flags) and 2 (prior_levels) mostly set, the options bits now and
    then, and (api) a perturbation of the new tensors."""
    B, P, C, G = 1 + rng.randrange(3), 8 + rng.randrange(56), 2 + rng.randrange(6), 1 + rng.randrange(6)
    preset, ctl = i % 4, (0x01 if i % 3 == 0 else 0x00)
    out = [B - 1, P - 1, C - 1, G, preset, ctl, 0]  # shapes, preset, ctl, no mutation
    if not valid_only:
        out.append(0)                             # no options_set
    out.append(rng.randrange(8))                  # scale
    def box():
        return [rng.randrange(256) for _ in range(4)]
    for p in range(P):
        out += [40 + rng.randrange(216)] + box()  # no duplicate prior
    for b in range(B):
        out.append(rng.randrange(256))            # count
        for g in range(G):
            out += [40 + rng.randrange(216)] + box() + [rng.randrange(248)]  # box, label
    out.append(rng.randrange(200))                # num_classes = K
    out += [rng.randrange(256) for _ in range(B * P * 4 + B * P * C)]  # logits
    out.append(rng.randrange(200))                # grad_loss
    if not valid_only:
        out.append(0)                             # no perturbation
    ext = 0x03 if i < 6 else rng.randrange(64)
    out.append(ext)
    if ext & 1:
        out += [rng.randrange(256) for _ in range(B * G)]
    if ext & 2:
        out += [rng.randrange(4)] + [rng.randrange(256) for _ in range(3)] + [rng.randrange(256)]
    out += [rng.randrange(256) for _ in range(8)]
    return bytes(out)


def main():
    rng = random.Random(20240606)
    for target in ("api", "diff"):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):  # regress_* files (fuzzer findings) are kept
            if f.startswith("seed_") or f in ("empty", "zeros", "ones"):
                os.remove(os.path.join(d, f))
        k = 0
        for preset in range(4):
            for ctl in (0x00, 0x01, 0x02, 0x40, 0x41, 0x80, 0xC0, 0xC1, 0x3B):
                B, P, C, G = 1 + rng.randrange(4), rng.randrange(64), rng.randrange(8), rng.randrange(7)
                head = [B - 1, P, C, G, preset, ctl, 0]
                data = seed(rng, head, 64 + rng.randrange(1500))
                with open(os.path.join(d, "seed_%03d" % k), "wb") as f:
                    f.write(data)
                k += 1
        # 0.3 inputs: programs laid out so that the decoder reaches the
        # section of gt_flags / prior_levels / the 0.3 options (read last).
        vrng = random.Random(20261126 + (target == "diff"))
        for i in range(12):
            with open(os.path.join(d, "seed_v03_%02d" % i), "wb") as f:
                f.write(v03_seed(vrng, target == "diff", i))
        # Degenerate ones: empty, all zero, all 0xff.
        for name, data in (("empty", b""), ("zeros", bytes(512)), ("ones", b"\xff" * 512)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("wrote seeds")


if __name__ == "__main__":
    main()
