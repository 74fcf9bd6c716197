// Package client is the Go client of a sqlraft cluster. It wraps the
// generated gRPC stubs (api/sqlraft/v1) with what every careful client of a
// replicated database needs:
//
//   - a list of nodes, any one of which is enough to start: the client
//     learns the leader from response headers and from NOT_LEADER answers
//     (google.rpc.ErrorInfo metadata leader_id, leader_address) and sends
//     writes and non-NONE reads straight to it;
//   - retries with exponential backoff and jitter while no leader is known
//     (UNAVAILABLE, reason NO_LEADER) or a node cannot be reached, bounded
//     by the caller's context (or WithRetryTimeout without a deadline);
//   - no retry of a write whose outcome is unknown (reason OUTCOME_UNKNOWN,
//     or UNAVAILABLE after the request may have reached a node) unless the
//     caller allows it (WithRetryUnknownOutcome, or Idempotent per call):
//     repeating such a write could apply it twice;
//   - TLS and Basic or Bearer credentials (WithTLS, WithBasicAuth,
//     WithBearerToken), and a message size limit above grpc-go's 4 MiB;
//   - conversions between Go values and sqlraftv1.Value (ValueOf, GoValue).
//
// Requests and responses are the API's own messages, so every field of the
// API is available. SQL errors of single statements are reported in the
// results, not as the call's error; ExecuteError, QueryError and
// RequestError turn the first into a *StatementError.
//
// For database/sql, see the sqldriver package beside this one.
//
// A short program:
//
//	c, err := client.New([]string{"node1:6001", "node2:6001", "node3:6001"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//	stmt, _ := client.NewStatement("INSERT INTO t(name) VALUES(?)", "fiona")
//	resp, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{stmt}})
//	if err == nil {
//		err = client.ExecuteError(resp, nil)
//	}
//	if client.Reason(err) == client.ReasonOutcomeUnknown {
//		// the INSERT may or may not have happened: check before repeating it
//	}
package client
