# tickfan's image: stage 1 builds the wheel from this checkout, stage 2 installs only the wheel (no sources, no
# build tools) and runs as a non-root user. Every role is the same image: `tickfan node|ingest|api|execute|...`.
#   docker build -t tickfan:0.1.0 .
#   docker run --rm tickfan:0.1.0 --help
# The manifests in deploy/ run it with `--config /etc/tickfan/tickfan.toml` and TICKFAN_* variables.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# the wheel is built from what git tracks (see .dockerignore); web/dist is committed, so no npm here
COPY . .
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
# pg_dump/pg_restore for `tickfan backup` / `tickfan restore` (the same major version as the servers: 15)
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tickfan \
 && useradd --system --uid 10001 --gid tickfan --home-dir /home/tickfan --create-home --shell /usr/sbin/nologin tickfan
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir "$(ls /wheels/tickfan-*.whl)[all]" \
 && rm -rf /wheels
# numba's compiled kernels are cached here (a writable emptyDir in Kubernetes: the root filesystem is read-only)
ENV NUMBA_CACHE_DIR=/tmp/numba \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /home/tickfan
# HTTP (snapshots, order API, /livez /readyz /metrics), WebSocket fan-out, FIX (the staging market maker)
EXPOSE 8000 8765 9878
ENTRYPOINT ["tickfan"]
CMD ["--help"]
