"""Summarise a ``py-spy record --format raw`` file: the functions with the most samples, self and total.

    python benchmarks/peers/pyspy_top.py build/peers/profile-tickfan-10000-1234.txt [--top 25]
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for path in args.files:
        for line in open(path):
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            count = int(n)
            samples += count
            frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
            own[frames[-1]] += count
            for f in set(frames):
                total[f] += count
    print(f"{samples} samples")
    print("self:")
    for f, n in own.most_common(args.top):
        print(f"  {n / samples * 100:5.1f}%  {f}")
    print("total:")
    for f, n in total.most_common(args.top):
        print(f"  {n / samples * 100:5.1f}%  {f}")


if __name__ == "__main__":
    main()
