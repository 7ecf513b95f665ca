# Podium agent image: the package, git, a non-root user and a data volume.
FROM python:3.11.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends git tini \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 podium \
    && useradd --system --uid 10001 --gid podium --home-dir /data --shell /usr/sbin/nologin podium

WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY integrations ./integrations
RUN pip install --no-cache-dir . ./integrations/slack && rm -rf /src

ENV PODIUM_DATA_DIR=/data \
    PODIUM_LISTEN=0.0.0.0:8080 \
    PODIUM_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
WORKDIR /data
USER podium
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/usr/bin/tini", "--", "podium", "agent"]
