"""Send N emails one at a time the way such scripts are usually written: MSAL for Python
(username/password) for the token, then `requests` for Graph sendMail in a loop.

Usage:
  python msal_send_loop.py AUTHORITY CLIENT_ID USERNAME PASSWORD GRAPH_BASE RECIPIENT N

AUTHORITY is e.g. https://127.0.0.1:PORT/contoso.onmicrosoft.com (or the real
https://login.microsoftonline.com/TENANT); GRAPH_BASE is e.g. https://127.0.0.1:PORT (or
https://graph.microsoft.com). For the emulator over HTTPS set REQUESTS_CA_BUNDLE to its ca.pem.

Prints one JSON object: {"elapsed_seconds": S, "count": N, "failures": F, "statuses": {...}}.
A 429/503/504 is retried after Retry-After (as Graph asks); the token is renewed silently
through MSAL when it nears expiry.
"""

import json
import sys
import time
import warnings
from urllib.parse import urlparse

import msal
import requests

warnings.simplefilter("ignore", DeprecationWarning)


def main():
    if len(sys.argv) != 8:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    authority, client_id, username, password, graph_base, recipient, count = sys.argv[1:]
    count = int(count)
    host = urlparse(authority).hostname
    known = host in ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn")
    if not known:
        # MSAL builds the user-realm discovery URL without the authority's port; skip it for a
        # local emulator, as MSAL itself does for hosts where that discovery answered 404.
        msal.authority.Authority._domains_without_user_realm_discovery.add(host)
    app = msal.PublicClientApplication(
        client_id, authority=authority,
        validate_authority=known, instance_discovery=None if known else False)
    scopes = ["https://graph.microsoft.com/Mail.Send"]

    def token():
        accounts = app.get_accounts(username=username)
        result = app.acquire_token_silent(scopes, account=accounts[0]) if accounts else None
        if not result:
            result = app.acquire_token_by_username_password(username, password, scopes=scopes)
        if "access_token" not in result:
            print(json.dumps({"error": result.get("error"),
                              "error_description": result.get("error_description")}))
            sys.exit(1)
        return result["access_token"]

    session = requests.Session()
    url = graph_base.rstrip("/") + "/v1.0/me/sendMail"
    statuses = {}
    failures = 0
    start = time.monotonic()
    for i in range(count):
        body = {
            "message": {
                "subject": "msal_send_loop %d of %d" % (i + 1, count),
                "body": {"contentType": "Text", "content": "Message %d sent by msal_send_loop.py" % (i + 1)},
                "toRecipients": [{"emailAddress": {"address": recipient}}],
            },
            "saveToSentItems": False,
        }
        for attempt in range(6):
            r = session.post(url, json=body, timeout=60, headers={"Authorization": "Bearer " + token()})
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code in (429, 503, 504) and attempt < 5:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            break
        if r.status_code != 202:
            failures += 1
    elapsed = time.monotonic() - start
    print(json.dumps({"elapsed_seconds": round(elapsed, 3), "count": count, "failures": failures,
                      "statuses": statuses}))
    sys.exit(0 if failures == 0 else 1)


if __name__ == "__main__":
    main()
