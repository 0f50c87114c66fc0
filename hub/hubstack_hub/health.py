"""`python3 -m hubstack_hub.health`: the hub container's health check (compose.yml).

Exit 0 when the hub answers its health URL on its own port, 1 otherwise.
"""

import sys
import urllib.request

from hubstack.common.contract import HEALTH_PATH, HUB_PORT

if __name__ == "__main__":
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{HUB_PORT}{HEALTH_PATH}", timeout=5)
    except OSError as err:
        sys.exit(f"hub not healthy: {err}")
