package raftnode_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// TestFSMScripts drives the FSM with the transcripts under testdata/fsm:
// each file builds Raft entries, applies them in batches, replays them as
// Raft does after a restart and reads the database, and the expected
// output of every step is written under it. Run with -rewrite to update
// the expected output after an intended change (then read the diff).
//
// Commands (arguments in brackets are optional):
//
//	entry [tx] [strong] [proposer=ID] [now=N] [seed=N] [steps=N] [rows=N] [bytes=N] [result-bytes=N]
//	    queues a command entry; its input holds one statement per line
//	config
//	    queues a configuration entry (applies nothing, advances the index)
//	apply
//	    applies the queued entries as one batch; prints each entry's results
//	replay from=N
//	    applies every entry from index N again, as one batch (a restart)
//	reopen
//	    starts a new FSM over the same database and snapshot store
//	query
//	    reads the database directly; its input holds one statement per line
//	applied
//	    prints the index the FSM reports applied
func TestFSMScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/fsm", func(t *testing.T, path string) {
		s := &fsmScript{t: t}
		s.db, s.store, s.fsm = newFSM(t)
		datadriven.RunTest(t, path, s.run)
	})
}

// fsmScript is one transcript's state: the FSM, the entries applied so far
// (for replay) and those queued for the next batch.
type fsmScript struct {
	t       *testing.T
	db      *sqlitedb.DB
	store   *snapshot.Store
	fsm     *raftnode.FSM
	log     []*raft.Log
	pending []*raft.Log
}

func (s *fsmScript) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "entry":
		s.pending = append(s.pending, s.entry(t, d))
		return ""
	case "config":
		s.pending = append(s.pending, &raft.Log{Index: s.nextIndex(), Term: 1, Type: raft.LogConfiguration})
		return ""
	case "apply":
		batch := s.pending
		s.pending = nil
		s.log = append(s.log, batch...)
		return formatResults(batch, s.fsm.ApplyBatch(batch))
	case "replay":
		var from uint64
		d.ScanArgs(t, "from", &from)
		var batch []*raft.Log
		for _, l := range s.log {
			if l.Index >= from {
				batch = append(batch, l)
			}
		}
		return formatResults(batch, s.fsm.ApplyBatch(batch))
	case "reopen":
		fsm, err := raftnode.NewFSM("n1", s.db, s.store, slog.New(slog.DiscardHandler))
		if err != nil {
			return "error: " + err.Error()
		}
		s.fsm = fsm
		return fmt.Sprintf("applied %d", fsm.Applied())
	case "query":
		res, _, err := s.db.Query(context.Background(), stmts(lines(d.Input)...))
		if err != nil {
			return "error: " + err.Error()
		}
		var b strings.Builder
		for _, r := range res {
			formatQuery(&b, r)
		}
		return b.String()
	case "applied":
		return fmt.Sprintf("applied %d", s.fsm.Applied())
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// nextIndex is the index of the next entry queued.
func (s *fsmScript) nextIndex() uint64 {
	return uint64(len(s.log)+len(s.pending)) + 1
}

// entry builds a command entry from d's arguments and input.
func (s *fsmScript) entry(t *testing.T, d *datadriven.TestData) *raft.Log {
	cmd := &raftlogv1.Command{NowUnixNanos: 1_700_000_000_000_000_000, RandomSeed: 1, Proposer: "n1"}
	var limits *raftlogv1.EntryLimits
	tx, strong := false, false
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "tx":
			tx = true
		case "strong":
			strong = true
		case "proposer":
			cmd.Proposer = a.Vals[0]
		case "now":
			cmd.NowUnixNanos = int64(argUint(t, d, a))
		case "seed":
			cmd.RandomSeed = argUint(t, d, a)
		case "steps", "rows", "bytes", "result-bytes":
			if limits == nil {
				limits = &raftlogv1.EntryLimits{}
			}
			*map[string]*uint64{"steps": &limits.MaxSteps, "rows": &limits.MaxRows, "bytes": &limits.MaxBytes,
				"result-bytes": &limits.MaxResultBytes}[a.Key] = argUint(t, d, a)
		default:
			t.Fatalf("%s: unknown argument %q", d.Pos, a.Key)
		}
	}
	cmd.Limits = limits
	if strong {
		cmd.Kind = &raftlogv1.Command_Query{Query: &sqlraftv1.QueryRequest{Statements: stmts(lines(d.Input)...),
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}}
	} else {
		cmd.Kind = &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{Statements: stmts(lines(d.Input)...),
			Transaction: tx}}
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: s.nextIndex(), Term: 1, Type: raft.LogCommand, Data: data}
}

func argUint(t *testing.T, d *datadriven.TestData, a datadriven.CmdArg) uint64 {
	v, err := strconv.ParseUint(a.Vals[0], 10, 64)
	if err != nil {
		t.Fatalf("%s: %s: %v", d.Pos, a.Key, err)
	}
	return v
}

// lines splits a command's input into statements, one per non-empty line.
func lines(input string) []string {
	var out []string
	for _, l := range strings.Split(input, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// formatResults prints what applying batch returned, one block per entry.
func formatResults(batch []*raft.Log, out []any) string {
	var b strings.Builder
	for i, l := range batch {
		fmt.Fprintf(&b, "entry %d:", l.Index)
		switch r := out[i].(type) {
		case nil:
			b.WriteString(" -\n")
		case *raftnode.Result:
			if r.Err != nil {
				fmt.Fprintf(&b, " error: %v\n", r.Err)
				continue
			}
			if len(r.Results) == 0 {
				b.WriteString(" (no results)\n")
				continue
			}
			b.WriteString("\n")
			for _, rr := range r.Results {
				if q := rr.GetQuery(); q != nil {
					formatQuery(&b, q)
					continue
				}
				e := rr.GetExecute()
				if e.GetError() != "" {
					fmt.Fprintf(&b, "  error: %s\n", e.GetError())
					continue
				}
				fmt.Fprintf(&b, "  ok rows_affected=%d last_insert_id=%d\n", e.GetRowsAffected(), e.GetLastInsertId())
			}
		default:
			fmt.Fprintf(&b, " %T %v\n", r, r)
		}
	}
	return b.String()
}

// formatQuery prints one query result: its error, or its columns and rows.
func formatQuery(b *strings.Builder, q *sqlraftv1.QueryResult) {
	if q.GetError() != "" {
		fmt.Fprintf(b, "  error: %s\n", q.GetError())
		return
	}
	fmt.Fprintf(b, "  %s\n", strings.Join(q.GetColumns(), " | "))
	for _, row := range q.GetRows() {
		vals := make([]string, len(row.GetValues()))
		for i, v := range row.GetValues() {
			vals[i] = formatValue(v)
		}
		fmt.Fprintf(b, "  %s\n", strings.Join(vals, " | "))
	}
}

func formatValue(v *sqlraftv1.Value) string {
	switch k := v.GetKind().(type) {
	case *sqlraftv1.Value_Integer:
		return strconv.FormatInt(k.Integer, 10)
	case *sqlraftv1.Value_Real:
		return strconv.FormatFloat(k.Real, 'g', -1, 64)
	case *sqlraftv1.Value_Text:
		return strconv.Quote(k.Text)
	case *sqlraftv1.Value_Blob:
		return fmt.Sprintf("x'%x'", k.Blob)
	case *sqlraftv1.Value_TextBytes:
		return fmt.Sprintf("text_bytes'%x'", k.TextBytes)
	default:
		return "NULL"
	}
}
