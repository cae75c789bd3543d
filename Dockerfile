# syntax=docker/dockerfile:1
# One image definition for every service; the build argument SERVICE names it (referrals, waitlists or
# notifications) and PORT its HTTP port. Build from the repository root, for example:
#   docker build --build-arg SERVICE=referrals --build-arg PORT=8001 -t ghcr.io/example/send-referrals:0.1.0 .
# The image holds the runtime lock (requirements.lock) and the two runtime packages only: no development kit,
# no test or lint tools. The base image is pinned to an exact Python patch release and Debian release; bump
# both stages together.

FROM python:3.11.14-slim-bookworm AS build

ARG SERVICE
RUN case "$SERVICE" in referrals|waitlists|notifications) ;; \
      *) echo "build with --build-arg SERVICE=referrals|waitlists|notifications" >&2; exit 1 ;; esac

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Third-party runtime dependencies first (their layer is reused until the lock changes), every one checked by hash.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then the two local packages, without resolving anything again.
COPY shared ./shared
COPY services/${SERVICE} ./services/${SERVICE}
RUN pip install --no-deps --no-build-isolation ./shared ./services/${SERVICE} \
    && python -c "import importlib, send_shared; importlib.import_module('${SERVICE}.settings')"


FROM python:3.11.14-slim-bookworm

ARG SERVICE
ARG PORT=8000

LABEL org.opencontainers.image.title="send-${SERVICE}" \
      org.opencontainers.image.description="SEND referral coordination: ${SERVICE} service" \
      org.opencontainers.image.version="0.1.0"

RUN groupadd --system --gid 10001 send \
    && useradd --system --uid 10001 --gid send --home-dir /app --no-create-home --shell /usr/sbin/nologin send \
    && mkdir -p /app/var \
    && chown -R 10001:10001 /app

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVICE=${SERVICE} \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=${PORT}

WORKDIR /app
USER 10001:10001

EXPOSE ${PORT}

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HTTP_PORT'] + '/healthz', timeout=4)"]

# Apply the database migrations, then replace the shell with the server so it receives SIGTERM directly.
CMD ["sh", "-c", "python -m \"$SERVICE\" migrate && exec python -m \"$SERVICE\" serve"]
