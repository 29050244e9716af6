# One live-game-api node.
#
#   docker build -t live-game-api .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -e AUTH_SECRET=... live-game-api
#
# The build stage installs the dependencies first, in their own layer, so a
# change to the code alone reinstalls only the project.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY src ./src
RUN pip install --no-deps .


FROM python:3.11-slim

RUN groupadd --system --gid 10001 livegame \
    && useradd --system --uid 10001 --gid livegame --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin livegame

COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    WS_PORT=8081

USER 10001:10001
EXPOSE 8080 8081

# Liveness as OPERATIONS.md defines it: GET /health answers 200. The slim
# image has no curl; Python is there anyway.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${HTTP_PORT:-8080}/health', timeout=2)" || exit 1

# SIGTERM asks the node to stop cleanly; compose waits stop_grace_period
# before SIGKILL.
STOPSIGNAL SIGTERM
CMD ["livegame", "serve"]
