#!/usr/bin/env python3
"""Uses a sqlraft cluster from Python, checking every answer.

usage: example.py ADDRESS [ADDRESS...]   (the client addresses of the nodes)

It writes, reads at each consistency level (on a follower too, with
read-your-writes), streams 100,000 rows, shows the 4 MiB default receive
limit of grpc-python and how to raise it, and decodes the error details
sqlraft sends (NOT_LEADER, INDEX_NOT_APPLIED, BadRequest). It exits non-zero
at the first answer that is not what it should be. Run generate.sh first
(run.sh does).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("SQLRAFT_PY_GEN", os.path.join(HERE, "gen")))

import grpc  # noqa: E402
from sqlraft.v1 import cluster_pb2, cluster_pb2_grpc  # noqa: E402
from sqlraft.v1 import database_pb2, database_pb2_grpc, types_pb2  # noqa: E402

import sqlraft_helpers as h  # noqa: E402

LEVELS = {
    "NONE": types_pb2.READ_CONSISTENCY_NONE,
    "WEAK": types_pb2.READ_CONSISTENCY_WEAK,
    "LINEARIZABLE": types_pb2.READ_CONSISTENCY_LINEARIZABLE,
    "STRONG": types_pb2.READ_CONSISTENCY_STRONG,
}
# Large enough for a unary answer of up to the server's --max-message-size
# (16 MiB by default) plus its header. grpc-python's default is 4 MiB.
MAX_RECEIVE = 32 << 20
BIG_ROWS = 100_000
TIMEOUT = 30  # seconds, for every call


class Failure(Exception):
    """An answer that is not what it should be."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def channel(address, max_receive=MAX_RECEIVE):
    opts = [("grpc.max_receive_message_length", max_receive)] if max_receive else []
    return grpc.insecure_channel(address, options=opts)


class Node:
    """Stubs for one node."""

    def __init__(self, address):
        self.address = address
        self.channel = channel(address)
        self.db = database_pb2_grpc.DatabaseServiceStub(self.channel)
        self.cluster = cluster_pb2_grpc.ClusterServiceStub(self.channel)


def find_leader(nodes):
    resp = nodes[0].cluster.Nodes(cluster_pb2.NodesRequest(), timeout=TIMEOUT)
    check(len(resp.nodes) == len(nodes), f"Nodes lists {len(resp.nodes)} members, want {len(nodes)}")
    leader = [n.grpc_address for n in resp.nodes if n.leader]
    check(len(leader) == 1, f"Nodes names leaders {leader}")
    by_addr = {n.address: n for n in nodes}
    check(leader[0] in by_addr, f"leader address {leader[0]} is none of {list(by_addr)}")
    return by_addr[leader[0]], [n for n in nodes if n.address != leader[0]]


def execute(node, *stmts, transaction=False):
    resp = node.db.Execute(database_pb2.ExecuteRequest(statements=stmts, transaction=transaction), timeout=TIMEOUT)
    for i, r in enumerate(resp.results):
        check(not r.error, f"statement {i}: {r.error}")
    return resp


def query(node, stmt, level, min_raft_index=0, timeout=TIMEOUT):
    resp = node.db.Query(
        database_pb2.QueryRequest(statements=[stmt], consistency=level, min_raft_index=min_raft_index),
        timeout=timeout,
    )
    check(not resp.results[0].error, f"query: {resp.results[0].error}")
    return resp


def write_and_read(leader, followers):
    row = (1, "ann", 1.5, b"\x00\xffpng", None, h.TextBytes(b"caf\xe9"))
    execute(leader, h.statement(
        "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB, note TEXT, legacy TEXT)"))
    resp = execute(leader, h.statement(
        "INSERT INTO people VALUES(:id, :name, :score, :photo, :note, :legacy)",
        id=row[0], name=row[1], score=row[2], photo=row[3], note=row[4], legacy=row[5]))
    index = resp.header.raft_index
    check(resp.results[0].last_insert_id == 1, f"last_insert_id {resp.results[0].last_insert_id}")
    print(f"execute: inserted {row} at raft_index {index} on {resp.header.node_id}")
    sql = h.statement("SELECT * FROM people WHERE id = ?", 1)
    for node in [leader] + followers:
        for name, level in LEVELS.items():
            # min_raft_index: read-your-writes, even at NONE on a follower.
            resp = query(node, sql, level, min_raft_index=index)
            got = h.rows(resp.results[0])
            check(got == [row], f"{name} on {node.address}: {got}, want {[row]}")
            check(resp.header.raft_index >= index, f"{name}: header raft_index {resp.header.raft_index} < {index}")
            check(isinstance(got[0][5], h.TextBytes), "TEXT that is not UTF-8 did not come back as text_bytes")
        print(f"query on {node.address}: NONE, WEAK, LINEARIZABLE and STRONG all see the write")
    return index


def stream_big(leader, follower):
    execute(leader, h.statement(
        "INSERT INTO big(n, label) SELECT value, printf('row %08d ', value) || hex(randomblob(12)) "
        "FROM (WITH RECURSIVE c(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM c WHERE value < ?) "
        "SELECT value FROM c)", BIG_ROWS))
    start, count, total, batches = time.monotonic(), 0, 0, 0
    req = database_pb2.QueryStreamRequest(
        statement=h.statement("SELECT n, label FROM big ORDER BY n"),
        consistency=types_pb2.READ_CONSISTENCY_LINEARIZABLE, batch_size=5000)
    for msg in follower.db.QueryStream(req, timeout=TIMEOUT):
        if batches == 0:
            check(list(msg.columns) == ["n", "label"], f"stream columns {list(msg.columns)}")
        batches += 1
        for n, _label in h.rows(msg):
            count += 1
            total += n
    took = time.monotonic() - start
    check(count == BIG_ROWS and total == BIG_ROWS * (BIG_ROWS + 1) // 2, f"stream: {count} rows, sum {total}")
    print(f"stream: {count} rows in {batches} messages from {follower.address} in {took:.2f}s")


def message_limits(leader):
    req = database_pb2.QueryRequest(statements=[h.statement("SELECT n, label FROM big")])
    small = database_pb2_grpc.DatabaseServiceStub(channel(leader.address, max_receive=None))
    try:
        small.Query(req, timeout=TIMEOUT)
        raise Failure("a unary answer of 100,000 rows fit grpc-python's default 4 MiB receive limit")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"default limit: {e.code()} {e.details()}")
        print(f"unary Query of {BIG_ROWS} rows with the default limit: {e.code().name} ({e.details()})")
    resp = leader.db.Query(req, timeout=TIMEOUT)
    check(len(resp.results[0].rows) == BIG_ROWS, f"raised limit: {len(resp.results[0].rows)} rows")
    print(f"unary Query with grpc.max_receive_message_length {MAX_RECEIVE >> 20} MiB: "
          f"{len(resp.results[0].rows)} rows, {resp.ByteSize()} bytes")


def not_leader(leader, follower):
    stmt = h.statement("INSERT INTO people(name) VALUES(?)", "bob")
    try:
        follower.db.Execute(database_pb2.ExecuteRequest(statements=[stmt]), timeout=TIMEOUT, metadata=h.NO_FORWARD)
        raise Failure("a follower asked not to forward accepted a write")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION, f"no-forward write: {e.code()} {e.details()}")
        got = h.not_leader(e)
        check(got is not None, f"no NOT_LEADER ErrorInfo in {e.details()}")
        leader_id, leader_address = got
        check(leader_address == leader.address, f"leader_address {leader_address}, want {leader.address}")
        print(f"NOT_LEADER from {follower.address}: leader_id={leader_id} leader_address={leader_address}")
    node = Node(leader_address)  # a client retries at the leader named
    resp = node.db.Execute(database_pb2.ExecuteRequest(statements=[stmt]), timeout=TIMEOUT, metadata=h.NO_FORWARD)
    check(resp.header.node_id == leader_id, f"retry answered by {resp.header.node_id}")
    print(f"retried at {leader_address}: row {resp.results[0].last_insert_id} written")


def other_errors(follower, index):
    try:
        query(follower, h.statement("SELECT 1"), LEVELS["NONE"], min_raft_index=index + 1_000_000, timeout=2)
        raise Failure("a read waited for an index far ahead and succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION, f"far min_raft_index: {e.code()} {e.details()}")
        info = h.error_info(e)
        check(info is not None and info.reason == "INDEX_NOT_APPLIED", f"ErrorInfo {info}")
        check(info.metadata["min_raft_index"] == str(index + 1_000_000), f"metadata {dict(info.metadata)}")
        print(f"INDEX_NOT_APPLIED: {dict(info.metadata)}")
    try:
        query(follower, h.statement("SELEC 1"), LEVELS["NONE"])
        raise Failure("a syntax error was accepted")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"syntax error: {e.code()}")
        br = h.bad_request(e)
        check(br is not None and br.field_violations[0].field == "statements[0]", f"BadRequest {br}")
        print(f"INVALID_ARGUMENT: {br.field_violations[0].field}: {br.field_violations[0].description}")


def main(addresses):
    nodes = [Node(a) for a in addresses]
    leader, followers = find_leader(nodes)
    print(f"leader {leader.address}, followers {[f.address for f in followers]}")
    index = write_and_read(leader, followers)
    execute(leader, h.statement("CREATE TABLE big(n INTEGER PRIMARY KEY, label TEXT)"))
    stream_big(leader, followers[0])
    message_limits(leader)
    not_leader(leader, followers[0])
    other_errors(followers[-1], index)
    print("all checks passed")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1:])
    except (Failure, grpc.RpcError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
