package client_test

import (
	"testing"

	"github.com/sqlraft/sqlraft/client"
	"github.com/sqlraft/sqlraft/server"
)

// The client keeps its own copy of the ErrorInfo contract (it must not
// import the server); this holds the two together.
func TestReasonsMatchServer(t *testing.T) {
	for _, p := range [][2]string{
		{client.ErrorDomain, server.ErrorDomain},
		{client.ReasonNotLeader, server.ReasonNotLeader},
		{client.ReasonNoLeader, server.ReasonNoLeader},
		{client.ReasonOutcomeUnknown, server.ReasonOutcomeUnknown},
		{client.ReasonStale, server.ReasonStale},
		{client.ReasonIndexNotApplied, server.ReasonIndexNotApplied},
		{client.MetadataNoForward, server.MetadataNoForward},
	} {
		if p[0] != p[1] {
			t.Errorf("client says %q, server says %q", p[0], p[1])
		}
	}
}
