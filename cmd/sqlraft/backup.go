package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// backupOptions say what a backup or dump asks for and where it goes.
type backupOptions struct {
	format  string // "sqlite" or "sql"; empty: from the file's name
	gzip    bool
	gzipSet bool // --gzip was given: the name's .gz does not decide
}

func backupCommand(g *globals) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup FILE|-",
		Short: "Save a consistent copy of the database: a SQLite file or a SQL dump, gzipped if asked",
		Long: `Save a consistent copy of the database into FILE, or to standard output with "-".

--format sqlite (a plain SQLite file) or sql (a SQL text dump, as sqlite3's .dump
writes it, without sqlraft's internal tables). Without --format, a FILE whose name
ends in .sql or .sql.gz gets a SQL dump, anything else (and "-") a SQLite file.
--gzip compresses either on the server; without --gzip, a FILE ending in .gz is
gzipped. A FILE is written beside itself and renamed into place once whole.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.gzipSet = cmd.Flags().Changed("gzip")
			return runBackup(cmd, g, args[0], o)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "", "sqlite or sql (default: from FILE's name, else sqlite)")
	cmd.Flags().BoolVar(&o.gzip, "gzip", false, "gzip the copy (default: when FILE ends in .gz)")
	return cmd
}

func dumpCommand(g *globals) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "dump [FILE|-]",
		Short: "Write the database as a SQL text dump (to standard output by default)",
		Long: `Write the database as a SQL text dump, as sqlite3's .dump does (without sqlraft's
internal tables): to standard output, or into FILE. --gzip (or a FILE ending in .gz)
compresses it on the server. "sqlraft dump | sqlite3 copy.db" makes a plain SQLite copy.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.format, o.gzipSet = "sql", cmd.Flags().Changed("gzip")
			target := "-"
			if len(args) == 1 {
				target = args[0]
			}
			return runBackup(cmd, g, target, o)
		},
	}
	cmd.Flags().BoolVar(&o.gzip, "gzip", false, "gzip the dump (default: when FILE ends in .gz)")
	return cmd
}

// request is the Backup request for target, the format and gzip resolved.
func (o backupOptions) request(target string) (*sqlraftv1.BackupRequest, error) {
	req := &sqlraftv1.BackupRequest{Gzip: o.gzip}
	if !o.gzipSet && target != "-" {
		req.Gzip = strings.HasSuffix(target, ".gz")
	}
	format := o.format
	if format == "" && target != "-" && (strings.HasSuffix(target, ".sql") || strings.HasSuffix(target, ".sql.gz")) {
		format = "sql"
	}
	switch format {
	case "", "sqlite":
		req.Format = sqlraftv1.BackupFormat_BACKUP_FORMAT_SQLITE
	case "sql":
		req.Format = sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL
	default:
		return nil, fail("--format %q: want sqlite or sql", format)
	}
	return req, nil
}

// runBackup saves a backup into target ("-": standard output) and says
// what it wrote: on standard error when the copy itself went to standard
// output.
func runBackup(cmd *cobra.Command, g *globals, target string, o backupOptions) error {
	req, err := o.request(target)
	if err != nil {
		return err
	}
	var size int64
	var index uint64
	err = g.call(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		if target == "-" {
			size, index, err = streamBackup(ctx, conn, req, cmd.OutOrStdout())
		} else {
			size, index, err = saveBackup(ctx, conn, req, target)
		}
		return err
	})
	if err != nil {
		return err
	}
	report, name := cmd.OutOrStdout(), target
	if target == "-" {
		report, name = cmd.ErrOrStderr(), "standard output"
	}
	fmt.Fprintf(report, "wrote %s: %d bytes, as of raft index %d\n", name, size, index)
	return nil
}

// saveBackup streams a Backup from conn into path: written beside it,
// synced, checked to be what was asked for, then renamed over it. It
// returns the copy's size and the Raft index it reflects.
func saveBackup(ctx context.Context, conn *grpc.ClientConn, req *sqlraftv1.BackupRequest, path string) (size int64, index uint64, err error) {
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp)
	size, index, err = streamBackup(ctx, conn, req, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	if err := checkBackup(tmp, req); err != nil {
		return 0, 0, err
	}
	return size, index, os.Rename(tmp, path)
}

// streamBackup writes a Backup from conn to w and returns its size and the
// Raft index it reflects.
func streamBackup(ctx context.Context, conn *grpc.ClientConn, req *sqlraftv1.BackupRequest, w io.Writer) (size int64, index uint64, err error) {
	// Each message's data is written out before the next is received, so
	// it may be decoded into one reused buffer (backupCodec).
	stream, err := sqlraftv1.NewDatabaseServiceClient(conn).Backup(ctx, req, grpc.ForceCodecV2(&backupCodec{}))
	if err != nil {
		return 0, 0, err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return size, index, nil
		}
		if err != nil {
			return size, index, err
		}
		if msg.GetHeader() != nil {
			index = msg.GetHeader().GetRaftIndex()
		}
		n, err := w.Write(msg.GetData())
		size += int64(n)
		if err != nil {
			return size, index, err
		}
	}
}

// checkBackup fails unless the file at path starts as req's copy should:
// a gzip stream, a SQLite file, or (a SQL dump) anything.
func checkBackup(path string, req *sqlraftv1.BackupRequest) error {
	switch {
	case req.GetGzip():
		return checkPrefix(path, []byte{0x1f, 0x8b}, "a gzip stream")
	case req.GetFormat() == sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL:
		return nil
	}
	return checkSQLiteHeader(path)
}

// checkSQLiteHeader fails unless path starts like a SQLite database.
func checkSQLiteHeader(path string) error {
	return checkPrefix(path, []byte("SQLite format 3\x00"), "a SQLite file")
}

// checkPrefix fails unless the file at path starts with prefix.
func checkPrefix(path string, prefix []byte, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(prefix))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, prefix) {
		return fmt.Errorf("the backup received is not %s", what)
	}
	return nil
}
