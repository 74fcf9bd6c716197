package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

func execCommand(g *globals) *cobra.Command {
	var tx bool
	cmd := &cobra.Command{
		Use:   "exec SQL [PARAM...]",
		Short: "Run a write statement through Raft (parameters bind to ?; use int:, real:, blob:, textbytes:, null to type them)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stmt, err := statement(args)
			if err != nil {
				return err
			}
			var resp *sqlraftv1.ExecuteResponse
			err = g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client, opts []client.CallOption) (err error) {
				resp, err = c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{stmt}, Transaction: tx}, opts...)
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			for _, r := range resp.GetResults() {
				if r.GetError() != "" {
					return fail("%s", r.GetError())
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d row(s) affected, last insert id %d (raft index %d)\n",
					r.GetRowsAffected(), r.GetLastInsertId(), resp.GetHeader().GetRaftIndex())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&tx, "transaction", false, "run in a transaction")
	return cmd
}

func queryCommand(g *globals) *cobra.Command {
	var consistency string
	var freshness time.Duration
	cmd := &cobra.Command{
		Use:   "query SQL [PARAM...]",
		Short: "Run a read-only statement at a consistency level",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stmt, err := statement(args)
			if err != nil {
				return err
			}
			level, err := parseLevel(consistency)
			if err != nil {
				return err
			}
			var resp *sqlraftv1.QueryResponse
			err = g.withClient(cmd.Context(), func(ctx context.Context, c *client.Client, opts []client.CallOption) (err error) {
				resp, err = c.Query(ctx, &sqlraftv1.QueryRequest{
					Statements: []*sqlraftv1.Statement{stmt}, Consistency: level, Freshness: durationpb.New(freshness)}, opts...)
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			r := resp.GetResults()[0]
			if r.GetError() != "" {
				return fail("%s", r.GetError())
			}
			printTable(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().StringVarP(&consistency, "consistency", "c", "", "none, weak, linearizable or strong (default: the server's)")
	cmd.Flags().DurationVar(&freshness, "freshness", 0, "with none: fail if this node heard from the leader longer ago")
	return cmd
}

// statement builds a Statement from SQL and typed parameters: a plain
// argument is text; int:N, real:X, blob:BASE64, textbytes:BASE64 (TEXT
// given as raw bytes) and null set other types.
func statement(args []string) (*sqlraftv1.Statement, error) {
	s := &sqlraftv1.Statement{Sql: args[0]}
	for _, a := range args[1:] {
		v, err := parseValue(a)
		if err != nil {
			return nil, err
		}
		s.Params = append(s.Params, v)
	}
	return s, nil
}

func parseValue(a string) (*sqlraftv1.Value, error) {
	kind, rest, typed := strings.Cut(a, ":")
	switch {
	case a == "null":
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}, nil
	case typed && kind == "int":
		i, err := strconv.ParseInt(rest, 10, 64)
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}}, err
	case typed && kind == "real":
		f, err := strconv.ParseFloat(rest, 64)
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Real{Real: f}}, err
	case typed && kind == "blob":
		b, err := base64.StdEncoding.DecodeString(rest)
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: b}}, err
	case typed && kind == "textbytes":
		b, err := base64.StdEncoding.DecodeString(rest)
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: b}}, err
	case typed && kind == "text":
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: rest}}, nil
	}
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: a}}, nil
}

func parseLevel(s string) (sqlraftv1.ReadConsistency, error) {
	if s == "" {
		return sqlraftv1.ReadConsistency_READ_CONSISTENCY_UNSPECIFIED, nil
	}
	v, ok := sqlraftv1.ReadConsistency_value["READ_CONSISTENCY_"+strings.ToUpper(s)]
	if !ok {
		return 0, fail("unknown consistency %q: use none, weak, linearizable or strong", s)
	}
	return sqlraftv1.ReadConsistency(v), nil
}

func printTable(w io.Writer, r *sqlraftv1.QueryResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.GetColumns(), "\t"))
	for _, row := range r.GetRows() {
		cells := make([]string, len(row.GetValues()))
		for i, v := range row.GetValues() {
			cells[i] = formatValue(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// formatValue renders a value for the table output. TEXT that is not valid
// UTF-8 (text_bytes) is shown as the SQL that makes it, so it is not
// mistaken for a blob and does not garble the terminal.
func formatValue(v *sqlraftv1.Value) string {
	switch k := v.GetKind().(type) {
	case *sqlraftv1.Value_Integer:
		return strconv.FormatInt(k.Integer, 10)
	case *sqlraftv1.Value_Real:
		return strconv.FormatFloat(k.Real, 'g', -1, 64)
	case *sqlraftv1.Value_Text:
		return k.Text
	case *sqlraftv1.Value_Blob:
		return "x'" + fmt.Sprintf("%x", k.Blob) + "'"
	case *sqlraftv1.Value_TextBytes:
		return "CAST(x'" + fmt.Sprintf("%x", k.TextBytes) + "' AS TEXT)"
	}
	return "NULL"
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
