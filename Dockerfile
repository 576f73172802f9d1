FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build python manage.py compile_translations \
 && SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
# docker-compose runs this command twice, as `web` and `live` behind nginx (deploy/nginx.conf);
# tests/proxy_support.py runs it as it is written here. A listen queue of 1,024 (Twisted: 50),
# taken 20 a loop turn (LIVE_ACCEPTS_PER_TURN): docs/benchmarks.md, session 6.
CMD ["daphne", "-e", "tcp:port=8000:interface=0.0.0.0:backlog=1024", "config.asgi:application"]
