# Runwright server image. Talks to the Postgres named by DATABASE_URL (see docker-compose.yml);
# without it the server would start an embedded Postgres under RUNWRIGHT_DATA_DIR.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUNWRIGHT_DATA_DIR=/var/lib/runwright

WORKDIR /app
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY storage ./storage
COPY web ./web
COPY runwright ./runwright
RUN pip install --no-cache-dir . \
    && useradd --system --create-home --home-dir /var/lib/runwright runwright

USER runwright
EXPOSE 8000
CMD ["runwright", "serve", "--host", "0.0.0.0", "--port", "8000"]
