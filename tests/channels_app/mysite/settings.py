"""Settings of the Channels tutorial chat served for the plenary tests (loopback only, in-memory layer)."""

SECRET_KEY = "chatswarm-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels", "chat"]
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES: dict = {}
USE_TZ = True
