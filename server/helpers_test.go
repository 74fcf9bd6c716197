package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func st(sql string, params ...*sqlraftv1.Value) *sqlraftv1.Statement {
	return &sqlraftv1.Statement{Sql: sql, Params: params}
}

func text(s string) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}} }
func integer(i int64) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}}
}

var levels = []sqlraftv1.ReadConsistency{
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_UNSPECIFIED,
}

// retryCtx bounds a request and its retries (servertest.Retry).
func retryCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), servertest.RetryTimeout)
	t.Cleanup(cancel)
	return c
}

// exec runs statements through node n and fails the test on any error. It
// retries as a client would while no leader is known; a write whose outcome
// is unknown fails the test (see execRepeat).
func exec(t *testing.T, n *servertest.Node, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	return execRepeat(t, n, servertest.NotIdempotent, stmts...)
}

// execRepeat is exec for statements that may be repeated as repeat says:
// servertest.Idempotent ones are also retried when leadership moved while
// they were in flight.
func execRepeat(t *testing.T, n *servertest.Node, repeat servertest.Repeat, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	return servertest.Execute(t, n, repeat, stmts...)
}

// count returns SELECT count(*) FROM table at level through node n (a read:
// retried while no leader is known or leadership moves).
func count(t *testing.T, n *servertest.Node, table string, level sqlraftv1.ReadConsistency) int64 {
	t.Helper()
	var resp *sqlraftv1.QueryResponse
	err := servertest.Retry(t, retryCtx(t), servertest.Idempotent, func(ctx context.Context) (err error) {
		resp, err = n.DB().Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM " + table)},
			Consistency: level})
		return err
	})
	if err != nil {
		t.Fatalf("query via %s at %v: %v", n.ID, level, err)
	}
	if e := resp.GetResults()[0].GetError(); e != "" {
		t.Fatalf("query via %s at %v: %s", n.ID, level, e)
	}
	return resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger()
}

// errorInfo extracts the ErrorInfo detail of a status error.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
