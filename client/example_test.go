package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func Example() {
	addr, stop := servertest.ExampleNode() // a real cluster: client.New([]string{"node1:6001", "node2:6001"})
	defer stop()

	c, err := client.New([]string{addr})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	create, _ := client.NewStatement("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)")
	insert, _ := client.NewStatement("INSERT INTO t(name) VALUES(?)", "fiona")
	stmts := []*sqlraftv1.Statement{create, insert}
	resp, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts})
	if err == nil {
		err = client.ExecuteError(resp, stmts)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inserted id", resp.GetResults()[1].GetLastInsertId())

	sel, _ := client.NewStatement("SELECT id, name FROM t WHERE name = ?", "fiona")
	q, err := c.Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{sel},
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range q.GetResults()[0].GetRows() {
		fmt.Println(client.RowValues(row)...)
	}
	// Output:
	// inserted id 1
	// 1 fiona
}

func ExampleClient_QueryStream() {
	addr, stop := servertest.ExampleNode()
	defer stop()
	c, err := client.New([]string{addr})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sel, _ := client.NewStatement("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10000) SELECT sum(i), count(*) FROM n")
	rows, err := c.QueryStream(ctx, &sqlraftv1.QueryStreamRequest{Statement: sel})
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		fmt.Println(rows.Columns(), rows.Values())
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	// Output: [sum(i) count(*)] [50005000 10000]
}

func ExampleIdempotent() {
	addr, stop := servertest.ExampleNode()
	defer stop()
	c, err := client.New([]string{addr})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Repeating this write is harmless, so the client may send it again
	// if leadership moves while it is in flight (OUTCOME_UNKNOWN).
	stmts := []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT)"},
		{Sql: "INSERT OR REPLACE INTO kv VALUES('colour', 'green')"},
	}
	if _, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts}, client.Idempotent()); err != nil {
		if client.Reason(err) == client.ReasonOutcomeUnknown {
			log.Fatal("unreachable: an Idempotent write is retried")
		}
		log.Fatal(err)
	}
	fmt.Println("ok")
	// Output: ok
}

func ExampleValueOf() {
	for _, in := range []any{nil, 42, 2.5, "text", []byte{1, 2}, true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} {
		v, err := client.ValueOf(in)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%T %v\n", client.GoValue(v), client.GoValue(v))
	}
	_, err := client.ValueOf(struct{}{})
	fmt.Println(err)
	// Output:
	// <nil> <nil>
	// int64 42
	// float64 2.5
	// string text
	// []uint8 [1 2]
	// int64 1
	// string 2026-01-02 03:04:05+00:00
	// client: cannot send a struct {} as a SQL value (use nil, an integer, a float, string, []byte, bool or time.Time)
}
