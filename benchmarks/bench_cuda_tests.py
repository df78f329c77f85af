"""Do the tests that need CUDA pass on this machine's GPU?

Runs the test suite's CUDA tests (those that skip without CUDA; selected with ``-k``, by default
every test whose name mentions cuda or gpu) in a child pytest with a wall-clock cap, and records
the pass / fail / skip / error counts and the names of the failures, with the GPU's name, in
``results/cuda_tests_<device>.json`` and a table beside it.

    python benchmarks/bench_cuda_tests.py                 # on a machine with CUDA
    python benchmarks/bench_cuda_tests.py --timeout 120
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import _common as C

SUITE = "cuda_tests"
ROOT = Path(__file__).resolve().parents[1]


def junit_counts(path):
    """Counts and failing test ids from a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failures.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failures.append(name)
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failures


def run(args):
    device = C.resolve_device(args.device)
    ctx = C.context(device)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", *args.paths, "-k", args.select, "-q", "-rfEs",
               "-p", "no:cacheprovider", f"--junitxml={report}", "--durations=10"]
        if args.workers > 1 and importlib.util.find_spec("xdist") is not None:
            cmd += ["-n", str(args.workers)]  # pytest-xdist: independent tests, room on the GPU
        print("running:", " ".join(cmd), flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, timeout=args.timeout)
            returncode, timed_out = proc.returncode, False
        except subprocess.TimeoutExpired:
            returncode, timed_out = None, True
        seconds = time.perf_counter() - start
        counts, failures = (junit_counts(report) if report.exists()
                            else ({"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, []))
    case = f"pytest {' '.join(args.paths)} -k '{args.select}'"
    extra = dict(returncode=returncode, timed_out=timed_out, seconds=seconds, failures=failures,
                 **counts)
    records = [C.record(ctx, SUITE, case, "sklearn_ae tests", "tests_passed", counts["passed"], **extra)]
    text = C.header_lines(ctx, "CUDA tests on the device", " ".join(sys.argv))
    text += C.md_table(["selection", "passed", "failed", "errors", "skipped", "seconds", "timed out"],
                       [[case, counts["passed"], counts["failed"], counts["errors"], counts["skipped"],
                         f"{seconds:.0f}", timed_out]])
    if failures:
        text += "\nFailures:\n\n" + "".join(f"- `{f}`\n" for f in failures)
    name = args.name or f"cuda_tests_{device.replace(':', '')}"
    path = C.write_results(records, name, text)
    print(f"{counts} in {seconds:.0f}s{' (timed out)' if timed_out else ''}; wrote {path}", flush=True)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--select", default="cuda or gpu", help="pytest -k expression")
    parser.add_argument("--timeout", type=float, default=150, help="seconds before the run is cut")
    parser.add_argument("--name", default=None, help="results file name (default cuda_tests_<device>)")
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers (-n)")
    parser.add_argument("paths", nargs="*", default=["tests"])
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
