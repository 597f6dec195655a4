# syntax=docker/dockerfile:1
# chachaml: the web app, its APIs and MCP (/mcp) on port 8080, as an unprivileged user.
# Stage 1 builds chachaml and its dependencies into wheels; stage 2 installs only those.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chachaml ./chachaml
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHACHAML_STORE=sqlite:////data/chachaml.db \
    CHACHAML_ARTIFACTS=/data/artifacts
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin chachaml \
    && mkdir -p /data \
    && chown chachaml:chachaml /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels chachaml \
    && rm -rf /wheels
USER chachaml
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["chachaml", "serve", "--host", "0.0.0.0", "--port", "8080"]
