# backstate in one container: `docker build -t backstate . && docker run -p 8000:8000 -v bs:/data backstate`
# The embedded default is a SQLite file on the /data volume; set BACKSTATE_DATABASE_URL for
# PostgreSQL. The first start prints the default org and an admin key (`backstate init`).

# The npm packages the server needs (xstate 4.38.3 for the sandbox, esbuild's native binary for
# bundling single-file machines; pinned by the lockfile) and the dashboard's static assets,
# built from dashboard/ with its own pinned esbuild and elkjs. Node is not needed at run time.
FROM node:20-bookworm-slim AS js
WORKDIR /app/js_shims
COPY js_shims/package.json js_shims/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
WORKDIR /app/dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboard/build.mjs ./
COPY dashboard/src src
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKSTATE_DATABASE_URL=sqlite:////data/backstate.db \
    BACKSTATE_CACHE_DIR=/app/.cache
WORKDIR /app
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY api api
COPY js_shims js_shims
COPY --from=js /app/js_shims/node_modules js_shims/node_modules
COPY --from=js /app/dashboard/dist dashboard/dist
RUN pip install --no-cache-dir -e . \
 && useradd --system --home-dir /app backstate \
 && mkdir -p /data /app/.cache && chown backstate /data /app/.cache
USER backstate
# Compile the sandbox once at build time (about a second) so containers start warm.
RUN python -c "from runtime.engine import Runtime; Runtime()"
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "backstate init && exec backstate serve --host 0.0.0.0 --port 8000"]
