package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// RowStream iterates over the rows of a QueryStream. Use it as
//
//	rows, err := c.QueryStream(ctx, req)
//	if err != nil { ... }
//	defer rows.Close()
//	for rows.Next() {
//		row := rows.Row()
//	}
//	if err := rows.Err(); err != nil { ... }
//
// It is not safe for concurrent use.
type RowStream struct {
	stream  sqlraftv1.DatabaseService_QueryStreamClient
	cancel  context.CancelFunc
	header  *sqlraftv1.ResponseHeader
	columns []string
	types   []string
	batch   []*sqlraftv1.Row
	row     *sqlraftv1.Row
	err     error
	done    bool
}

// QueryStream runs one SELECT (DatabaseService.QueryStream) and returns an
// iterator over its rows, which arrive in batches of req.BatchSize. The
// call is retried (as reads are) until the first message arrives; an error
// after that ends the iteration (Err). Close the stream when done with it.
func (c *Client) QueryStream(ctx context.Context, req *sqlraftv1.QueryStreamRequest, opts ...CallOption) (*RowStream, error) {
	rs := &RowStream{}
	err := c.invoke(ctx, repeatable, readRoute(req.GetConsistency()), opts, func(ctx context.Context, cc *grpc.ClientConn) (*sqlraftv1.ResponseHeader, error) {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := sqlraftv1.NewDatabaseServiceClient(cc).QueryStream(sctx, req)
		if err != nil {
			cancel()
			return nil, err
		}
		first, err := stream.Recv()
		if err != nil && !errors.Is(err, io.EOF) {
			cancel()
			return nil, err
		}
		*rs = RowStream{stream: stream, cancel: cancel, header: first.GetHeader(), columns: first.GetColumns(),
			types: first.GetTypes(), batch: first.GetRows(), done: err != nil}
		return first.GetHeader(), nil
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// Header is the first message's header: the node that answered and the
// Raft index the rows reflect.
func (r *RowStream) Header() *sqlraftv1.ResponseHeader { return r.header }

// Columns returns the result's column names.
func (r *RowStream) Columns() []string { return r.columns }

// Types returns the columns' declared types (lower case), or the storage
// class of the first row's value where a column has none.
func (r *RowStream) Types() []string { return r.types }

// Next advances to the next row; it returns false at the end of the rows
// or on an error (see Err).
func (r *RowStream) Next() bool {
	for len(r.batch) == 0 {
		if r.done || r.err != nil {
			return false
		}
		msg, err := r.stream.Recv()
		if errors.Is(err, io.EOF) {
			r.done = true
			r.cancel()
			return false
		}
		if err != nil {
			r.err = err
			r.cancel()
			return false
		}
		r.batch = msg.GetRows()
	}
	r.row, r.batch = r.batch[0], r.batch[1:]
	return true
}

// Row returns the current row (valid after Next returned true).
func (r *RowStream) Row() *sqlraftv1.Row { return r.row }

// Values returns the current row as Go values (see GoValue).
func (r *RowStream) Values() []any { return RowValues(r.row) }

// Err returns the error that ended the iteration, or nil at a clean end.
func (r *RowStream) Err() error { return r.err }

// Close stops the stream; the server's read transaction ends. It is safe
// to call more than once.
func (r *RowStream) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.done = true
	return nil
}

// Backup writes a consistent copy of the database, as a plain SQLite file,
// to w (DatabaseService.Backup) and returns the header (its raft_index is
// the index the copy reflects) and the bytes written. It is retried until
// the first chunk arrives; an error after that is returned, and w then
// holds a partial file.
func (c *Client) Backup(ctx context.Context, w io.Writer, opts ...CallOption) (*sqlraftv1.ResponseHeader, int64, error) {
	var stream sqlraftv1.DatabaseService_BackupClient
	var first *sqlraftv1.BackupResponse
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := c.invoke(sctx, repeatable, toAny, opts, func(ctx context.Context, cc *grpc.ClientConn) (*sqlraftv1.ResponseHeader, error) {
		s, err := sqlraftv1.NewDatabaseServiceClient(cc).Backup(ctx, &sqlraftv1.BackupRequest{})
		if err != nil {
			return nil, err
		}
		if first, err = s.Recv(); err != nil {
			return nil, err
		}
		stream = s
		return first.GetHeader(), nil
	})
	if err != nil {
		return nil, 0, err
	}
	var written int64
	for msg := first; ; {
		n, err := w.Write(msg.GetData())
		written += int64(n)
		if err != nil {
			return first.GetHeader(), written, fmt.Errorf("client: backup: write: %w", err)
		}
		if msg, err = stream.Recv(); errors.Is(err, io.EOF) {
			return first.GetHeader(), written, nil
		} else if err != nil {
			return first.GetHeader(), written, err
		}
	}
}
