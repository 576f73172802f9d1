"""The system checks catch the two settings mistakes that fail quietly in production."""

from queueapp.checks import check_channel_layer, check_database_connections


def redis_layer(**host):
    return {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", **host}]}}}


def test_a_redis_host_with_a_socket_timeout_is_an_error(settings):
    settings.CHANNEL_LAYERS = redis_layer(socket_timeout=5)
    assert [e.id for e in check_channel_layer(None)] == ["queueapp.E001"]


def test_a_redis_host_without_socket_timeout_setting_is_an_error(settings):
    # redis-py's own default is 5 s, so leaving it out is as bad as setting it.
    settings.CHANNEL_LAYERS = redis_layer()
    assert [e.id for e in check_channel_layer(None)] == ["queueapp.E001"]


def test_a_redis_host_with_no_timeout_passes(settings):
    settings.CHANNEL_LAYERS = redis_layer(socket_timeout=None)
    assert check_channel_layer(None) == []


def test_persistent_postgresql_connections_are_an_error(settings):
    settings.DATABASES = {"default": {**settings.DATABASES["default"],
                                      "ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60}}
    assert [e.id for e in check_database_connections(None)] == ["queueapp.E002"]
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    assert check_database_connections(None) == []


def test_missing_protective_middleware_is_an_error(settings):
    from queueapp.checks import check_protective_middleware

    assert check_protective_middleware(None) == []  # ours are subclasses of the stock ones
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("CsrfViewMiddleware")]
    assert [e.id for e in check_protective_middleware(None)] == ["queueapp.E003"]
