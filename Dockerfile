FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build python manage.py compile_translations \
 && SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
# Listen backlog 4096, not Twisted's 50 (README, "Listen backlog").
CMD ["daphne", "-e", "tcp:port=8000:interface=0.0.0.0:backlog=4096", "config.asgi:application"]
