package server_test

import (
	"context"
	"testing"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// BenchmarkQuery measures one point read over gRPC on a one-node cluster at
// each consistency level: go test ./server -run '^$' -bench Query
func BenchmarkQuery(b *testing.B) {
	c := servertest.New(b, 1, servertest.Options{})
	n := c.Leader()
	if _, err := n.DB().Execute(context.Background(), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"}, {Sql: "INSERT INTO t VALUES(1, 'x')"}}}); err != nil {
		b.Fatal(err)
	}
	for _, level := range levels[:4] {
		b.Run(level.String(), func(b *testing.B) {
			req := &sqlraftv1.QueryRequest{Consistency: level, Statements: []*sqlraftv1.Statement{
				{Sql: "SELECT v FROM t WHERE id = ?", Params: []*sqlraftv1.Value{integer(1)}}}}
			for i := 0; i < b.N; i++ {
				if _, err := n.DB().Query(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExecute measures one single-row insert over gRPC on a one-node
// cluster: go test ./server -run '^$' -bench Execute
func BenchmarkExecute(b *testing.B) {
	c := servertest.New(b, 1, servertest.Options{})
	n := c.Leader()
	if _, err := n.DB().Execute(context.Background(), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"}}}); err != nil {
		b.Fatal(err)
	}
	req := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{Sql: "INSERT INTO t(v) VALUES(?)", Params: []*sqlraftv1.Value{text("x")}}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.DB().Execute(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
