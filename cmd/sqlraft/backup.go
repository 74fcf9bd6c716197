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
			tmp := args[0] + ".partial"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			defer os.Remove(tmp)
			var index uint64
			var size int64
			err = g.call(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) error {
				stream, err := sqlraftv1.NewDatabaseServiceClient(conn).Backup(ctx, &sqlraftv1.BackupRequest{})
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
			})
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := checkSQLiteHeader(tmp); err != nil {
				return err
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d bytes, as of raft index %d\n", args[0], size, index)
			return nil
		},
	}
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
