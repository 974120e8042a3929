"""Run the service's workers under BentoML's supervisor, with the two changes an operator needs.

``tierwise serve`` execs ``python -m serving.server HOST PORT`` after its checks. This does
what ``bentoml serve serving.service:Tierwise`` does, with two differences (BentoML 1.4.39,
its private ``_bentoml_impl.server.serve_http``; re-check on every upgrade):

- the supervisor (circus) looks for dead workers every ``CHECK_DELAY_S`` (0.25 s) instead of
  BentoML's 10 s, so a killed worker is replaced within seconds (the other workers keep
  answering meanwhile: they share the listening socket);
- a worker that dies is logged, with its exit code or signal, before it is replaced.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

CHECK_DELAY_S = 0.25

log = logging.getLogger("tierwise.server")


def _log_deaths(watcher) -> None:
    """Log each worker that dies while the service runs, whichever way circus finds it:
    reaped by the arbiter's ``waitpid``, or dropped as dead by ``manage_processes``."""
    from circus.process import DEAD_OR_ZOMBIE, UNEXISTING

    reap, manage = watcher.reap_process, watcher.manage_processes

    def died(pid: int, how: str) -> None:
        if pid in watcher.processes and watcher.is_active():
            log.warning("worker process %d died (%s); the supervisor starts a new one", pid, how)

    def reap_process(pid: int, status: int | None = None):
        died(pid, _how(status))
        return reap(pid, status)

    def manage_processes():
        for process in list(watcher.processes.values()):
            if process.status in (DEAD_OR_ZOMBIE, UNEXISTING):
                died(process.pid, _how(_collect(process.pid)))
        return manage()

    watcher.reap_process, watcher.manage_processes = reap_process, manage_processes


def _collect(pid: int) -> int | None:
    """The exit status of a dead child not yet reaped, collected here: circus is about to drop
    it from its table and would then never reap it (which SIGCHLD or this check comes first is
    a race; either way the log says how the worker died)."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # already reaped
        return None
    return status if reaped == pid else None


def _how(status: int | None) -> str:
    if status is None:
        return "exit status unknown"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def main(host: str, port: int) -> None:
    from _bentoml_impl.server import serve_http
    from bentoml._internal.log import configure_server_logging
    from bentoml._internal.service.loader import load
    from bentoml._internal.utils import circus

    from serving.champions import clear
    from serving.lean import LEAN_WORKER
    from tierwise.settings import Settings

    configure_server_logging()  # dictConfig: it disables loggers made before it, like ours
    log.disabled = False
    root = str(Path(__file__).resolve().parent.parent)
    make_arbiter = circus.create_standalone_arbiter

    def create_standalone_arbiter(watchers, **kwargs):
        kwargs.setdefault("check_delay", CHECK_DELAY_S)
        for watcher in watchers:
            _log_deaths(watcher)
        return make_arbiter(watchers, **kwargs)

    circus.create_standalone_arbiter = create_standalone_arbiter
    os.environ[LEAN_WORKER] = "1"  # the workers start without scikit-learn (serving.lean)
    clear(Settings())  # a new run's workers load the champions from the registry
    service = load("serving.service:Tierwise", working_dir=root)
    service.inject_config()  # the service's own config (workers, timeout) with the overrides
    serve_http(service, host=host, port=port)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
