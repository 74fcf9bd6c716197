package hostile

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestTenThousandStatements: a client sends, again and again, 10,000 small
// INSERTs in one transaction, alternately as an Execute and as a Request
// (with a SELECT at the end). Both are served whole; the victim's writes
// queue behind each one while every replica applies it.
func TestTenThousandStatements(t *testing.T) {
	const n = 10_000
	c := newCluster(t)
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE bulk(a INTEGER, b TEXT)"))
	inserts := make([]*sqlraftv1.Statement, n)
	for i := range inserts {
		inserts[i] = st("INSERT INTO bulk(a, b) VALUES(?, ?)", integer(int64(i)), text("x"))
	}
	execReq := &sqlraftv1.ExecuteRequest{Statements: inserts, Transaction: true}
	reqReq := &sqlraftv1.RequestRequest{Statements: append(inserts[:n-1:n-1], st("SELECT count(*) FROM bulk")), Transaction: true}
	t.Logf("the Execute request is %d bytes, the Request %d (limit %d)", proto.Size(execReq), proto.Size(reqReq), messageLimit)
	before := settled()
	h := newHostile(t)
	db := h.db(leader.GRPCAddr)
	var rows int64
	measure(t, c, "10,000 INSERTs in one transaction (Execute, Request)", "served", func(sp *span) string {
		return flood(sp, func(i int) {
			if i%2 == 0 {
				rows += bulkExecute(t, db, execReq)
			} else {
				rows += bulkRequest(t, db, reqReq, rows)
			}
		}, proto.Size(execReq), "served")
	})
	if got := count(t, leader, "bulk"); got != rows {
		t.Fatalf("bulk has %d rows, want %d", got, rows)
	}
	h.leave()
	checkNothingLeft(t, c, before)
}

// bulkExecute sends req (retrying only while no leader is known) and checks
// that every statement inserted its row; it returns the rows inserted.
func bulkExecute(t *testing.T, db sqlraftv1.DatabaseServiceClient, req *sqlraftv1.ExecuteRequest) int64 {
	t.Helper()
	var resp *sqlraftv1.ExecuteResponse
	err := servertest.Retry(t, context.Background(), servertest.NotIdempotent, func(ctx context.Context) (err error) {
		resp, err = db.Execute(ctx, req)
		return err
	})
	if err != nil {
		t.Fatalf("Execute of %d statements: %v", len(req.GetStatements()), err)
	}
	if len(resp.GetResults()) != len(req.GetStatements()) {
		t.Fatalf("Execute of %d statements: %d results", len(req.GetStatements()), len(resp.GetResults()))
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != "" || r.GetRowsAffected() != 1 {
			t.Fatalf("Execute: statement %d: %q, %d rows", i, r.GetError(), r.GetRowsAffected())
		}
	}
	return int64(len(resp.GetResults()))
}

// bulkRequest sends req, whose last statement counts bulk's rows, and checks
// that the count includes every insert of the request; it returns the rows
// inserted.
func bulkRequest(t *testing.T, db sqlraftv1.DatabaseServiceClient, req *sqlraftv1.RequestRequest, had int64) int64 {
	t.Helper()
	var resp *sqlraftv1.RequestResponse
	err := servertest.Retry(t, context.Background(), servertest.NotIdempotent, func(ctx context.Context) (err error) {
		resp, err = db.Request(ctx, req)
		return err
	})
	if err != nil {
		t.Fatalf("Request of %d statements: %v", len(req.GetStatements()), err)
	}
	results := resp.GetResults()
	if len(results) != len(req.GetStatements()) {
		t.Fatalf("Request of %d statements: %d results", len(req.GetStatements()), len(results))
	}
	inserted := int64(len(results) - 1)
	for i, r := range results[:inserted] {
		if r.GetExecute().GetError() != "" || r.GetExecute().GetRowsAffected() != 1 {
			t.Fatalf("Request: statement %d: %v", i, r)
		}
	}
	q := results[inserted].GetQuery()
	if q.GetError() != "" || q.GetRows()[0].GetValues()[0].GetInteger() != had+inserted {
		t.Fatalf("Request: the closing count says %v (%s), want %d", q.GetRows(), q.GetError(), had+inserted)
	}
	return inserted
}
