package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

func backupCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Save a consistent copy of the database as a SQLite file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var size int64
			var index uint64
			err := g.call(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) (err error) {
				size, index, err = saveBackup(ctx, conn, args[0])
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d bytes, as of raft index %d\n", args[0], size, index)
			return nil
		},
	}
}

// saveBackup streams a Backup from conn into path: written beside it,
// synced, checked to be a SQLite file, then renamed over it. It returns
// the copy's size and the Raft index it reflects.
func saveBackup(ctx context.Context, conn *grpc.ClientConn, path string) (size int64, index uint64, err error) {
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp)
	err = func() error {
		// Each message's data is written out before the next is received,
		// so it may be decoded into one reused buffer (backupCodec).
		stream, err := sqlraftv1.NewDatabaseServiceClient(conn).Backup(ctx, &sqlraftv1.BackupRequest{},
			grpc.ForceCodecV2(&backupCodec{}))
		if err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if msg.GetHeader() != nil {
				index = msg.GetHeader().GetRaftIndex()
			}
			n, err := f.Write(msg.GetData())
			size += int64(n)
			if err != nil {
				return err
			}
		}
	}()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	if err := checkSQLiteHeader(tmp); err != nil {
		return 0, 0, err
	}
	return size, index, os.Rename(tmp, path)
}

// checkSQLiteHeader fails unless path starts like a SQLite database.
func checkSQLiteHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return fmt.Errorf("the backup received is not a SQLite file")
	}
	return nil
}
