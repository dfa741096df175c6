"""The SQLite connection every role of the SQLite backend shares: the embedded default, one
file, no server.

WAL journal so that readers never block the writer; `synchronous=FULL` so that a write the
receiver has acknowledged survives a killed process and a power cut alike. Each write is one
transaction whose conditions are checked inside it, mirroring the DynamoDB backend's
conditional transaction; a batch groups them into one, each write a savepoint of it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from incidents.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from incidents.store import StoreError


class SqliteConnection:
    """Thread-safe: one connection, one re-entrant lock, so the receiver may call it from a worker
    thread and a batch may hold the lock across the writes it groups. Each role of the backend
    is a subclass that adds its reads and writes (`incidents.sqlite.SqliteStore` has them all)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        """Apply each migration the file has not seen yet, in order; refuse a newer file."""
        db = sqlite_utils.Database(self._conn)
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {found}, newer than this release "
                f"({SCHEMA_VERSION}): upgrade incident-responder"
            )
        for version, migration in enumerate(MIGRATIONS, start=1):
            if version > found:
                migration(db)
                db.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            self._batch_depth = 1
            try:
                with self._committed():
                    yield
            finally:
                self._batch_depth = 0

    @contextmanager
    def _committed(self) -> Iterator[None]:
        """A write transaction, committed at the end and rolled back on any failure."""
        with self._atomic("BEGIN IMMEDIATE", "COMMIT", self._roll_back):
            yield

    def _roll_back(self) -> None:
        """Undo what is open, if anything is: a failed COMMIT may or may not have closed it."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _undo_write(self) -> None:
        self._conn.execute("ROLLBACK TO write")
        self._conn.execute("RELEASE write")

    @contextmanager
    def _atomic(self, begin: str, end: str, undo: Callable[[], None]) -> Iterator[None]:
        """`begin`, the block, then `end`; on any failure `undo` instead of `end`. SQLite's
        errors come out as StoreError, as every backend's do."""
        try:
            self._conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite is unavailable: {exc}") from exc
        try:
            yield
            self._conn.execute(end)
        except BaseException as exc:
            undo()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"SQLite write failed: {exc}") from exc
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One conditional write: its own transaction, or a savepoint inside a batch so that a
        failed condition undoes this write alone."""
        with self._lock:
            if self._batch_depth:
                with self._atomic("SAVEPOINT write", "RELEASE write", self._undo_write):
                    yield self._conn
            else:
                with self._committed():
                    yield self._conn

    def _query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One snapshot for several reads (WAL readers see the file as of their first read),
        unless a batch holds a write transaction open, which is a snapshot already."""
        if self._conn.in_transaction:
            yield
            return
        try:
            self._conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite is unavailable: {exc}") from exc
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def ping(self) -> None:
        self._query("SELECT 1")

    def check(self) -> str:
        """Opening the file migrated it, so its schema is this release's."""
        incidents = self._query("SELECT count(*) FROM incidents")[0][0]
        return (
            f"SQLite at {Path(self.path).resolve()}: schema {SCHEMA_VERSION}, {incidents} incidents"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    """Under SQLite's limit on bound parameters per statement (999 in older builds)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
