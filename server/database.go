package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
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
	applied, err := d.s.node.Execute(ctx, req.GetStatements(), req.GetTransaction())
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
	results, index, err := d.s.node.Query(ctx, raftnode.Read{Level: level, Freshness: req.GetFreshness().AsDuration(),
		MinIndex: req.GetMinRaftIndex()},
		req.GetStatements())
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	return &sqlraftv1.QueryResponse{Header: d.s.header(index), Results: results}, nil
}

// Request implements DatabaseService.Request: the node validates the
// statements once and serves them as a read at the requested level when
// every one only reads, through the log otherwise; a request this node
// cannot serve goes to the leader whole.
func (d *database) Request(ctx context.Context, req *sqlraftv1.RequestRequest) (*sqlraftv1.RequestResponse, error) {
	if len(req.GetStatements()) == 0 {
		return nil, invalid("no statements given")
	}
	level, err := d.s.level(req.GetConsistency(), req.GetFreshness().AsDuration())
	if err != nil {
		return nil, err
	}
	applied, err := d.s.node.Request(ctx, raftnode.Read{Level: level, Freshness: req.GetFreshness().AsDuration(),
		MinIndex: req.GetMinRaftIndex()}, req,
		requestCheck(ctx))
	if errors.Is(err, raftnode.ErrNotLeader) {
		return forward(d.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.RequestResponse, error) {
			return sqlraftv1.NewDatabaseServiceClient(conn).Request(fctx, req)
		})
	}
	if err != nil {
		return nil, d.s.toStatus(err)
	}
	return &sqlraftv1.RequestResponse{Header: d.s.header(applied.Index), Results: applied.Results}, nil
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
	batch := int(min(req.GetBatchSize(), maxBatchRows))
	if batch <= 0 {
		batch = 500
	}
	first := true
	err = d.s.node.Stream(ctx, raftnode.Read{Level: level, Freshness: req.GetFreshness().AsDuration(),
		MinIndex: req.GetMinRaftIndex()}, req.GetStatement(),
		batch, func(index uint64, cols, types []string, rows []*sqlraftv1.Row) error {
			msg := &sqlraftv1.QueryStreamResponse{Columns: cols, Types: types, Rows: rows}
			if first {
				msg.Header, first = d.s.header(index), false
			}
			return d.s.send(stream, msg)
		})
	return d.s.toStatus(err)
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
			if err := d.s.send(stream, msg); err != nil {
				return struct{}{}, err
			}
		}
	})
	return err
}

// maxBatchRows bounds QueryStream's batch_size, so a stream never holds
// more than this many rows in memory.
const maxBatchRows = 10000

// backupChunk is the size of each Backup message's data: large, so that a
// backup of a big database costs few messages, and with its header still
// within the smallest response limit (msglimit.Minimum plus headroom) and
// grpc-go's default 4 MiB receive limit of clients.
const backupChunk = 1 << 20

// Backup implements DatabaseService.Backup: a SQLite file or a SQL dump,
// either of them gzipped if asked, streamed as it is read.
func (d *database) Backup(req *sqlraftv1.BackupRequest, stream sqlraftv1.DatabaseService_BackupServer) error {
	var err error
	switch req.GetFormat() {
	case sqlraftv1.BackupFormat_BACKUP_FORMAT_UNSPECIFIED, sqlraftv1.BackupFormat_BACKUP_FORMAT_SQLITE:
		err = d.s.node.Backup(stream.Context(), func(f io.Reader, index uint64) error {
			return d.sendBackup(stream, index, req.GetGzip(), false, func(w io.Writer) error {
				var err error
				if wt, ok := f.(io.WriterTo); ok {
					_, err = wt.WriteTo(w) // the store's reader hands over its 1 MiB chunks as they are
				} else {
					_, err = io.CopyBuffer(w, f, make([]byte, backupChunk))
				}
				return err
			})
		})
	case sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL:
		err = d.s.node.Dump(stream.Context(), func(dump func(io.Writer) error, index uint64) error {
			return d.sendBackup(stream, index, req.GetGzip(), true, dump)
		})
	default:
		return invalid("unknown backup format %d: use BACKUP_FORMAT_SQLITE or BACKUP_FORMAT_SQL", req.GetFormat())
	}
	return d.s.toStatus(err)
}

// sendBackup streams what write writes as Backup messages, the first one
// with the header of index, gzipped if asked. Output written in small
// pieces (gzip's, or a dump's when gather is set) is gathered into
// messages of backupChunk bytes; a live backup's 1 MiB chunks go out as
// they are, without a copy.
func (d *database) sendBackup(stream sqlraftv1.DatabaseService_BackupServer, index uint64, gz, gather bool,
	write func(io.Writer) error) error {
	w := &backupWriter{d: d, stream: stream, header: d.s.header(index)}
	out, flush := io.Writer(w), func() error { return nil }
	if gz || gather {
		bw := bufio.NewWriterSize(w, backupChunk)
		out, flush = bw, bw.Flush
	}
	var err error
	if gz {
		zw := gzip.NewWriter(out)
		if err = write(zw); err == nil {
			err = zw.Close()
		}
	} else {
		err = write(out)
	}
	if err == nil {
		err = flush()
	}
	if err == nil && w.header != nil {
		err = w.send(nil) // an empty database: the header alone
	}
	return err
}

// backupWriter sends what is written to it as Backup messages of at most
// backupChunk bytes, the first one with the response header.
type backupWriter struct {
	d      *database
	stream sqlraftv1.DatabaseService_BackupServer
	header *sqlraftv1.ResponseHeader // nil once sent
}

// Write sends p, in backupChunk pieces. The message is encoded before the
// send returns, so p may be reused afterwards.
func (w *backupWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := min(len(p)-n, backupChunk)
		if err := w.send(p[n : n+m]); err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// WriteChunk sends b as one message without copying it
// (snapshot.ChunkWriter): the codec hands b itself to the transport, which
// calls release once it has written it out.
func (w *backupWriter) WriteChunk(b []byte, release func()) error {
	if len(b) > backupChunk {
		_, err := w.Write(b)
		release()
		return err
	}
	msg := &backupFrame{header: w.header, data: b, release: release}
	w.header = nil
	return w.d.s.send(w.stream, msg)
}

func (w *backupWriter) send(data []byte) error {
	msg := &sqlraftv1.BackupResponse{Data: data, Header: w.header}
	w.header = nil
	return w.d.s.send(w.stream, msg)
}
