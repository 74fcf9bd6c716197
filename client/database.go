package client

import (
	"context"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// Execute runs write statements through Raft (DatabaseService.Execute) on
// the leader. It is retried while no leader is known and after NOT_LEADER,
// but not when its outcome is unknown unless the client was created
// WithRetryUnknownOutcome or the call is marked Idempotent. SQL errors of
// single statements are in the results (see ExecuteError).
func (c *Client) Execute(ctx context.Context, req *sqlraftv1.ExecuteRequest, opts ...CallOption) (*sqlraftv1.ExecuteResponse, error) {
	var resp *sqlraftv1.ExecuteResponse
	err := c.invoke(ctx, write, toLeader, opts, func(ctx context.Context, cc *grpc.ClientConn) (h *sqlraftv1.ResponseHeader, err error) {
		resp, err = sqlraftv1.NewDatabaseServiceClient(cc).Execute(ctx, req)
		return resp.GetHeader(), err
	})
	return resp, err
}

// Query runs read-only statements (DatabaseService.Query) at
// req.Consistency. NONE reads go to the node the client currently uses
// (pass At for a given node); the other levels go to the leader when it is
// known. Reads are retried on every UNAVAILABLE answer.
func (c *Client) Query(ctx context.Context, req *sqlraftv1.QueryRequest, opts ...CallOption) (*sqlraftv1.QueryResponse, error) {
	var resp *sqlraftv1.QueryResponse
	err := c.invoke(ctx, repeatable, readRoute(req.GetConsistency()), opts, func(ctx context.Context, cc *grpc.ClientConn) (h *sqlraftv1.ResponseHeader, err error) {
		resp, err = sqlraftv1.NewDatabaseServiceClient(cc).Query(ctx, req)
		return resp.GetHeader(), err
	})
	return resp, err
}

// Request runs a mix of reads and writes in order (DatabaseService.Request),
// with transaction set: all or nothing. It is treated as a write: pass
// Idempotent when repeating it is harmless (a request of reads only).
func (c *Client) Request(ctx context.Context, req *sqlraftv1.RequestRequest, opts ...CallOption) (*sqlraftv1.RequestResponse, error) {
	var resp *sqlraftv1.RequestResponse
	err := c.invoke(ctx, write, toLeader, opts, func(ctx context.Context, cc *grpc.ClientConn) (h *sqlraftv1.ResponseHeader, err error) {
		resp, err = sqlraftv1.NewDatabaseServiceClient(cc).Request(ctx, req)
		return resp.GetHeader(), err
	})
	return resp, err
}

func readRoute(level sqlraftv1.ReadConsistency) route {
	if level == sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE {
		return toAny
	}
	return toLeader
}

// ExecuteError returns the first statement error of an Execute response as
// a *StatementError, or nil when every statement succeeded. stmts are the
// request's statements (for the SQL in the message; may be nil).
func ExecuteError(resp *sqlraftv1.ExecuteResponse, stmts []*sqlraftv1.Statement) error {
	for i, r := range resp.GetResults() {
		if r.GetError() != "" {
			return &StatementError{Index: i, SQL: sqlAt(stmts, i), Message: r.GetError()}
		}
	}
	return nil
}

// QueryError is ExecuteError for a Query response.
func QueryError(resp *sqlraftv1.QueryResponse, stmts []*sqlraftv1.Statement) error {
	for i, r := range resp.GetResults() {
		if r.GetError() != "" {
			return &StatementError{Index: i, SQL: sqlAt(stmts, i), Message: r.GetError()}
		}
	}
	return nil
}

// RequestError is ExecuteError for a Request response.
func RequestError(resp *sqlraftv1.RequestResponse, stmts []*sqlraftv1.Statement) error {
	for i, r := range resp.GetResults() {
		msg := r.GetExecute().GetError()
		if msg == "" {
			msg = r.GetQuery().GetError()
		}
		if msg != "" {
			return &StatementError{Index: i, SQL: sqlAt(stmts, i), Message: msg}
		}
	}
	return nil
}

func sqlAt(stmts []*sqlraftv1.Statement, i int) string {
	if i < len(stmts) {
		return stmts[i].GetSql()
	}
	return ""
}
