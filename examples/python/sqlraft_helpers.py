"""Small helpers for sqlraft's generated Python code.

- Values: to_value() turns a Python value into a sqlraft.v1.Value and
  from_value() turns one back; statement() builds a Statement and rows()
  gives a result's rows as tuples.
- Errors: the details sqlraft attaches to an error travel as a serialized
  google.rpc.Status in the trailing metadata "grpc-status-details-bin".
  status_details() decodes it, error_info() and bad_request() pick out the
  details, and not_leader() says which leader to ask instead.

The generated modules (generate.sh) must be importable: put their directory
on sys.path first.
"""

from google.rpc import error_details_pb2, status_pb2
from sqlraft.v1 import types_pb2

ERROR_DOMAIN = "sqlraft.v1"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
NO_FORWARD = (("sqlraft-no-forward", "true"),)
"""Metadata that asks a follower to answer NOT_LEADER instead of forwarding."""

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class TextBytes(bytes):
    """TEXT whose bytes are not (or need not be) valid UTF-8.

    sqlraft returns such TEXT as text_bytes; pass a TextBytes to bind bytes
    as TEXT rather than as a BLOB.
    """


def to_value(x):
    """Returns the sqlraft.v1.Value for a Python value.

    None is NULL, bool and int are INTEGER (64-bit), float is REAL, str is
    TEXT, TextBytes is TEXT given as raw bytes, and other bytes-like values
    are BLOBs. Anything else raises TypeError.
    """
    if x is None:
        return types_pb2.Value(null_value=0)
    if isinstance(x, bool):
        return types_pb2.Value(integer=int(x))
    if isinstance(x, int):
        if not _INT64_MIN <= x <= _INT64_MAX:
            raise OverflowError(f"{x} does not fit SQLite's 64-bit INTEGER")
        return types_pb2.Value(integer=x)
    if isinstance(x, float):
        return types_pb2.Value(real=x)
    if isinstance(x, str):
        return types_pb2.Value(text=x)
    if isinstance(x, TextBytes):
        return types_pb2.Value(text_bytes=bytes(x))
    if isinstance(x, (bytes, bytearray, memoryview)):
        return types_pb2.Value(blob=bytes(x))
    raise TypeError(f"no SQLite value for {type(x).__name__}")


def from_value(v):
    """Returns the Python value of a sqlraft.v1.Value (see to_value)."""
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "text_bytes":
        return TextBytes(v.text_bytes)
    return getattr(v, kind)


def statement(sql, *params, **named):
    """Returns a Statement with positional or named parameters (not both)."""
    if params and named:
        raise ValueError("give positional or named parameters, not both")
    return types_pb2.Statement(
        sql=sql,
        params=[to_value(p) for p in params],
        named_params={k: to_value(p) for k, p in named.items()},
    )


def rows(result):
    """Returns the rows of a QueryResult (or QueryStreamResponse) as tuples."""
    return [tuple(from_value(v) for v in r.values) for r in result.rows]


def status_details(err):
    """Returns the google.rpc.Status of a grpc.RpcError, or None."""
    for key, value in err.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            st = status_pb2.Status()
            st.ParseFromString(value)
            return st
    return None


def _detail(err, message_type):
    st = status_details(err)
    for any_ in st.details if st else ():
        if any_.Is(message_type.DESCRIPTOR):
            out = message_type()
            any_.Unpack(out)
            return out
    return None


def error_info(err):
    """Returns the google.rpc.ErrorInfo of a grpc.RpcError, or None.

    sqlraft's reasons (domain "sqlraft.v1") and metadata keys are listed in
    proto/sqlraft/v1/database.proto: NOT_LEADER (leader_id,
    leader_address), NO_LEADER, OUTCOME_UNKNOWN, STALE_READ and
    INDEX_NOT_APPLIED (min_raft_index, applied_index).
    """
    return _detail(err, error_details_pb2.ErrorInfo)


def bad_request(err):
    """Returns the google.rpc.BadRequest of an INVALID_ARGUMENT, or None."""
    return _detail(err, error_details_pb2.BadRequest)


def reason(err):
    """Returns the ErrorInfo reason of a grpc.RpcError, or ""."""
    info = error_info(err)
    return info.reason if info and info.domain == ERROR_DOMAIN else ""


def not_leader(err):
    """For a NOT_LEADER error, returns (leader_id, leader_address), each ""
    when no leader is known; None for any other error."""
    info = error_info(err)
    if info is None or info.domain != ERROR_DOMAIN or info.reason != "NOT_LEADER":
        return None
    return info.metadata.get("leader_id", ""), info.metadata.get("leader_address", "")
