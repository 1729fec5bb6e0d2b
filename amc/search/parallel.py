"""Independent candidates of a search, scored in this process, in local worker processes, or on Ray.

NetAdapt's per-group candidates, a sensitivity sweep's points and random trials do not depend on each other, so
they are mapped over workers. Every worker is set up once: `setup(payload)` builds its context (an env, a task,
training data) from a payload sent when the worker starts (the process pool's initializer, or one `ray.put` shared
by the Ray actors), and each item then carries only what differs. `map_ordered` yields results in input order
as they become ready, so a caller can record them one by one and a killed run keeps what was finished.

Workers run torch on one thread and every result is a pure function of (context, item): the same seed gives
the same results whatever the executor and the number of workers.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, cast

import torch

from amc.config import EXECUTORS, SearchSection
from amc.errors import UserError
from amc.optional import require

WORKER_THREADS = 1

Setup = Callable[[Any], Any]
Work = Callable[[Any, Any], Any]


class Executor(Protocol):
    def map_ordered(self, fn: Work, items: Iterable[Any]) -> Iterator[Any]:
        """`fn(context, item)` for every item; results in input order."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Everything in this process (workers=1): no start-up cost, and the reference the others must equal."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def map_ordered(self, fn: Work, items: Iterable[Any]) -> Iterator[Any]:
        return (fn(self.context, item) for item in items)

    def close(self) -> None:
        self.context = None


_CONTEXT: Any = None


def _init_process(setup: Setup, payload: Any) -> None:
    global _CONTEXT
    torch.set_num_threads(WORKER_THREADS)
    _CONTEXT = setup(payload)


def _call(fn: Work, item: Any) -> Any:
    return fn(_CONTEXT, item)


class ProcessExecutor:
    """Local worker processes forked from a fresh fork server (no inherited torch/OpenMP state), set up once each."""

    def __init__(self, workers: int, setup: Setup, payload: Any) -> None:
        try:
            pickle.dumps(payload)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise UserError(
                f"search.workers={workers} needs a picklable task to send to worker processes: {error}.",
                fix="use a module-level evaluation function (not a lambda or closure), search.workers=1, or "
                "search.executor=ray (which pickles closures).",
            ) from None
        context = multiprocessing.get_context("forkserver")
        # the fork server imports torch and the method once per search process; every pool forks from it
        context.set_forkserver_preload([setup.__module__])
        self.pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_process, initargs=(setup, payload)
        )

    def map_ordered(self, fn: Work, items: Iterable[Any]) -> Iterator[Any]:
        items = list(items)
        return self.pool.map(_call, [fn] * len(items), items)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RayWorker:
    """One Ray actor: the context is built once from the shared payload."""

    def __init__(self, setup: Setup, payload: Any) -> None:
        torch.set_num_threads(WORKER_THREADS)
        self.context = setup(payload)

    def run(self, fn: Work, item: Any) -> Any:
        return fn(self.context, item)


class RayExecutor:
    """Ray actors in an ActorPool; connects to `address` (a running cluster) or starts a local Ray."""

    def __init__(self, workers: int, setup: Setup, payload: Any, address: str | None = None) -> None:
        require("ray", "search.executor ray")  # an extra (amc-toolkit[ray]): a UserError naming it when absent
        import ray
        from ray.actor import ActorHandle
        from ray.util import ActorPool

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        shared = ray.put(payload)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        # ray types ActorClass.remote() as ActorHandle | type[T] (the latter types method calls); it is a handle
        self.actors = [cast("ActorHandle[_RayWorker]", actor.remote(setup, shared)) for _ in range(workers)]
        self.pool = ActorPool(self.actors)

    def map_ordered(self, fn: Work, items: Iterable[Any]) -> Iterator[Any]:
        return self.pool.map(lambda worker, item: worker.run.remote(fn, item), list(items))

    def close(self) -> None:
        for worker in self.actors:
            self.ray.kill(worker)
        if self.started:
            self.ray.shutdown()


@contextmanager
def open_executor(search: SearchSection, setup: Setup, payload: Any, local: Any = None) -> Iterator[Executor]:
    """`make_executor`, closed (workers stopped) when the block ends, also on Ctrl-C."""
    executor = make_executor(search, setup, payload, local)
    try:
        yield executor
    finally:
        executor.close()


def make_executor(search: SearchSection, setup: Setup, payload: Any, local: Any = None) -> Executor:
    """The executor the config asks for: serial for one local worker, else processes or Ray actors.

    `setup(payload)` builds each worker's context; `local`, when given, is that context already built in this
    process, which the serial executor uses as is."""
    if search.executor not in EXECUTORS:
        raise UserError(f"search.executor {search.executor!r} is not known.", fix=f"use one of {', '.join(EXECUTORS)}.")
    if search.workers < 1:
        raise UserError(f"search.workers must be at least 1, got {search.workers}.", fix="e.g. --workers 2.")
    if search.executor == "ray":
        return RayExecutor(search.workers, setup, payload, search.ray_address)
    if search.workers == 1:
        return SerialExecutor(setup(payload) if local is None else local)
    return ProcessExecutor(search.workers, setup, payload)
