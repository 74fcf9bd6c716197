package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// unaryCallLog logs every finished unary call at the level callLevel gives
// its code, through the logging middleware when debug records are written.
// Otherwise only failures at warn can be written, and the middleware, which
// builds its fields (start time, deadline, peer, service, method) for every
// call whether or not its record is written, cost 6% of a point read's CPU:
// the call runs bare and a failure worth a warning is logged here, with the
// middleware's field names.
func unaryCallLog(logger *slog.Logger, opts ...logging.Option) grpc.UnaryServerInterceptor {
	full := logging.UnaryServerInterceptor(slogAdapter(logger), opts...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if logger.Enabled(ctx, slog.LevelDebug) {
			return full(ctx, req, info, handler)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		if lvl := slog.Level(callLevel(code)); logger.Enabled(ctx, lvl) {
			service, method, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
			attrs := []any{"grpc.component", "server", "grpc.service", service, "grpc.method", method,
				"grpc.method_type", "unary", "grpc.code", code.String(),
				"grpc.time_ms", float64(time.Since(start).Microseconds()) / 1000, "grpc.error", err}
			if p, ok := peer.FromContext(ctx); ok {
				attrs = append(attrs, "peer.address", p.Addr.String())
			}
			logger.Log(ctx, lvl, "finished call", attrs...)
		}
		return resp, err
	}
}
