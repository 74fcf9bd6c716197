// Package pprofserve serves Go's runtime profiles (net/http/pprof) over HTTP
// on a listener of their own, for sqlraftd's --pprof-addr.
//
// The profiles get their own listener, never the client gRPC port: they
// expose the process's internals (goroutine stacks, command line, heap), so
// whoever runs a node chooses where, if anywhere, they are reachable, and
// the client port's exposure does not change when profiling is turned on.
// The handlers go on a mux of this package's own: the net/http/pprof import
// also registers them on http.DefaultServeMux, which nothing in sqlraftd
// serves.
package pprofserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Server serves the profiles until closed.
type Server struct {
	lis  net.Listener
	http *http.Server
	done chan struct{}
}

// Handler serves the profile index at /debug/pprof/ and every profile
// under it.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Start listens on addr and serves Handler there; errors of the server
// after that go to logger.
func Start(addr string, logger *slog.Logger) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for pprof on %s: %w", addr, err)
	}
	s := &Server{lis: lis, done: make(chan struct{}),
		http: &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	logger.Info("serving pprof", "addr", lis.Addr().String())
	return s, nil
}

// Addr is the address the profiles are served on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops serving: the listener closes at once, and a profile being
// taken is given a few seconds to finish.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	<-s.done
	return err
}
