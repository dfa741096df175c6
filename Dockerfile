# syntax=docker/dockerfile:1
# incident-responder: `incident-bot run` as a non-root user. Settings come from the
# environment (README.md, "Configuration" and "Run on AWS"); nothing secret is baked in.

# Build the project's wheel and every dependency's, so the runtime stage needs no
# compiler, no source tree and no dev extras.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY incidents incidents
COPY analysis analysis
COPY blocks blocks
COPY notify notify
COPY bot bot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
RUN useradd --system --uid 10001 --create-home --home-dir /home/bot bot \
    && mkdir /data && chown bot /data
# With the default STORE=sqlite the database lives here (mount a volume to keep it);
# in AWS, STORE=dynamodb keeps nothing on disk.
WORKDIR /data
USER bot

# The receiver listens on 127.0.0.1:8080 by default: reachable by this health check, which runs
# inside the container, and by nothing else. To take webhooks from outside, set
# WEBHOOK_HOST=0.0.0.0 together with WEBHOOK_API_KEY (the bot refuses a non-loopback address
# without a key). urlopen raises on a 503 (store down) or no answer, so the check fails.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEBHOOK_PORT', '8080') + '/healthz', timeout=4)"]

# SIGTERM (docker stop, ECS) stops receiving and finishes the alerts in hand.
CMD ["incident-bot", "run"]
