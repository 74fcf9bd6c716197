// Command e2eclient is the end-to-end tests' client inside the Docker
// network: it reaches the cluster through a service name (a network alias),
// as an application in a Kubernetes pod would through the client Service.
//
//	e2eclient -addr dns:///sqlraft:6001 -exec "INSERT ..." -exec "..."
//	e2eclient -addr dns:///sqlraft:6001 -level none -query "SELECT ..."
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

func main() {
	addr := flag.String("addr", "dns:///sqlraft:6001", "gRPC target")
	query := flag.String("query", "", "SELECT to run with Query")
	level := flag.String("level", "linearizable", "read consistency for -query")
	retry := flag.Duration("retry", 30*time.Second, "keep retrying UNAVAILABLE errors this long")
	var execs []string
	flag.Func("exec", "statement to run with Execute (repeatable)", func(s string) error { execs = append(execs, s); return nil })
	flag.Parse()
	cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer cc.Close()
	db := sqlraftv1.NewDatabaseServiceClient(cc)
	deadline := time.Now().Add(*retry)
	for {
		err = run(db, execs, *query, *level)
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		fail(err)
	}
}

func run(db sqlraftv1.DatabaseServiceClient, execs []string, query, level string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(execs) > 0 {
		req := &sqlraftv1.ExecuteRequest{}
		for _, s := range execs {
			req.Statements = append(req.Statements, &sqlraftv1.Statement{Sql: s})
		}
		resp, err := db.Execute(ctx, req)
		if err != nil {
			return err
		}
		for i, r := range resp.GetResults() {
			if r.GetError() != "" {
				return fmt.Errorf("statement %d: %s", i, r.GetError())
			}
		}
		fmt.Printf("executed node=%s leader=%s index=%d\n", resp.GetHeader().GetNodeId(), resp.GetHeader().GetLeaderId(), resp.GetHeader().GetRaftIndex())
	}
	if query == "" {
		return nil
	}
	c := sqlraftv1.ReadConsistency(sqlraftv1.ReadConsistency_value["READ_CONSISTENCY_"+strings.ToUpper(level)])
	resp, err := db.Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{{Sql: query}}, Consistency: c})
	if err != nil {
		return err
	}
	for _, r := range resp.GetResults() {
		if r.GetError() != "" {
			return fmt.Errorf("query: %s", r.GetError())
		}
		fmt.Printf("rows=%d node=%s\n", len(r.GetRows()), resp.GetHeader().GetNodeId())
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "e2eclient:", err)
	os.Exit(1)
}
