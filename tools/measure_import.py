"""Start-up cost of using pcattn's blocks, in fresh interpreters, runs alternated so that a
change of machine load hits every case alike. Run it on a quiet machine:

    OMP_NUM_THREADS=1 .venv/bin/python tools/measure_import.py --rounds 7

Prints the median wall time of each snippet (interpreter start included, so compare the
rows with each other), the difference ``import pcattn.nn`` adds to ``import torch,
torch_geometric``, and the modules whose own import time (``-X importtime``) is largest
within ``import pcattn.nn``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KNN = "import torch\nfrom pcattn import ops\npos = torch.rand(1024, 3)\n"
CASES = {
    "python": "pass",
    "import torch, torch_geometric": "import torch, torch_geometric",
    "import pcattn": "import pcattn",
    "import pcattn.nn": "import pcattn.nn",
    "first ops.knn (auto backend)": KNN + "ops.knn(pos, 16)",
    "first ops.knn (backend='torch')": KNN + "ops.knn(pos, 16, backend='torch')",
}


def run(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return time.perf_counter() - start, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, code in CASES.items():
            times[name].append(run(code)[0])
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in median.items():
        print(f"{name:34s} {t:6.2f} s  (min {min(times[name]):.2f})")
    print(f"{'pcattn.nn over torch + PyG':34s} "
          f"{median['import pcattn.nn'] - median['import torch, torch_geometric']:+6.2f} s")
    _, log = run("import torch, torch_geometric\nimport pcattn.nn", "-X", "importtime")
    rows = [line.split("|") for line in log.splitlines() if line.startswith("import time:")]
    names = [r[2].strip() for r in rows]
    after = rows[names.index("torch_geometric") + 1:]  # what pcattn.nn added
    own = [(int(r[0].split(":")[1]), r[2].rstrip()) for r in after]
    print("largest own import times within `import pcattn.nn` (us):")
    for us, module in sorted(own, reverse=True)[:10]:
        print(f"  {us:9d} {module}")


if __name__ == "__main__":
    main()
