"""Run training jobs as subprocesses, a few at a time, with live progress.

Each job is one ``tools/train.py`` process, so its peak memory is its own:
the parent reaps it with ``os.wait4``, whose ``ru_maxrss`` is the peak
resident set of that process (and of any dataloader workers it reaped).
Peak RSS, wall time, the environment the job set (:func:`thread_env`: its
torch threads) and the most jobs that ran at once while it ran go to
``mmohem_run.json`` in the job's work dir.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, TextIO

from .logs import RUN_INFO, THREAD_VARS, train_progress

STDOUT_LOG = 'benchmark_stdout.log'
_STATUS_EVERY_S = 30.0
_POLL_S = 1.0


def thread_env(threads: int) -> Dict[str, str]:
    """The environment that gives a run ``threads`` torch (and MKL)
    threads."""
    return {var: str(threads) for var in THREAD_VARS}


@dataclass
class Job:
    """One training run to launch.

    Attributes:
        label (str): How progress lines name it.
        command (list[str]): The command line.
        work_dir (str): Its mmengine work dir.
        env (dict[str, str]): Extra environment variables.
    """

    label: str
    command: List[str]
    work_dir: str
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """How a job ended.

    Attributes:
        job (Job): The job.
        returncode (int): Exit status (negative: killed by that signal).
        peak_rss_mib (float): Peak resident memory of its process, MiB.
        wall_s (float): Wall time in seconds.
        concurrent_runs (int): The most jobs running at once while it ran,
            itself included.
    """

    job: Job
    returncode: int
    peak_rss_mib: float
    wall_s: float
    concurrent_runs: int

    @property
    def stdout_log(self) -> str:
        """The file holding the job's stdout and stderr."""
        return osp.join(self.job.work_dir, STDOUT_LOG)


class Running:
    """A launched job, its output going to ``<work_dir>/benchmark_stdout.log``.

    Args:
        job (Job): The job to launch.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        os.makedirs(job.work_dir, exist_ok=True)
        self._log_path = osp.join(job.work_dir, STDOUT_LOG)
        self._log = open(self._log_path, 'w', encoding='utf-8')
        self._start = time.perf_counter()
        #: The most jobs seen running at once (:func:`run_jobs` updates it).
        self.concurrent = 1
        self.proc = subprocess.Popen(
            job.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                **job.env
            })

    def poll(self) -> Optional[Outcome]:
        """The outcome if the process ended, else ``None``; never blocks."""
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._log.close()
        outcome = Outcome(self.job, self.proc.returncode,
                          usage.ru_maxrss / 1024,
                          time.perf_counter() - self._start, self.concurrent)
        _write_run_info(outcome)
        return outcome

    def progress(self) -> str:
        """``iter/total, eta`` from the last training log line so far."""
        with open(self._log_path, encoding='utf-8', errors='replace') as f:
            progress = train_progress(f.read())
        elapsed = time.perf_counter() - self._start
        if progress is None:
            return f'starting ({elapsed:.0f} s)'
        done, total, eta = progress
        if done == total:
            return f'{done}/{total}, evaluating'
        return f'{done}/{total}, eta {eta}'

    def kill(self) -> None:
        """Terminate the process and reap it."""
        self.proc.terminate()
        self.proc.wait()
        self._log.close()


class Reporter:
    """Progress output: lasting lines, plus a status line that a terminal
    redraws in place and a pipe gets every 30 s.

    Args:
        stream (TextIO): Where to write; defaults to ``sys.stdout``.
    """

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._last_status = 0.0
        self._status_width = 0

    def line(self, text: str) -> None:
        """Print a lasting line."""
        self._clear()
        print(text, file=self.stream, flush=True)

    def status(self, text: str) -> None:
        """Show the current state of the running jobs."""
        if self.tty:
            self._clear()
            self.stream.write(text)
            self._status_width = len(text)
            self.stream.flush()
        elif time.monotonic() - self._last_status >= _STATUS_EVERY_S:
            self._last_status = time.monotonic()
            print(f'  ... {text}', file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.tty and self._status_width:
            self.stream.write('\r' + ' ' * self._status_width + '\r')
            self._status_width = 0


def run_jobs(jobs: List[Job], parallel: int, reporter: Reporter,
             on_done: Callable[[Outcome], None]) -> List[Outcome]:
    """Run ``jobs``, at most ``parallel`` at a time, in order.

    Args:
        jobs (list[Job]): The jobs.
        parallel (int): Most jobs running at once.
        reporter (Reporter): Progress output.
        on_done (callable): Called with each outcome as it comes.

    Returns:
        list[Outcome]: In the order the jobs finished.
    """
    pending, running, done = list(jobs), [], []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                reporter.line(f'> {job.label}: started')
                running.append(Running(job))
            for run in running:
                run.concurrent = max(run.concurrent, len(running))
            for run in list(running):
                outcome = run.poll()
                if outcome is not None:
                    running.remove(run)
                    done.append(outcome)
                    on_done(outcome)
            if running:
                reporter.status(' | '.join(f'{r.job.label}: {r.progress()}'
                                           for r in running))
                time.sleep(_POLL_S)
    finally:
        for run in running:
            run.kill()
    return done


def _write_run_info(outcome: Outcome) -> None:
    info = dict(
        peak_rss_mib=round(outcome.peak_rss_mib, 1),
        wall_s=round(outcome.wall_s, 1),
        returncode=outcome.returncode,
        command=outcome.job.command,
        env=outcome.job.env,
        concurrent_runs=outcome.concurrent_runs,
        peak_memory_source='ru_maxrss of os.wait4 on the run process')
    with open(
            osp.join(outcome.job.work_dir, RUN_INFO), 'w',
            encoding='utf-8') as f:
        json.dump(info, f, indent=2)
