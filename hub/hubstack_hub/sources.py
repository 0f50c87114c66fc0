"""The approval sources: the DACO-style registry over HTTP, and the operator's approval list."""

import csv
import json
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from hubstack.common.datasets import SAFE_NAME

from .decision import APPROVED, DENIED, EXPIRED, UNAVAILABLE, Decision


# -- the DACO registry over HTTP ---------------------------------------------
class Registry:
    """`GET <base>/search?entity-type=daco&entity-id=<email>&expand=details`.

    200 with a JSON list: a record whose entity-id is the address means
    approved (with require_cloud_access, only if its details say
    "cloud-access": true); an empty list, or 404, means no approval. Anything
    else is unavailable.
    """

    name = "registry"

    def __init__(self, base_url, auth, key, secret, timeout, require_cloud_access):
        self.base_url, self.auth, self.key, self.secret = base_url, auth, key, secret
        self.timeout, self.require_cloud_access = timeout, require_cloud_access
        self._http = None

    def request(self, email):
        """(url, headers) of the signed query for one address."""
        query = urlencode({"entity-type": "daco", "entity-id": email, "expand": "details"}, quote_via=quote)
        url = f"{self.base_url}/search?{query}"
        if self.auth == "bearer":
            return url, {"Authorization": f"Bearer {self.secret}", "Accept": "application/json"}
        from oauthlib import oauth1

        plaintext = self.auth == "oauth1-plaintext"
        # PLAINTEXT's "signature" is the consumer secret itself: never in a URL, which
        # proxies and access logs keep; HMAC-SHA1's signature reveals nothing.
        client = oauth1.Client(
            self.key,
            client_secret=self.secret,
            signature_method=oauth1.SIGNATURE_PLAINTEXT if plaintext else oauth1.SIGNATURE_HMAC_SHA1,
            signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER if plaintext else oauth1.SIGNATURE_TYPE_QUERY,
        )
        signed, headers, _ = client.sign(url, http_method="GET")
        return signed, {**headers, "Accept": "application/json"}

    @property
    def http(self):
        if self._http is None:
            from tornado.httpclient import AsyncHTTPClient

            # Our own client: a hanging registry must not queue the hub's other requests.
            self._http = AsyncHTTPClient(force_instance=True, max_clients=64)
        return self._http

    async def ask(self, email, cloud_access=None):
        """cloud_access: True/False for one dataset's grant; None: the hub's own setting."""
        from tornado.httpclient import HTTPClientError, HTTPRequest

        url, headers = self.request(email)
        request = HTTPRequest(
            url, headers=headers, connect_timeout=self.timeout, request_timeout=self.timeout, follow_redirects=False
        )
        try:
            response = await self.http.fetch(request, raise_error=False)
        except HTTPClientError as err:  # tornado raises timeouts (599) even with raise_error=False
            if err.code == 599 or err.response is None:
                return Decision(UNAVAILABLE, self.name, f"the registry did not answer within {self.timeout:g} s")
            response = err.response
        except OSError as err:  # refused, unreachable, unknown name
            return Decision(UNAVAILABLE, self.name, f"could not connect to the registry ({type(err).__name__})")
        except Exception as err:  # closed streams, TLS failures: never a 500 for the user
            return Decision(UNAVAILABLE, self.name, f"the registry did not answer ({type(err).__name__})")
        return self.judge(email, response.code, response.body, cloud_access)

    def judge(self, email, code, body, cloud_access=None):
        if code == 404:
            return Decision(DENIED, self.name, "the registry has no approval for this address")
        if code in (401, 403):
            return Decision(UNAVAILABLE, self.name, f"the registry refused the hub's credentials (HTTP {code})")
        if code != 200:
            return Decision(UNAVAILABLE, self.name, f"the registry answered HTTP {code}")
        try:
            records = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return Decision(UNAVAILABLE, self.name, "the registry answered with something that is not JSON")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return Decision(UNAVAILABLE, self.name, "the registry's answer is not a list of records")
        if not records:
            return Decision(DENIED, self.name, "the registry has no approval for this address")
        mine = [r for r in records if str(r.get("entity-id", "")).lower() == email.lower()]
        if not mine:
            return Decision(UNAVAILABLE, self.name, "the registry answered with records for another address")
        if not (self.require_cloud_access if cloud_access is None else cloud_access):
            return Decision(APPROVED, self.name, "approved in the registry")
        details = mine[0].get("details")
        flag = details.get("cloud-access") if isinstance(details, dict) else None
        if flag is True:
            return Decision(APPROVED, self.name, "approved in the registry, with cloud access")
        if flag is False:
            return Decision(DENIED, self.name, "approved in the registry, but not for cloud access")
        return Decision(UNAVAILABLE, self.name, "the registry's record lacks the cloud-access flag")


# -- the operator's approval list ----------------------------------------------
class ApprovalList:
    """approvals.csv: email, approved until (YYYY-MM-DD, empty: no end), note, dataset.

    A line without a dataset approves use of the hub; a line with one approves
    that dataset (its `key` in datasets.toml), with its own end date.

    Re-read whenever the file changes. A line that cannot be read is skipped
    and reported (`warnings`), so one typo does not lock everyone out.
    """

    name = "list"

    def __init__(self, path, today=lambda: datetime.now(timezone.utc).date()):
        self.path, self.today = Path(path), today
        self._stamp, self._entries, self.warnings = None, {}, []

    def entries(self):
        st = self.path.stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            self._entries, self.warnings = parse_approvals(self.path.read_text(errors="replace"))
            self._stamp = stamp
        return self._entries

    async def ask(self, email, dataset=""):
        try:
            entries = self.entries()
        except OSError as err:
            return Decision(UNAVAILABLE, self.name, f"the approval list cannot be read ({err.strerror})")
        what = f" for {dataset}" if dataset else ""
        if (email.lower(), dataset) not in entries:
            return Decision(DENIED, self.name, f"not on the approval list{what}")
        until = entries[email.lower(), dataset]
        if until is None:
            return Decision(APPROVED, self.name, f"on the approval list{what}, with no end date")
        if self.today() <= until:
            return Decision(APPROVED, self.name, f"on the approval list{what} until {until.isoformat()}")
        return Decision(EXPIRED, self.name, f"the approval{what} ended on {until.isoformat()}")


def split_line(number, line, warnings):
    """One line's fields, on its own: a quote left open never reaches into the next line."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        pass
    try:
        row = next(csv.reader([line], strict=False), [])
    except csv.Error as err:  # e.g. a field over csv's size limit
        warnings.append(f"line {number}: cannot be read ({err}); line skipped")
        return None
    warnings.append(f"line {number}: a quote is not closed; read as far as the line goes")
    return row


def parse_approvals(text):
    """{(email, dataset): date or None}, [warnings]; the last line for an address and dataset wins.

    Each line is read alone, so a stray quote or an oversized field costs at
    most that line, never the meaning of the lines after it.
    """
    entries, warnings = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        row = split_line(number, line, warnings)
        if row is None:
            continue
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        email = row[0].strip().lower()
        if number == 1 and email == "email":
            continue  # header
        if "@" not in email or any(c.isspace() for c in email):
            warnings.append(f"line {number}: {row[0]!r} is not an e-mail address; line skipped")
            continue
        raw_until = row[1].strip() if len(row) > 1 else ""
        try:
            until = date.fromisoformat(raw_until) if raw_until else None
        except ValueError:
            warnings.append(f"line {number}: {raw_until!r} is not a date (YYYY-MM-DD); line skipped")
            continue
        dataset = row[3].strip() if len(row) > 3 else ""
        if dataset and not SAFE_NAME.fullmatch(dataset):
            warnings.append(f"line {number}: {row[3]!r} is not a dataset name; line skipped")
            continue
        if (email, dataset) in entries:
            warnings.append(
                f"line {number}: {email}{' for ' + dataset if dataset else ''} is listed again; this line wins"
            )
        entries[email, dataset] = until
    return entries, warnings
