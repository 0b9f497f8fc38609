#!/usr/bin/env python3
"""Starts a command and times until GET URL answers 200 with at least N items; prints milliseconds.

    first-answer.py URL N -- COMMAND...

Polls with a fresh connection every 0.5 ms (a refused connection returns at once), so the figure
is the command's start to its first complete answer, within about a millisecond. The command is
stopped (SIGTERM) afterwards.
"""
import http.client, json, subprocess, sys, time, urllib.parse

url, want = sys.argv[1], int(sys.argv[2])
command = sys.argv[sys.argv.index("--") + 1:]
target = urllib.parse.urlsplit(url)
start = time.monotonic()
process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
try:
    while True:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited with {process.returncode}")
        if time.monotonic() - start > 120:
            sys.exit("no answer within 120 s")
        try:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            connection.request("GET", target.path)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            if response.status == 200 and len(json.loads(body)["items"]) >= want:
                break
        except (ConnectionError, OSError):
            pass
        time.sleep(0.0005)
    print(f"{(time.monotonic() - start) * 1000:.1f}")
finally:
    process.terminate()
    process.wait()
