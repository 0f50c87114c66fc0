"""The web servers of the test "outside world" (run in its network namespace by hubclient.outside).

    python3 outside_world.py WWW_FOLDER CERT_FOLDER

HTTP on port 80 and HTTPS on 443 (CERT_FOLDER/chain.pem and key.pem, from a
test CA), both serving WWW_FOLDER. stdlib only.
"""

import functools
import ssl
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


def main(www, certs):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=www)
    plain = ThreadingHTTPServer(("0.0.0.0", 80), handler)
    secure = ThreadingHTTPServer(("0.0.0.0", 443), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{certs}/chain.pem", f"{certs}/key.pem")
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    threading.Thread(target=secure.serve_forever, daemon=True).start()
    plain.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:3])
