"""A DACO-style approval registry for the integration tests.

Speaks the protocol the hub's access check uses:
    GET /search?entity-type=daco&entity-id=<email>&expand=details
signed with two-legged OAuth1 (HMAC-SHA1 in the query string, PLAINTEXT in the
Authorization header,
checked with oauthlib) or a bearer token. 200 with a list holding the record
when approved, 404 when not; 401 when the signature does not verify.

Tests steer it through /_test/ (records, misbehaviour modes, the secret it
expects) and read back every request it got, with the entity-id as decoded.
It also serves the key sets of test passport issuers: PUT /_test/jwks/<name>,
GET /jwks/<name> (every GET of one counted in /_test/jwks-fetches).

    python3 registry.py --port 8080 --consumer-key KEY --consumer-secret SECRET [--token TOKEN]
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qsl, unquote, urlsplit

from oauthlib.oauth1.rfc5849 import signature, utils

MODES = ("normal", "hang", "500", "garbage")


class State:
    def __init__(self, key, secret, token):
        self.key, self.secret, self.token = key, secret, token
        self.records = {}  # email -> details
        self.mode = "normal"
        self.hang_seconds = 60
        self.requests = []
        self.jwks = {}  # name -> JWKS document
        self.jwks_fetches = []
        self.lock = threading.Lock()


def verify(state, handler, query_pairs):
    """(ok, method, signature) of the request's credentials."""
    auth = handler.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return bool(state.token) and auth[7:] == state.token, "bearer", auth[7:]
    if auth.startswith("OAuth "):  # the credentials in the Authorization header (PLAINTEXT)
        query_pairs = [
            *query_pairs,
            *[(k, utils.unescape(v)) for k, v in utils.parse_authorization_header(auth) if k != "realm"],
        ]
    params = dict(query_pairs)
    sig = params.get("oauth_signature", "")
    method = params.get("oauth_signature_method", "")
    if params.get("oauth_consumer_key") != state.key or not sig:
        return False, method, sig
    if abs(time.time() - int(params.get("oauth_timestamp", "0") or 0)) > 600:
        return False, method, sig
    request = SimpleNamespace(
        uri=f"http://{handler.headers['Host']}{handler.path}",
        http_method="GET",
        params=[(k, v) for k, v in query_pairs if k != "oauth_signature"],
        signature=sig,
    )
    if method == "PLAINTEXT":
        return signature.verify_plaintext(request, state.secret), method, sig
    if method == "HMAC-SHA1":
        return signature.verify_hmac_sha1(request, state.secret), method, sig
    return False, method, sig


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep the container log short
            pass

        def reply(self, code, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length", "0") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path == "/_test/requests":
                with state.lock:
                    return self.reply(200, state.requests)
            if parts.path == "/_test/health":
                return self.reply(200, {"ok": True})
            if parts.path == "/_test/jwks-fetches":
                with state.lock:
                    return self.reply(200, state.jwks_fetches)
            if parts.path.startswith("/jwks/"):
                name = parts.path[len("/jwks/") :]
                with state.lock:
                    state.jwks_fetches.append(name)
                    document = state.jwks.get(name)
                return self.reply(200, document) if document else self.reply(404, {"error": "no such key set"})
            if parts.path != "/search":
                return self.reply(404, {"error": "no such endpoint"})
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = dict(pairs)
            ok, method, sig = verify(state, self, pairs)
            with state.lock:
                mode = state.mode
                state.requests.append(
                    {
                        "raw_query": parts.query,
                        "entity_id": query.get("entity-id"),
                        "method": method,
                        "signature": sig,
                        "verified": ok,
                        "mode": mode,
                    }
                )
            if mode == "hang":
                time.sleep(state.hang_seconds)
            if mode == "500":
                return self.reply(500, b"<h1>Internal Server Error</h1>", "text/html")
            if mode == "garbage":
                return self.reply(200, b"<html>maintenance page</html>", "text/html")
            if not ok:
                return self.reply(401, {"error": "invalid signature"})
            if query.get("entity-type") != "daco":
                return self.reply(400, {"error": "entity-type must be daco"})
            email = query.get("entity-id", "")
            with state.lock:
                details = state.records.get(email.lower())
            if details is None:
                return self.reply(404, {"error": "not found"})
            return self.reply(200, [{"entity-type": "daco", "entity-id": email, "details": details}])

        def do_PUT(self):
            parts = urlsplit(self.path)
            body = self.body()
            with state.lock:
                if parts.path.startswith("/_test/records/"):
                    state.records[unquote(parts.path.rsplit("/", 1)[1]).lower()] = body
                elif parts.path == "/_test/mode" and body.get("mode") in MODES:
                    state.mode = body["mode"]
                    state.hang_seconds = body.get("hang_seconds", state.hang_seconds)
                elif parts.path == "/_test/secret":
                    state.secret = body["secret"]
                elif parts.path.startswith("/_test/jwks/"):
                    state.jwks[parts.path[len("/_test/jwks/") :]] = body
                else:
                    return self.reply(400, {"error": "bad test request"})
            return self.reply(200, {"ok": True})

        def do_DELETE(self):
            parts = urlsplit(self.path)
            with state.lock:
                if parts.path.startswith("/_test/records/"):
                    state.records.pop(unquote(parts.path.rsplit("/", 1)[1]).lower(), None)
                elif parts.path == "/_test/requests":
                    state.requests.clear()
                else:
                    return self.reply(400, {"error": "bad test request"})
            return self.reply(200, {"ok": True})

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--consumer-key", required=True)
    parser.add_argument("--consumer-secret", required=True)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("0.0.0.0", args.port), make_handler(State(args.consumer_key, args.consumer_secret, args.token))
    )
    server.daemon_threads = True
    print(f"registry listening on :{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
