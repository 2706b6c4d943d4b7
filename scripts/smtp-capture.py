#!/usr/bin/python3
"""scripts/smtp-capture.py — a real SMTP server (Debian's python3-aiosmtpd) that keeps every
message it accepts as one JSON file in a directory, for the integration tests
(pulse_testkit::SmtpCapture) and for looking at mail by hand.

    /usr/bin/python3 scripts/smtp-capture.py --port 2526 --dir /tmp/mail

Each file <n>.json holds mail_from, rcpt_tos, the parsed subject, message_id, from, to, the
text and HTML parts and every header. `--fail-first N` answers the first N messages with a
451 (a temporary failure), to exercise retries.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal

from aiosmtpd.controller import Controller


class Capture:
    def __init__(self, directory, fail_first):
        self.directory = directory
        self.fail_first = fail_first
        self.count = len([name for name in os.listdir(directory) if name.endswith(".json")])

    async def handle_DATA(self, server, session, envelope):
        if self.fail_first > 0:
            self.fail_first -= 1
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        text = html = None
        for part in message.walk():
            if part.get_content_maintype() == "multipart":
                continue
            if part.get_content_type() == "text/plain" and text is None:
                text = part.get_content()
            elif part.get_content_type() == "text/html" and html is None:
                html = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "text": text,
            "html": html,
            "headers": [[key, str(value)] for key, value in message.items()],
        }
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:06d}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Capture(args.dir, args.fail_first), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp-capture on {args.host}:{args.port}, messages in {args.dir}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
