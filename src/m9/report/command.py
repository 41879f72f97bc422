"""``m9 report``: a sweep's matrix, boundary, throughput trend, predictions and plots, as markdown and PNGs.

    m9 report                      # the latest sweep in the tracking store (else the newest outputs/sweeps/*)
    m9 report 2026-11-28_21-10-28  # by sweep id, parent run id, or a sweep directory
    m9 report --compare A B        # two sweeps side by side

The files land in the sweep's directory (or ``outputs/reports/<sweep>``) and are attached to the sweep's parent run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional

from m9.config import TrackingConfig
from m9.record import tracking
from m9.record.answer import load as load_answer
from m9.record.journal import read_sweep, read_sweep_meta
from m9.record.sweep_record import catch_up
from m9.record.tracking import Store
from m9.report.compare import compare
from m9.report.document import Report, write

SWEEPS_DIR = Path("outputs") / "sweeps"


def load(ref: Optional[str], store: Store, sweeps_dir: Path = SWEEPS_DIR) -> Report:
    """A sweep by directory, sweep id or parent run id; None: the latest. Raises LookupError when there is none."""
    if ref and Path(ref).is_dir():
        return _from_dir(Path(ref))
    if store.exists():
        parent = tracking.find_sweep(store, ref)
        if parent is not None:
            tags = parent["tags"]
            out = Path(tags.get("output_dir", ""))
            if tags.get("output_dir") and out.is_dir():  # the journal is the canonical record, store or not
                return dataclasses.replace(_from_dir(out), parent_run_id=parent["run_id"])
            return Report(tags.get("sweep_id", parent["run_id"]), tracking.load_points(store, parent),
                          tags.get("command", ""), parent["run_id"], None)
    candidates = sorted(p for p in sweeps_dir.glob("*") if p.is_dir()) if sweeps_dir.is_dir() else []
    if ref:
        candidates = [p for p in candidates if p.name == ref]
    if not candidates:
        raise LookupError(f"no sweep {ref!r} in the tracking store or under {sweeps_dir}" if ref else
                          f"no sweeps in the tracking store or under {sweeps_dir}")
    return _from_dir(candidates[-1])


def _from_dir(path: Path) -> Report:
    meta = read_sweep_meta(path) or {}
    return Report(path.name, read_sweep(path), meta.get("command", ""), meta.get("parent_run_id"), path,
                  load_answer(meta.get("answer")))


def main(argv: Optional[list[str]] = None) -> int:
    """Command line of ``m9 report``."""
    p = argparse.ArgumentParser(prog="m9 report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="sweep id, parent run id or sweep directory (default: the latest)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two sweeps side by side")
    p.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    p.add_argument("--experiment", default="m9", help="MLflow experiment (default: m9)")
    p.add_argument("--sweeps-dir", type=Path, default=SWEEPS_DIR, help="where sweep directories live")
    p.add_argument("--out", type=Path, help="output directory (default: the sweep's directory)")
    args = p.parse_args(argv)
    store = Store(TrackingConfig(uri=args.uri, experiment=args.experiment))
    if store.exists():
        try:  # a store that was down when a sweep ended gets its points before they are read
            catch_up(store)
        except Exception as exc:  # noqa: BLE001 - the store does not answer: the report reads the sweep folders
            print(f"[m9] warning: the tracking store does not answer ({type(exc).__name__}); reading what is there",
                  file=sys.stderr)
    try:
        if args.compare:
            a, b = (load(ref, store, args.sweeps_dir) for ref in args.compare)
            out = args.out or Path("outputs") / "reports" / f"compare_{a.sweep_id}_vs_{b.sweep_id}"
            files = compare(a, b, out)
        else:
            report = load(args.sweep, store, args.sweeps_dir)
            out = args.out or report.out_dir or Path("outputs") / "reports" / report.sweep_id
            files = write(report, out)
            if report.parent_run_id and store.exists():
                tracking.log_artifacts(store, report.parent_run_id, files)
    except LookupError as exc:
        print(f"m9 report: error: {exc}", file=sys.stderr)
        return 2
    print(files[0].read_text())
    print(f"[m9] wrote {', '.join(str(f) for f in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
