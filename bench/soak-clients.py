#!/usr/bin/env python3
"""The soak's side clients (bench/soak.sh): event-stream clients that connect and leave, and
operators that reset and bind with ?wait=. Each role runs a few threads until STOP_FILE exists, the
process gets SIGTERM, or MAX_SECONDS pass, and rewrites STATS_FILE (JSON) every 0.2 s: requests
sent, answers by status, errors and per-kind counts.

    soak-clients.py events    --tcp HOST:PORT --unix PATH --viewer TOKEN --stats FILE --stop FILE
    soak-clients.py mutations --tcp HOST:PORT --unix PATH --operator TOKEN --gpus BDF,... --stats FILE --stop FILE
    (and --source 127.0.0.N, --pause FILE, --leave-pause TCP_S,UNIX_S, --max-seconds S)

Only loopback TCP addresses and Unix sockets are accepted.
"""
import argparse, json, os, signal, socket, sys, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("role", choices=["events", "mutations"])
parser.add_argument("--tcp", required=True)
parser.add_argument("--unix", required=True)
parser.add_argument("--viewer")
parser.add_argument("--operator")
parser.add_argument("--gpus", default="")
parser.add_argument("--stats", required=True)
parser.add_argument("--stop", required=True)
# While this file exists the clients start nothing new and hold no connection (soak.sh measures
# graced quiet).
parser.add_argument("--pause")
parser.add_argument("--max-seconds", type=float, default=4 * 3600)
# A loopback source address of its own (127.0.0.2, ...): graced limits connections per client
# address, and these clients should not take wrk's share.
parser.add_argument("--source", default="127.0.0.1")
# Pause after each event-stream client that leaves (TCP, Unix): a client that closes is noticed at
# graced's next write to it (an event, or the 15 s heartbeat), and holds its connection until then.
parser.add_argument("--leave-pause", default="1.0,0.2")
args = parser.parse_args()

host, port = args.tcp.rsplit(":", 1)
if not host.startswith("127.") or not args.source.startswith("127."):
    sys.exit(f"{args.tcp} from {args.source}: loopback only")
tcp_pause, unix_pause = (float(x) for x in args.leave_pause.split(","))
port = int(port)
started = time.monotonic()
lock = threading.Lock()
stats = {"requests": 0, "errors": 0, "statuses": {}, "kinds": {}, "lastError": None}
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())


def should_stop():
    return stopping.is_set() or os.path.exists(args.stop) or time.monotonic() - started > args.max_seconds


def paused():
    """True while the pause file exists; the caller should drop its connections and wait."""
    return args.pause is not None and os.path.exists(args.pause) and not should_stop()


def count(kind, status=None, error=None):
    with lock:
        stats["requests"] += 1
        stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
        if status is not None:
            key = str(status)
            stats["statuses"][key] = stats["statuses"].get(key, 0) + 1
        if error is not None:
            stats["errors"] += 1
            stats["lastError"] = f"{kind}: {error}"


def connect(unix):
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(40)
        s.connect(args.unix)
    else:
        s = socket.create_connection((host, port), timeout=40, source_address=(args.source, 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def request_bytes(method, path, token=None, unix=False, extra=(), body=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: " + ("localhost" if unix else f"{host}:{port}")]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.extend(extra)
    payload = b""
    if body is not None:
        payload = body.encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Reader:
    """Reads HTTP/1.1 answers (Content-Length or chunked) from a socket."""

    def __init__(self, s):
        self.s, self.buffer = s, b""

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def until(self, marker):
        while marker not in self.buffer:
            self.fill()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def take(self, n):
        while len(self.buffer) < n:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def head(self):
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def answer(self):
        status, headers = self.head()
        if "content-length" in headers:
            body = self.take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self.until(b"\r\n")
                    break
                body += self.take(size)
                self.take(2)
        else:
            body = b""
        return status, headers, body


def call(conn_holder, unix, method, path, token=None, body=None, extra=()):
    """One request on the holder's keep-alive connection (reconnecting when needed)."""
    for attempt in range(2):
        if conn_holder.get("s") is None:
            conn_holder["s"] = connect(unix)
            conn_holder["r"] = Reader(conn_holder["s"])
        try:
            conn_holder["s"].sendall(request_bytes(method, path, token, unix, extra, body))
            status, headers, data = conn_holder["r"].answer()
        except (ConnectionError, OSError) as error:
            conn_holder["s"].close()
            conn_holder["s"] = None
            if attempt == 1:
                raise
            continue
        if headers.get("connection", "").lower() == "close":
            conn_holder["s"].close()
            conn_holder["s"] = None
        return status, headers, data


# --- event-stream clients -------------------------------------------------------------------------

def events_client(kind, unix, token, mode):
    """mode 'max1': ?maxSeconds=1, read to the end; 'leave': read the preamble, then close;
    'resume': Last-Event-ID of the last event seen, read for 0.2 s, then close."""
    last_id = None
    while not should_stop():
        if paused():
            time.sleep(0.1)
            continue
        try:
            s = connect(unix)
            path = "/events?maxSeconds=1" if mode == "max1" else "/events"
            extra = [f"Last-Event-ID: {last_id}"] if mode == "resume" and last_id else []
            s.sendall(request_bytes("GET", path, token, unix, extra))
            reader = Reader(s)
            status, headers = reader.head()
            if status != 200:
                count(kind, status, error=f"status {status}")
                s.close()
                time.sleep(0.1)
                continue
            if mode == "max1":
                # The stream ends with its last chunk after a second (the connection stays open).
                s.settimeout(10)
                if headers.get("transfer-encoding", "").lower() != "chunked":
                    raise ConnectionError("event stream not chunked")
                text = b""
                while True:
                    size = int(reader.until(b"\r\n").split(b";")[0], 16)
                    if size == 0:
                        reader.until(b"\r\n")
                        break
                    text += reader.take(size)
                    reader.take(2)
                reader.buffer = text
            elif mode == "leave":
                while b"retry:" not in reader.buffer:
                    reader.fill()
            else:
                s.settimeout(0.2)
                try:
                    while True:
                        reader.fill()
                except (socket.timeout, ConnectionError):
                    pass
            for line in reader.buffer.split(b"\n"):
                if line.startswith(b"id:"):
                    last_id = line[3:].strip().decode()
            s.close()
            count(kind, status)
        except Exception as error:  # noqa: BLE001 - a soak counts every failure and goes on
            count(kind, error=repr(error))
            time.sleep(0.1)
        if mode != "max1":
            time.sleep(unix_pause if unix else tcp_pause)


# --- operators --------------------------------------------------------------------------------------

def operator(kind, unix, token, plan):
    """Loops over `plan`, a list of (action, bdf): 'reset', 'bind' (driver auto), 'dryrun' (a reset's
    plan: audited, no job) or 'cancel' (a reset cancelled with DELETE ?wait=10 as soon as it is
    accepted); each job is awaited with ?wait=30."""
    holder = {}
    step = 0
    while not should_stop():
        if paused():
            if holder.get("s") is not None:
                holder["s"].close()
            holder = {}
            time.sleep(0.1)
            continue
        action, bdf = plan[step % len(plan)]
        step += 1
        try:
            body = {"bind": '{"driver": "auto"}', "dryrun": '{"dryRun": true}'}.get(action, "{}")
            verb = "bind" if action == "bind" else "reset"
            status, headers, data = call(holder, unix, "POST", f"/gpus/{bdf}/{verb}", token, body=body)
            count(f"{kind}-{action}", status)
            if status == 429:
                time.sleep(min(float(headers.get("retry-after", "1")), 5))
                continue
            if action == "dryrun" and status == 200:
                continue
            if status != 202:
                if status >= 500:
                    count(f"{kind}-{action}", error=f"status {status}: {data[:200]!r}")
                time.sleep(0.05)
                continue
            job = json.loads(data)["id"]
            if action == "cancel":
                status, _, data = call(holder, unix, "DELETE", f"/jobs/{job}?wait=10", token)
                count(f"{kind}-delete", status)
                if status == 429:
                    time.sleep(1)
            status, _, data = call(holder, unix, "GET", f"/jobs/{job}?wait=30", token)
            count(f"{kind}-wait", status)
            if status != 200:
                count(f"{kind}-wait", error=f"status {status}")
            elif json.loads(data)["state"] not in ("succeeded", "failed", "cancelled"):
                count(f"{kind}-wait", error="job still running after ?wait=30")
        except Exception as error:  # noqa: BLE001
            count(f"{kind}-{action}", error=repr(error))
            holder = {}
            time.sleep(0.1)


threads = []
if args.role == "events":
    v = args.viewer
    for kind, unix, token, mode in [
        ("events-tcp-max1", False, v, "max1"),
        ("events-unix-max1", True, v, "max1"),
        ("events-tcp-leave", False, v, "leave"),
        ("events-unix-leave", True, None, "leave"),
        ("events-tcp-resume", False, v, "resume"),
    ]:
        threads.append(threading.Thread(target=events_client, args=(kind, unix, token, mode), daemon=True))
else:
    gpus = args.gpus.split(",")
    # The simulated host's GPUs on VFIO (reset and bind are refused on the two held by nvidia).
    first, second, third, fourth = (gpus + gpus)[:4]
    o = args.operator
    threads += [
        # operator token over TCP, and root over the socket (admin by its peer credentials): two
        # identities, each with its own --mutations-per-minute budget
        threading.Thread(
            target=operator, args=("tcp-operator", False, o, [("reset", first)] + [("dryrun", first)] * 3),
            daemon=True),
        threading.Thread(
            target=operator, args=("tcp-operator", False, o, [("bind", second), ("reset", second)]), daemon=True),
        threading.Thread(
            target=operator, args=("unix-root", True, None, [("reset", third), ("cancel", third)]), daemon=True),
        threading.Thread(
            target=operator, args=("unix-operator", True, o, [("reset", fourth), ("bind", fourth)]), daemon=True),
    ]
for thread in threads:
    thread.start()
while True:
    with lock:
        text = json.dumps(stats)
    with open(args.stats + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.stats + ".tmp", args.stats)
    if should_stop():
        break
    time.sleep(0.2)
# Threads are daemons: a request blocked in ?wait= ends with the process.
for thread in threads:
    thread.join(timeout=2)
with lock:
    text = json.dumps(stats)
with open(args.stats + ".tmp", "w") as f:
    f.write(text)
os.replace(args.stats + ".tmp", args.stats)
