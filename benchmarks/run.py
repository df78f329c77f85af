"""One entry point for the benchmark suites of sklearn_ae.

    python benchmarks/run.py --suite speed --device cuda
    python benchmarks/run.py --suite outliers --quick
    python benchmarks/run.py --suite quality --device cpu --quick
    python benchmarks/run.py --suite all --quick

Suites:

- ``speed``: training and inference throughput of our estimators and of the anchors (skorch's
  ``NeuralNet``, PyOD's ``AutoEncoder``, scikit-learn's ``MLPRegressor``, ``BernoulliRBM``,
  ``PCA``, a bare PyTorch loop), the two CPU targets on digits, and peak memory of batched
  inference on a memory-mapped 1,000,000 x 784 array (``bench_speed.py``).
- ``quality``: the paper comparisons: deep autoencoder vs PCA reconstruction
  (``bench_ae_mnist.py``), and the RBM AIS and VAE IWAE test log-likelihoods on binarized MNIST
  (``bench_rbm_mnist.py``, ``bench_vae_mnist.py``, run as they are when present).
- ``outliers``: ROC-AUC on the 21 ODDS sets under PyOD's protocol (``bench_outliers.py``).

Each suite writes ``benchmarks/results/<suite>_<device>[_quick].json`` (one JSON object per
measurement) and a markdown table beside it; ``summary.md`` gathers the headline figures of
every results file present.
"""

import argparse
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import _common as C

HERE = Path(__file__).resolve().parent


def run_script(script, args):
    """Run one of the suite scripts owned elsewhere (RBM, VAE likelihoods) as it is, in a child
    process, passing ``--device`` and ``--quick`` only where its command line accepts them."""
    path = HERE / script
    if not path.exists():
        print(f"[quality] {script} not present: skipped")
        return None
    help_text = subprocess.run([sys.executable, str(path), "--help"], capture_output=True,
                               text=True, cwd=HERE.parent).stdout
    cmd = [sys.executable, str(path)]
    if "--device" in help_text:
        cmd += ["--device", args.device]
    if args.quick and "--quick" in help_text:
        cmd.append("--quick")
    if args.threads is not None and "--threads" in help_text:
        cmd += ["--threads", str(args.threads)]
    if "--seed" in help_text:
        cmd += ["--seed", str(args.seed)]
    print(f"[quality] {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    return subprocess.run(cmd, cwd=HERE.parent).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run sklearn_ae's benchmark suites.")
    parser.add_argument("--suite", choices=["speed", "quality", "outliers", "all"], default="all")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument("--quick", action="store_true",
                        help="small settings that finish in minutes on 2 CPU cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for the whole run (default: torch's own)")
    args, rest = parser.parse_known_args(argv)
    args.device = C.resolve_device(args.device)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    warnings.simplefilter("ignore")  # ConvergenceWarning after a fixed number of epochs is expected
    failed = []
    suites = ["speed", "quality", "outliers"] if args.suite == "all" else [args.suite]
    for suite in suites:
        print(f"=== {suite} ({args.device}{', quick' if args.quick else ''})", flush=True)
        if suite == "speed":
            import bench_speed

            p = argparse.ArgumentParser()
            bench_speed.add_arguments(p)
            bench_speed.run(p.parse_args(["--device", args.device, "--seed", str(args.seed)]
                                         + ([] if args.threads is None else ["--threads", str(args.threads)])
                                         + (["--quick"] if args.quick else []) + rest), command)
        elif suite == "outliers":
            import bench_outliers

            p = argparse.ArgumentParser()
            bench_outliers.add_arguments(p)
            bench_outliers.run(p.parse_args(["--device", args.device, "--seed", str(args.seed)]
                                         + ([] if args.threads is None else ["--threads", str(args.threads)])
                                            + (["--quick"] if args.quick else []) + rest), command)
        else:
            import bench_ae_mnist

            p = argparse.ArgumentParser()
            bench_ae_mnist.add_arguments(p)
            bench_ae_mnist.run(p.parse_args(["--device", args.device, "--seed", str(args.seed)]
                                         + ([] if args.threads is None else ["--threads", str(args.threads)])
                                            + (["--quick"] if args.quick else [])), command)
            for script in ("bench_rbm_mnist.py", "bench_vae_mnist.py"):
                rc = run_script(script, args)
                if rc:
                    failed.append(f"{script} (exit {rc})")
    import summarize

    summarize.main([])
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
