"""Cross-check the emulator's certificate credentials with Microsoft's MSAL for Python.

Usage: python msal_certificate.py BASE_URL CERT_DIR PASSWORD

Signs in app-only as the seed app mailhost-daemon-cert with the test certificate in CERT_DIR
(key.pem, cert.pem, app.pfx, unregistered.pem), in every client_credential form MSAL offers,
sends one mail with the token, and checks that an unregistered certificate is refused.

Prints one JSON object per line: {"check": NAME, "ok": true|false, ...} then {"done": true}.
"""

import hashlib
import json
import ssl
import sys
import warnings

import msal
import requests

warnings.simplefilter("ignore", DeprecationWarning)


def emit(obj):
    print(json.dumps(obj), flush=True)


def check(name, ok, **details):
    emit(dict(check=name, ok=bool(ok), **details))


def sha1_thumbprint(cert_pem):
    der = ssl.PEM_cert_to_DER_cert(cert_pem)
    return hashlib.sha1(der).hexdigest().upper()


def main():
    base, cert_dir, password = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    seed = requests.get(base + "/_emulator/seed", timeout=10).json()
    authority = "%s/%s" % (base, seed["tenant"]["id"])
    apps = {a["name"]: a for a in seed["apps"]}
    client_id = apps["mailhost-daemon-cert"]["client_id"]
    alex = [m for m in seed["mailboxes"] if m["upn"].startswith("alex@")][0]["upn"]
    lynne = [m for m in seed["mailboxes"] if m["upn"].startswith("lynne@")][0]["upn"]
    key = open(cert_dir + "/key.pem").read()
    cert = open(cert_dir + "/cert.pem").read()
    scopes = ["https://graph.microsoft.com/.default"]

    def token(credential):
        app = msal.ConfidentialClientApplication(
            client_id, client_credential=credential, authority=authority,
            validate_authority=False, instance_discovery=False)
        return app.acquire_token_for_client(scopes=scopes)

    forms = {
        # The classic form: SHA-1 thumbprint, RS256 with x5t.
        "certificate_thumbprint": {"private_key": key, "thumbprint": sha1_thumbprint(cert)},
        # With the public certificate too (MSAL adds x5c; newer MSAL signs PS256 with x5t#S256).
        "certificate_public": {"private_key": key, "thumbprint": sha1_thumbprint(cert),
                               "public_certificate": cert},
    }
    # Newer MSAL: no SHA-1 thumbprint; MSAL derives the SHA-256 one and signs PS256 (x5t#S256).
    forms["certificate_sha256"] = {"private_key": key, "public_certificate": cert}
    forms["certificate_pfx"] = {"private_key_pfx_path": cert_dir + "/app.pfx", "passphrase": password}

    first = None
    for name, credential in forms.items():
        try:
            result = token(credential)
        except Exception as error:  # an older MSAL may not know a form
            check(name, False, exception=repr(error), msal=msal.__version__)
            continue
        ok = "access_token" in result
        check(name, ok, error=result.get("error"), description=result.get("error_description"),
              msal=msal.__version__)
        if ok and first is None:
            first = result["access_token"]

    if first:
        body = {"message": {"subject": "certificate via msal",
                            "body": {"contentType": "Text", "content": "signed with a certificate"},
                            "toRecipients": [{"emailAddress": {"address": lynne}}]}}
        r = requests.post(base + "/v1.0/users/%s/sendMail" % alex, json=body,
                          headers={"Authorization": "Bearer " + first}, timeout=10)
        check("send_certificate", r.status_code == 202, status=r.status_code, body=r.text)

    other = open(cert_dir + "/unregistered.pem").read()
    other_key = other[other.index("-----BEGIN PRIVATE KEY"):]
    other_cert = other[:other.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    refused = token({"private_key": other_key, "thumbprint": sha1_thumbprint(other_cert)})
    check("unregistered_refused", 700027 in refused.get("error_codes", []),
          error=refused.get("error"), codes=refused.get("error_codes"))
    emit({"done": True})


if __name__ == "__main__":
    main()
