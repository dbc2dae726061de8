# A swimactors agent in a container: `docker build -t swimactors .`, then e.g.
#   docker run --rm swimactors --name a --bind 0.0.0.0:7946 --http 0.0.0.0:8946
# docs/guide.md ("Containers and Kubernetes") has a headless-service manifest.
FROM python:3.12-slim
RUN useradd --create-home --uid 10001 swim
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY swimactors ./swimactors
RUN pip install --no-cache-dir . && rm -rf /src
USER swim
WORKDIR /home/swim
# gossip (UDP probes, TCP full-state sync) and the HTTP API; the actor transport picks a
# free port and announces it in the member's tags (fix it with the library's actor_bind).
EXPOSE 7946/udp 7946/tcp 8946/tcp
ENTRYPOINT ["swimactors", "agent"]
CMD ["--name", "node", "--bind", "0.0.0.0:7946", "--http", "127.0.0.1:8946"]
