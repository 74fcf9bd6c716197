package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Unary calls are logged at callLevel's level for their code, by the
// middleware when debug records are written and directly otherwise.
func TestUnaryCallLog(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/sqlraft.v1.DatabaseService/Query"}
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
		log := unaryCallLog(logger, logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(callLevel))
		for _, code := range []codes.Code{codes.OK, codes.InvalidArgument, codes.Internal} {
			buf.Reset()
			_, err := log(context.Background(), nil, info, func(context.Context, any) (any, error) {
				if code == codes.OK {
					return "ok", nil
				}
				return nil, status.Error(code, "boom")
			})
			if status.Code(err) != code {
				t.Fatalf("level %v: call returned %v, want %v", level, err, code)
			}
			out := buf.String()
			logged := strings.Contains(out, "finished call")
			if want := level == slog.LevelDebug || code == codes.Internal; logged != want {
				t.Errorf("level %v, code %v: logged %v, want %v: %q", level, code, logged, want, out)
			}
			if logged && (!strings.Contains(out, "grpc.code="+code.String()) || !strings.Contains(out, "grpc.method=Query") ||
				!strings.Contains(out, "grpc.service=sqlraft.v1.DatabaseService")) {
				t.Errorf("level %v, code %v: record lacks the call's fields: %q", level, code, out)
			}
		}
	}
}
