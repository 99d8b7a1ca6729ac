"""On-disk result cache with atomic writes, and resumable checkpointed loops.

Keys are a canonical hash of the parameters plus a fingerprint of the package source, so
edited code invalidates old results; a re-run of a killed loop resumes at its last
checkpoint and is bit-identical on CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .progress import progress


def _package_fingerprint() -> str:
    """Version plus a hash of the package's source, so edited code invalidates the cache."""
    from .. import __version__

    h = hashlib.sha256(__version__.encode())
    root = Path(__file__).resolve().parent.parent  # the thermo_nb package
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return f"{__version__}-{h.hexdigest()[:12]}"


def _canonical(obj: Any) -> Any:
    """JSON-able canonical form of a parameter dict (numpy scalars, tuples, paths)."""
    if isinstance(obj, dict):
        return {
            str(k): _canonical(v)
            for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {
            "__array__": hashlib.sha256(
                np.ascontiguousarray(obj).tobytes()
            ).hexdigest(),
            "shape": list(obj.shape),
            "dtype": str(obj.dtype),
        }
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


_UMASK_LOCK = threading.Lock()


def _current_umask() -> int:
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: "str | os.PathLike") -> list[Path]:
    """Delete temporaries of ``path`` left by writers that died (``kill -9``) mid-write.

    Temporaries are named ``.<name>.<pid>.<random>.tmp``; one whose writer process no
    longer exists is debris. A live writer's temporary is never touched. Returns the
    removed files.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


def atomic_write_bytes(path: "str | os.PathLike", data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    The file gets the permissions of a normal ``open()`` (``0o666`` less the umask), and
    temporaries of earlier writers of the same path that were killed mid-write are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class ResultCache:
    """On-disk cache of expensive results, keyed by parameters and code version.

    Parameters
    ----------
    root : path
        Folder for the cache files (a chapter uses ``output_dir / "cache"``).
    enabled : bool
        ``False`` computes every time (and writes nothing).

    Notes
    -----
    The key of an entry is ``sha256(name, canonical JSON of params, package fingerprint)``,
    where the fingerprint is the package version plus a hash of ``thermo_nb``'s source:
    editing the package invalidates stale results.  Values are pickled (torch tensors are
    moved to the CPU first) and written atomically, so an interrupted write never leaves a
    corrupt entry.

    Examples
    --------
    >>> import tempfile
    >>> cache = ResultCache(tempfile.mkdtemp())
    >>> cache.get_or_compute("square", {"x": 3}, lambda: 9)
    9
    >>> cache.get_or_compute("square", {"x": 3}, lambda: 1 / 0)  # cached: not recomputed
    9
    """

    def __init__(self, root: "str | os.PathLike", enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled
        self._fingerprint = _package_fingerprint()

    def key(self, name: str, params: dict) -> str:
        payload = json.dumps(
            {"name": name, "params": _canonical(params), "code": self._fingerprint},
            sort_keys=True,
        )
        return f"{name}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"

    def path(self, name: str, params: dict, suffix: str = ".pkl") -> Path:
        return self.root / (self.key(name, params) + suffix)

    def load(self, name: str, params: dict, default: Any = None) -> Any:
        p = self.path(name, params)
        if not (self.enabled and p.exists()):
            return default
        with open(p, "rb") as f:
            return pickle.load(f)

    def save(self, name: str, params: dict, value: Any) -> None:
        if self.enabled:
            atomic_write_bytes(self.path(name, params), pickle.dumps(_to_cpu(value)))

    def get_or_compute(self, name: str, params: dict, fn: Callable[[], Any]) -> Any:
        """Return the cached value for ``(name, params)``, computing and storing it if absent."""
        sentinel = object()
        value = self.load(name, params, sentinel)
        if value is sentinel:
            value = fn()
            self.save(name, params, value)
        return value


def _to_cpu(value: Any) -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        return type(value)(*(_to_cpu(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def run_resumable(
    cache: ResultCache,
    name: str,
    params: dict,
    init: Callable[[], dict],
    step: Callable[[dict, int], dict],
    n_steps: int,
    *,
    checkpoint_every: int = 100,
    desc: str | None = None,
    on_resume: Callable[[int], None] | None = None,
    show_progress: bool = True,
) -> dict:
    """Run ``state = step(state, i)`` for ``i in range(n_steps)`` with on-disk checkpoints.

    The state is a dict (tensors, arrays, numbers, and RNG states the step function keeps
    itself, e.g. a ``torch.Generator`` state under ``"rng"``).  Every ``checkpoint_every``
    steps the state and the step counter are written atomically to the cache; a re-run with
    the same ``(name, params)`` continues from the last checkpoint and, because the RNG
    state travels in the checkpoint, gives the same final state bit for bit as an
    uninterrupted run.  When all steps are done, the final state is stored as the result and
    returned directly on later calls.

    Parameters
    ----------
    cache : ResultCache
    name, params : key of the run (see :meth:`ResultCache.key`)
    init : callable returning the initial state dict
    step : callable ``(state, i) -> state``
    n_steps : int, total number of steps
    checkpoint_every : int, steps between checkpoints
    desc : str, label of the progress bar (defaults to ``name``)
    on_resume : callable receiving the step a resumed run starts from (for logging/tests)
    show_progress : bool, show a progress bar over the steps (callers with their own bar
        pass False)
    """
    done = cache.load(name + "-final", params)
    if done is not None:
        return done
    ckpt_params = dict(params, __checkpoint__=True)
    ckpt = cache.load(name, ckpt_params)
    if ckpt is not None:
        start, state = ckpt["step"], ckpt["state"]
        if on_resume is not None:
            on_resume(start)
    else:
        start, state = 0, init()
    bar = progress(
        total=n_steps,
        initial=start,
        desc=desc or name,
        disable=None if show_progress else True,
    )
    for i in range(start, n_steps):
        state = step(state, i)
        bar.update(1)
        if (i + 1) % checkpoint_every == 0 and i + 1 < n_steps:
            cache.save(name, ckpt_params, {"step": i + 1, "state": state})
    bar.close()
    cache.save(name + "-final", params, state)
    ckpt_path = cache.path(name, ckpt_params)
    if ckpt_path.exists():
        ckpt_path.unlink()
    return state
