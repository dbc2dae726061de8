"""An asyncio web service in front of a cluster: Starlette on uvicorn, its endpoints finding
actors by name anywhere in the cluster and asking them.

The web process is a cluster member through ``swimactors.aio.open_system``: actors,
membership, registry and distributed data run on a runtime thread, the endpoints on
uvicorn's asyncio loop.  ``/kv`` is the replicated store of ``examples/kv.py``.

One command starts two agents, the service, and stops all three on Ctrl-C::

    make example-web        # or: python -m examples.web --port 8000

    curl -X PUT -d blue localhost:8000/kv/colour     # {"key": "colour", "written": "majority"}
    curl localhost:8000/kv/colour                    # {"key": "colour", "value": "blue"}
    curl -X POST 'localhost:8000/counter?add=5'      # {"value": 5, "node": "b"}
    curl localhost:8000/counter

As a deployment the app is ``examples.web:app`` (``uvicorn examples.web:app``) and joins
the cluster named by ``SWIMACTORS_SEEDS`` (``host:port,...``) as ``SWIMACTORS_NAME``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from swimactors import AskTimeout, ConsistencyError, NodeDown, QuorumLost, aio
from swimactors.membership import Config

from . import kv
from .counter import Add, Get

ASK_TIMEOUT = 5.0
EXPECTED_AGENTS = 2


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    seeds = [s for s in os.environ.get("SWIMACTORS_SEEDS", "").split(",") if s]
    async with aio.open_system(
        os.environ.get("SWIMACTORS_NAME", "web"),
        bind=os.environ.get("SWIMACTORS_BIND", "127.0.0.1:0"),
        seeds=seeds,
        config=Config.local(),
    ) as system:
        app.state.system = system
        yield


async def ask(request: Request, name: str, msg: Any) -> tuple[Any, str] | JSONResponse:
    """Ask the actor holding ``name``: its answer and node, or the error response."""
    system: aio.AsyncSystem = request.app.state.system
    ref = await system.find(name)
    if ref is None:
        return JSONResponse({"error": f"no actor named {name}"}, status_code=503)
    try:
        return await ref.ask(msg, timeout=ASK_TIMEOUT), ref.node
    except AskTimeout:
        return JSONResponse({"error": f"{name} did not answer in time"}, status_code=504)
    except NodeDown:
        return JSONResponse({"error": f"the node holding {name} is down"}, status_code=503)


async def get_key(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    system: aio.AsyncSystem = request.app.state.system
    try:
        value = await system.run(lambda trio_system: kv.get(trio_system, key))
    except (ConsistencyError, QuorumLost) as exc:
        return JSONResponse({"key": key, "error": str(exc)}, status_code=503)
    if value is None:
        return JSONResponse({"key": key, "error": "not found"}, status_code=404)
    return JSONResponse({"key": key, "value": value})


async def put_key(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    value = (await request.body()).decode(errors="replace")
    system: aio.AsyncSystem = request.app.state.system
    try:
        await system.run(lambda trio_system: kv.put(trio_system, key, value))
    except (ConsistencyError, QuorumLost) as exc:
        return JSONResponse({"key": key, "error": str(exc)}, status_code=503)
    return JSONResponse({"key": key, "written": "majority"})


async def counter(request: Request) -> JSONResponse:
    add = request.query_params.get("add")
    if request.method == "POST" and (add is None or not add.lstrip("-").isdigit()):
        return JSONResponse({"error": "POST /counter?add=N with an integer N"}, status_code=400)
    msg = Add(int(add)) if request.method == "POST" and add is not None else Get()
    answer = await ask(request, "counter", msg)
    if isinstance(answer, JSONResponse):
        return answer
    return JSONResponse({"value": answer[0], "node": answer[1]})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"node": request.app.state.system.name})


app = Starlette(
    routes=[
        Route("/kv/{key}", get_key, methods=["GET"]),
        Route("/kv/{key}", put_key, methods=["PUT"]),
        Route("/counter", counter, methods=["GET", "POST"]),
        Route("/health", health),
    ],
    lifespan=lifespan,
)


# -- one command: two agents and the service ---------------------------------------------


@contextlib.contextmanager
def agents(first_port: int) -> Iterator[list[str]]:
    """Agents ``a`` and ``b`` on ``first_port`` and the next, running the example's actors;
    terminated and reaped on the way out."""
    addresses = [f"127.0.0.1:{first_port}", f"127.0.0.1:{first_port + 1}"]
    processes = []
    try:
        for name, address in zip("ab", addresses, strict=True):
            command = [sys.executable, "-m", "swimactors", "agent", "--name", name]
            command += ["--bind", address, "--profile", "local"]
            command += ["--join", addresses[0], "--app", "examples.web_actors:setup"]
            processes.append(subprocess.Popen(command))
        yield addresses
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--gossip-port", type=int, default=7101, help="first agent's port")
    options = parser.parse_args()
    import uvicorn

    with agents(options.gossip_port) as seeds:
        os.environ["SWIMACTORS_SEEDS"] = ",".join(seeds)
        uvicorn.run(app, host="127.0.0.1", port=options.port)


if __name__ == "__main__":
    main()
