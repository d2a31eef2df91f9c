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
        # Degenerate ones: empty, all zero, all 0xff.
        for name, data in (("empty", b""), ("zeros", bytes(512)), ("ones", b"\xff" * 512)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("wrote seeds")


if __name__ == "__main__":
    main()
