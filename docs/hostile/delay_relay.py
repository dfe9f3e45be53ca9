#!/usr/bin/env python3
"""A TCP relay that holds everything one side sends for DELAY_MS before
passing it on (order kept), and passes the other side's bytes at once: a
slow link, where the kernel has no netem. Serves one connection.

usage: delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS
"""
import socket
import sys
import threading
import time
from collections import deque


def main():
    lhost, lport = sys.argv[1].rsplit(":", 1)
    thost, tport = sys.argv[2].rsplit(":", 1)
    delay = int(sys.argv[3]) / 1000.0
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((lhost, int(lport)))
    srv.listen(1)
    print("relay ready", flush=True)
    near, _ = srv.accept()
    far = socket.create_connection((thost, int(tport)))
    queue = deque()
    cond = threading.Condition()

    def slow_in():
        while True:
            data = near.recv(65536)
            with cond:
                queue.append((time.monotonic() + delay, data))
                cond.notify()
            if not data:
                return

    def slow_out():
        while True:
            with cond:
                while not queue:
                    cond.wait()
                due, data = queue.popleft()
            time.sleep(max(0.0, due - time.monotonic()))
            if not data:
                far.shutdown(socket.SHUT_WR)
                return
            far.sendall(data)

    def fast():
        while True:
            data = far.recv(65536)
            if not data:
                near.shutdown(socket.SHUT_WR)
                return
            near.sendall(data)

    threads = [threading.Thread(target=f, daemon=True) for f in (slow_in, slow_out, fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError):
        pass
