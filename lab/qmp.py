#!/usr/bin/env python3
"""Sends one QMP command to the lab's QEMU and prints the answer.

usage: qmp.py SOCKET '{"execute": "device_del", "arguments": {"id": "nvme0"}}'

QMP needs a capabilities handshake before any command; events that arrive meanwhile are skipped.
"""
import json
import socket
import sys


def main() -> int:
    path, command = sys.argv[1], json.loads(sys.argv[2])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(path)
        lines = connection.makefile("rwb")

        def answer() -> dict:
            while True:
                line = lines.readline()
                if not line:
                    raise SystemExit("qmp: connection closed")
                message = json.loads(line)
                if "return" in message or "error" in message:
                    return message

        lines.readline()  # the greeting
        for request in ({"execute": "qmp_capabilities"}, command):
            lines.write(json.dumps(request).encode() + b"\n")
            lines.flush()
            reply = answer()
        print(json.dumps(reply))
        return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main())
