"""What the Procfile serves: the app, behind our ASGI adapter (atm_web/asgi.py); or one clear line and exit 2
when the configuration is bad."""
import sys

from atm_web import create_app
from atm_web.config import ConfigError
from atm_web.serving.asgi import ThreadPoolWSGI

try:
    flask_app = create_app()
except ConfigError as error:
    print(f"atm-web: configuration error: {error}", file=sys.stderr)
    sys.exit(2)
app = ThreadPoolWSGI(flask_app, flask_app.config["MAX_CONTENT_LENGTH"], database=flask_app.extensions["atm_db"])
