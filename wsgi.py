"""What the Procfile serves: the app, behind our ASGI adapter (atm_web/serving/asgi.py); or one clear line and exit 2
when the configuration is bad."""
import sys

from atm_web import create_app
from atm_web.config import ConfigError
from atm_web.serving.asgi import for_flask

try:
    flask_app = create_app()
except ConfigError as error:
    print(f"atm-web: configuration error: {error}", file=sys.stderr)
    sys.exit(2)
app = for_flask(flask_app)
