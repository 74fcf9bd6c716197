package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPollGateMakesCallersPastTheBurstWait(t *testing.T) {
	var g pollGate
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range PollBurst + 5 {
		if err := g.wait(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// Calls queued ahead for the next ten seconds: a caller whose deadline
	// comes before its turn is told to slow down rather than kept waiting.
	for range 50 {
		g.limiter.ReserveN(time.Now(), PollBurst)
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	err := g.wait(short)
	if c := status.Code(err); c != codes.ResourceExhausted {
		t.Fatalf("call past the rate with a tiny deadline: %v", err)
	}
}
