# RDM application image: the same image runs the web server, the Celery worker and Celery beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RDM_ENV=production \
    STATIC_ROOT=/app/static-collected

WORKDIR /app
RUN useradd --create-home --uid 10001 rdm
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --constraint requirements.lock .
COPY . .
# collectstatic needs no database; the placeholders below only satisfy production mode's checks.
RUN SECRET_KEY=build-only-placeholder-key-not-used-at-run-time-0123456789abcdef \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@build/build REDIS_URL=redis://build:6379/0 \
    METRICS_TOKEN=build RDM_SECRETS_KEY=YnVpbGQtb25seS1wbGFjZWhvbGRlci1rZXktMDEyMzQ= \
    python manage.py collectstatic --noinput -v 0
USER rdm
EXPOSE 8000
# The same web server as `make run` and the tests (rdm_site/launcher.py web_command; docs/serving.md says why).
ENV HOST=0.0.0.0 PORT=8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec python -m rdm_site.launcher serve"]
