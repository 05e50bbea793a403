# whymoji, CPU-only.
#   docker build -t whymoji .                          model files downloaded into /data on first start
#   docker build -t whymoji --build-arg BAKE_MODEL=1 .  model files baked into the image (needs network)
# Run it with compose.yaml, or: docker run -e DISCORD_TOKEN=... -v whymoji-data:/data whymoji
# Every command in the image (run, check, download, predict, why) reads the ENV below: one cache.

# ---- build: a virtual environment with CPU torch and whymoji, copied whole into the runtime image
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/whymoji
ENV PATH=/opt/whymoji/bin:$PATH
# torch first, pinned, from PyTorch's CPU index: no CUDA wheels (~2 GB less), and pyproject's
# torch range is then already satisfied, so `pip install .` never pulls another build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .
ARG BAKE_MODEL=0
# The same model.cache_dir as the runtime stage below: `whymoji download` reads it like every command.
ENV WHYMOJI_MODEL_CACHE_DIR=/data/models
RUN mkdir -p /data/models && if [ "$BAKE_MODEL" = "1" ]; then whymoji download; fi

# ---- runtime
FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 --user-group whymoji
COPY --from=build /opt/whymoji /opt/whymoji
# /data holds the model cache and the SQLite settings. A new named volume starts as a copy of
# this folder, so baked model files land in it; an empty one gets them on first start.
COPY --from=build --chown=whymoji:whymoji /data /data
ENV PATH=/opt/whymoji/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    WHYMOJI_MODEL_CACHE_DIR=/data/models \
    WHYMOJI_DATABASE_URL=sqlite:////data/whymoji.sqlite3 \
    WHYMOJI_HEALTH_HOST=0.0.0.0 \
    WHYMOJI_HEALTH_PORT=8080
USER whymoji
WORKDIR /data
VOLUME /data
EXPOSE 8080
# Asks /healthz with the bot's own config: 200 once the gateway is connected, 503 otherwise.
# The start period covers a first start's model download.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 CMD ["python", "-m", "bot.serving.health"]
# whymoji is PID 1 and handles SIGTERM itself: `docker stop` finishes in-flight work first.
ENTRYPOINT ["whymoji"]
CMD ["run"]
