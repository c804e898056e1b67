#!/usr/bin/python3
"""Relay TCP ports of this network namespace's loopback into another network namespace.

usage: cluster-relay.py NETNS_FILE PORT...

Listens on 127.0.0.1:PORT inside the namespace NETNS_FILE (such as /run/netns/host2) and
forwards every connection to 127.0.0.1:PORT of the namespace the relay was started in. The
lab's Keystone and Neutron listen on the root namespace's loopback only, and their catalog
names 127.0.0.1, so this gives a simulated host the view that a real host has of its
controller over the management network.

A socket stays in the namespace it was created in, so the listeners are created after
setns(2) into the target namespace, and the process then returns to its own namespace before
it connects anywhere. Runs in the foreground until a signal ends it.
"""

import ctypes
import os
import selectors
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
BUFFER_SIZE = 65536
LIBC = ctypes.CDLL(None, use_errno=True)


def enter_netns(fd, name):
    if LIBC.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns into {name} failed: {os.strerror(errno)}")


def open_listeners(netns_file, ports):
    """Creates one listening socket per port inside NETNS_FILE, from a single thread."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns_file, os.O_RDONLY)
    listeners = []
    enter_netns(target, netns_file)
    try:
        for port in ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
            listeners.append((listener, port))
    finally:
        enter_netns(own, "the relay's own namespace")
        os.close(own)
        os.close(target)
    return listeners


def pump(client, upstream):
    """Copies bytes both ways until both sides have closed their sending direction."""
    selector = selectors.DefaultSelector()
    peer = {client: upstream, upstream: client}
    for sock in peer:
        selector.register(sock, selectors.EVENT_READ)
    open_directions = 2
    try:
        while open_directions > 0:
            for key, _ in selector.select():
                data = key.fileobj.recv(BUFFER_SIZE)
                if data:
                    peer[key.fileobj].sendall(data)
                    continue
                selector.unregister(key.fileobj)
                peer[key.fileobj].shutdown(socket.SHUT_WR)
                open_directions -= 1
    except OSError:
        pass
    finally:
        selector.close()
        client.close()
        upstream.close()


def serve(listener, port):
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
            upstream.settimeout(None)
        except OSError as err:
            print(f"cluster-relay: connect to 127.0.0.1:{port} failed: {err}", file=sys.stderr)
            client.close()
            continue
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: cluster-relay.py NETNS_FILE PORT...")
    listeners = open_listeners(sys.argv[1], [int(port) for port in sys.argv[2:]])
    for listener, port in listeners:
        threading.Thread(target=serve, args=(listener, port), daemon=True).start()
    # The default SIGTERM and SIGINT actions end the process, and with it every connection.
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
