"""What decides a benchmark result besides its configs and seeds: the code
state, the package versions, the demo data, the machine.

Two runs of one arm with the same seed, code, packages, data and torch
thread count train the same losses and reach the same metrics on a CPU; a
different thread count sums in another order, and the runs drift apart from
the first iteration. :func:`provenance` records all but the threads, which
each run's ``mmohem_run.json`` holds (:attr:`RunLog.threads
<mmohem.benchmark.logs.RunLog.threads>`, with the most runs that ran at
once).
"""
import hashlib
import importlib
import os
import os.path as osp
import platform
import subprocess
from typing import Dict, List, Optional, Sequence

from .logs import RunLog

#: The packages whose versions are recorded, by import name.
PACKAGES = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmdet', 'mmseg',
            'numpy', 'mmohem')


def provenance(root: str, data_root: Optional[str] = None) -> dict:
    """The facts besides configs and seeds that decide a result.

    Args:
        root (str): The repository whose code trained the runs.
        data_root (str, optional): The demo data the runs trained on.

    Returns:
        dict: ``git`` (:func:`git_state`), ``packages``
        (:func:`package_versions`), ``python``, ``platform``, ``cpu``
        (model name), ``cpu_count`` and ``data`` (:func:`data_digest`,
        ``None`` without ``data_root``).
    """
    return dict(
        git=git_state(root),
        packages=package_versions(),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        data=None if data_root is None else data_digest(data_root))


def git_state(root: str) -> Dict[str, object]:
    """The commit of ``root`` and what the working tree changes.

    Returns:
        dict: ``commit`` (``None`` outside a git checkout), ``dirty``
        (whether a tracked file differs or an untracked, not ignored file
        exists) and ``changed`` (``git status --porcelain`` lines).
    """
    try:
        commit = _git(root, 'rev-parse', 'HEAD').strip()
        changed = _git(root, 'status', '--porcelain').splitlines()
    except (OSError, subprocess.CalledProcessError):
        return dict(commit=None, dirty=None, changed=[])
    return dict(commit=commit, dirty=bool(changed), changed=changed)


def package_versions() -> Dict[str, Optional[str]]:
    """The ``__version__`` of each of :data:`PACKAGES` as this process
    imports it (``None`` when missing), e.g. ``torch: '2.1.2+cu121'``."""
    versions: Dict[str, Optional[str]] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def data_digest(root: str) -> Dict[str, object]:
    """A digest of every file under ``root``.

    The sha256 over, in sorted order of their ``/``-separated paths
    relative to ``root``, each file's path, a NUL byte and the sha256 of
    its contents.

    Returns:
        dict: ``root``, ``files`` (how many) and ``sha256`` (hex).
    """
    paths = sorted(_relative_files(root))
    digest = hashlib.sha256()
    for path in paths:
        with open(osp.join(root, path), 'rb') as f:
            content = hashlib.sha256(f.read()).digest()
        digest.update(path.encode('utf-8') + b'\0' + content)
    return dict(root=root, files=len(paths), sha256=digest.hexdigest())


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what
    :func:`platform.processor` says."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown_lines(prov: dict, runs: Sequence[RunLog]) -> List[str]:
    """A short account of ``prov`` and of the runs' threads, as Markdown
    list items."""
    git = prov['git']
    commit = (git['commit'] or 'unknown')[:10]
    if git['dirty']:
        commit += f' + {len(git["changed"])} changed files'
    packages = ', '.join(f'{k} {v}' for k, v in prov['packages'].items())
    lines = [
        f'- code: commit {commit}; {packages}; Python {prov["python"]}',
        f'- machine: {prov["cpu"]} ({prov["cpu_count"]} CPUs), '
        f'{prov["platform"]}; {run_threads(runs)}',
    ]
    data = prov['data']
    if data is not None:
        lines.append(f'- demo data: sha256 {data["sha256"][:16]} over '
                     f'{data["files"]} files of {data["root"]}')
    return lines


def run_threads(runs: Sequence[RunLog]) -> str:
    """The torch threads per run and the most runs at once, in words."""
    threads = sorted({r.threads for r in runs if r.threads is not None})
    at_once = [r.concurrent_runs for r in runs if r.concurrent_runs]
    if not threads:
        return 'torch threads of the runs not recorded'
    text = f'torch threads per run: {"/".join(map(str, threads))}'
    return text + (f', up to {max(at_once)} runs at once' if at_once else '')


def _git(root: str, *args: str) -> str:
    return subprocess.run(['git', '-C', root, *args],
                          capture_output=True,
                          text=True,
                          check=True).stdout


def _relative_files(root: str) -> List[str]:
    """Every file under ``root``, as a ``/``-separated relative path."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.relpath(osp.join(folder, name), root)
            found.append(path.replace(os.sep, '/'))
    return found
