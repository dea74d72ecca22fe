"""A TCP proxy that can go dark: stands in for an SQS endpoint that becomes unreachable."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from tests.servers import free_port


class TcpProxy:
    """Forwards a loopback port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._running = False

    @property
    def url(self) -> str:
        """The endpoint URL clients use instead of the target's."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and forward until `cut()`."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._listener is not None
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        while self._running:
            for key, _ in selector.select(timeout=0.1):
                if key.data is None:
                    self._accept(selector)
                else:
                    self._pump(selector, key.fileobj, key.data)  # type: ignore[arg-type]
        selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            return
        client.setblocking(False)
        upstream.setblocking(False)
        with self._lock:
            self._pairs.append((client, upstream))
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _pump(
        self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket
    ) -> None:
        try:
            data = source.recv(65536)
            if data:
                sink.setblocking(True)
                sink.sendall(data)
                sink.setblocking(False)
                return
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()

    def cut(self) -> None:
        """Close the listener and every open connection: the endpoint is gone."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for client, upstream in self._pairs:
                client.close()
                upstream.close()
            self._pairs.clear()
