# Podium agent image: the package, git, a non-root user and a data volume.
FROM python:3.11.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends git tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 podium \
    && useradd --system --uid 10001 --gid podium --home-dir /data --shell /usr/sbin/nologin podium \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY agent ./agent
COPY integrations ./integrations
RUN pip install --no-cache-dir -c constraints.txt . ./integrations/slack && rm -rf /src

ENV PODIUM_DATA_DIR=/data \
    PODIUM_LISTEN=0.0.0.0:8080 \
    PODIUM_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
# /data exists and belongs to the agent's user before it becomes a volume, so a named
# volume mounted there starts out writable by uid 10001
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# docker stop waits 10 s before SIGKILL: the agent's default shutdown grace (3 s) plus a
# task's TERM-to-KILL grace (5 s) fit in it. With a longer --shutdown-grace, raise
# `docker run --stop-timeout` (compose: stop_grace_period) above it plus 5 s.
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/usr/bin/tini", "--", "podium", "agent"]
