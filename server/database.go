package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// database implements sqlraftv1.DatabaseServiceServer.
type database struct {
	sqlraftv1.UnimplementedDatabaseServiceServer
	s *Server
}

// Execute implements DatabaseService.Execute. The statements are validated
// by the leader, once, before it proposes them.
func (d *database) Execute(ctx context.Context, req *sqlraftv1.ExecuteRequest) (*sqlraftv1.ExecuteResponse, error) {
	if len(req.GetStatements()) == 0 {
		return nil, invalid("no statements given")
	}
	if !d.s.node.IsLeader() {
		return forward(d.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.ExecuteResponse, error) {
			return sqlraftv1.NewDatabaseServiceClient(conn).Execute(fctx, req)
		})
	}
	if err := d.s.checkStatements(ctx, req.GetStatements()); err != nil {
		return nil, err
	}
	applied, err := d.s.node.Write(ctx, &sqlraftv1.RequestRequest{Statements: req.GetStatements(), Transaction: req.GetTransaction()})
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	resp := &sqlraftv1.ExecuteResponse{Header: d.s.header(applied.Index)}
	for _, r := range applied.Results {
		if q := r.GetQuery(); q != nil {
			resp.Results = append(resp.Results, &sqlraftv1.ExecuteResult{Error: q.GetError()})
			continue
		}
		resp.Results = append(resp.Results, r.GetExecute())
	}
	return resp, nil
}

// Query implements DatabaseService.Query. The statements are validated by
// the node that runs them, in the same pass that prepares them.
func (d *database) Query(ctx context.Context, req *sqlraftv1.QueryRequest) (*sqlraftv1.QueryResponse, error) {
	if len(req.GetStatements()) == 0 {
		return nil, invalid("no statements given")
	}
	level, err := d.s.level(req.GetConsistency(), req.GetFreshness().AsDuration())
	if err != nil {
		return nil, err
	}
	if d.s.mustForward(level) {
		return forward(d.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.QueryResponse, error) {
			return sqlraftv1.NewDatabaseServiceClient(conn).Query(fctx, req)
		})
	}
	results, index, err := d.s.read(ctx, level, req)
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	return &sqlraftv1.QueryResponse{Header: d.s.header(index), Results: results}, nil
}

// Request implements DatabaseService.Request: all reads are a Query at the
// requested level; anything else goes through the log.
func (d *database) Request(ctx context.Context, req *sqlraftv1.RequestRequest) (*sqlraftv1.RequestResponse, error) {
	if len(req.GetStatements()) == 0 {
		return nil, invalid("no statements given")
	}
	kinds, err := d.s.node.DB().Inspect(ctx, req.GetStatements())
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	if allReadOnly(kinds) {
		q, err := d.Query(ctx, &sqlraftv1.QueryRequest{Statements: req.GetStatements(),
			Consistency: req.GetConsistency(), Freshness: req.GetFreshness()})
		if err != nil {
			return nil, err
		}
		resp := &sqlraftv1.RequestResponse{Header: q.GetHeader()}
		for _, r := range q.GetResults() {
			resp.Results = append(resp.Results, &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Query{Query: r}})
		}
		return resp, nil
	}
	if !d.s.node.IsLeader() {
		return forward(d.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.RequestResponse, error) {
			return sqlraftv1.NewDatabaseServiceClient(conn).Request(fctx, req)
		})
	}
	applied, err := d.s.node.Write(ctx, &sqlraftv1.RequestRequest{Statements: req.GetStatements(), Transaction: req.GetTransaction()})
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	return &sqlraftv1.RequestResponse{Header: d.s.header(applied.Index), Results: applied.Results}, nil
}

func allReadOnly(kinds []sqlitedb.Kind) bool {
	for _, k := range kinds {
		if k != sqlitedb.ReadOnly {
			return false
		}
	}
	return true
}

// QueryStream implements DatabaseService.QueryStream.
func (d *database) QueryStream(req *sqlraftv1.QueryStreamRequest, stream sqlraftv1.DatabaseService_QueryStreamServer) error {
	ctx := stream.Context()
	if req.GetStatement() == nil {
		return invalid("no statement given")
	}
	level, err := d.s.level(req.GetConsistency(), req.GetFreshness().AsDuration())
	if err != nil {
		return err
	}
	if d.s.mustForward(level) {
		return d.forwardStream(ctx, req, stream)
	}
	index, err := d.s.prepareRead(ctx, level, req.GetFreshness().AsDuration())
	if err != nil {
		return d.s.toStatus(err)
	}
	batch := int(min(req.GetBatchSize(), maxBatchRows))
	if batch <= 0 {
		batch = 500
	}
	first := true
	sctx, clock, stop := d.s.newStreamClock(ctx)
	defer stop()
	err = d.s.node.DB().QueryStream(sctx, req.GetStatement(), batch,
		func(pos sqlitedb.Position, cols, types []string, rows []*sqlraftv1.Row) error {
			msg := &sqlraftv1.QueryStreamResponse{Columns: cols, Types: types, Rows: rows}
			if first {
				msg.Header, first = d.s.header(max(index, pos.Index)), false
			}
			return clock.sending(func() error { return stream.Send(msg) })
		})
	return d.s.toStatus(d.s.queryTimeStatus(sctx, err))
}

func (d *database) forwardStream(ctx context.Context, req *sqlraftv1.QueryStreamRequest, stream sqlraftv1.DatabaseService_QueryStreamServer) error {
	_, err := forward(d.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (struct{}, error) {
		up, err := sqlraftv1.NewDatabaseServiceClient(conn).QueryStream(fctx, req)
		if err != nil {
			return struct{}{}, err
		}
		for {
			msg, err := up.Recv()
			if errors.Is(err, io.EOF) {
				return struct{}{}, nil
			}
			if err != nil {
				return struct{}{}, err
			}
			if err := stream.Send(msg); err != nil {
				return struct{}{}, err
			}
		}
	})
	return err
}

// read runs a Query's statements at level (this node serves it).
func (s *Server) read(ctx context.Context, level sqlraftv1.ReadConsistency, req *sqlraftv1.QueryRequest) ([]*sqlraftv1.QueryResult, uint64, error) {
	if level == sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG {
		kinds, err := s.node.DB().Inspect(ctx, req.GetStatements())
		if err != nil {
			return nil, 0, err
		}
		for i, k := range kinds {
			if k == sqlitedb.Write {
				return nil, 0, &sqlitedb.InvalidError{Index: i, Reason: "is not read-only; send writes with Execute or Request"}
			}
		}
		applied, err := s.node.StrongRead(ctx, req)
		if err != nil {
			return nil, 0, err
		}
		out := make([]*sqlraftv1.QueryResult, len(applied.Results))
		for i, r := range applied.Results {
			out[i] = r.GetQuery()
			if out[i] == nil {
				out[i] = &sqlraftv1.QueryResult{Error: r.GetExecute().GetError()}
			}
		}
		return out, applied.Index, nil
	}
	index, err := s.prepareRead(ctx, level, req.GetFreshness().AsDuration())
	if err != nil {
		return nil, 0, err
	}
	qctx, cancel := s.withQueryTime(ctx)
	defer cancel()
	results, pos, err := s.node.DB().Query(qctx, req.GetStatements())
	return results, max(index, pos.Index), s.queryTimeStatus(qctx, err)
}

// prepareRead makes a local read safe at level (NONE, WEAK or
// LINEARIZABLE) and returns the index it is known to reflect.
func (s *Server) prepareRead(ctx context.Context, level sqlraftv1.ReadConsistency, freshness time.Duration) (uint64, error) {
	switch level {
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE:
		return 0, s.node.FreshRead(freshness)
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK:
		return 0, s.node.WeakRead(ctx)
	default:
		return s.node.LinearizableRead(ctx)
	}
}

// maxBatchRows bounds QueryStream's batch_size, so a stream never holds
// more than this many rows in memory.
const maxBatchRows = 10000

// backupChunk is the size of each Backup message.
const backupChunk = 256 << 10

// Backup implements DatabaseService.Backup.
func (d *database) Backup(_ *sqlraftv1.BackupRequest, stream sqlraftv1.DatabaseService_BackupServer) error {
	err := d.s.node.Backup(stream.Context(), func(f io.Reader, index uint64) error {
		buf := make([]byte, backupChunk)
		first := true
		for {
			n, err := f.Read(buf)
			if n > 0 || (first && errors.Is(err, io.EOF)) {
				msg := &sqlraftv1.BackupResponse{Data: buf[:n]}
				if first {
					msg.Header, first = d.s.header(index), false
				}
				if serr := stream.Send(msg); serr != nil {
					return serr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	return d.s.toStatus(err)
}
