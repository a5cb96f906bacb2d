#!/usr/bin/env python3
"""Issue 12, item 5: N concurrent registrations against a running oxidp, spread over many
loopback source addresses (127.0.0.2 ... so the per-address limit does not hide the password
gate), while /healthz is polled from 127.0.0.1. Prints one JSON object: the registrations'
statuses, /healthz latency percentiles and the server's peak resident memory.

Loopback only and bounded: N requests (default 300), one poll every 10 ms until they are done.

    scripts/register_flood.py --base http://127.0.0.1:8080 --pid $(pidof oxidp) [--n 300] [--hosts 100]
"""

import argparse
import asyncio
import collections
import ipaddress
import json
import multiprocessing
import socket
import time
import urllib.parse
import uuid


async def request(host, port, method, path, body=b"", source=None, timeout=60):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0) if source else None), timeout
    )
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)
        return int(status_line.split()[1])
    finally:
        writer.close()


def healthz_once(host, port):
    """One blocking GET /healthz from 127.0.0.1; (milliseconds, status)."""
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=10, source_address=("127.0.0.1", 0)) as conn:
        conn.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return (time.perf_counter() - started) * 1000, int(data.split(b" ", 2)[1])


def poller(host, port, pid, stop, results):
    """In its own process, so the flood's event loop never delays a measurement."""
    health, peak = [], 0
    while not stop.is_set():
        health.append(healthz_once(host, port))
        peak = max(peak, rss_kib(pid, "VmRSS"))
        time.sleep(0.01)
    results.put((health, peak))


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=100)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    if not ipaddress.ip_address(url.hostname).is_loopback:
        raise SystemExit("loopback only")
    host, port = url.hostname, url.port or 80
    args.n, args.hosts = min(args.n, 5000), max(1, min(args.hosts, 250))

    stop, results = multiprocessing.Event(), multiprocessing.Queue()
    watcher = multiprocessing.Process(target=poller, args=(host, port, args.pid, stop, results))
    watcher.start()

    async def register(i):
        body = json.dumps({"email": f"flood-{uuid.uuid4().hex[:12]}@example.com",
                           "password": "a long enough flood passphrase"}).encode()
        source = f"127.0.0.{2 + i % args.hosts}"
        try:
            return await request(host, port, "POST", "/api/v1/auth/register", body, source=source)
        except Exception as error:  # a refused or reset connection is a result too
            return type(error).__name__

    await asyncio.sleep(0.3)
    started = time.perf_counter()
    statuses = await asyncio.gather(*(register(i) for i in range(args.n)))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.3)
    stop.set()
    health, peak = results.get(timeout=30)
    watcher.join()
    peak_rss = [peak]
    latencies = sorted(ms for ms, _ in health)
    pct = lambda p: round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1)
    print(json.dumps({
        "registrations": args.n,
        "source_addresses": args.hosts,
        "statuses": dict(collections.Counter(str(s) for s in statuses)),
        "seconds": round(elapsed, 2),
        "healthz": {"samples": len(latencies), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(latencies[-1], 1),
                    "non_200": sum(1 for _, s in health if s != 200)},
        "peak_rss_mib": round(max(peak_rss) / 1024, 1),
        "vm_hwm_mib": round(rss_kib(args.pid, "VmHWM") / 1024, 1),
    }, indent=2))


asyncio.run(main())
