# One image for every mediabot role; the command picks the role: `run` (the default: everything in one
# process), `web`, `worker`, `telegram`, `discord`, `db upgrade`, `apikey ...`.
# docker-compose.yml runs one container per role and replaces the HEALTHCHECK below (which fits `run` and
# `web`) with one that fits each role.

# ---- build: the package and its dependencies in a virtualenv, copied whole into the runtime stage ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# Then the code (the packages listed in [tool.setuptools.packages.find]; README.md is the package's readme).
COPY README.md ./
COPY core ./core
COPY worker ./worker
COPY web ./web
COPY bots ./bots
COPY mediabot ./mediabot
RUN pip install --no-cache-dir --no-deps .

# ---- runtime ----
FROM python:3.11-slim

# System FFmpeg: mediabot uses it in preference to the imageio-ffmpeg wheel's copy.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# A non-root user that owns the data directory (SQLite file, local files, temporary downloads).
RUN groupadd --system --gid 10001 mediabot \
    && useradd --system --uid 10001 --gid mediabot --create-home --home-dir /home/mediabot \
        --shell /usr/sbin/nologin mediabot \
    && mkdir -p /data \
    && chown mediabot:mediabot /data

COPY --from=build /opt/venv /opt/venv

# Containers listen on every interface (the code's default, 127.0.0.1, is unreachable from outside one).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEDIABOT_DATA_DIR=/data \
    MEDIABOT_HOST=0.0.0.0

# The extraction stack comes with the Python dependencies: yt-dlp with yt-dlp-ejs and curl_cffi, the PO token
# plugin, and Deno (the `deno` package's binary in /opt/venv/bin), which yt-dlp is pointed at by path. The
# build fails here if that Deno cannot run a script on this base image, with the flags yt-dlp uses.
RUN python -c "import sys; from core.media.jsruntime import check_js_runtime; p = check_js_runtime('auto'); print('JavaScript runtime:', p.version, p.detail); sys.exit(p.status != 'ok')"

WORKDIR /app
USER mediabot
VOLUME ["/data"]
EXPOSE 8080

# The slim image has no curl: Python asks /health (200 while the process answers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MEDIABOT_PORT', '8080') + '/health', timeout=4)"]

ENTRYPOINT ["mediabot"]
CMD ["run"]
