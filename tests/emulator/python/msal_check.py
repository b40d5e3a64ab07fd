"""Drive the mailhost emulator with Microsoft's MSAL for Python and `requests`.

Usage: python msal_check.py BASE_URL

BASE_URL is the emulator (https://127.0.0.1:PORT); set REQUESTS_CA_BUNDLE to its ca.pem.
The seed (ids, users, passwords, secrets) is read from GET BASE_URL/_emulator/seed.

Prints one JSON object per line:
  {"check": NAME, "ok": true|false, ...details}
  {"device_code": USER_CODE, "purpose": "approve"|"decline"}   (the caller approves or declines it)
  {"done": true}
"""

import json
import sys
import warnings

import msal
import requests

warnings.simplefilter("ignore", DeprecationWarning)


def emit(obj):
    print(json.dumps(obj), flush=True)


def check(name, ok, **details):
    emit(dict(check=name, ok=bool(ok), **details))


def skip_user_realm_discovery(base):
    """MSAL's user-realm discovery (before username/password) builds its URL from the authority's
    host name without its port (https://HOST/common/userrealm/...), so against an emulator on
    127.0.0.1:PORT it would call port 443. MSAL keeps a set of hosts on which that discovery
    found nothing (a 404) and skips it there; put the emulator's host in it, as a 404 would."""
    from urllib.parse import urlparse
    msal.authority.Authority._domains_without_user_realm_discovery.add(urlparse(base).hostname)


def main():
    base = sys.argv[1].rstrip("/")
    skip_user_realm_discovery(base)
    seed = requests.get(base + "/_emulator/seed", timeout=10).json()
    tenant = seed["tenant"]["id"]
    authority = "%s/%s" % (base, tenant)
    apps = {a["name"]: a for a in seed["apps"]}
    users = {m["upn"].split("@")[0]: m for m in seed["mailboxes"]}
    alex, megan, lynne = users["alex"], users["megan"], users["lynne"]
    mailhost = apps["mailhost"]["client_id"]
    scopes = ["https://graph.microsoft.com/Mail.Send"]

    def public(client_id):
        return msal.PublicClientApplication(
            client_id, authority=authority, validate_authority=False, instance_discovery=False)

    def send(token, path, subject, sender_hint):
        body = {
            "message": {
                "subject": subject,
                "body": {"contentType": "Text", "content": "sent by MSAL Python via " + sender_hint},
                "toRecipients": [{"emailAddress": {"address": lynne["upn"], "name": lynne["name"]}}],
            },
            "saveToSentItems": True,
        }
        r = requests.post(base + path, json=body, timeout=30,
                          headers={"Authorization": "Bearer " + token})
        return r.status_code, r.text, r.headers.get("request-id")

    # 1. Username/password (ROPC), then silent reuse and refresh.
    app = public(mailhost)
    result = app.acquire_token_by_username_password(alex["upn"], alex["password"], scopes=scopes)
    ok = "access_token" in result
    check("ropc", ok, error=result.get("error"), error_description=result.get("error_description"),
          username=(result.get("id_token_claims") or {}).get("preferred_username"),
          scope=result.get("scope"))
    if ok:
        first = result["access_token"]
        accounts = app.get_accounts(username=alex["upn"])
        silent = app.acquire_token_silent(scopes, account=accounts[0]) if accounts else None
        check("silent_cache", bool(silent) and silent.get("access_token") == first,
              accounts=len(accounts), token_source=(silent or {}).get("token_source"))
        refreshed = app.acquire_token_silent(scopes, account=accounts[0], force_refresh=True) if accounts else None
        check("silent_refresh", bool(refreshed) and "access_token" in refreshed
              and refreshed["access_token"] != first,
              token_source=(refreshed or {}).get("token_source"),
              error=(refreshed or {}).get("error"))
        status, text, request_id = send(first, "/v1.0/me/sendMail", "ropc via msal", "ropc")
        check("send_ropc", status == 202 and text == "" and bool(request_id), status=status, body=text)

    # 2. Failures MSAL surfaces.
    wrong = app.acquire_token_by_username_password(alex["upn"], "not-the-password", scopes=scopes)
    check("wrong_password", wrong.get("error") == "invalid_grant" and 50126 in wrong.get("error_codes", []),
          error=wrong.get("error"), codes=wrong.get("error_codes"),
          description=(wrong.get("error_description") or "")[:40])
    mfa = app.acquire_token_by_username_password(megan["upn"], megan["password"], scopes=scopes)
    check("mfa_required", mfa.get("error") == "interaction_required" and 50076 in mfa.get("error_codes", [])
          and bool(mfa.get("claims")), error=mfa.get("error"), codes=mfa.get("error_codes"))
    disabled = public(apps["mailhost-no-public-client"]["client_id"]).acquire_token_by_username_password(
        alex["upn"], alex["password"], scopes=scopes)
    check("public_client_disabled", disabled.get("error") == "invalid_client"
          and 7000218 in disabled.get("error_codes", []), error=disabled.get("error"),
          codes=disabled.get("error_codes"))
    consent = public(apps["mailhost-no-consent"]["client_id"]).acquire_token_by_username_password(
        alex["upn"], alex["password"], scopes=scopes)
    check("consent_required", consent.get("error") == "invalid_grant" and 65001 in consent.get("error_codes", [])
          and consent.get("suberror") == "consent_required", error=consent.get("error"),
          codes=consent.get("error_codes"), suberror=consent.get("suberror"))

    # 3. Device code (the MFA user completes MFA in the "browser"); the caller approves.
    device_app = public(mailhost)
    flow = device_app.initiate_device_flow(scopes=scopes)
    check("device_flow_started", "user_code" in flow, message=flow.get("message"), error=flow.get("error"))
    if "user_code" in flow:
        emit({"device_code": flow["user_code"], "purpose": "approve", "upn": megan["upn"]})
        result = device_app.acquire_token_by_device_flow(flow)
        ok = "access_token" in result
        check("device_flow", ok, error=result.get("error"),
              username=(result.get("id_token_claims") or {}).get("preferred_username"))
        if ok:
            status, text, _ = send(result["access_token"], "/v1.0/me/sendMail", "device code via msal", "device code")
            check("send_device", status == 202, status=status, body=text)
    declined_flow = device_app.initiate_device_flow(scopes=scopes)
    if "user_code" in declined_flow:
        emit({"device_code": declined_flow["user_code"], "purpose": "decline"})
        declined = device_app.acquire_token_by_device_flow(declined_flow)
        check("device_declined", declined.get("error") == "authorization_declined", error=declined.get("error"))

    # 4. Client credentials (app-only), cache reuse, bad secret.
    daemon = apps["mailhost-daemon"]
    cca = msal.ConfidentialClientApplication(
        daemon["client_id"], client_credential=daemon["client_secret"], authority=authority,
        validate_authority=False, instance_discovery=False)
    result = cca.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    ok = "access_token" in result
    check("client_credentials", ok and "refresh_token" not in result, error=result.get("error"),
          description=result.get("error_description"))
    if ok:
        again = cca.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        check("client_credentials_cache", again.get("access_token") == result["access_token"],
              token_source=again.get("token_source"))
        status, text, _ = send(result["access_token"], "/v1.0/users/%s/sendMail" % alex["upn"],
                               "client credentials via msal", "client credentials")
        check("send_app_only", status == 202, status=status, body=text)
        status, text, _ = send(result["access_token"], "/v1.0/me/sendMail", "app-only on /me", "x")
        check("app_only_on_me_refused", status == 400, status=status)
    bad = msal.ConfidentialClientApplication(
        daemon["client_id"], client_credential="wrong-secret", authority=authority,
        validate_authority=False, instance_discovery=False).acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"])
    check("bad_secret", bad.get("error") == "invalid_client" and 7000215 in bad.get("error_codes", []),
          error=bad.get("error"), codes=bad.get("error_codes"))

    emit({"done": True})


if __name__ == "__main__":
    main()
