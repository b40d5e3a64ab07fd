"""An SMTP sink for mailhost's SMTP tests, built on aiosmtpd (a server none of us wrote).

Usage: python smtp_sink.py OUTDIR [--user LOGIN:PASSWORD]...

Listens on a free loopback port and prints the port on the first line of standard output.
Exits when standard input closes (so it never outlives the test that started it).

Every accepted message is written as OUTDIR/msg-N.json (envelope sender, envelope recipients,
the login that authenticated, the connection number) and OUTDIR/msg-N.eml (the raw DATA).
OUTDIR/connections holds the number of connections accepted so far.

AUTH PLAIN and LOGIN are offered over plain text (loopback only: auth_require_tls=False) and
checked against the --user pairs; authentication is optional unless a --user is given.

Recipients steer failures, by their local part:
  reject...     RCPT gets 550 (recipient refused)
  busy...       RCPT gets 451 (transient)
  dropearly...  the connection is dropped at RCPT, before DATA
  dropafter...  the message is read, then the connection is dropped before the reply
"""

import asyncio
import itertools
import json
import logging
import os
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.messages = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("busy"):
            return "451 4.3.0 <%s>: Mailbox busy, try again later" % address
        if local.startswith("dropearly"):
            server.transport.abort()
            return "250 OK"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@", 1)[0].lower().startswith("dropafter") for r in envelope.rcpt_tos):
            server.transport.abort()
            return "250 OK"
        n = next(self.messages)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(self.outdir, "msg-%d.eml" % n), "wb") as f:
            f.write(data)
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": login,
            "connection": getattr(session, "connection_number", None),
        }
        tmp = os.path.join(self.outdir, "msg-%d.json.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(self.outdir, "msg-%d.json" % n))
        return "250 2.0.0 Ok: queued as %d" % n


def main():
    # AUTH over plain text is deliberate here: loopback only.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    outdir = sys.argv[1]
    users = {}
    args = sys.argv[2:]
    while args:
        if args[0] == "--user" and len(args) > 1:
            login, _, password = args[1].partition(":")
            users[login] = password
            args = args[2:]
        else:
            sys.exit("unknown argument: %s" % args[0])

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = login in users and users[login] == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    handler = Sink(outdir)
    connections = itertools.count(1)

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            super().connection_made(transport)
            number = next(connections)
            self.session.connection_number = number
            with open(os.path.join(outdir, "connections"), "w") as f:
                f.write(str(number))

    def factory():
        return CountingSMTP(
            handler,
            hostname="sink.test",
            authenticator=authenticator,
            auth_require_tls=False,
            auth_required=bool(users),
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host="127.0.0.1", port=0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    def exit_on_stdin_eof():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
