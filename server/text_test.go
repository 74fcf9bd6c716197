package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// badText is TEXT that is not valid UTF-8 (issue #7).
var badText = []byte{0xff, 0xfe, 0xc3, 0x28}

func textBytes(b []byte) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: b}}
}

// textRowsQuery reads what TestInvalidUTF8TextOnTheWire stores.
var textRowsQuery = st("SELECT id, v, typeof(v) FROM t ORDER BY id")

// checkTextRows checks the rows of textRowsQuery: ids 1 and 2 hold badText,
// id 3 valid text; all are TEXT to SQL.
func checkTextRows(rows []*sqlraftv1.Row) error {
	if len(rows) != 3 {
		return fmt.Errorf("%d rows, want 3", len(rows))
	}
	for i, r := range rows {
		v := r.GetValues()
		if v[2].GetText() != "text" {
			return fmt.Errorf("row %d: typeof is %v, want text", i+1, v[2])
		}
		if i == 2 {
			if k, ok := v[1].GetKind().(*sqlraftv1.Value_Text); !ok || k.Text != "ok ✓" {
				return fmt.Errorf("row 3: %v, want text", v[1])
			}
			continue
		}
		if k, ok := v[1].GetKind().(*sqlraftv1.Value_TextBytes); !ok || !bytes.Equal(k.TextBytes, badText) {
			return fmt.Errorf("row %d: %v, want text_bytes %x", i+1, v[1], badText)
		}
	}
	return nil
}

func TestInvalidUTF8TextOnTheWire(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader, f := c.Leader(), c.Followers()[0]
	exec(t, f, st("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"),
		st("INSERT INTO t VALUES(1, CAST(x'fffec328' AS TEXT))"),
		st("INSERT INTO t VALUES(2, ?)", textBytes(badText)),
		st("INSERT INTO t VALUES(3, ?)", text("ok ✓")))
	c.WaitConverged(20 * time.Second) // equal checksums, and NONE reads see every row
	read := []sqlraftv1.ReadConsistency{sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE,
		sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}
	for _, n := range []*servertest.Node{leader, f} {
		for _, level := range read {
			resp, err := n.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{textRowsQuery}, Consistency: level})
			if err != nil {
				t.Fatalf("Query via %s at %v: %v", n.ID, level, err)
			}
			if err := checkTextRows(resp.GetResults()[0].GetRows()); err != nil {
				t.Errorf("Query via %s at %v: %v", n.ID, level, err)
			}
			if got := resp.GetResults()[0].GetTypes(); got[1] != "text" {
				t.Errorf("Query via %s at %v: types %v", n.ID, level, got)
			}
			rows, err := streamRows(t, n, level)
			if err != nil {
				t.Fatalf("QueryStream via %s at %v: %v", n.ID, level, err)
			}
			if err := checkTextRows(rows); err != nil {
				t.Errorf("QueryStream via %s at %v: %v", n.ID, level, err)
			}
		}
	}
	// A write and a read in one request: the read's rows come back through
	// the Raft log.
	resp, err := f.DB().Request(ctx(t), &sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{
		st("INSERT INTO t VALUES(4, ?)", textBytes([]byte{0x80})), st("SELECT v, typeof(v) FROM t WHERE id = 4")}})
	if err != nil {
		t.Fatal(err)
	}
	v := resp.GetResults()[1].GetQuery().GetRows()[0].GetValues()
	if k, ok := v[0].GetKind().(*sqlraftv1.Value_TextBytes); !ok || !bytes.Equal(k.TextBytes, []byte{0x80}) || v[1].GetText() != "text" {
		t.Errorf("Request read: %v, want text_bytes 80 of type text", v)
	}
	// An expression column's type is the storage class of its first value.
	q, err := f.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT CAST(x'fffec328' AS TEXT)")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.GetResults()[0].GetTypes(); len(got) != 1 || got[0] != "text" {
		t.Errorf("expression column types %v, want [text]", got)
	}
	c.WaitConverged(20 * time.Second)
}

// streamRows reads textRowsQuery with QueryStream through n, a row per
// message.
func streamRows(t *testing.T, n *servertest.Node, level sqlraftv1.ReadConsistency) ([]*sqlraftv1.Row, error) {
	stream, err := n.DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{Statement: textRowsQuery, Consistency: level, BatchSize: 1})
	if err != nil {
		return nil, err
	}
	var rows []*sqlraftv1.Row
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, msg.GetRows()...)
	}
}
