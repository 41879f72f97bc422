"""Submit a batch of points as submitit jobs (on this host or on SLURM) and bring every one of them back.

hydra-submitit-launcher collects ``job.results()`` in turn: a job killed from outside (``scancel``, the OOM killer,
a time limit, a lost node, a preemption that was not requeued) has no result, submitit raises, and the multirun
aborts with every later point lost. Here such a job comes back as a ``LostJob``, with what the scheduler says of
it (SLURM's state and exit code from ``sacct``, or the local process's signal), for the sweeper to record as a
failed point; the other jobs' results are read as usual. A job requeued by SLURM after a preemption is the same
job: it is waited for, and recorded once.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus

from m9.sweep.launched import LostJob

_SACCT_SETTLE_S = 30.0  # a job whose result says it was stopped may still be COMPLETING in SLURM's view
_PEERS_GRACE_S = 30.0  # how long a multi-task job's other tasks may take to exit after task 0's result
_POLL_S = 1.0
_SCHEDULER_POLL_S = 10.0
"""How often SLURM is asked about a job that has not written its result. Alone, submitit asks at intervals of half
the time since the sweep's last submission, capped at 10 minutes: a job killed 20 minutes or more into a sweep
held it for up to 10 minutes before it was seen to be gone."""


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """What ``BaseSubmititLauncher.launch`` does, except that a job without a result returns a ``LostJob``."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    cluster = launcher._EXECUTOR
    params = dict(launcher.params)
    folder = params.pop("submitit_folder")
    init = {f"{cluster}_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **init)
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    if cluster == "slurm" and params.get("nodes", 1) * params.get("tasks_per_node", 1) > 1:
        # a point as several processes (m9.run.multihost): one that dies ends the step, and its peers with it
        params["srun_args"] = [*(params.get("srun_args") or []), "--kill-on-bad-exit=1"]
    executor.update_parameters(**{k if k in shared else f"{cluster}_{k}": v for k, v in params.items()})
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    state = Singleton.get_state()
    nums = [initial_job_idx + i for i in range(len(job_overrides))]
    jobs = executor.map_array(launcher, [list(o) for o in job_overrides], ["hydra.sweep.dir"] * len(nums), nums,
                              [f"job_id_for_{n}" for n in nums], [state] * len(nums))
    for num, job in zip(nums, jobs):
        print(f"[m9] point {num}: submitted as {cluster} job {job.job_id}", flush=True)
    return [_collect(job, list(o), sweep_dir / str(n)) for job, o, n in zip(jobs, job_overrides, nums)]


def _collect(job: Any, overrides: list[str], working_dir: Path) -> JobReturn:
    from submitit.core.utils import FailedJobError, UncompletedJobError

    if job.num_tasks > 1:
        _end_lingering_tasks(job)
    _wait(job)
    try:
        ret = job.results()[0]  # a multi-task job: task 0's, which recorded the point
    except (UncompletedJobError, FailedJobError) as exc:
        if job.num_tasks > 1:  # another task died after task 0 had recorded the point: that record stands
            try:
                return job.task(0).result()
            except (UncompletedJobError, FailedJobError):
                pass
        return _lost(job, overrides, working_dir, exc)
    if ret.status == JobStatus.FAILED and isinstance(ret._return_value, UncompletedJobError):
        return _lost(job, overrides, working_dir, ret._return_value)  # submitit stopped the task (time limit)
    return ret


def _wait(job: Any, deadline: float = float("inf")) -> None:
    """Until ``job`` has ended (or ``deadline``): at once when it writes its result, within ``_SCHEDULER_POLL_S``
    when it ends without one (killed, timed out, its node lost)."""
    tasks = [job.task(k) for k in range(job.num_tasks)] if job.num_tasks > 1 else [job]
    asked = time.monotonic()
    while time.monotonic() < deadline:
        ask = time.monotonic() - asked >= _SCHEDULER_POLL_S  # one sacct refreshes every job of the sweep
        if ask:
            asked = time.monotonic()
        if all(t.done(force_check=ask) for t in tasks):
            return
        time.sleep(_POLL_S)


def _end_lingering_tasks(job: Any) -> None:
    """A point of several tasks: once task 0 has recorded it (its result is there), the others have left their
    outcomes or been given up on; one still running ``_PEERS_GRACE_S`` later is stopped, hung or stuck in shutdown,
    and the job is cancelled, so that a stopped peer cannot hold the sweep until the job's time limit."""
    _wait(job.task(0))
    _wait(job, deadline=time.monotonic() + _PEERS_GRACE_S)
    if not job.done():
        print(f"[m9] job {job.job_id}: task 0 recorded its point; other tasks still running "
              f"{_PEERS_GRACE_S:g}s later: cancelling the job", flush=True)
        job.cancel(check=False)


def _lost(job: Any, overrides: list[str], working_dir: Path, exc: BaseException) -> JobReturn:
    state, exit_code = _scheduler_view(job)
    tasks = [job.task(k) for k in range(job.num_tasks)] if job.num_tasks > 1 else [job]
    logs = tuple(str(p) for t in tasks for p in (t.paths.stdout, t.paths.stderr) if Path(p).exists())
    detail = _why(logs, str(exc))
    ret = JobReturn(overrides=overrides, working_dir=str(working_dir), status=JobStatus.COMPLETED)
    ret.return_value = LostJob(str(job.job_id), state, exit_code, detail[:300], logs)
    return ret


def _why(logs: tuple[str, ...], message: str) -> str:
    """What the scheduler wrote about the end (``*** JOB 41 ON node CANCELLED ... DUE TO TIME LIMIT ***``, ``srun:
    error: node: task 1: Killed``), else submitit's own reason; '' when neither says anything."""
    lines = [ln.strip() for path in logs for ln in Path(path).read_text(errors="replace").splitlines()]
    said = [next((ln[ln.index("***"):] for ln in lines if "***" in ln), ""),
            next((ln[len("srun: error: "):] for ln in lines if ln.startswith("srun: error:")), "")]
    said += [ln.strip() for ln in message.splitlines() if "timed-out" in ln or "not requeued" in ln][:1]
    return "; ".join(x for x in said if x)


def _scheduler_view(job: Any) -> tuple[str, str]:
    """(state, exit code) as the scheduler saw the job end."""
    process = getattr(job, "_process", None)
    if process is not None:  # submitit's local executor
        return ("INTERRUPTED" if (process.returncode or 0) < 0 else "EXITED"), str(process.returncode)
    deadline = time.monotonic() + _SACCT_SETTLE_S
    state, exit_code = "UNKNOWN", "?"
    while time.monotonic() < deadline:
        state, exit_code = _sacct(str(job.job_id))
        if state.split()[0] not in ("RUNNING", "PENDING", "COMPLETING", "REQUEUED", "RESIZING", "UNKNOWN"):
            break
        time.sleep(1.0)
    return state, exit_code


def _sacct(job_id: str) -> tuple[str, str]:
    try:
        out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"], capture_output=True,
                             text=True, timeout=10).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "UNKNOWN", "?"
    state, _, exit_code = (out[-1] if out else "UNKNOWN|?").partition("|")
    return state or "UNKNOWN", exit_code or "?"

