"""What the Procfile serves: the app, or one clear line and exit 2 when the configuration is bad."""
import sys

from atm_web import create_app
from atm_web.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    print(f"atm-web: configuration error: {error}", file=sys.stderr)
    sys.exit(2)
